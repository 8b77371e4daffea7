r"""Benchmarks the input pipeline against what the training update consumes.

Default mode (``--mode=radar_real``, the real-radar recipe): one markdown table with the
sequences/s of the tf.data training pipeline of configs/radar_real.flags (random 64x64 crops
of 80x80 tiles, rotations, flips) for one source and for a 3-source mixture, the sequences/s
one training update of that recipe's model consumes (a couple of timed updates after an
untimed traced one), their ratio (goal: the pipeline >= 20x training), the CPU's AVX/BF16
flags (lscpu) and the load average before and after. Without ``--data_dir`` it writes three
tiny synthetic rain-rate sources (random dBR pixels in the recipe's TFRecord layout: the
pipeline's speed depends on the record size only) in a temporary folder:

  python tools/benchmark_data.py                                   # synthetic sources
  python tools/benchmark_data.py --data_dir=data/radar_real --sources=fmi,knmi,bom_c10

``--mode=datasets`` times the plain reader of Moving MNIST 64x64, KTH 128x128 and radar
128x128 (20-frame sequences) against configs/mnist.flags and configs/radar.flags updates:

  python tools/benchmark_data.py --mode=datasets                   # small generated datasets
  python tools/benchmark_data.py --mode=datasets --data_dir=/tmp/predrnn_data \
      --datasets=moving_mnist:moving_mnist,radar:fmi                # real converted datasets
  python tools/benchmark_data.py --mode=datasets --train_steps=0   # reader only

Absolute numbers vary between machines, days and the load of other processes (printed):
compare the ratio.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

import numpy as np
import tensorflow as tf

from predrnn_tf.config import Config, ConfigError, parse_num_hidden
from predrnn_tf.data import mixing, reader, scale_out, schema
from predrnn_tf.data.converters import convert, publishing

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
_WET_SAMPLING = flags.DEFINE_bool(
    "wet_sampling", False, "Read with wet-sequence sampling (the reader's rejection by each "
    "record's wet_fraction; radar_real: the recipe's --wet_sampling_floor/scale, datasets: "
    "the defaults); records without a wet fraction are all kept. The recipe's own "
    "--wet_sampling=true turns it on too.")
_MODE = flags.DEFINE_enum(
    "mode", "radar_real", ["radar_real", "datasets"],
    "radar_real: the recipe's mixed, augmented pipeline vs its training update; datasets: "
    "the plain reader of --datasets vs --train_configs updates.")
_SOURCES = flags.DEFINE_list(
    "sources", ["fmi", "knmi", "bom_c10"],
    "radar_real: the sources of the mixture (the first is timed alone too); with --data_dir "
    "the converted sources' names there, else synthetic ones are written under these names.")
_RECIPE_FLAGFILE = flags.DEFINE_string("recipe_flagfile", "configs/radar_real.flags",
                                       "radar_real: the recipe (model size, batch, augment).")
_SOURCE_RECORDS = flags.DEFINE_integer(
    "source_records", 200, "radar_real without --data_dir: training records per synthetic "
    "source (80x80 tiles of 15 frames, as configs/radar_real_data.flags writes them).")
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
    with publishing.DatasetStaging(data_dir, name, sequences_per_shard=100) as staging:
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
            convert.convert_moving_mnist(convert.MovingMnistOptions(
                output_dir=data_dir, name=kind, num_train=count, num_test=100,
                total_length=length, image_size=image_size, sequences_per_shard=250))
        else:
            write_random_dataset(data_dir, kind, image_size, length, count)


def time_reader(data_dir: str, name: str, batch_size: int, batches: int,
                shuffle_buffer: int, augment: bool = False, frame_size: int | None = None,
                scale: scale_out.ScaleOptions = scale_out.NO_SCALING) -> dict[str, float]:
    """Decoded sequences/s of the training reader (after a warm-up of 10 batches)."""
    metadata = mixing.read_metadata(data_dir, name)
    length = metadata.get("train_sequence_length", metadata["sequence_length"])
    dataset = reader.make_dataset(data_dir, name, "train", batch_size, length, shuffle=True,
                                  repeat=True, shuffle_buffer=shuffle_buffer, augment=augment,
                                  frame_size=frame_size, scale=scale)
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
    from predrnn_tf.training import distribution  # noqa: PLC0415 (heavy: only when timing training)
    from predrnn_tf.training.schedules import sampling_probabilities  # noqa: PLC0415
    from predrnn_tf.training.trainer import Trainer  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer(config, workdir, distribution.make_strategy(config))
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


RECIPE_TILE = 80  # configs/radar_real_data.flags: --image_size=80 tiles, 15 frames
RECIPE_LENGTH = 15
CPU_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16",
             "amx_tile", "avx_vnni")


def write_radar_sources(data_dir: str, names: list[str], count: int) -> None:
    """Tiny synthetic rain-rate sources in the recipe's layout (dBR pixels, 2 km, 10 min)."""
    from predrnn_tf import units  # noqa: PLC0415

    rng = np.random.default_rng(0)
    for name in names:
        with publishing.DatasetStaging(data_dir, name, sequences_per_shard=100) as staging:
            for split, split_count in (("train", count), ("test", 16)):
                writer = staging.writer(split)
                for index in range(split_count):
                    frames = rng.integers(0, 256, (RECIPE_LENGTH, RECIPE_TILE, RECIPE_TILE, 1),
                                          np.uint8)
                    writer.write(frames, f"random-{index}")
            metadata = {"image_height": RECIPE_TILE, "image_width": RECIPE_TILE, "channels": 1,
                        "source": "random benchmark records (rain rate, dBR)",
                        "synthetic": True, "converter": "benchmark_data",
                        "value_mapping": units.rain_rate_mapping(),
                        "grid": {"pixel_km": 2.0, "interval_minutes": 10}}
            staging.commit(metadata, {"train": RECIPE_LENGTH, "test": RECIPE_LENGTH})


def cpu_flags() -> dict[str, str]:
    """The CPU model and which AVX/BF16/AMX flags lscpu lists (Linux /proc/cpuinfo else)."""
    text = ""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
            text = handle.read()
    model, present = "unknown", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("model name", "name"):
            model = value.strip()
        elif key.strip().lower() == "flags":
            present = set(value.split())
    flags_found = [flag for flag in CPU_FLAGS if flag in present]
    bf16 = "native" if {"avx512_bf16", "amx_bf16"} & present else "emulated (no AVX512_BF16/AMX)"
    return {"model": model, "flags": " ".join(flags_found) or "none", "bf16": bf16}


def load_average() -> str:
    """``1/5/15-minute`` load average."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def recipe_config(data_dir: str, mixture: str) -> Config:
    """The recipe's Config on ``mixture`` in ``data_dir``."""
    path = _RECIPE_FLAGFILE.value
    config = config_from_flagfile(path if os.path.exists(path) else os.path.join(REPO, path))
    return config.replace(dataset_name=mixture, data_dir=data_dir,
                          wet_sampling=config.wet_sampling or _WET_SAMPLING.value)


def time_recipe(data_dir: str) -> dict:
    """The recipe's pipeline rows (one source, the mixture) and its training update."""
    sources = _SOURCES.value
    if len(sources) < 2:
        raise ValueError(f"--sources: a mixture needs at least 2 sources, got {sources}")
    config = recipe_config(data_dir, ",".join(sources))
    rows = {}
    for label, name in ((f"one source ({sources[0]})", sources[0]),
                        (f"{len(sources)}-source mixture ({config.dataset_name})",
                         config.dataset_name)):
        rows[label] = time_reader(data_dir, name, config.batch_size, _READER_BATCHES.value,
                                  _SHUFFLE_BUFFER.value, augment=config.augment,
                                  frame_size=config.img_width,
                                  scale=scale_out.options_from_config(config))
    training = time_training(config, data_dir, _TRAIN_STEPS.value) if _TRAIN_STEPS.value else {}
    return {"config": config, "rows": rows, "training": training}


def print_recipe_table(result: dict, data: str, cpu: dict, loads: tuple[str, str]) -> None:
    """The markdown table of the recipe benchmark."""
    config, training = result["config"], result["training"]
    train_rate = training.get("sequences_per_second", float("nan"))
    hidden = ",".join(str(value) for value in config.num_hidden)
    print(f"| pipeline ({data}) | batch x sequence | sequences/s | / training | goal |")
    print("|---|---|---:|---:|---|")
    for label, row in result["rows"].items():
        ratio = row["sequences_per_second"] / train_rate if training else float("nan")
        verdict = ("ok" if ratio >= 20 else "MISSED") if training else "-"
        print(f"| {label}, augment={config.augment}, wet_sampling={config.wet_sampling} | "
              f"{config.batch_size} x {row['shape']} | "
              f"{row['sequences_per_second']:.1f} | {ratio:.0f}x | >= 20x {verdict} |")
    if training:
        print(f"| training update, {_RECIPE_FLAGFILE.value} ({config.model_name}, num_hidden "
              f"{hidden}, patch {config.patch_size}; {training['seconds_per_step']:.2f} "
              f"s/update, mean of {_TRAIN_STEPS.value}) | {config.batch_size} x "
              f"{config.total_length}x{config.img_width}x{config.img_width}x1 | "
              f"{train_rate:.2f} | 1x | |")
    print()
    print(f"CPU: {cpu['model']}; lscpu flags: {cpu['flags']}; bfloat16: {cpu['bf16']}; "
          f"{os.cpu_count()} cores. Load average (1/5/15 min): {loads[0]} before, "
          f"{loads[1]} after.")


def run_recipe() -> None:
    """The real-radar recipe benchmark (``--mode=radar_real``)."""
    before = load_average()
    cpu = cpu_flags()
    with tempfile.TemporaryDirectory() as temporary:
        data_dir, data = _DATA_DIR.value, f"real, {_DATA_DIR.value}"
        if not data_dir:
            data_dir, data = temporary, "synthetic 80x80 tiles"
            write_radar_sources(data_dir, _SOURCES.value, _SOURCE_RECORDS.value)
        result = time_recipe(data_dir)
    print_recipe_table(result, data, cpu, (before, load_average()))


def run() -> None:
    if _MODE.value == "radar_real":
        run_recipe()
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
            readers[kind] = time_reader(
                data_dir, name, _BATCH_SIZE.value, _READER_BATCHES.value, _SHUFFLE_BUFFER.value,
                scale=scale_out.options_from_config(Config(wet_sampling=_WET_SAMPLING.value)))
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
    flag_parsing.run_or_exit(run, errors=(ValueError, OSError))


if __name__ == "__main__":
    app.run(main)
