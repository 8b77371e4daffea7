r"""Benchmarks the radar conversion on a synthetic archive: files/s and peak memory.

Builds a synthetic archive of --files radar files under --work_dir (symbolic links to the
files of --source_glob, renamed to consecutive 5-minute time stamps: the conversion's work
per file is the real decoding), then runs ``tools/make_radar.py`` as a child process for
each engine and prints one markdown table: files/s, the peak resident memory of the whole
process tree (the converter and its workers, sampled every 0.1 s from /proc), wall time,
the CPU (lscpu model and flags) and the load average before and after each run.

  python tools/benchmark_conversion.py --source_glob='ARCHIVE/*/*.pgm.gz' \
      --source_pattern='%Y%m%d%H%M_fmi.radar.composite.lowest_FIN_SUOMI1' \
      --files=10000,1000 --runs=processes:1,processes:2,beam:1 \
      --beam_python=/path/to/venv-with-apache-beam/bin/python

Goals (issue 32): 2 workers >= 1.7x the files/s of 1 worker on 2 cores (a quiet machine),
peak memory within 10% between a 1,000-file and a 10,000-file archive.
"""

from __future__ import annotations

import datetime
import glob
import os
import subprocess
import sys
import time

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAMP = "%Y%m%d%H%M"
SUFFIX = "_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz"

_SOURCE_GLOB = flags.DEFINE_string("source_glob", None, "Radar files to link from.",
                                   required=True)
_FILES = flags.DEFINE_string("files", "10000,1000", "Archive sizes (files), comma-separated.")
_RUNS = flags.DEFINE_string(
    "runs", "processes:1,processes:2,beam:1",
    "engine:workers entries (processes:N, beam:1 on the DirectRunner).")
_WORK_DIR = flags.DEFINE_string("work_dir", "/tmp/benchmark_conversion", "Archive and output.")
_BEAM_PYTHON = flags.DEFINE_string(
    "beam_python", sys.executable, "Python that has apache-beam (for beam runs).")
_CONVERTER_FLAGS = flags.DEFINE_string(
    "converter_flags", "--importer=fmi_pgm --importer_kwargs={\"gzipped\":true} "
    f"--filename_pattern=%Y%m%d%H%M{SUFFIX[:-7]} --image_size=128 --total_length=20 "
    "--stride=20 --sequences_per_shard=25 --test_fraction=0.2",
    "make_radar.py flags besides --input_glob/--output_dir/--num_workers/--engine.")


def build_archive(folder: str, count: int, sources: list[str]) -> str:
    """``count`` links named every 5 minutes from 2020-01-01; returns the archive's glob."""
    os.makedirs(folder, exist_ok=True)
    existing = len(glob.glob(os.path.join(folder, "*" + SUFFIX)))
    start = datetime.datetime(2020, 1, 1)
    for index in range(existing, count):
        stamp = start + datetime.timedelta(minutes=5 * index)
        link = os.path.join(folder, f"{stamp:{STAMP}}{SUFFIX}")
        os.symlink(os.path.abspath(sources[index % len(sources)]), link)
    return os.path.join(folder, "*" + SUFFIX)


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        members.update(children)
        frontier.extend(children)
    return sum(_rss(pid) for pid in members)


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def run_once(input_glob: str, output_dir: str, engine: str, workers: int) -> dict:
    """Runs one conversion; returns seconds, peak tree memory and the load averages."""
    python = _BEAM_PYTHON.value if engine == "beam" else sys.executable
    command = [python, os.path.join(REPO, "tools", "make_radar.py"),
               f"--input_glob={input_glob}", f"--output_dir={output_dir}",
               f"--engine={engine}", f"--num_workers={workers}",
               *_CONVERTER_FLAGS.value.split()]
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.1)
    seconds = time.monotonic() - start
    stdout, stderr = process.communicate()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.decode()[-2000:]}")
    return {"seconds": seconds, "peak_bytes": peak, "load": (load_before, os.getloadavg()[0]),
            "summary": stdout.decode().strip().splitlines()[-1]}


def cpu_line() -> str:
    """The CPU model, its core count and the vector flags that matter here."""
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    wanted = [flag for flag in fields.get("Flags", "").split()
              if flag.startswith(("avx", "amx", "fma"))]
    return (f"{fields.get('Model name', '?').strip()}, {os.cpu_count()} CPUs, "
            f"flags {' '.join(wanted)}")


def main(argv: list[str]) -> None:
    del argv
    sources = sorted(glob.glob(_SOURCE_GLOB.value, recursive=True))
    if not sources:
        raise app.UsageError(f"--source_glob={_SOURCE_GLOB.value!r} matches no file")
    print(f"machine: {cpu_line()}")
    print("| files | engine | workers | files/s | wall s | peak memory MiB | load before/after |")
    print("|---|---|---|---|---|---|---|")
    for count in [int(value) for value in _FILES.value.split(",")]:
        input_glob = build_archive(os.path.join(_WORK_DIR.value, f"archive_{count}"), count,
                                   sources)
        for entry in _RUNS.value.split(","):
            engine, workers = entry.split(":")
            output = os.path.join(_WORK_DIR.value, f"out_{count}_{engine}_{workers}")
            subprocess.run(["rm", "-rf", output], check=True)
            result = run_once(input_glob, output, engine, int(workers))
            print(f"| {count} | {engine} | {workers} | {count / result['seconds']:.1f} | "
                  f"{result['seconds']:.0f} | {result['peak_bytes'] / 2**20:.0f} | "
                  f"{result['load'][0]:.1f}/{result['load'][1]:.1f} |", flush=True)


if __name__ == "__main__":
    app.run(main)
