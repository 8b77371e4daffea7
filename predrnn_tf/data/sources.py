"""Where a run's data lives: resolving ``--data_dir`` and preparing (or generating) it."""

from __future__ import annotations

import os
from typing import Any

from absl import logging

from predrnn_tf import files
from predrnn_tf.config import Config
from predrnn_tf.data import reader, schema, synthetic_radar
from predrnn_tf.errors import ConfigError

# Seconds a non-chief worker waits for the chief to write the synthetic dataset.
DATA_WAIT_SECONDS = 600.0


def resolve_data_dir(config: Config, workdir: str) -> str:
    """The dataset folder: ``config.data_dir``, or ``WORKDIR/data`` for synthetic data."""
    if config.data_dir:
        return config.data_dir
    if config.dataset_name == synthetic_radar.NAME:
        return os.path.join(workdir, "data")
    raise ConfigError(f"--data_dir is required for --dataset_name={config.dataset_name}")


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
    data_dir = resolve_data_dir(config, workdir)
    # Synthetic data is (re)generated in WORKDIR/data, or into an explicit --data_dir that
    # holds no dataset yet; an existing dataset in --data_dir is only checked, never rewritten.
    generate = config.dataset_name == synthetic_radar.NAME and (
        not config.data_dir
        or not os.path.exists(schema.metadata_path(data_dir, config.dataset_name)))
    if generate and is_chief:
        synthetic_radar.ensure_synthetic_dataset(data_dir, config.img_width, config.total_length,
                                                 seed=config.seed)
    elif generate:
        files.wait_for_path(schema.metadata_path(data_dir, config.dataset_name),
                                      DATA_WAIT_SECONDS, "the synthetic dataset")
    elif not os.path.isdir(data_dir):
        raise ConfigError(f"--data_dir={data_dir} does not exist")
    metadata = schema.read_metadata(data_dir, config.dataset_name)
    for split in schema.SPLITS:
        reader.check_metadata(metadata, config, split)
    if metadata.get("synthetic"):
        logging.info("Dataset %r is SYNTHETIC (generated, not observed).", config.dataset_name)
    return data_dir, metadata


