"""Synthetic radar echoes: moving, growing and decaying storm cells in dBZ.

This is the built-in dataset of the quickstart and the tests: it needs no download and is
written into the standard TFRecord layout (``synthetic_radar-*.tfrecord`` plus metadata) on
first use. Logs always say that it is synthetic.

Each sequence has a steering wind (one velocity for all cells, 0.5 to 2.5 pixels per frame)
and 2 to 5 elliptical cells whose peak reflectivity follows a growth-decay life cycle.
Reflectivities add in linear Z and are stored with the HKO-7 pixel mapping
``dBZ = 70 * pixel / 255 - 10`` (pixel 0 = no echo).
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from predrnn_tf import units
from predrnn_tf.data import schema

NAME = "synthetic_radar"
GENERATOR_VERSION = "1"
# The HKO-7 mapping of units.py under the names serving/exporter.py and its tests use.
DBZ_SCALE = units.HKO7_SCALE
DBZ_OFFSET = units.HKO7_OFFSET


def _cell_field(rows, cols, center, radii, angle, peak_dbz):
    """Linear reflectivity Z of one elliptical Gaussian cell on the grid."""
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    d_row, d_col = rows - center[0], cols - center[1]
    along = (d_row * cos_a + d_col * sin_a) / radii[0]
    across = (-d_row * sin_a + d_col * cos_a) / radii[1]
    return 10.0 ** (peak_dbz / 10.0) * np.exp(-0.5 * (along ** 2 + across ** 2))


def generate_sequence(rng: np.random.Generator, image_size: int, length: int) -> np.ndarray:
    """One sequence of dBZ frames ``[T, H, W]`` (float32; -inf free, no-echo below ~0 dBZ)."""
    rows, cols = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
    speed = rng.uniform(0.5, 2.5) * image_size / 64.0
    heading = rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([np.sin(heading), np.cos(heading)])
    num_cells = rng.integers(2, 6)
    cells = []
    for _ in range(num_cells):
        cells.append({
            "start": rng.uniform(-0.1, 1.1, size=2) * image_size,
            "radii": rng.uniform(0.05, 0.15, size=2) * image_size,
            "angle": rng.uniform(0, np.pi),
            "peak": rng.uniform(35.0, 60.0),
            "birth": rng.uniform(-length, length * 0.5),
            "lifetime": rng.uniform(length * 0.8, length * 3.0),
        })
    frames = np.empty((length, image_size, image_size), np.float32)
    for t in range(length):
        linear_z = np.full((image_size, image_size), 1e-3, np.float32)
        for cell in cells:
            age = (t - cell["birth"]) / cell["lifetime"]
            if not 0.0 < age < 1.0:
                continue
            intensity = np.sin(np.pi * age)  # life cycle: grow, mature, decay
            peak = 15.0 + (cell["peak"] - 15.0) * intensity
            radii = cell["radii"] * (0.6 + 0.4 * intensity)
            center = cell["start"] + velocity * t
            linear_z += _cell_field(rows, cols, center, radii, cell["angle"], peak)
        frames[t] = 10.0 * np.log10(linear_z)
    return frames


def metadata_for(image_size: int, length: int, num_train: int, num_test: int, seed: int) -> dict:
    """The dataset metadata of a synthetic radar dataset."""
    return {
        "image_height": image_size,
        "image_width": image_size,
        "channels": 1,
        "sequence_length": length,
        "num_train": num_train,
        "num_test": num_test,
        "value_mapping": units.hko7_mapping(),
        "source": f"synthetic storm cells, seed {seed}",
        "synthetic": True,
        "converter": "predrnn_tf.data.synthetic_radar",
        "converter_version": GENERATOR_VERSION,
    }


def _matches(existing: dict, wanted: dict) -> bool:
    keys = ("image_height", "sequence_length", "num_train", "num_test", "source",
            "converter_version")
    return all(existing.get(key) == wanted.get(key) for key in keys)


def ensure_synthetic_dataset(data_dir: str, image_size: int, length: int, num_train: int = 512,
                             num_test: int = 64, seed: int = 0) -> str:
    """Writes the synthetic dataset into ``data_dir`` unless an identical one is there.

    Returns:
      ``data_dir``.
    """
    wanted = metadata_for(image_size, length, num_train, num_test, seed)
    path = schema.metadata_path(data_dir, NAME)
    if os.path.exists(path):
        if _matches(schema.read_metadata(data_dir, NAME), wanted):
            logging.info("Using SYNTHETIC radar data in %s (not real observations).", data_dir)
            return data_dir
        os.remove(path)  # stale: regenerate; the reader refuses a dataset without metadata
    logging.info("Generating SYNTHETIC radar data (%d train + %d test sequences of %d frames, "
                 "%dx%d) into %s.", num_train, num_test, length, image_size, image_size, data_dir)
    rng = np.random.default_rng(seed)
    counts = {"train": num_train, "test": num_test}
    shards = {}
    for split in schema.SPLITS:
        with schema.ShardedWriter(data_dir, NAME, split, sequences_per_shard=128) as writer:
            for index in range(counts[split]):
                frames = units.dbz_to_hko7_pixels(generate_sequence(rng, image_size, length))
                writer.write(frames[..., None], sequence_id=f"synthetic-{split}-{index}")
        shards[split] = len(schema.shard_paths(data_dir, NAME, split))
    wanted["train_shards"], wanted["test_shards"] = shards["train"], shards["test"]
    schema.write_metadata(data_dir, NAME, wanted)
    return data_dir
