"""Train a PredRNN model: ``python -m predrnn_tf.train --flagfile=configs/radar.flags``.

Flags carry the official run.py names (``--help`` lists them; ``--stride=1`` is accepted).
Running the same command again resumes from the newest checkpoint in ``--workdir``.
"""

from __future__ import annotations

import json

from absl import app, flags, logging

from predrnn_tf.cli.flag_parsing import (
    absolute_path,
    config_from_flags,
    define_config_flags,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)

define_config_flags()
flags.DEFINE_string("workdir", None, "Work directory: checkpoints, config.json, TensorBoard.")
flags.DEFINE_integer("stride", 1, "Accepted for the official run.py's flag lines: only 1. The "
                     "window stride is chosen when converting (tools/make_radar.py --stride, "
                     "tools/make_kth.py --fast_stride/--other_stride).")


def check_stride() -> None:
    """``--stride=1`` (official run.py's value) is accepted; other values are refused."""
    from predrnn_tf.errors import ConfigError

    stride = flags.FLAGS.stride
    if stride != 1:
        raise ConfigError(f"--stride={stride}: training reads the sequences as the converter "
                          f"cut them, so only --stride=1 is accepted; choose the window stride "
                          f"when converting (tools/make_radar.py --stride, tools/make_kth.py "
                          f"--fast_stride/--other_stride)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)

    def run():
        from predrnn_tf.config import ConfigError

        check_stride()
        if not flags.FLAGS.workdir:
            raise ConfigError("--workdir is required")
        workdir = absolute_path(flags.FLAGS.workdir)  # resolved once: printed and used
        config = config_from_flags()
        from predrnn_tf.training import cpu_features

        cpu_features.warn_if_emulated_bfloat16(config.precision)
        if config.data_dir:
            config = config.replace(data_dir=absolute_path(config.data_dir))
        from predrnn_tf.training import loop

        result = loop.train_and_evaluate(config, workdir)
        summary = {key: result[key] for key in ("step", "mse", "persistence_mse", "num_sequences")
                   if key in result}
        print(json.dumps(summary))

    run_or_exit(run)


def console_main() -> None:
    """The ``predrnn-train`` console command."""
    import_tensorflow_quietly()
    run_app(main)


if __name__ == "__main__":
    console_main()
