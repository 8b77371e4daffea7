"""Export a trained model for TF Serving.

  python -m predrnn_tf.export --workdir=runs/quickstart --export_dir=exports
  python -m predrnn_tf.export --workdir=runs/radar --export_dir=exports --model_name=radar \
      --precision=mixed_float16 --version=2

Writes ``EXPORT_DIR/MODEL_NAME/VERSION/`` (SavedModel + warm-up requests) with float32
signatures ``serving_default`` (frames in [0, 1]) and, for dBZ datasets, ``predict_dbz``.
See ``predrnn_tf.export_lib``.
"""

from __future__ import annotations

import json

from absl import app, flags, logging

from predrnn_tf.cli.flag_parsing import import_tensorflow_quietly, run_app, run_or_exit

_WORKDIR = flags.DEFINE_string("workdir", None, "Training work directory to export.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Root of the exports: the model goes to EXPORT_DIR/MODEL_NAME/VERSION "
    "(serve EXPORT_DIR/MODEL_NAME as TF Serving's --model_base_path).")
_MODEL_NAME = flags.DEFINE_string("model_name", None,
                                  "Served model name (default: the workdir's folder name).")
_PRECISION = flags.DEFINE_enum(
    "precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
    "Compute precision of the served graph; inputs and outputs stay float32. mixed_float16 "
    "for GPUs, mixed_bfloat16 for CPUs with AVX-512 BF16/AMX and TPUs.")
_VERSION = flags.DEFINE_integer("version", None,
                                "Version folder number (default: the checkpoint's step).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "Checkpoint path prefix (default: the newest in --workdir).")
_WARMUP = flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.")
_COMPARE = flags.DEFINE_bool(
    "compare", True, "Check the exported graph against the float32 Keras model and log the "
    "relative L2 difference (one extra forecast on two sequences).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)

    def run():
        from predrnn_tf.config import ConfigError

        for name in ("workdir", "export_dir"):
            if not flags.FLAGS[name].value:
                raise ConfigError(f"--{name} is required")
        from predrnn_tf.serving import exporter as export_lib

        summary = export_lib.export_workdir(
            _WORKDIR.value, _EXPORT_DIR.value, model_name=_MODEL_NAME.value,
            precision=_PRECISION.value, version=_VERSION.value, checkpoint=_CHECKPOINT.value,
            warmup=_WARMUP.value, compare=_COMPARE.value)
        print(json.dumps(summary, sort_keys=True))

    from predrnn_tf.serving.exporter import ExportError

    run_or_exit(run, errors=(ExportError,))


def console_main() -> None:
    """The ``predrnn-export`` console command."""
    import_tensorflow_quietly()
    run_app(main)


if __name__ == "__main__":
    console_main()
