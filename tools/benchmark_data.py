r"""Benchmarks the input pipeline against what the training step consumes.

For each dataset (Moving MNIST 64x64, KTH 128x128, radar 128x128; 20-frame sequences) it
times the one tf.data reader alone (shuffle, decode, batch, prefetch) in decoded
sequences/s, and for configs/mnist.flags and configs/radar.flags it times real training
steps of the full model to get the sequences/s training consumes. It prints a table with
the ratio (goal: reader >= 20x what training needs) and the peak RSS.

  python tools/benchmark_data.py                      # small generated datasets
  python tools/benchmark_data.py --data_dir=/tmp/predrnn_data \
      --datasets=moving_mnist:moving_mnist,radar:fmi   # real converted datasets
  python tools/benchmark_data.py --train_steps=0      # reader only

Training steps at the official sizes take about 10-20 s each on a 2-core CPU (plus a first,
traced step that is not timed), so --train_steps defaults to 2. Moving MNIST data is
generated with the converter (synthetic font digits); KTH and radar benchmark datasets are
random records of the same shape (the reader's speed depends on the record size only).
Absolute numbers vary between machines and days: compare the ratio.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import tempfile
import time

from absl import app, flags

from predrnn_tf.cli import flag_parsing as project_flags

project_flags.import_tensorflow_quietly()

import numpy as np
import tensorflow as tf

from predrnn_tf.config import Config, ConfigError, parse_num_hidden
from predrnn_tf.data import mixing, reader, schema
from predrnn_tf.data.converters import convert as converters
from predrnn_tf.data.converters import publishing as conversion

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Benchmark datasets: name -> (image size, frames per record, records).
SHAPES = {"moving_mnist": (64, 20, 1000), "kth": (128, 20, 400), "radar": (128, 20, 400)}
# Which training configuration reads which benchmark dataset.
TRAIN_CONFIGS = {"mnist": "moving_mnist", "radar": "radar"}

_DATA_DIR = flags.DEFINE_string(
    "data_dir", "", "Folder of real converted datasets; empty = generate small ones in a "
    "temporary folder.")
_DATASETS = flags.DEFINE_list(
    "datasets", ["moving_mnist", "kth", "radar"],
    "Datasets to read: KIND or KIND:NAME (KIND in moving_mnist, kth, radar; NAME the dataset "
    "name in --data_dir, e.g. radar:fmi).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Reader batch size.")
_READER_BATCHES = flags.DEFINE_integer("reader_batches", 200, "Batches timed per reader.")
_SHUFFLE_BUFFER = flags.DEFINE_integer("shuffle_buffer", 256, "Reader shuffle buffer.")
_MIXTURE = flags.DEFINE_string(
    "mixture", "", "Real-radar recipe mode: a --dataset_name mixture in --data_dir (e.g. "
    "fmi,knmi,bom_c10): times the mixed, augmented pipeline of --mixture_flagfile alone and "
    "--train_steps training steps of that recipe on it, and prints their ratio.")
_MIXTURE_FLAGFILE = flags.DEFINE_string("mixture_flagfile", "configs/radar_real.flags",
                                        "The recipe of --mixture.")
_TRAIN_STEPS = flags.DEFINE_integer(
    "train_steps", 2, "Timed training steps per configuration after one untimed step "
    "(each 10-20 s at full size on a 2-core CPU); 0 skips the training measurement.")
_TRAIN_CONFIGS = flags.DEFINE_list("train_configs", ["mnist", "radar"],
                                   "Training configurations to time: mnist, radar.")
_MNIST_FLAGFILE = flags.DEFINE_string("mnist_flagfile", "configs/mnist.flags",
                                      "Flagfile of the mnist training configuration.")
_RADAR_FLAGFILE = flags.DEFINE_string("radar_flagfile", "configs/radar.flags",
                                      "Flagfile of the radar training configuration.")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_random_dataset(data_dir: str, name: str, image_size: int, length: int,
                         count: int) -> None:
    """Random uint8 records of one dataset's shape (reader speed depends on size only)."""
    rng = np.random.default_rng(0)
    with conversion.DatasetStaging(data_dir, name, sequences_per_shard=100) as staging:
        for split, split_count in (("train", count), ("test", max(count // 10, 8))):
            writer = staging.writer(split)
            for index in range(split_count):
                frames = rng.integers(0, 256, (length, image_size, image_size, 1), np.uint8)
                writer.write(frames, f"random-{index}")
        metadata = {"image_height": image_size, "image_width": image_size, "channels": 1,
                    "source": "random benchmark records", "synthetic": True,
                    "converter": "benchmark_data", "value_mapping": None}
        staging.commit(metadata, {"train": length, "test": length})


def prepare_datasets(data_dir: str, kinds: list[str]) -> None:
    """Generates the benchmark datasets into ``data_dir``."""
    for kind in kinds:
        image_size, length, count = SHAPES[kind]
        if kind == "moving_mnist":
            converters.convert_moving_mnist(converters.MovingMnistOptions(
                output_dir=data_dir, name=kind, num_train=count, num_test=100,
                total_length=length, image_size=image_size, sequences_per_shard=250))
        else:
            write_random_dataset(data_dir, kind, image_size, length, count)


def time_reader(data_dir: str, name: str, batch_size: int, batches: int,
                shuffle_buffer: int, augment: bool = False,
                frame_size: int | None = None) -> dict[str, float]:
    """Decoded sequences/s of the training reader (after a warm-up of 10 batches)."""
    metadata = mixing.read_metadata(data_dir, name)
    length = metadata.get("train_sequence_length", metadata["sequence_length"])
    dataset = reader.make_dataset(data_dir, name, "train", batch_size, length, shuffle=True,
                                  repeat=True, shuffle_buffer=shuffle_buffer, augment=augment,
                                  frame_size=frame_size)
    iterator = iter(dataset)
    for _ in range(10):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
    _ = batch.numpy()
    seconds = time.perf_counter() - start
    return {"sequences_per_second": batches * batch_size / seconds,
            "shape": "x".join(str(dim) for dim in batch.shape[1:])}


def config_from_flagfile(path: str) -> Config:
    """Reads the Config fields of a ``--name=value`` flagfile (other flags ignored)."""
    if not os.path.exists(path):
        raise ConfigError(f"no flagfile {path}")
    defaults = Config()
    fields = {field.name for field in dataclasses.fields(Config)}
    values = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line.startswith("--"):
                continue
            key, separator, text = line[2:].partition("=")
            if not separator and key.startswith("no") and key[2:] in fields:
                key, text = key[2:], "false"
            elif not separator:
                text = "true"
            if key not in fields:
                continue
            default = getattr(defaults, key)
            if key == "num_hidden":
                values[key] = parse_num_hidden(text)
            elif isinstance(default, bool):
                values[key] = text.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[key] = int(text)
            elif isinstance(default, float):
                values[key] = float(text)
            else:
                values[key] = text
    return defaults.replace(**values)


def time_training(config: Config, data_dir: str, steps: int) -> dict[str, float]:
    """Seconds per training step of the real model and the sequences/s it consumes."""
    from predrnn_tf.training import loop as train_lib  # noqa: PLC0415 (heavy: only when timing training)
    from predrnn_tf.training.schedules import sampling_probabilities  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as workdir:
        trainer = train_lib.Trainer(config, workdir, train_lib.make_strategy(config))
        trainer.make_train_iterator(data_dir)
        train_step = trainer.make_train_step()
        encoder, decoder = (tf.constant(value, tf.float32)
                            for value in sampling_probabilities(config, 0))
        train_step(trainer.train_iterator, encoder, decoder)  # trace + first step, untimed
        start = time.perf_counter()
        for _ in range(steps):
            outputs = train_step(trainer.train_iterator, encoder, decoder)
        float(outputs["loss"])
        seconds = (time.perf_counter() - start) / steps
    return {"seconds_per_step": seconds, "sequences_per_second": config.batch_size / seconds}


def run_mixture() -> None:
    """The mixed, augmented recipe pipeline alone vs what the recipe's training consumes."""
    path = _MIXTURE_FLAGFILE.value
    config = config_from_flagfile(path if os.path.exists(path) else os.path.join(REPO, path))
    config = config.replace(dataset_name=_MIXTURE.value, data_dir=_DATA_DIR.value)
    pipeline = time_reader(_DATA_DIR.value, _MIXTURE.value, config.batch_size,
                           _READER_BATCHES.value, _SHUFFLE_BUFFER.value,
                           augment=config.augment, frame_size=config.img_width)
    print(f"mixed pipeline {_MIXTURE.value} (augment={config.augment}, {pipeline['shape']}): "
          f"{pipeline['sequences_per_second']:.1f} sequences/s")
    if _TRAIN_STEPS.value > 0:
        training = time_training(config, _DATA_DIR.value, _TRAIN_STEPS.value)
        print(f"training {path}: {training['seconds_per_step']:.2f} s/step = "
              f"{training['sequences_per_second']:.2f} sequences/s; pipeline / training = "
              f"{pipeline['sequences_per_second'] / training['sequences_per_second']:.0f}x "
              f"(goal >= 20x)")


def run() -> None:
    if _MIXTURE.value:
        if not _DATA_DIR.value:
            raise ValueError("--mixture needs --data_dir (the converted sources)")
        run_mixture()
        return
    kinds_and_names = []
    for entry in _DATASETS.value:
        kind, _, name = entry.partition(":")
        if kind not in SHAPES:
            raise ValueError(f"--datasets: unknown kind {kind!r} in {entry!r} (expected "
                             f"{', '.join(SHAPES)})")
        kinds_and_names.append((kind, name or kind))
    unknown = sorted(set(_TRAIN_CONFIGS.value) - set(TRAIN_CONFIGS))
    if unknown:
        raise ValueError(f"--train_configs: unknown {unknown} (expected {list(TRAIN_CONFIGS)})")
    with tempfile.TemporaryDirectory() as temporary:
        data_dir = _DATA_DIR.value
        if not data_dir:
            data_dir = temporary
            prepare_datasets(data_dir, sorted({kind for kind, _ in kinds_and_names} | {
                TRAIN_CONFIGS[name] for name in _TRAIN_CONFIGS.value}))
        rss_before = peak_rss_mib()
        readers = {}
        for kind, name in kinds_and_names:
            readers[kind] = time_reader(data_dir, name, _BATCH_SIZE.value, _READER_BATCHES.value,
                                        _SHUFFLE_BUFFER.value)
            readers[kind]["name"] = name
        rss_readers = peak_rss_mib()
        print_reader_table(readers)
        training = {}
        if _TRAIN_STEPS.value > 0:
            for config_name in _TRAIN_CONFIGS.value:
                kind = TRAIN_CONFIGS[config_name]
                path = {"mnist": _MNIST_FLAGFILE, "radar": _RADAR_FLAGFILE}[config_name].value
                config = config_from_flagfile(
                    path if os.path.isabs(path) or os.path.exists(path) else
                    os.path.join(REPO, path))
                dataset_dir, dataset_name = (temporary, kind) if not _DATA_DIR.value else (
                    _DATA_DIR.value, dict(kinds_and_names).get(kind, kind))
                if _DATA_DIR.value and not os.path.exists(
                        schema.metadata_path(dataset_dir, dataset_name)):
                    prepare_datasets(temporary, [kind])
                    dataset_dir, dataset_name = temporary, kind
                config = config.replace(dataset_name=dataset_name, data_dir=dataset_dir)
                training[config_name] = time_training(config, dataset_dir, _TRAIN_STEPS.value)
                training[config_name].update(kind=kind, path=path, batch=config.batch_size)
    print_training_table(readers, training, rss_before, rss_readers, peak_rss_mib())


def print_reader_table(readers) -> None:
    """Prints the reader rows (before the slow training measurement)."""
    print(f"{'dataset':<14}{'record':>14}{'reader seq/s':>14}")
    for row in readers.values():
        print(f"{row['name']:<14}{row['shape']:>14}{row['sequences_per_second']:>14.1f}")
    sys.stdout.flush()


def print_training_table(readers, training, rss_before, rss_readers, rss_end) -> None:
    """Prints the training rows, the ratios and the peak RSS."""
    if training:
        print()
        print(f"{'train config':<26}{'batch':>6}{'s/step':>9}{'train seq/s':>13}"
              f"{'reader seq/s':>14}{'ratio':>9}{'goal':>7}")
        for row in training.values():
            reader_rate = readers.get(row["kind"], {}).get("sequences_per_second", float("nan"))
            ratio = reader_rate / row["sequences_per_second"]
            verdict = "ok" if ratio >= 20 else "MISSED"
            print(f"{row['path']:<26}{row['batch']:>6}{row['seconds_per_step']:>9.2f}"
                  f"{row['sequences_per_second']:>13.3f}{reader_rate:>14.1f}{ratio:>8.0f}x"
                  f"{verdict:>7}")
    print()
    print(f"peak RSS: {rss_before:.0f} MiB before reading, {rss_readers:.0f} MiB after the "
          f"readers, {rss_end:.0f} MiB at the end (includes the training steps)")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    project_flags.run_or_exit(run, errors=(ValueError, OSError))


if __name__ == "__main__":
    app.run(main)
