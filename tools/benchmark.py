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
import time

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


def measure_conv_peak(config, precision: str, repeats: int) -> float:
    """GFLOP/s of forward + backward of the model's own conv shapes, weighted as in a step."""
    import tensorflow as tf

    dtype = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16,
             "mixed_float16": tf.float16}[precision]
    size, batch = config.patched_width, config.batch_size
    total_flops, total_time = 0.0, 0.0
    distinct = {}
    for k, cin, cout, count in conv_shapes(config):
        distinct[(k, cin, cout)] = distinct.get((k, cin, cout), 0) + count
    for (k, cin, cout), count in distinct.items():
        inputs = tf.random.normal([batch, size, size, cin], dtype=dtype)
        kernel = tf.Variable(tf.random.normal([k, k, cin, cout], dtype=dtype))

        @tf.function
        def forward_backward(inputs=inputs, kernel=kernel):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = tf.nn.conv2d(inputs, kernel, 1, "SAME")
                loss = tf.reduce_sum(tf.cast(outputs, tf.float32))
            return tape.gradient(loss, [inputs, kernel])

        forward_backward()
        start = time.perf_counter()
        for _ in range(repeats):
            for gradient in forward_backward():
                gradient.numpy()
        elapsed = (time.perf_counter() - start) / repeats
        total_flops += 3.0 * conv_flops(k, cin, cout, batch, size) * count
        total_time += elapsed * count
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


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def main(argv):
    del argv
    import keras

    def run():
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # one tf.function per conv shape is intended
        base = config_from_flags()
        precisions = [p for p in (flags.FLAGS.precisions or base.precision).split(",") if p]
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
        print(f"model {base.model_name} {','.join(map(str, base.num_hidden))} "
              f"k={base.filter_size} {base.img_width}x{base.img_width} p={base.patch_size} "
              f"T={base.total_length} batch={base.batch_size}  load={os.getloadavg()[0]:.2f}")
        header = ("precision", "s/update", "seq/s", "TFLOP/update", "GFLOP/s",
                  "conv peak GFLOP/s", "ratio", "peak RSS GiB")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print(f"| {row[0]} | {row[1]:.3f} | {row[2]:.2f} | {row[3]:.3f} | {row[4]:.1f} | "
                  f"{row[5]:.1f} | {row[6]:.2f} | {row[7]:.2f} |")
        if len(rows) > 1:
            for row in rows[1:]:
                print(f"speed-up {row[0]} vs {rows[0][0]}: {rows[0][1] / row[1]:.2f}x")

    run_or_exit(run)


if __name__ == "__main__":
    import_tensorflow_quietly()
    run_app(main)
