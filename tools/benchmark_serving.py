"""Serving benchmark: the exported SavedModel's forecast latency against the conv peak.

    python tools/benchmark_serving.py --flagfile=configs/radar.flags
    python tools/benchmark_serving.py --flagfile=configs/radar.flags --batch_sizes=8 \
        --precisions=mixed_bfloat16 --repeats=2

Exports an UNTRAINED model of the flagfile's size (no training or data needed: the cost of
a forecast does not depend on the weights) with ``predrnn_tf.serving.exporter`` for each
precision, loads the SavedModel in this process and times ``serving_default`` at each batch
size. Prints per row: latency p50/p95, sequences/s, the analytic FLOPs of one forecast
(the convolutions of the ``total_length - 1`` unrolled steps; gate arithmetic not counted),
the achieved GFLOP/s, the conv peak measured in the same run at the model's own layer
shapes and batch (forward only, same precision), the FLOP-bound time at that peak and the
ratio latency / FLOP-bound time (goal: <= 1.3 at batch 8). The load average is printed
too: on shared machines absolute times vary; compare the ratios. Each conv shape is timed
as its own call, so the peak includes a dispatch overhead of about a millisecond per call:
meaningful at the radar size (tens of ms per conv), pessimistic for tiny models.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from absl import flags, logging

from predrnn_tf.analysis import benchmarking
from predrnn_tf.cli.flag_parsing import (
    config_from_flags,
    define_config_flags,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)

define_config_flags()
flags.DEFINE_string("precisions", "float32,mixed_bfloat16",
                    "Comma-separated export precisions to compare.")
flags.DEFINE_string("batch_sizes", "1,8", "Comma-separated request batch sizes.")
flags.DEFINE_integer("warmup", 1, "Untimed forecasts per batch size (first-call costs).")
flags.DEFINE_integer("repeats", 3, "Timed forecasts per batch size (each can take seconds).")
flags.DEFINE_integer("peak_repeats", 3, "Repetitions of each conv when measuring the peak.")
flags.DEFINE_string("export_dir", "", "Keep the exports here (default: a temporary folder).")
flags.DEFINE_string("workdir", None, "Unused (accepted so training flagfiles work).")

GOAL_RATIO = 1.3


def forecast_flops(config, batch: int) -> float:
    """Analytic conv FLOPs of one forecast of ``batch`` sequences."""
    return sum(count * benchmarking.conv_flops(k, cin, cout, batch, config.patched_width)
               for k, cin, cout, count in benchmarking.conv_shapes(config, with_adapter=False))


def flop_bound_seconds(config, precision: str, batch: int, repeats: int) -> float:
    """Time the forecast's convolutions alone take, each shape timed on its own (forward)."""
    import tensorflow as tf

    dtype = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16,
             "mixed_float16": tf.float16}[precision]
    size = config.patched_width
    counts: dict[tuple[int, int, int], int] = {}
    for k, cin, cout, count in benchmarking.conv_shapes(config, with_adapter=False):
        counts[(k, cin, cout)] = counts.get((k, cin, cout), 0) + count
    total = 0.0
    for (k, cin, cout), count in counts.items():
        inputs = tf.random.normal([batch, size, size, cin], dtype=dtype)
        kernel = tf.Variable(tf.random.normal([k, k, cin, cout], dtype=dtype))

        @tf.function
        def forward(inputs=inputs, kernel=kernel):
            return tf.nn.conv2d(inputs, kernel, 1, "SAME")

        forward().numpy()
        start = time.perf_counter()
        for _ in range(repeats):
            forward().numpy()
        total += (time.perf_counter() - start) / repeats * count
    return total


def time_forecasts(function, frames, warmup: int, repeats: int) -> list[float]:
    """Seconds of each timed call of a serving signature on ``frames``."""
    import tensorflow as tf

    inputs = tf.constant(frames)
    for index in range(warmup):
        start = time.perf_counter()
        function(frames=inputs)["predictions"].numpy()
        logging.info("batch %d warm-up %d/%d: %.2f s", len(frames), index + 1, warmup,
                     time.perf_counter() - start)
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        function(frames=inputs)["predictions"].numpy()
        times.append(time.perf_counter() - start)
        logging.info("batch %d forecast %d/%d: %.2f s", len(frames), index + 1, repeats,
                     times[-1])
    return times


def parse_list(text: str, flag_name: str, kind: type) -> list:
    from predrnn_tf.config import ConfigError

    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise ConfigError(f"--{flag_name} must be comma-separated, got {text!r}") from error
    if not values:
        raise ConfigError(f"--{flag_name} must not be empty")
    return values


def benchmark_precision(config, precision: str, export_root: str, batch_sizes: list[int],
                        values) -> list[dict]:
    """Exports one precision, then times each batch size; returns the table rows."""
    import keras
    import numpy as np
    import tensorflow as tf

    from predrnn_tf.models.builder import build_model
    from predrnn_tf.serving import exporter

    keras.utils.set_random_seed(config.seed)
    model = build_model(config, precision=precision)
    start = time.perf_counter()
    summary = exporter.export_model(model, config, export_root, f"bench_{precision}", 1,
                                      warmup=False)
    export_seconds = time.perf_counter() - start
    function = tf.saved_model.load(summary["path"]).signatures["serving_default"]
    rows = []
    for batch in batch_sizes:
        shape = (batch, config.input_length, config.img_width, config.img_width,
                 config.img_channel)
        frames = np.random.default_rng(0).random(shape, dtype=np.float32)
        times = time_forecasts(function, frames, values.warmup, values.repeats)
        bound = flop_bound_seconds(config, precision, batch, values.peak_repeats)
        flops = forecast_flops(config, batch)
        p50 = float(np.percentile(times, 50))
        rows.append({"precision": precision, "batch": batch, "p50": p50,
                     "p95": float(np.percentile(times, 95)), "sequences_per_second": batch / p50,
                     "gflop": flops / 1e9, "achieved": flops / p50 / 1e9,
                     "peak": flops / bound / 1e9, "bound": bound, "ratio": p50 / bound,
                     "export_seconds": export_seconds})
    return rows


def print_table(rows: list[dict], config, values) -> None:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nServing benchmark: {config.model_name} {config.img_width}x{config.img_width}x"
          f"{config.img_channel}, {config.input_length} -> {config.output_length} frames, "
          f"hidden {','.join(map(str, config.num_hidden))}, {config.filter_size}x"
          f"{config.filter_size}, patch {config.patch_size}; {values.repeats} timed forecasts "
          f"after {values.warmup} warm-up; load average {load}; {os.cpu_count()} CPUs")
    header = ("| precision | batch | p50 s | p95 s | seq/s | GFLOP/forecast | GFLOP/s | "
              "conv peak GFLOP/s | FLOP-bound s | ratio |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        print(f"| {row['precision']} | {row['batch']} | {row['p50']:.2f} | {row['p95']:.2f} | "
              f"{row['sequences_per_second']:.3f} | {row['gflop']:.1f} | {row['achieved']:.0f} | "
              f"{row['peak']:.0f} | {row['bound']:.2f} | {row['ratio']:.2f} |")
    for row in rows:
        if row["batch"] == 8:
            verdict = "meets" if row["ratio"] <= GOAL_RATIO else "misses"
            print(f"{row['precision']} at batch 8: {row['ratio']:.2f}x the FLOP-bound time "
                  f"({verdict} the {GOAL_RATIO}x goal)")
    exports = sorted({(row["precision"], row["export_seconds"]) for row in rows})
    print("export time: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in exports))


def main(argv):
    del argv
    logging.set_verbosity(logging.INFO)

    def run():
        from predrnn_tf.config import ConfigError

        values = flags.FLAGS
        config = config_from_flags()
        precisions = parse_list(values.precisions, "precisions", str)
        batch_sizes = parse_list(values.batch_sizes, "batch_sizes", int)
        for name in ("repeats", "peak_repeats"):
            if values[name].value < 1:
                raise ConfigError(f"--{name} must be >= 1, got {values[name].value}")
        export_root = values.export_dir or tempfile.mkdtemp(prefix="benchmark_serving_")
        rows = []
        try:
            for precision in precisions:
                if precision not in ("float32", "mixed_float16", "mixed_bfloat16"):
                    raise ConfigError(f"--precisions: unknown precision {precision!r}")
                rows += benchmark_precision(config, precision, export_root, batch_sizes, values)
        finally:
            if not values.export_dir:
                shutil.rmtree(export_root, ignore_errors=True)
        print_table(rows, config, values)

    run_or_exit(run)  # every predrnn_tf error (ExportError, ConfigError...) is one line


if __name__ == "__main__":
    import_tensorflow_quietly()
    run_app(main)
