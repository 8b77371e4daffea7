"""Training-step benchmark: time per update against the machine's conv peak, same run.

    python tools/benchmark.py --flagfile=configs/mnist.flags --precision=float32
    python tools/benchmark.py --flagfile=configs/mnist.flags --precisions=float32,mixed_bfloat16

Prints one row per precision: s/update, sequences/s, the analytic FLOPs of one update,
achieved GFLOP/s, the conv peak measured in the same run at the model's own layer shapes
(forward + backward, same precision), their ratio, and the peak RSS. An update is one
forward + backward + Adam step on ``batch_size`` sequences of ``total_length`` frames (the
benchmark times single updates; ``--reverse_input`` in a flagfile doubles the work of an
iteration, not of an update). Absolute times on shared machines vary up to 2x from day to
day: compare the ratios.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import benchmark_memory
from absl import flags

from predrnn_tf.cli.flag_parsing import (
    config_from_flags,
    define_config_flags,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)

define_config_flags()
flags.DEFINE_string("precisions", "", "Comma-separated precisions to compare in one run "
                    "(default: --precision).")
flags.DEFINE_integer("warmup_steps", 1, "Untimed updates (tracing and first-call costs).")
flags.DEFINE_integer("steps", 3, "Timed updates.")
flags.DEFINE_integer("peak_repeats", 3, "Repetitions of each conv when measuring the peak.")
flags.DEFINE_string("workdir", None, "Unused (accepted so training flagfiles work).")
flags.DEFINE_integer("forecast_steps", 0, "If > 0, also time this many calls of the compiled "
                     "forecast per precision against the forward-only conv peak.")
flags.DEFINE_list("memory_sizes", [], "Image sizes (e.g. 128,512) at which to measure the "
                  "peak training memory per sequence (batch 1), plain and with --remat, each "
                  "in its own fresh process (tools/benchmark_memory.py).")
flags.DEFINE_integer("memory_plain_max_size", 512, "Largest image size measured without "
                     "--remat (larger plain sizes are extrapolated, linear in pixels through "
                     "the two largest measured plain sizes).")
flags.DEFINE_integer("memory_warmup", 1, "Untimed updates before the measured one in each "
                     "memory probe (the first execution also optimises the graph).")
flags.DEFINE_string("memory_probe", "", "Internal: SIZE:REMAT, run one update in this process "
                    "and print its peak memory.")


def conv_shapes(config) -> list[tuple[int, int, int, int]]:
    """(kernel, in, out, count) of every convolution in one unrolled forward pass."""
    steps = config.total_length - 1
    shapes = []
    for layer, hidden in enumerate(config.num_hidden):
        inputs = config.patched_channels if layer == 0 else config.num_hidden[layer - 1]
        k = config.filter_size
        if config.model_name in ("predrnn_v2", "predrnn"):
            shapes += [(k, inputs, 7 * hidden, steps), (k, hidden, 4 * hidden, steps),
                       (k, hidden, 3 * hidden, steps), (k, 2 * hidden, hidden, steps),
                       (1, 2 * hidden, hidden, steps)]
            if config.model_name == "predrnn_v2":
                shapes.append((1, hidden, hidden, 2 * steps))
        elif config.model_name == "predrnn_m_only":
            shapes += [(k, inputs, 4 * hidden, steps), (k, hidden, 3 * hidden, steps),
                       (k, hidden, hidden, steps)]
        else:
            shapes += [(k, inputs, 4 * hidden, steps), (k, hidden, 4 * hidden, steps)]
    shapes.append((1, config.num_hidden[-1], config.patched_channels, steps))
    return shapes


def conv_flops(kernel: int, inputs: int, outputs: int, batch: int, size: int) -> float:
    """Forward FLOPs (2 per multiply-add) of one stride-1 'same' convolution."""
    return 2.0 * batch * size * size * kernel * kernel * inputs * outputs


def update_flops(config) -> float:
    """Analytic FLOPs of one update: 3x the forward convolutions (forward, input and filter
    gradients); element-wise gate arithmetic is not counted."""
    size = config.patched_width
    return 3.0 * sum(count * conv_flops(k, cin, cout, config.batch_size, size)
                     for k, cin, cout, count in conv_shapes(config))


def best_seconds(function, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``function`` (after one untimed call).

    The best, not the mean: a peak is what TF can reach, and on a shared machine other
    processes only ever slow a call down. The outputs are not copied to NumPy (an eager
    call on the CPU returns when its ops are done; a copy would be timed as conv time).
    """
    function()
    best = float("inf")
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def make_conv_pass(kernel_size: int, inputs: int, outputs: int, batch: int, size: int,
                   dtype, backward: bool = True):
    """A ``tf.function`` running one convolution's forward pass, and with ``backward`` its
    input and filter gradients, on random ``[batch, size, size, inputs]`` data.

    It returns the forward output beside the gradients: the gradients of a convolution do
    not depend on its output, so a function returning only them would let TF prune the
    forward convolution away (an earlier version did, and timed 2 convolutions for 3).
    """
    import tensorflow as tf

    images = tf.random.normal([batch, size, size, inputs], dtype=dtype)
    kernel = tf.Variable(tf.random.normal([kernel_size, kernel_size, inputs, outputs],
                                          dtype=dtype))

    @tf.function
    def conv_pass():
        if not backward:
            return tf.nn.conv2d(images, kernel, 1, "SAME")
        with tf.GradientTape() as tape:
            tape.watch(images)
            features = tf.nn.conv2d(images, kernel, 1, "SAME")
            loss = tf.reduce_sum(tf.cast(features, tf.float32))
        return features, tape.gradient(loss, [images, kernel])

    return conv_pass


def measure_conv_peak(config, precision: str, repeats: int, backward: bool = True) -> float:
    """GFLOP/s of forward + backward (or forward only) of the model's own conv shapes
    (the fused per-cell convolutions, the model's batch, patched size and compute dtype),
    each shape timed as the best of ``repeats`` and weighted by its count in a step."""
    import tensorflow as tf

    dtype = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16,
             "mixed_float16": tf.float16}[precision]
    size, batch = config.patched_width, config.batch_size
    total_flops, total_time = 0.0, 0.0
    distinct = {}
    for k, cin, cout, count in conv_shapes(config):
        distinct[(k, cin, cout)] = distinct.get((k, cin, cout), 0) + count
    for (k, cin, cout), count in distinct.items():
        conv_pass = make_conv_pass(k, cin, cout, batch, size, dtype, backward)
        total_flops += (3.0 if backward else 1.0) * conv_flops(k, cin, cout, batch, size) * count
        total_time += best_seconds(conv_pass, repeats) * count
    return total_flops / total_time / 1e9


def time_updates(config, warmup: int, steps: int) -> float:
    """Seconds per update of the real train step on an in-memory random batch."""
    import numpy as np
    import tensorflow as tf

    from predrnn_tf.training import loop as train_lib

    config = config.replace(reverse_input=False)
    trainer = train_lib.Trainer(config, "/nonexistent", tf.distribute.get_strategy())
    shape = (config.batch_size, config.total_length, config.img_width, config.img_width,
             config.img_channel)
    frames = np.random.default_rng(0).random(shape, dtype=np.float32)
    trainer.train_iterator = iter(tf.data.Dataset.from_tensors(frames).repeat())
    step = trainer.make_train_step()
    half = tf.constant(0.5)
    for _ in range(warmup):
        float(step(trainer.train_iterator, half, half)["loss"])
    start = time.perf_counter()
    for _ in range(steps):
        float(step(trainer.train_iterator, half, half)["loss"])
    return (time.perf_counter() - start) / steps


def time_forecasts(config, warmup: int, steps: int) -> float:
    """Seconds per call of the one compiled forecast (models/forecasting.py) on a random
    ``[batch_size, input_length, H, W, C]`` batch: ``total_length - 1`` steps, no gradient."""
    import numpy as np
    import tensorflow as tf

    from predrnn_tf.models.builder import build_model
    from predrnn_tf.models.forecasting import make_forecast_function

    model = build_model(config)
    forecast = make_forecast_function(model)
    shape = (config.batch_size, config.input_length, config.img_width, config.img_width,
             config.img_channel)
    inputs = tf.constant(np.random.default_rng(0).random(shape, dtype=np.float32))
    for _ in range(max(warmup, 1)):  # the first call traces
        forecast(inputs).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        forecast(inputs).numpy()
    return (time.perf_counter() - start) / steps


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bfloat16() -> bool:
    """True if the CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def memory_table(base) -> list[str]:
    """The memory table of :mod:`benchmark_memory` for ``--memory_sizes``."""
    sizes = [int(size) for size in flags.FLAGS.memory_sizes]
    plain, remat = benchmark_memory.measure(sizes, flags.FLAGS.memory_plain_max_size,
                                            flags.FLAGS.memory_warmup, sys.argv[1:])
    return benchmark_memory.table(base, sizes, plain, remat)


def speed_table(base, precisions: list[str]) -> list[str]:
    """Markdown lines: one row per precision, timed and peak-measured in this process."""
    import keras

    flops = update_flops(base)
    rows = []
    for precision in precisions:
        config = base.replace(precision=precision)
        keras.config.set_dtype_policy("float32")
        peak = measure_conv_peak(config, precision, flags.FLAGS.peak_repeats)
        seconds = time_updates(config, flags.FLAGS.warmup_steps, flags.FLAGS.steps)
        achieved = flops / seconds / 1e9
        rows.append((precision, seconds, config.batch_size / seconds, flops / 1e12,
                     achieved, peak, achieved / peak, peak_rss_gib()))
    header = ("precision", "s/update", "seq/s", "TFLOP/update", "GFLOP/s",
              "conv peak GFLOP/s", "ratio", "peak RSS GiB")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append(f"| {row[0]} | {row[1]:.3f} | {row[2]:.2f} | {row[3]:.3f} | {row[4]:.1f} | "
                     f"{row[5]:.1f} | {row[6]:.2f} | {row[7]:.2f} |")
    for row in rows[1:]:
        lines.append(f"speed-up {row[0]} vs {rows[0][0]}: {rows[0][1] / row[1]:.2f}x")
    return lines


def forecast_table(base, precisions: list[str]) -> list[str]:
    """Markdown lines: the compiled forecast (no gradient) per precision vs the same-run
    forward-only conv peak; its FLOPs are one third of an update's."""
    import keras

    flops = update_flops(base) / 3.0
    lines = ["| forecast precision | s/forecast | GFLOP/s | forward conv peak GFLOP/s | ratio |",
             "|---|---|---|---|---|"]
    for precision in precisions:
        config = base.replace(precision=precision)
        keras.config.set_dtype_policy("float32")
        peak = measure_conv_peak(config, precision, flags.FLAGS.peak_repeats, backward=False)
        seconds = time_forecasts(config, flags.FLAGS.warmup_steps, flags.FLAGS.forecast_steps)
        achieved = flops / seconds / 1e9
        lines.append(f"| {precision} | {seconds:.3f} | {achieved:.1f} | {peak:.1f} | "
                     f"{achieved / peak:.2f} |")
    return lines


def main(argv):
    del argv

    def run():
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # one tf.function per conv shape is intended
        base = config_from_flags()
        if flags.FLAGS.memory_probe:
            benchmark_memory.print_probe(base, flags.FLAGS.memory_probe,
                                         flags.FLAGS.memory_warmup)
            return
        precisions = [p for p in (flags.FLAGS.precisions or base.precision).split(",") if p]
        print(f"model {base.model_name} {','.join(map(str, base.num_hidden))} "
              f"k={base.filter_size} {base.img_width}x{base.img_width} p={base.patch_size} "
              f"T={base.total_length} batch={base.batch_size} remat={base.remat}  "
              f"load={os.getloadavg()[0]:.2f}  native bfloat16: {native_bfloat16()}")
        if flags.FLAGS.steps > 0:
            print("\n".join(speed_table(base, precisions)))
        if flags.FLAGS.forecast_steps > 0:
            print("\n".join(forecast_table(base, precisions)))
        if flags.FLAGS.memory_sizes:
            print("\n".join(memory_table(base)))

    run_or_exit(run)


if __name__ == "__main__":
    import_tensorflow_quietly()
    run_app(main)
