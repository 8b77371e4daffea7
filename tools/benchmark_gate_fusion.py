r"""A/B of the ST-LSTM gate math: plain TensorFlow ops vs an XLA-compiled (fused) function.

Issue 15 lists "fused gate math" among the speed candidates. This tool measures it at the
paper's layer shape (batch 8, 16x16 after patch 4, 128 channels, 5x5 kernels) over a
6-step unroll of one layer, forward and backward, the convolutions left to oneDNN in both
arms: only the split / sigmoid / tanh / products / sums between them move into
``tf.function(jit_compile=True)``. The two arms run interleaved in one process; it prints
the largest relative gradient difference, each arm's median time and their ratio, with the
CPU's AVX/BF16/AMX flags and the load average:

  python tools/benchmark_gate_fusion.py --precision=float32 --rounds=6
  python tools/benchmark_gate_fusion.py --precision=bfloat16 --rounds=8

A ratio above 1 means the fused gate math wins. Run it on a quiet machine.
"""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

FLAGS = flags.FLAGS
BATCH, SIZE, NUM_HIDDEN, KERNEL = 8, 16, 128, 5


def define_flags() -> None:
    """The tool's flags, defined when it runs (importing it in tests defines none)."""
    flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                      "Compute dtype of the convolutions and the gate math.")
    flags.DEFINE_integer("rounds", 6, "Timed rounds per arm (interleaved).", lower_bound=1)
    flags.DEFINE_integer("steps", 6, "Time steps of the unroll.", lower_bound=1)


def compute_gates(x_concat, h_concat, m_concat, cell, memory):
    """The ST-LSTM gate math of layers/st_lstm_cell.py between its convolutions."""
    i_x, f_x, g_x, i_x_prime, f_x_prime, g_x_prime, o_x = tf.split(x_concat, 7, axis=-1)
    i_h, f_h, g_h, o_h = tf.split(h_concat, 4, axis=-1)
    i_m, f_m, g_m = tf.split(m_concat, 3, axis=-1)
    delta_c = tf.sigmoid(i_x + i_h) * tf.tanh(g_x + g_h)
    cell_new = tf.sigmoid(f_x + f_h + 1.0) * cell + delta_c
    delta_m = tf.sigmoid(i_x_prime + i_m) * tf.tanh(g_x_prime + g_m)
    memory_new = tf.sigmoid(f_x_prime + f_m + 1.0) * memory + delta_m
    return cell_new, memory_new, o_x + o_h


def compute_output(output_sum, output_conv, last_conv):
    """The output gate and the new hidden state."""
    return tf.sigmoid(output_sum + output_conv) * tf.tanh(last_conv)


def make_update(kernels, frames, dtype, gates, output):
    """A tf.function: the unroll's loss gradient with respect to the five kernels."""
    def conv(values, kernel):
        return tf.nn.conv2d(values, tf.cast(kernel, dtype), 1, "SAME")

    @tf.function
    def update():
        with tf.GradientTape() as tape:
            _, batch, height, width, _ = frames.shape
            hidden = tf.zeros([batch, height, width, kernels[1].shape[2]], dtype)
            cell, memory, loss = hidden, hidden, 0.0
            for step in range(frames.shape[0]):
                frame = tf.cast(frames[step], dtype)
                cell, memory, output_sum = gates(conv(frame, kernels[0]),
                                                 conv(hidden, kernels[1]),
                                                 conv(memory, kernels[2]), cell, memory)
                both = tf.concat([cell, memory], axis=-1)  # [B, H, W, 2*nh]
                hidden = output(output_sum, conv(both, kernels[3]), conv(both, kernels[4]))
                loss += tf.reduce_mean(tf.square(tf.cast(hidden, tf.float32)))
        return tape.gradient(loss, kernels)
    return update


def cpu_flags() -> str:
    """The lscpu flags that decide the speed of float32 and bfloat16 convolutions."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "lscpu not available"
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return " ".join(flag for flag in wanted if f" {flag}" in text) or "none of AVX2/AVX-512/AMX"


def main(argv):
    del argv
    dtype = tf.bfloat16 if FLAGS.precision == "bfloat16" else tf.float32
    rng = np.random.default_rng(0)
    shapes = [(KERNEL, KERNEL, NUM_HIDDEN, gates * NUM_HIDDEN) for gates in (7, 4, 3)]
    shapes += [(KERNEL, KERNEL, 2 * NUM_HIDDEN, NUM_HIDDEN), (1, 1, 2 * NUM_HIDDEN, NUM_HIDDEN)]
    kernels = [tf.Variable(rng.uniform(-0.02, 0.02, shape).astype(np.float32))
               for shape in shapes]
    frames = tf.constant(rng.uniform(0, 1, (FLAGS.steps, BATCH, SIZE, SIZE, NUM_HIDDEN))
                         .astype(np.float32))
    arms = {"plain": make_update(kernels, frames, dtype, compute_gates, compute_output),
            "fused (XLA)": make_update(kernels, frames, dtype,
                                       tf.function(compute_gates, jit_compile=True),
                                       tf.function(compute_output, jit_compile=True))}
    plain, fused = (arm() for arm in arms.values())  # traced and compiled, untimed
    difference = max(float(tf.reduce_max(tf.abs(a - b)) / (tf.reduce_max(tf.abs(a)) + 1e-30))
                     for a, b in zip(plain, fused, strict=True))
    load_before = os.getloadavg()[0]
    times = {name: [] for name in arms}
    for _ in range(FLAGS.rounds):
        for name, arm in arms.items():
            start = time.perf_counter()
            arm()[0].numpy()
            times[name].append(time.perf_counter() - start)
    print(f"cpu flags: {cpu_flags()}; load average (1 min) before {load_before:.2f}, "
          f"after {os.getloadavg()[0]:.2f}; {FLAGS.precision}, {FLAGS.steps} steps")
    print(f"largest relative gradient difference: {difference:.2e}")
    print("| arm | median ms per update | rounds (ms) |\n|---|---|---|")
    for name, values in times.items():
        rounds = ", ".join(f"{1e3 * value:.0f}" for value in values)
        print(f"| {name} | {1e3 * np.median(values):.1f} | {rounds} |")
    ratio = np.median(times["plain"]) / np.median(times["fused (XLA)"])
    print(f"plain / fused time: {ratio:.3f} (above 1: the fused gate math wins)")


if __name__ == "__main__":
    define_flags()
    app.run(main)
