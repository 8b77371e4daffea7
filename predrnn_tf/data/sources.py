"""Where a run's data lives: resolving ``--data_dir``, checking it, preparing (or generating) it.

:func:`check_data_source` only reads, so training checks its data before it creates the work
directory; :func:`prepare_data` then generates synthetic data where that is allowed. Synthetic
data is never written into a folder that holds another dataset.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from absl import logging

from predrnn_tf import files, units
from predrnn_tf.config import Config
from predrnn_tf.data import mixing, reader, scale_out, schema, synthetic_radar
from predrnn_tf.errors import ConfigError, DataError

# Seconds a non-chief worker waits for the chief to write the synthetic dataset.
DATA_WAIT_SECONDS = 600.0
_METADATA_SUFFIX = "-metadata.json"


def resolve_data_dir(config: Config, workdir: str) -> str:
    """The dataset folder: ``config.data_dir``, or ``WORKDIR/data`` for synthetic data."""
    if config.data_dir:
        return config.data_dir
    if config.dataset_name == synthetic_radar.NAME:
        return os.path.join(workdir, "data")
    raise ConfigError(f"--data_dir is required for --dataset_name={config.dataset_name}")


def dataset_metadata(config: Config, workdir: str) -> dict[str, Any] | None:
    """The metadata of a trained run's dataset as far as its folder still says it, or None.

    The built-in synthetic radar is known without its folder (its HKO-7 mapping). Pass the
    result to :meth:`predrnn_tf.workdir.WorkDir.metadata`, which completes it from the work
    directory's data card.
    """
    try:
        return mixing.read_metadata(resolve_data_dir(config, workdir), config.dataset_name)
    except (ConfigError, DataError, OSError):
        pass
    if config.dataset_name == synthetic_radar.NAME:
        return {"name": synthetic_radar.NAME, "value_mapping": units.hko7_mapping(),
                "synthetic": True}
    return None


def datasets_in(data_dir: str) -> list[str]:
    """Names of the datasets in ``data_dir`` (from ``NAME-metadata.json`` and shard names)."""
    names = {os.path.basename(path)[:-len(_METADATA_SUFFIX)]
             for path in _glob(data_dir, "*" + _METADATA_SUFFIX)}
    for path in _glob(data_dir, "*.tfrecord"):
        for split in schema.SPLITS:
            base = os.path.basename(path)
            if f"-{split}-" in base:
                names.add(base.split(f"-{split}-")[0])
    return sorted(names)


def _glob(data_dir: str, pattern: str) -> list[str]:
    """Files of ``data_dir`` matching ``pattern``; object storage through ``tf.io.gfile``."""
    if schema.is_url(data_dir):
        import tensorflow as tf

        return tf.io.gfile.glob(os.path.join(data_dir, pattern))
    return glob.glob(os.path.join(glob.escape(data_dir), pattern))


def _exists(path: str) -> bool:
    if schema.is_url(path):
        import tensorflow as tf

        return tf.io.gfile.exists(path)
    return os.path.exists(path)


def _is_folder(path: str) -> bool:
    if schema.is_url(path):
        import tensorflow as tf

        return tf.io.gfile.isdir(path)
    return os.path.isdir(path)


def _needs_generation(config: Config, data_dir: str) -> bool:
    """Synthetic data is generated in WORKDIR/data, or in an explicit --data_dir without it."""
    return config.dataset_name == synthetic_radar.NAME and (
        not config.data_dir
        or not _exists(schema.metadata_path(data_dir, config.dataset_name)))


def _check_folder(config: Config, data_dir: str, generate: bool) -> None:
    """The folder exists (or may be created) and holds the named dataset, not another one."""
    if _exists(data_dir) and not _is_folder(data_dir):
        raise ConfigError(f"--data_dir={data_dir} is a file, not a folder")
    if not generate and not _is_folder(data_dir):
        raise ConfigError(f"--data_dir={data_dir} does not exist")
    others = [name for name in datasets_in(data_dir) if name != config.dataset_name] \
        if _is_folder(data_dir) else []
    if generate and others:
        raise ConfigError(
            f"--data_dir={data_dir} holds the dataset(s) {', '.join(others)}, not "
            f"--dataset_name={config.dataset_name} (the default): pass "
            f"--dataset_name={others[0]}; synthetic data is never written next to another "
            f"dataset")
    missing = [name for name, _ in mixing.parse_sources(config.dataset_name)
               if not _exists(schema.metadata_path(data_dir, name))]
    if not generate and missing:
        found = f"it holds {', '.join(others)}" if others else "it holds no dataset"
        raise DataError(f"--data_dir={data_dir} has no {missing[0]}{_METADATA_SUFFIX} "
                        f"for --dataset_name={config.dataset_name}: {found}")


def check_data_source(config: Config, workdir: str) -> tuple[str, bool]:
    """Checks the data of a run without writing anything.

    Returns:
      ``(data_dir, generate)``: the folder, and whether synthetic data must be generated
      there first (then only the folder is checked here).

    Raises:
      ConfigError / DataError: naming the flag or file.
    """
    try:
        mixing.parse_sources(config.dataset_name)
    except ValueError as error:  # a malformed mixture "a,b:2" is a flag error
        raise ConfigError(str(error)) from None
    scale_out.options_from_config(config)  # --wet_sampling*, --validation_fraction, ...
    data_dir = resolve_data_dir(config, workdir)
    generate = _needs_generation(config, data_dir)
    _check_folder(config, data_dir, generate)
    if not generate:
        check_dataset(config, data_dir)
    return data_dir, generate


def planned_metadata(config: Config, data_dir: str, generate: bool) -> dict[str, Any]:
    """The metadata a run will read, known before anything is written.

    Args:
      config: the run configuration.
      data_dir, generate: what :func:`check_data_source` returned.

    Returns:
      The folder's metadata, or, when synthetic data is still to be generated, that of the
      synthetic dataset (its sequence counts are not known yet and are 0).
    """
    if generate:
        return synthetic_radar.metadata_for(config.img_width, config.total_length, 0, 0,
                                            config.seed)
    return mixing.read_metadata(data_dir, config.dataset_name)


def check_dataset(config: Config, data_dir: str) -> dict[str, Any]:
    """Metadata of both splits against ``config``; shards present and not empty."""
    metadata = mixing.read_metadata(data_dir, config.dataset_name)  # a source or a mixture
    for split in schema.SPLITS:
        reader.check_metadata(metadata, config, split)
        for name, _ in mixing.parse_sources(config.dataset_name):
            reader.check_split_has_records(data_dir, name, split, metadata)
    for name, _ in mixing.parse_sources(config.dataset_name):  # leaves train shards
        scale_out.split_shards(data_dir, name, "train", config.validation_fraction)
    if config.wet_sampling and not metadata.get("wet_sampling"):
        logging.warning("--wet_sampling: %r stores no wet fraction per record (converted "
                        "before it was recorded, or not radar): every record is kept.",
                        config.dataset_name)
    return metadata


def prepare_data(config: Config, workdir: str, is_chief: bool = True
                 ) -> tuple[str, dict[str, Any]]:
    """Generates synthetic data if needed, reads and checks the metadata of both splits.

    Args:
      config: the run configuration.
      workdir: the work directory (synthetic data goes to ``WORKDIR/data`` by default).
      is_chief: only the chief generates synthetic data; other workers wait for it.

    Returns:
      ``(data_dir, metadata)``.
    """
    data_dir, generate = check_data_source(config, workdir)
    if generate and is_chief:
        synthetic_radar.ensure_synthetic_dataset(data_dir, config.img_width, config.total_length,
                                                 seed=config.seed)
    elif generate:
        files.wait_for_path(schema.metadata_path(data_dir, config.dataset_name),
                            DATA_WAIT_SECONDS, "the synthetic dataset")
    metadata = check_dataset(config, data_dir) if generate else \
        mixing.read_metadata(data_dir, config.dataset_name)
    if metadata.get("synthetic"):
        logging.info("Dataset %r is SYNTHETIC (generated, not observed).", config.dataset_name)
    return data_dir, metadata
