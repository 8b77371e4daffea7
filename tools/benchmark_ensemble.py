"""Speed of ensemble nowcasts: the radar model's motion ensemble vs pysteps' STEPS.

One run times both on the same synthetic composite (smooth rain cells moving ~3 pixels per
step; timing only, no skill): ``--members`` members of the model in one batched forecast
(:class:`predrnn_tf.models.ensemble.MotionEnsemble`) and ``--members`` STEPS members
(:func:`predrnn_tf.evaluation.steps_baseline.steps_members`, pysteps' example settings,
one worker). Each method runs in its own spawned process, so each peak RSS is its own
(``ru_maxrss``; the RSS after imports is printed beside it). The model needs a side that is
a multiple of its patch size: its field is the centred crop (350 -> 348 for patch 4).

    python tools/benchmark_ensemble.py [--workdir=WORKDIR] [--members=20] [--size=350]
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import subprocess
import time

import numpy as np
from absl import app, flags

import predrnn_tf

flags.DEFINE_string("workdir", None, "model work directory (default: the shipped radar_real)")
flags.DEFINE_integer("members", 20, "ensemble members of both methods")
flags.DEFINE_integer("size", 350, "composite side in pixels")
flags.DEFINE_integer("leads", 10, "lead times")
flags.DEFINE_integer("inputs", 5, "input frames (the model's input_length must agree)")
flags.DEFINE_integer("repeats", 3, "timed model forecasts after one warm-up")
flags.DEFINE_integer("seed", 24, "seed of the field and of both ensembles")

KEY_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16",
             "amx_tile")


def synthetic_rain(frames: int, size: int, seed: int) -> np.ndarray:
    """``[T, S, S]`` mm/h: smooth rain cells with texture, moving 3 px right, 1 px down a step."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)
    centres = rng.uniform(0.15 * size, 0.75 * size, (12, 2))
    peaks, widths = rng.uniform(3.0, 40.0, 12), rng.uniform(8.0, 30.0, 12)
    texture = np.exp(0.3 * rng.normal(size=(size + 64, size + 64)))
    fields = []
    for time_step in range(frames):
        rate = sum(peak * np.exp(-((rows - y - time_step) ** 2 + (columns - x - 3 * time_step)
                                   ** 2) / (2.0 * width ** 2))
                   for (y, x), peak, width in zip(centres, peaks, widths, strict=True))
        moved = texture[32 - time_step:32 - time_step + size, 32 - 3 * time_step:
                        32 - 3 * time_step + size]
        fields.append(np.where(rate < 0.1, 0.0, rate * moved))
    return np.stack(fields)


def resident_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    with open("/proc/self/status") as status:
        line = next(row for row in status if row.startswith("VmRSS"))
    return int(line.split()[1]) / 1024.0


def peak_mb() -> float:
    """This process's peak resident memory (ru_maxrss, KB on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_model(options: dict, results) -> None:
    """Child process: restores the model, times its ensemble forecast, reports to ``results``."""
    import tensorflow as tf

    from predrnn_tf import units, workdir
    from predrnn_tf.models import ensemble

    model, config = workdir.restore(options["workdir"])
    card = workdir.WorkDir(options["workdir"]).data_card or {}
    side = options["size"] - options["size"] % config.patch_size
    start = (options["size"] - side) // 2
    rain = synthetic_rain(options["inputs"], options["size"], options["seed"])
    pixels = units.rain_rate_to_unit_pixels(rain[:, start:start + side, start:start + side])
    inputs = tf.constant(pixels[None, :, :, :, None], tf.float32)  # [1, T, S', S', 1]
    wrapper = ensemble.MotionEnsemble(model, options["members"], card.get("pixel_km", 2.0),
                                      card.get("interval_minutes", 10.0), seed=options["seed"])
    forecast = tf.function(lambda frames: wrapper(frames, output_length=options["leads"]))
    after_imports = resident_mb()
    began = time.perf_counter()
    members = forecast(inputs).numpy()  # warm-up: trace, build, copy weights
    warm_up = time.perf_counter() - began
    seconds = []
    for _ in range(options["repeats"]):
        began = time.perf_counter()
        members = forecast(inputs).numpy()
        seconds.append(time.perf_counter() - began)
    rates = units.pixels_to_rain_rate(members[0, ..., 0], card)  # [N, T, H, W]
    results.put({"method": f"PredRNN motion ensemble ({side}x{side})", "seconds": seconds,
                 "warm_up": warm_up, "rss": after_imports, "peak": peak_mb(),
                 "spread": rates.std(axis=0).mean(axis=(1, 2))[[0, -1]].tolist()})


def time_steps(options: dict, results) -> None:
    """Child process: times pysteps' STEPS on the same field, reports to ``results``."""
    from predrnn_tf.evaluation import steps_baseline

    rain = synthetic_rain(options["inputs"], options["size"], options["seed"])
    steps_baseline.import_pysteps()
    after_imports = resident_mb()
    began = time.perf_counter()
    members = steps_baseline.steps_members(rain, options["leads"], options["members"],
                                           pixel_km=2.0, interval_minutes=10.0,
                                           seed=options["seed"])
    seconds = time.perf_counter() - began
    size = options["size"]
    results.put({"method": f"pysteps STEPS ({size}x{size})", "seconds": [seconds],
                 "warm_up": float("nan"), "rss": after_imports, "peak": peak_mb(),
                 "spread": members.std(axis=0).mean(axis=(1, 2))[[0, -1]].tolist()})


def run_child(target, options: dict) -> dict:
    """Runs ``target(options, queue)`` in a spawned process and returns what it reported."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(options, results))
    process.start()
    while True:
        try:
            result = results.get(timeout=5.0)
            break
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(f"{target.__name__} failed (exit code {process.exitcode})"
                                   ) from None
    process.join()
    return result


def cpu_description() -> tuple[str, str]:
    """``(model name, the vector flags among KEY_FLAGS)`` from ``lscpu``."""
    text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    present = set(fields.get("Flags", "").split())
    return fields.get("Model name", "?").strip(), " ".join(f for f in KEY_FLAGS if f in present)


def print_table(rows: list[dict], options: dict, loads: list[tuple]) -> None:
    model_name, cpu_flags = cpu_description()
    print(f"\nEnsemble nowcast speed: {options['members']} members, {options['inputs']} inputs "
          f"-> {options['leads']} leads, synthetic moving rain, 2 km / 10 min")
    print(f"CPU: {model_name}, {os.cpu_count()} CPUs, flags: {cpu_flags}")
    print("load average (1, 5, 15 min) before/after: "
          + " / ".join(", ".join(f"{value:.2f}" for value in load) for load in loads))
    print("| method | seconds (median) | all timed runs | warm-up s | RSS after imports MB | "
          "peak RSS MB | spread lead 1 / last, mm/h |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        runs = ", ".join(f"{value:.2f}" for value in row["seconds"])
        print(f"| {row['method']} | {np.median(row['seconds']):.2f} | {runs} | "
              f"{row['warm_up']:.2f} | {row['rss']:.0f} | {row['peak']:.0f} | "
              f"{row['spread'][0]:.3f} / {row['spread'][1]:.3f} |")
    model_seconds, steps_seconds = (float(np.median(row["seconds"])) for row in rows)
    print(f"time ratio model ensemble / STEPS: {model_seconds / steps_seconds:.2f} "
          f"(goal of issue 30: below 1 on a quiet machine)")


def main(argv: list[str]) -> None:
    del argv
    values = flags.FLAGS
    default = os.path.join(os.path.dirname(predrnn_tf.__file__), "inference", "pretrained",
                           "radar_real")
    options = {"workdir": values.workdir or default, "members": values.members,
               "size": values.size, "leads": values.leads, "inputs": values.inputs,
               "repeats": values.repeats, "seed": values.seed}
    loads = [os.getloadavg()]
    rows = [run_child(time_model, options), run_child(time_steps, options)]
    loads.append(os.getloadavg())
    print_table(rows, options, loads)


if __name__ == "__main__":
    app.run(main)
