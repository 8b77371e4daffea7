"""Peak training memory per sequence, plain and with ``--remat``: one fresh process each.

Used by ``tools/benchmark.py --memory_sizes=128,512``. Every (size, remat) configuration runs
in its own child process (``tools/benchmark.py --memory_probe=SIZE:REMAT``), so no
measurement inherits another's allocations, caches or peak. The child builds the trainer, an
in-memory batch of one sequence and the traced train step, runs ``--memory_warmup`` untimed
updates (the first execution also optimises the graph), then one timed update, and reports:

  - the TensorFlow CPU allocator's peak during the timed update minus its use just before it
    (``tf.config.experimental.get_memory_info("CPU:0")`` after ``reset_memory_stats``): the
    tensors of one update (activations kept for the backward pass, gradients, temporaries);
  - the child's peak RSS (``ru_maxrss``) minus its RSS after the model, the data and the
    traced step exist and before the first update: the same plus what the allocator cannot
    see (graph optimisation, oneDNN primitives, malloc slack);
  - the seconds of the timed update and the load average before it (time is load-sensitive,
    memory is not).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time

MIB = 2 ** 20


def current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB  # Linux: KiB


def _trainer_and_step(config):
    import numpy as np
    import tensorflow as tf

    from predrnn_tf.training.trainer import Trainer

    trainer = Trainer(config, "/nonexistent", tf.distribute.get_strategy())
    shape = (1, config.total_length, config.img_width, config.img_width, config.img_channel)
    frames = np.random.default_rng(0).random(shape, dtype=np.float32)
    trainer.train_iterator = iter(tf.data.Dataset.from_tensors(frames).repeat())
    step = trainer.make_train_step()
    half = tf.constant(0.5)
    step.get_concrete_function(trainer.train_iterator, half, half)  # trace, do not run
    return lambda: float(step(trainer.train_iterator, half, half)["loss"])


def probe(config, size: int, remat: bool, warmup: int) -> dict:
    """Measures one update on one ``size`` x ``size`` sequence in this process."""
    import tensorflow as tf

    config = config.replace(img_width=size, batch_size=1, reverse_input=False, remat=remat)
    update = _trainer_and_step(config)
    rss_before = current_rss_mib()
    for _ in range(warmup):
        update()
    tf.config.experimental.reset_memory_stats("CPU:0")
    in_use = tf.config.experimental.get_memory_info("CPU:0")["current"]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    update()
    seconds = time.perf_counter() - start
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return {"size": size, "remat": remat, "tf_mib": (peak - in_use) / MIB,
            "rss_mib": peak_rss_mib() - rss_before, "seconds": seconds, "load": load,
            "warmup": warmup}


def run_probe(size: int, remat: bool, warmup: int, command: list[str]) -> dict:
    """Runs :func:`probe` in a fresh child and returns its result.

    Args:
      size: the image size of the probe.
      remat: whether the probe recomputes activations (``--remat``).
      warmup: untimed updates before the measured one.
      command: the program and its flags, ``[python, tools/benchmark.py, *flags]``; the
        probe's own flags are appended.

    Returns:
      The child's ``MEMORY`` line as a dict.
    """
    command = [*command, f"--memory_probe={size}:{int(remat)}", f"--memory_warmup={warmup}",
               "--memory_sizes=", "--steps=0", "--forecast_steps=0"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("MEMORY "):
            return json.loads(line[len("MEMORY "):])
    tail = result.stderr.strip().splitlines()[-3:]
    raise RuntimeError(f"memory probe at {size}x{size} remat={remat} failed "
                       f"(exit {result.returncode}): {tail}")


def extrapolate(plain: dict[int, dict], size: int) -> float | None:
    """Plain MiB at ``size``, linear in pixels through the two largest measured sizes."""
    measured = sorted(plain)
    if len(measured) < 2:
        return None
    small, large = measured[-2], measured[-1]
    slope = (plain[large]["tf_mib"] - plain[small]["tf_mib"]) / (large ** 2 - small ** 2)
    return plain[large]["tf_mib"] + slope * (size ** 2 - large ** 2)


def measure(sizes: list[int], plain_max: int, warmup: int, command: list[str],
            log=print) -> tuple[dict, dict]:
    """Plain (sizes <= ``plain_max``) and remat results by size, one child each."""
    plain, remat = {}, {}
    for size in sizes:
        for use_remat, results in ((False, plain), (True, remat)):
            if not use_remat and size > plain_max:
                continue
            results[size] = run_probe(size, use_remat, warmup, command)
            row = results[size]
            log(f"memory {size}x{size} remat={use_remat}: {row['tf_mib']:.0f} MiB tensors, "
                f"{row['rss_mib']:.0f} MiB RSS, {row['seconds']:.1f} s under load "
                f"{row['load']:.2f}")
    return plain, remat


def _plain_cells(plain: dict, size: int) -> tuple[float | None, str, str, str]:
    if size in plain:
        row = plain[size]
        return (row["tf_mib"], f"{row['tf_mib']:.0f}", f"{row['rss_mib']:.0f}",
                f"{row['seconds']:.1f}")
    estimate = extrapolate(plain, size)
    if estimate is None:
        return None, "not run", "not run", "not run"
    return estimate, f"~{estimate:.0f} (extrapolated)", "not run", "not run"


def table(config, sizes: list[int], plain: dict, remat: dict) -> list[str]:
    """Markdown lines of the memory table and the load under which its times were taken."""
    lines = [f"peak training memory per sequence (batch 1, T={config.total_length} with "
             f"{config.input_length} input, p={config.patch_size}, {config.model_name} "
             f"{','.join(map(str, config.num_hidden))}, k={config.filter_size}, "
             f"{config.precision}; one child process per row cell; MB = MiB)",
             "| image | plain MB | --remat MB | plain / remat | plain s/update | "
             "remat s/update | plain RSS MB | remat RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for size in sizes:
        gib, text, rss, seconds = _plain_cells(plain, size)
        row = remat[size]
        ratio = f"{gib / row['tf_mib']:.1f}x" if gib else "n/a"
        lines.append(f"| {size}x{size} | {text} | {row['tf_mib']:.0f} | {ratio} | {seconds} | "
                     f"{row['seconds']:.1f} | {rss} | {row['rss_mib']:.0f} |")
    loads = [f"{size} {'remat' if row['remat'] else 'plain'} {row['load']:.2f}"
             for results in (plain, remat) for size, row in sorted(results.items())]
    warmup = next(iter(remat.values()))["warmup"] if remat else 0
    lines.append(f"MB: TensorFlow allocator peak of the update; RSS MB: child peak RSS minus "
                 f"its RSS before the first update. Times: one update after {warmup} "
                 f"warm-up update(s), taken under load (1-min load average before each): "
                 f"{', '.join(loads)}")
    return lines


def print_probe(config, spec: str, warmup: int) -> None:
    """The child's side of ``--memory_probe=SIZE:REMAT``: one ``MEMORY {json}`` line."""
    size, remat = spec.split(":")
    result = probe(config, int(size), remat == "1", warmup)
    print("MEMORY " + json.dumps(result), flush=True)
