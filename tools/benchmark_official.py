"""Side-by-side speed of our TF update and the official PyTorch PredRNN update, one run.

    python tools/benchmark_official.py --flagfile=configs/mnist.flags --steps=2 --warmup_steps=1

On a CPU without AVX512_BF16/AMX (bfloat16 emulated, 13-60x slower than float32) the
bfloat16 rows measure only their conv peak, labelled "emulated", unless
``--emulated_bfloat16_updates`` times the updates too. TensorFlow is imported after
predrnn_tf/training/cpu_features.py chose its environment (oneDNN on every AVX2 kind); the
output starts with the CPU's kind, its ``lscpu`` flags and whether oneDNN runs the convolutions.

In one process, alternating in rounds to cancel the drift of a shared machine (TF float32,
TF mixed_bfloat16, official float32, official bfloat16 autocast; then again), times:
  - our train update (tools/benchmarking.py ``time_updates``), per ``--precisions``, plus float32
    with ``--remat`` (``--remat_row``) and our compiled float32 forecast (``--forecast_row``,
    forward only, against the forward-only conv peak);
  - the official update (predrnn_tf/interop/official_predrnn.py ``OfficialModel.train``:
    forward,
    MSE + decouple_beta * decoupling loss, backward, Adam step) in float32, and in bfloat16
    under ``torch.autocast("cpu")`` when mixed_bfloat16 is asked for;
  - each framework's conv peak: forward + backward at the model's own conv shapes, weighted
    as in an update (tools/benchmarking.py ``measure_conv_peak`` for TF; the same for PyTorch).
Both frameworks use all cores (torch.set_num_threads; TF's default thread pools). Prints a
Markdown table (s/update, speed-up vs official float32, achieved GFLOP/s from the analytic
FLOPs of tools/benchmarking.py ``update_flops``, the framework's conv peak, their ratio) and the
machine load. Accepts any training flagfile; only the model sizes matter.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from absl import flags

from predrnn_tf.analysis import benchmarking
from predrnn_tf.cli.flag_parsing import (
    config_from_flags,
    define_config_flags,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)
from predrnn_tf.config import ConfigError

define_config_flags()
flags.DEFINE_string("precisions", "float32,mixed_bfloat16", "Comma-separated precisions of our "
                    "update to time.")
flags.DEFINE_integer("warmup_steps", 1, "Untimed updates (tracing and first-call costs).")
flags.DEFINE_integer("steps", 3, "Timed updates.")
flags.DEFINE_integer("peak_repeats", 3, "Repetitions of each conv when measuring the peak.")
flags.DEFINE_string("workdir", None, "Unused (accepted so training flagfiles work).")
flags.DEFINE_integer("rounds", 2, "Alternating rounds; each times every row --steps times.")
flags.DEFINE_integer("torch_threads", 0, "PyTorch intra-op threads (0 = the usable cores).")
flags.DEFINE_boolean("remat_row", True, "Also time our float32 update with --remat.")
flags.DEFINE_boolean("emulated_bfloat16_updates", False, "Also time the bfloat16 updates "
                     "on a CPU without AVX512_BF16/AMX (emulated: 13-60x slower).")
flags.DEFINE_boolean("forecast_row", True, "Also time our compiled float32 forecast (no "
                     "gradient) against the TF forward-only conv peak.")

TORCH_DTYPES = {"float32": None, "mixed_bfloat16": "bfloat16"}


@dataclasses.dataclass
class Row:
    """One framework/precision: seconds per update and conv peak, one entry per round."""

    framework: str
    precision: str
    remat: bool = False
    forecast: bool = False
    peak_only: bool = False
    seconds: list[float] = dataclasses.field(default_factory=list)
    peaks: list[float] = dataclasses.field(default_factory=list)
    error: str = ""

    @property
    def label(self) -> str:
        return f"{self.framework} {precision_name(self)}"

    @property
    def mean_seconds(self) -> float:
        return sum(self.seconds) / len(self.seconds)

    @property
    def mean_peak(self) -> float:
        return sum(self.peaks) / len(self.peaks)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def torch_conv_peak(config, dtype_name: str | None, repeats: int,
                    only_conv_h: bool = False) -> float:
    """GFLOP/s of PyTorch forward + backward at the model's conv shapes (NCHW, as the
    official code), weighted by their count in an update, each shape timed as the best of
    ``repeats`` like ``measure_conv_peak`` (eager PyTorch always runs the forward)."""
    import torch
    from torch.nn import functional as F

    dtype = getattr(torch, dtype_name) if dtype_name else torch.float32
    size, batch = config.patched_width, config.batch_size
    total_flops, total_time = 0.0, 0.0
    for (k, cin, cout), count in benchmarking.distinct_conv_shapes(config, only_conv_h).items():
        inputs = torch.randn([batch, cin, size, size], dtype=dtype, requires_grad=True)
        kernel = torch.randn([cout, cin, k, k], dtype=dtype, requires_grad=True)

        def forward_backward(inputs=inputs, kernel=kernel, padding=k // 2):
            outputs = F.conv2d(inputs, kernel, padding=padding)
            return torch.autograd.grad(outputs.float().sum(), [inputs, kernel])

        total_flops += 3.0 * benchmarking.conv_flops(k, cin, cout, batch, size) * count
        total_time += benchmarking.best_seconds(forward_backward, repeats) * count
    return total_flops / total_time / 1e9


def time_official_updates(config, dtype_name: str | None, warmup: int, steps: int) -> float:
    """Seconds per official update on a random patched batch and a random 0/1 mask."""
    import numpy as np
    import torch

    from predrnn_tf.interop import official_predrnn

    torch.manual_seed(config.seed)
    autocast = getattr(torch, dtype_name) if dtype_name else None
    model = official_predrnn.OfficialModel(config, autocast_dtype=autocast)
    rng = np.random.default_rng(0)
    shape = (config.batch_size, config.total_length, config.img_width, config.img_width,
             config.img_channel)
    frames = official_predrnn.reshape_patch(rng.random(shape, dtype=np.float32), config.patch_size)
    flags_shape = (config.batch_size, official_predrnn.official_mask_length(config))
    coin_flips = (rng.random(flags_shape) < 0.5).astype(np.float32)
    mask = official_predrnn.official_mask(coin_flips, config)
    for _ in range(warmup):
        model.train(frames, mask)
    start = time.perf_counter()
    for _ in range(steps):
        model.train(frames, mask)
    return (time.perf_counter() - start) / steps


def measure_tf(row: Row, config, warmup: int, steps: int, repeats: int) -> None:
    import keras

    keras.config.set_dtype_policy("float32")
    precise = config.replace(precision=row.precision, remat=row.remat)
    repeats = 1 if row.peak_only else repeats  # emulated bfloat16 backward: ~0.5 GFLOP/s
    row.peaks.append(benchmarking.measure_conv_peak(precise, row.precision, repeats,
                                                 backward=not row.forecast,
                                                 only_conv_h=row.peak_only))
    if row.peak_only:
        return
    timer = benchmarking.time_forecasts if row.forecast else benchmarking.time_updates
    row.seconds.append(timer(precise, warmup, steps))
    keras.config.set_dtype_policy("float32")


def measure_torch(row: Row, config, warmup: int, steps: int, repeats: int) -> None:
    dtype_name = TORCH_DTYPES[row.precision]
    try:
        row.peaks.append(torch_conv_peak(config, dtype_name, 1 if row.peak_only else repeats,
                                         row.peak_only))
        if row.peak_only:
            return
        row.seconds.append(time_official_updates(config, dtype_name, warmup, steps))
    except RuntimeError as error:  # e.g. an op without a bfloat16 CPU kernel
        row.error = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"


def compare(config, precisions: list[str], rounds: int, warmup: int, steps: int,
            repeats: int, torch_threads: int = 0, log=print, on_round=None,
            remat: bool = False, forecast: bool = False,
            peak_only: tuple[str, ...] = ()) -> list[Row]:
    """Times every row ``rounds`` times, alternating TF and PyTorch within each round.

    Args:
      log: called with one progress line per measurement.
      on_round: if given, called with the rows after each round (partial results of a long
        run on a loaded machine).
      peak_only: precisions whose rows measure only the conv peak (emulated bfloat16).
    """
    import torch

    torch.set_num_threads(torch_threads or usable_cores())
    tf_rows = [Row("TF predrnn_tf", precision) for precision in precisions]
    if remat and "float32" in precisions:
        tf_rows.append(Row("TF predrnn_tf", "float32", remat=True))
    if forecast:
        tf_rows.append(Row("TF predrnn_tf", "float32", forecast=True))
    torch_rows = [Row("PyTorch official", precision) for precision in precisions
                  if precision in TORCH_DTYPES]
    for row in tf_rows + torch_rows:
        row.peak_only = row.precision in peak_only
    schedule = []
    for index in range(max(len(tf_rows), len(torch_rows))):
        schedule += [(row, measure_tf) for row in tf_rows[index:index + 1]]
        schedule += [(row, measure_torch) for row in torch_rows[index:index + 1]]
    for round_index in range(rounds):
        for row, measure in schedule:
            if row.error:
                continue
            measure(row, config, warmup, steps, repeats)
            last = row.error or f"conv peak {row.peaks[-1]:.4g} GFLOP/s"
            if row.seconds:
                last = f"{row.seconds[-1]:.4g} s/update, {last}"
            log(f"round {round_index + 1}/{rounds} {row.label}: {last}, "
                f"load {os.getloadavg()[0]:.2f}")
        if on_round is not None:
            on_round(tf_rows + torch_rows)
    return tf_rows + torch_rows


def precision_name(row: Row) -> str:
    """The row's name after the framework: precision, emulation, remat or forecast."""
    name = row.precision
    if row.framework.startswith("PyTorch") and row.precision == "mixed_bfloat16":
        name = "bfloat16 autocast"
    if row.precision == "mixed_bfloat16" and not benchmarking.native_bfloat16():
        name += " (emulated: no AVX512_BF16/AMX)"
    if row.remat:
        name += " --remat"
    if row.forecast:
        name += " forecast"
    return name


def row_flops(row: Row, flops: float) -> float:
    """Analytic FLOPs of the row's timed call: an update, or a forecast (forward only)."""
    return flops / 3.0 if row.forecast else flops


def format_table(rows: list[Row], flops: float) -> list[str]:
    """Markdown table lines; speed-ups are against the official float32 row."""
    baseline = next((row for row in rows if row.framework.startswith("PyTorch")
                     and row.precision == "float32" and not row.error), None)
    header = ("framework / precision", "s/update (forecast: s/call)",
              "speed-up vs official float32", "GFLOP/s",
              "framework conv peak GFLOP/s (forecast: forward only)", "ratio",
              "s per round")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        name = f"{row.framework} / {precision_name(row)}"
        if row.error or not row.seconds:
            status = f"failed: {row.error}" if row.error else "not measured"
            peak = f"{row.mean_peak:.4g}" if row.peaks and not row.error else ""
            if row.peak_only and peak:
                status = ("skipped (emulated; --emulated_bfloat16_updates times it); "
                          "peak at the conv_h shape only")
            lines.append(f"| {name} | {status} | | | {peak} | | |")
            continue
        achieved = row_flops(row, flops) / row.mean_seconds / 1e9
        speedup = "n/a"
        if baseline and not row.forecast:
            speedup = f"{baseline.mean_seconds / row.mean_seconds:.2f}x"
        rounds = ", ".join(f"{seconds:.4g}" for seconds in row.seconds)
        lines.append(f"| {name} | {row.mean_seconds:.4g} | {speedup} | {achieved:.4g} | "
                     f"{row.mean_peak:.4g} | {achieved / row.mean_peak:.2f} | {rounds} |")
    return lines


def _peak_share(row: Row, flops: float) -> float:
    return row_flops(row, flops) / row.mean_seconds / 1e9 / row.mean_peak


def format_goals(rows: list[Row], flops: float) -> list[str]:
    """The issue's goals, as measured in this run (issue 15, point 3)."""
    found = {(row.framework.split()[0], row.precision, row.remat, row.forecast): row
             for row in rows if row.seconds and not row.error}
    tf32 = found.get(("TF", "float32", False, False))
    tf16 = found.get(("TF", "mixed_bfloat16", False, False))
    remat = found.get(("TF", "float32", True, False))
    forecast = found.get(("TF", "float32", False, True))
    official32 = found.get(("PyTorch", "float32", False, False))
    lines = []
    if tf32:
        lines.append(f"TF float32 update at {100 * _peak_share(tf32, flops):.0f}% of the "
                     f"same-run TF float32 conv peak (goal >= 85%)")
    if tf32 and official32:
        lines.append(f"TF float32 {official32.mean_seconds / tf32.mean_seconds:.2f}x the "
                     f"official float32 speed (goal >= 1.0x: never slower)")
    if tf16:
        native = benchmarking.native_bfloat16()
        note = "" if native else " (emulated here: no AVX512_BF16/AMX, not a goal)"
        lines.append(f"TF mixed_bfloat16 update at {100 * _peak_share(tf16, flops):.0f}% of "
                     f"the same-run TF bfloat16 conv peak (goal >= 75% on AVX512_BF16/AMX)"
                     f"{note}")
        if official32:
            lines.append(f"TF mixed_bfloat16 {official32.mean_seconds / tf16.mean_seconds:.2f}x"
                         f" the official float32 speed (goal about 1.7x on AVX512_BF16/AMX)"
                         f"{note}")
    if tf32 and tf16:
        lines.append(f"TF mixed_bfloat16 {tf32.mean_seconds / tf16.mean_seconds:.2f}x faster "
                     f"per update than TF float32")
    if tf32 and remat:
        lines.append(f"--remat costs {remat.mean_seconds / tf32.mean_seconds:.2f}x the "
                     f"float32 update time")
    if forecast:
        lines.append(f"TF float32 forecast at {100 * _peak_share(forecast, flops):.0f}% of the "
                     f"same-run TF float32 forward conv peak (goal >= 85% at the radar size)")
    return lines


def describe(config) -> str:
    return (f"model {config.model_name} {','.join(map(str, config.num_hidden))} "
            f"k={config.filter_size} {config.img_width}x{config.img_width} "
            f"p={config.patch_size} T={config.total_length} batch={config.batch_size}")


def describe_cpu() -> str:
    """The CPU's kind, its deciding ``lscpu`` flags and TF's convolution library here."""
    from predrnn_tf.training import cpu_features

    flags_found = cpu_features.cpu_flags()
    library = "oneDNN" if benchmarking.onednn_convolutions() else "Eigen"
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    return (f"cpu kind {cpu_features.cpu_kind(flags_found)}, flags: "
            f"{cpu_features.describe_flags(flags_found)}; TF convolutions: {library} "
            f"(TF_ENABLE_ONEDNN_OPTS={setting})")


def format_load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in load)


def main(argv):
    del argv

    def run():
        import tensorflow as tf

        from predrnn_tf.interop.pytorch import import_torch

        tf.get_logger().setLevel("ERROR")  # one tf.function per conv shape is intended
        import_torch()
        config = config_from_flags()
        FLAGS = flags.FLAGS
        precisions = [p for p in FLAGS.precisions.split(",") if p]
        emulated = not benchmarking.native_bfloat16() and not FLAGS.emulated_bfloat16_updates
        peak_only = ("mixed_bfloat16",) if emulated else ()
        for name in ("rounds", "steps", "warmup_steps", "peak_repeats"):
            minimum = 0 if name == "warmup_steps" else 1
            if FLAGS[name].value < minimum:
                raise ConfigError(f"--{name}={FLAGS[name].value} must be >= {minimum}")
        load_before = os.getloadavg()
        start = time.perf_counter()
        flops = benchmarking.update_flops(config)

        def log(line):
            print(line, file=sys.stderr, flush=True)

        def log_table(rows):
            log("\n".join(["table so far:", *format_table(rows, flops)]))

        rows = compare(config, precisions, FLAGS.rounds, FLAGS.warmup_steps, FLAGS.steps,
                       FLAGS.peak_repeats, FLAGS.torch_threads, log=log,
                       on_round=log_table if FLAGS.rounds > 1 else None,
                       remat=FLAGS.remat_row, forecast=FLAGS.forecast_row, peak_only=peak_only)
        import torch

        print(f"{describe(config)}  TFLOP/update={flops / 1e12:.3f}")
        print(describe_cpu())
        print(f"cores={usable_cores()} torch threads={torch.get_num_threads()} "
              f"rounds={FLAGS.rounds} steps={FLAGS.steps} warmup_steps={FLAGS.warmup_steps} "
              f"tensorflow {tf.__version__} torch {torch.__version__}")
        print(f"load average (1/5/15 min) before {format_load(load_before)}, "
              f"after {format_load(os.getloadavg())}; {time.perf_counter() - start:.0f} s")
        print("\n".join(format_table(rows, flops)))
        print("\n".join(format_goals(rows, flops)))

    run_or_exit(run, errors=(ImportError,))


if __name__ == "__main__":
    from predrnn_tf.training import cpu_features

    cpu_features.apply_tensorflow_environment()  # before TensorFlow is imported
    import_tensorflow_quietly()
    run_app(main)
