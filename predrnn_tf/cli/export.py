"""Export a trained model for TF Serving.

  python -m predrnn_tf.export --workdir=runs/quickstart --export_dir=exports
  python -m predrnn_tf.export --workdir=runs/radar --export_dir=exports --model_name=radar \
      --precision=mixed_float16 --version=2

Writes ``EXPORT_DIR/MODEL_NAME/VERSION/`` (SavedModel + warm-up requests) with float32
signatures ``serving_default`` (frames in [0, 1]) and, for dBZ datasets, ``predict_dbz``
(rain-rate datasets: ``predict_mm_per_hour``; with ``--ensemble_size=N`` also
``predict_ensemble_mm_per_hour``).
This entry point reads the dataset (the first test sequences for the float32 comparison) and
the model's dBZ value mapping and data card (through :mod:`predrnn_tf.workdir`), and passes
them to :func:`predrnn_tf.serving.exporter.export_workdir`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from absl import app, flags, logging

from predrnn_tf.cli import flag_parsing
from predrnn_tf.cli.flag_parsing import (
    MAX_ENSEMBLE_SIZE,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)

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
_ENSEMBLE_SIZE = flags.DEFINE_integer(
    "ensemble_size", 0, "N > 0 (a rain-rate model with the advection prior): also export the "
    "signature predict_ensemble_mm_per_hour, returning N members [B, N, T, H, W, 1] in mm/h "
    "(motion perturbed as pysteps' STEPS does, one batched call, new draws per request) and "
    "P(R >= 1 and 5 mm/h) [B, T, H, W, 2]. 0: no ensemble signature.")


def data_dir_or_none(config, workdir: str) -> str | None:
    """The work directory's dataset folder, or None if the config names none."""
    from predrnn_tf.data.sources import resolve_data_dir
    from predrnn_tf.errors import ConfigError

    try:
        return resolve_data_dir(config, workdir)
    except ConfigError:
        return None


def find_dbz_mapping(work) -> dict[str, Any] | None:
    """The dBZ mapping of a work directory's model, or None (with a warning if unknown).

    Args:
      work: a :class:`predrnn_tf.workdir.WorkDir`; its dataset, else its data card, says it.
    """
    from predrnn_tf import units
    from predrnn_tf.inference.forecaster import workdir_metadata

    metadata = workdir_metadata(work)
    mapping = units.dbz_mapping(metadata)
    if mapping is None and not units.is_rain_rate_mapping(metadata):
        logging.info("Neither the dataset of %s nor its data card maps pixels to physical "
                     "units: only the [0, 1] signature is exported.", work.path)
    return mapping


def comparison_frames(config, data_dir: str | None, count: int = 2, seed: int = 0):
    """Inputs ``[count, input_length, W, W, C]`` for the precision check, and their source.

    The first test sequences of the dataset when readable at the model's frame size, else
    seeded uniform noise.
    """
    import numpy as np
    import tensorflow as tf

    from predrnn_tf.data import schema
    from predrnn_tf.serving.exporter import random_frames

    shards = schema.shard_paths(data_dir, config.dataset_name, "test") if data_dir else []
    sequences = []
    if shards:
        for record in tf.data.TFRecordDataset(shards).take(count):
            frames, _ = schema.parse_sequence_numpy(record.numpy())
            sequences.append(frames[:config.input_length])
    wanted = (config.input_length, config.img_width, config.img_width, config.img_channel)
    if sequences and all(sequence.shape == wanted for sequence in sequences):
        return np.stack(sequences).astype(np.float32) / 255.0, f"{len(sequences)} test sequences"
    return random_frames(config, count, seed), f"{count} random sequences"


def export_workdir(workdir: str, export_dir: str, *, compare: bool = True,
                   **options: Any) -> dict[str, Any]:
    """:func:`predrnn_tf.serving.exporter.export_workdir` with the workdir's dataset read.

    Args:
      workdir: a training work directory.
      export_dir: root of the exports.
      compare: compare against the float32 model on the first test sequences.
      **options: model_name, precision, version, checkpoint, warmup, ensemble_size.
    """
    from predrnn_tf.serving import exporter, publishing
    from predrnn_tf.workdir import WorkDir

    options["checkpoint"], options["version"], options["model_name"] = (
        exporter.export_destination(workdir, export_dir, options.get("model_name"),
                                    options.get("version"), options.get("checkpoint")))
    model_dir = os.path.join(flag_parsing.absolute_path(export_dir), options["model_name"])
    publishing.remove_abandoned_staging(model_dir)  # of exports killed before
    version_dir = os.path.join(model_dir, str(options["version"]))
    flag_parsing.log_workdir(workdir, f"exporting "
                             f"{flag_parsing.describe_checkpoint(options['checkpoint'])} "
                             f"to {version_dir}")
    work = WorkDir(workdir)
    config = work.config
    frames, source = None, ""
    if compare:
        frames, source = comparison_frames(config, data_dir_or_none(config, workdir))
    return exporter.export_workdir(workdir, export_dir, compare=compare,
                                   value_mapping=find_dbz_mapping(work),
                                   reference_frames=frames, reference_source=source,
                                   data_card=work.data_card, **options)


def run() -> None:
    """Checks the required flags and exports; prints the summary as one JSON line."""
    from predrnn_tf.errors import ConfigError

    for name in ("workdir", "export_dir"):
        if not flags.FLAGS[name].value:
            raise ConfigError(f"--{name} is required")
    from predrnn_tf.data.converters import checks

    checks.integer("ensemble_size", _ENSEMBLE_SIZE.value, 0, MAX_ENSEMBLE_SIZE)
    flag_parsing.resolve_path_flags("workdir")
    parent = os.path.abspath(_EXPORT_DIR.value)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"--export_dir={_EXPORT_DIR.value} cannot be a folder: {parent} is a "
                          f"file")
    from predrnn_tf.training import cpu_features

    cpu_features.warn_if_emulated_bfloat16(_PRECISION.value)
    with flag_parsing.writing_to("--export_dir", _EXPORT_DIR.value):
        summary = export_workdir(
            _WORKDIR.value, _EXPORT_DIR.value, model_name=_MODEL_NAME.value,
            precision=_PRECISION.value, version=_VERSION.value, checkpoint=_CHECKPOINT.value,
            warmup=_WARMUP.value, compare=_COMPARE.value, ensemble_size=_ENSEMBLE_SIZE.value)
    print(json.dumps(summary, sort_keys=True))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    run_or_exit(run)


def console_main() -> None:
    """The ``predrnn-export`` console command."""
    import_tensorflow_quietly()
    run_app(main)


if __name__ == "__main__":
    console_main()
