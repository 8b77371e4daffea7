"""Profiles one training update and one forecast with the TensorFlow profiler.

    python tools/profile_step.py --flagfile=configs/mnist.flags --trace_dir=/tmp/predrnn_profile

Runs one untimed update (tracing), then one update and one forecast under
``tf.profiler.experimental``; the traces go to ``--trace_dir`` (open them with TensorBoard's
profile plugin). Prints, for each, a table of the time spent per kind of op: convolutions
(forward and both backward kernels), layer norm, elementwise gate math, dtype casts, the
decoupling loss, mask mixing, patch reshapes, the optimizer, the rest, and the tf.function
overhead (the call's wall time minus the time in which at least one op ran). Op times are
summed over the executor threads, so with inter-op parallelism they may add up to more than
the wall time; shares are of the summed op time.
"""

from __future__ import annotations

import glob
import os
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
flags.DEFINE_string("trace_dir", "/tmp/predrnn_profile", "Folder for the profiler traces.")
flags.DEFINE_string("workdir", None, "Unused (accepted so training flagfiles work).")

CATEGORIES = ("convolutions", "layer norm", "elementwise gate math", "dtype casts",
              "decoupling loss", "mask mixing", "patch reshapes", "loss", "optimizer",
              "other ops")
_SCOPES = (("decoupling_loss", "decoupling loss"), ("mask_mixing", "mask mixing"),
           ("patch_frames", "patch reshapes"), ("norm_", "layer norm"),
           ("adam", "optimizer"), ("global_norm", "optimizer"), ("clip", "optimizer"),
           ("cell_", "elementwise gate math"), ("frame_mse", "loss"))


def categorise(name: str, op_type: str) -> str:
    """The category of one executed op from its name scope and type."""
    lowered = name.lower()
    if "conv2d" in op_type.lower():
        return "convolutions"
    if op_type in ("Cast", "_MklCast"):
        return "dtype casts"
    if lowered.startswith("adam") or op_type.startswith(("ResourceApply", "AssignVariable",
                                                          "AssignAddVariable")):
        return "optimizer"
    for scope, category in _SCOPES:
        if scope in lowered:
            return category
    return "other ops"


def _union_length(intervals: list[tuple[int, int]]) -> int:
    total, end = 0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def summarise_trace(trace_dir: str, wall: float) -> dict[str, float]:
    """Seconds per category of the newest trace in ``trace_dir``, plus ``wall`` (the timed
    call's ``wall`` seconds) and ``tf.function overhead`` (wall with no op running)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True),
                   key=os.path.getmtime)
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as handle:
        space.ParseFromString(handle.read())
    plane = next(plane for plane in space.planes if plane.name == "/host:CPU")
    metadata = plane.event_metadata
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    intervals = []
    for line in plane.lines:
        for event in line.events:
            name = metadata[event.metadata_id].name
            start = line.timestamp_ns + event.offset_ps // 1000
            if (":" not in name or "::" in name  # "ExecutorState::Process" is no op
                    or not line.name.startswith("tf_Compute")):
                continue
            op_name, op_type = name.rsplit(":", 1)
            seconds[categorise(op_name, op_type)] += event.duration_ps / 1e12
            intervals.append((start, start + event.duration_ps // 1000))
    seconds["wall"] = wall
    seconds["tf.function overhead"] = max(0.0, wall - _union_length(intervals) / 1e9)
    return seconds


def format_profile(title: str, seconds: dict[str, float]) -> list[str]:
    """Markdown lines: one row per category, with its share of the summed op time."""
    summed = sum(seconds[category] for category in CATEGORIES)
    lines = [f"{title}: wall {seconds['wall']:.3f} s, summed op time {summed:.3f} s",
             "| part | s | share of op time |", "|---|---|---|"]
    for category in CATEGORIES:
        lines.append(f"| {category} | {seconds[category]:.3f} | "
                     f"{100 * seconds[category] / max(summed, 1e-12):.1f}% |")
    overhead = seconds["tf.function overhead"]
    lines.append(f"| tf.function overhead (wall with no op running) | {overhead:.3f} | "
                 f"{100 * overhead / max(seconds['wall'], 1e-12):.1f}% of wall |")
    return lines


def profile(config, trace_dir: str) -> list[str]:
    """Traces one update and one forecast of ``config``'s model; returns the tables."""
    import tensorflow as tf

    from predrnn_tf.analysis import benchmarking
    from predrnn_tf.models.forecasting import make_forecast_function

    trainer, train_step, frames = benchmarking.synthetic_trainer(config)
    forecast = make_forecast_function(trainer.model)  # the one compiled forecast
    inputs = tf.constant(frames[:, :config.input_length])
    half = tf.constant(0.5)
    float(train_step(trainer.train_iterator, half, half)["loss"])  # traces
    forecast(inputs).numpy()
    tables = []
    def update():
        float(train_step(trainer.train_iterator, half, half)["loss"])

    for label, run in (("training update", update),
                       ("forecast", lambda: forecast(inputs).numpy())):
        folder = os.path.join(trace_dir, label.replace(" ", "_"))
        tf.profiler.experimental.start(folder)
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        tf.profiler.experimental.stop()
        tables += format_profile(f"{label} (timed under the profiler)",
                                 summarise_trace(folder, elapsed)) + [""]
    return tables


def main(argv):
    del argv

    def run():
        import tensorflow as tf

        config = config_from_flags()
        tables = profile(config, flags.FLAGS.trace_dir)
        print(f"model {config.model_name} {','.join(map(str, config.num_hidden))} "
              f"k={config.filter_size} {config.img_width}x{config.img_width} "
              f"p={config.patch_size} T={config.total_length} batch={config.batch_size} "
              f"precision={config.precision} jit_compile={config.jit_compile} "
              f"tensorflow {tf.__version__} load={os.getloadavg()[0]:.2f} "
              f"traces in {flags.FLAGS.trace_dir}")
        print("\n".join(tables))

    run_or_exit(run)


if __name__ == "__main__":
    from predrnn_tf.training import cpu_features

    cpu_features.apply_tensorflow_environment()  # oneDNN as training gets it, before TF
    import_tensorflow_quietly()
    run_app(main)
