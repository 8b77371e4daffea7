"""Training-step benchmark: time per update against the machine's conv peak, same run.

    python tools/benchmark.py --flagfile=configs/mnist.flags --precision=float32
    python tools/benchmark.py --flagfile=configs/mnist.flags --precisions=float32,mixed_bfloat16

Prints one row per precision: s/update, sequences/s, the analytic FLOPs of one update,
achieved GFLOP/s, the conv peak measured in the same run at the model's own layer shapes
(forward + backward, same precision), their ratio, and the peak RSS. An update is one
forward + backward + Adam step on ``batch_size`` sequences of ``total_length`` frames (the
benchmark times single updates; ``--reverse_input`` in a flagfile doubles the work of an
iteration, not of an update). Absolute times on shared machines vary up to 2x from day to
day: compare the ratios. On a CPU without AVX512_BF16/AMX, bfloat16 is emulated (13-60x
slower than float32): its rows are skipped with a note unless ``--emulated_bfloat16``.
TensorFlow is imported after predrnn_tf/training/cpu_features.py chose its environment.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from predrnn_tf.analysis import benchmarking, memory_probes
from predrnn_tf.cli.flag_parsing import (
    config_from_flags,
    define_config_flags,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)
from predrnn_tf.training import cpu_features

define_config_flags()
flags.DEFINE_string("precisions", "", "Comma-separated precisions to compare in one run "
                    "(default: --precision).")
flags.DEFINE_integer("warmup_steps", 1, "Untimed updates (tracing and first-call costs).")
flags.DEFINE_integer("steps", 3, "Timed updates.")
flags.DEFINE_integer("peak_repeats", 3, "Repetitions of each conv when measuring the peak.")
flags.DEFINE_string("workdir", None, "Unused (accepted so training flagfiles work).")
flags.DEFINE_boolean("emulated_bfloat16", False, "Also time mixed_bfloat16 on a CPU without "
                     "AVX512_BF16/AMX (emulated: 13-60x slower than float32).")
flags.DEFINE_integer("forecast_steps", 0, "If > 0, also time this many calls of the compiled "
                     "forecast per precision against the forward-only conv peak.")
flags.DEFINE_list("memory_sizes", [], "Image sizes (e.g. 128,512) at which to measure the "
                  "peak training memory per sequence (batch 1), plain and with --remat, each "
                  "in its own fresh process (predrnn_tf/analysis/memory_probes.py).")
flags.DEFINE_integer("memory_plain_max_size", 512, "Largest image size measured without "
                     "--remat (larger plain sizes are extrapolated, linear in pixels through "
                     "the two largest measured plain sizes).")
flags.DEFINE_integer("memory_warmup", 1, "Untimed updates before the measured one in each "
                     "memory probe (the first execution also optimises the graph).")
flags.DEFINE_string("memory_probe", "", "Internal: SIZE:REMAT, run one update in this process "
                    "and print its peak memory.")


def memory_table(base) -> list[str]:
    """The memory table of :mod:`predrnn_tf.analysis.memory_probes` for ``--memory_sizes``."""
    sizes = [int(size) for size in flags.FLAGS.memory_sizes]
    command = [sys.executable, os.path.abspath(__file__), *sys.argv[1:]]
    plain, remat = memory_probes.measure(sizes, flags.FLAGS.memory_plain_max_size,
                                         flags.FLAGS.memory_warmup, command)
    return memory_probes.table(base, sizes, plain, remat)


def timed_precisions(precisions: list[str]) -> tuple[list[str], list[str]]:
    """``(precisions to time, note lines)``: emulated bfloat16 is left out unless asked for."""
    if benchmarking.native_bfloat16() or flags.FLAGS.emulated_bfloat16:
        return precisions, []
    kept = [precision for precision in precisions if "bfloat16" not in precision]
    notes = [f"{precision} skipped: emulated on this CPU (no AVX512_BF16/AMX), "
             f"{cpu_features.EMULATED_BFLOAT16_SLOWDOWN} slower than float32; "
             f"--emulated_bfloat16 times it" for precision in precisions if precision not in kept]
    return kept, notes


def speed_table(base, precisions: list[str]) -> list[str]:
    """Markdown lines: one row per precision, timed and peak-measured in this process."""
    import keras

    flops = benchmarking.update_flops(base)
    rows = []
    for precision in precisions:
        config = base.replace(precision=precision)
        keras.config.set_dtype_policy("float32")
        peak = benchmarking.measure_conv_peak(config, precision, flags.FLAGS.peak_repeats)
        seconds = benchmarking.time_updates(config, flags.FLAGS.warmup_steps, flags.FLAGS.steps)
        achieved = flops / seconds / 1e9
        rows.append((precision, seconds, config.batch_size / seconds, flops / 1e12,
                     achieved, peak, achieved / peak, benchmarking.peak_rss_gib()))
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

    flops = benchmarking.update_flops(base) / 3.0
    lines = ["| forecast precision | s/forecast | GFLOP/s | forward conv peak GFLOP/s | ratio |",
             "|---|---|---|---|---|"]
    for precision in precisions:
        config = base.replace(precision=precision)
        keras.config.set_dtype_policy("float32")
        peak = benchmarking.measure_conv_peak(config, precision, flags.FLAGS.peak_repeats,
                                              backward=False)
        seconds = benchmarking.time_forecasts(config, flags.FLAGS.warmup_steps,
                                              flags.FLAGS.forecast_steps)
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
            memory_probes.print_probe(base, flags.FLAGS.memory_probe,
                                         flags.FLAGS.memory_warmup)
            return
        asked = [p for p in (flags.FLAGS.precisions or base.precision).split(",") if p]
        precisions, notes = timed_precisions(asked)
        cpu = cpu_features.cpu_flags()
        print(f"model {base.model_name} {','.join(map(str, base.num_hidden))} "
              f"k={base.filter_size} {base.img_width}x{base.img_width} p={base.patch_size} "
              f"T={base.total_length} batch={base.batch_size} remat={base.remat}  "
              f"load={os.getloadavg()[0]:.2f}  native bfloat16: {benchmarking.native_bfloat16()}"
              f"  cpu {cpu_features.cpu_kind(cpu)} ({cpu_features.describe_flags(cpu)})  TF "
              f"convolutions: {'oneDNN' if benchmarking.onednn_convolutions() else 'Eigen'}")
        if notes:
            print("\n".join(notes))
        if flags.FLAGS.steps > 0 and precisions:
            print("\n".join(speed_table(base, precisions)))
        if flags.FLAGS.forecast_steps > 0 and precisions:
            print("\n".join(forecast_table(base, precisions)))
        if flags.FLAGS.memory_sizes:
            print("\n".join(memory_table(base)))

    run_or_exit(run)


if __name__ == "__main__":
    cpu_features.apply_tensorflow_environment()  # before TensorFlow is imported
    import_tensorflow_quietly()
    run_app(main)
