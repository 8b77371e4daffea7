"""Kill training at random moments, resume it, and compare with an uninterrupted run.

    python tools/chaos.py --flagfile=configs/quickstart.flags --kills=10 [-- more train flags]

Runs ``python -m predrnn_tf.train`` with ``--deterministic --log_every=1`` once without
interruption (the reference), then again in another work directory where it is killed
``--kills`` times (SIGKILL at random moments: mostly during training, every fifth one during
start-up; one of them is a SIGTERM, which must end the run with exit status 0 and a
checkpoint) and re-run with the same command each time until it finishes. Afterwards it
compares the loss trajectory in ``losses.jsonl`` with the reference and looks for stray
files (temporary files, unregistered checkpoints). Prints a table; exits 1 if any check
fails. Work directories go to a temporary folder, removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from predrnn_tf.training.fault_tolerance import LOCK_FILENAME, LOSS_LOG_FILENAME, read_loss_log


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flagfile", required=True, help="Training flagfile.")
    parser.add_argument("--kills", type=int, default=10, help="Interruptions (one is SIGTERM).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill moments.")
    parser.add_argument("--snapshot_interval", type=int, default=10,
                        help="Checkpoint interval of both runs (0 = the flagfile's).")
    parser.add_argument("--workroot", default="", help="Folder for the work directories.")
    parser.add_argument("--keep", action="store_true", help="Keep the work directories.")
    parser.add_argument("--run_timeout", type=float, default=3600.0,
                        help="Seconds one training run may take.")
    args, train_args = parser.parse_known_args(argv)
    train_args = [arg for arg in train_args if arg != "--"]
    return args, train_args


class Run:
    """One ``predrnn_tf.train`` process with its stderr in a log file."""

    def __init__(self, command: list[str], log_path: str):
        self.log_path = log_path
        self.log = open(log_path, "w")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        env.pop("TF_CONFIG", None)
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.log.close()

    def text(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


def train_command(args, train_args, workdir: str) -> list[str]:
    command = [sys.executable, "-m", "predrnn_tf.train", f"--flagfile={args.flagfile}",
               *train_args, "--deterministic", "--log_every=1", f"--workdir={workdir}"]
    if args.snapshot_interval:
        command.append(f"--snapshot_interval={args.snapshot_interval}")
    return command


def latest_registered_step(workdir: str) -> int | None:
    """The step of the checkpoint a resume would restore (from the manager's state file)."""
    path = os.path.join(workdir, "checkpoints", "checkpoint")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        match = re.search(r'^model_checkpoint_path: ".*?ckpt-(\d+)"', handle.read(), re.M)
    return int(match.group(1)) if match else None


def stray_files(workdir: str) -> list[str]:
    """Files that a finished run should not leave in its work directory."""
    state = os.path.join(workdir, "checkpoints", "checkpoint")
    registered = set()
    if os.path.exists(state):
        with open(state) as handle:
            registered = set(re.findall(r'all_model_checkpoint_paths: ".*?(ckpt-\d+)"',
                                        handle.read()))
    strays = []
    for root, _, names in os.walk(workdir):
        for name in names:
            path = os.path.relpath(os.path.join(root, name), workdir)
            if path in ("config.json", LOSS_LOG_FILENAME, LOCK_FILENAME,
                        os.path.join("checkpoints", "checkpoint")):
                continue
            if path.startswith("tensorboard" + os.sep) and ".tfevents." in name:
                continue
            match = re.match(r"(ckpt-\d+)\.(index|data-\d+-of-\d+)$", name)
            if root.endswith("checkpoints") and match and match.group(1) in registered:
                continue
            strays.append(path)
    return strays


def loss_differences(reference: dict, entries: dict) -> list[float]:
    """|loss - reference loss| for every step of ``entries``."""
    differences = []
    for step, values in entries.items():
        if step not in reference:
            differences.append(float("inf"))
            continue
        for key in ("loss", "frame_loss_per_pixel", "decouple_loss"):
            differences.append(abs(float(values[key]) - float(reference[step][key])))
    return differences


def progress_steps(workdir: str) -> int:
    return len(read_loss_log(os.path.join(workdir, LOSS_LOG_FILENAME)))


def run_reference(args, train_args, workdir: str, logs: str) -> tuple[float, float]:
    """Runs uninterrupted; returns (start-up seconds, training seconds)."""
    run = Run(train_command(args, train_args, workdir), os.path.join(logs, "reference.log"))
    first_step_at = None
    while run.process.poll() is None:
        if first_step_at is None and progress_steps(workdir) > 0:
            first_step_at = time.monotonic()
        time.sleep(0.2)
    code = run.wait(args.run_timeout)
    if code != 0:
        raise SystemExit(f"error: the reference run failed (exit {code}); see {run.log_path}:\n"
                         + run.text()[-2000:])
    end = time.monotonic()
    first_step_at = first_step_at or end
    return first_step_at - run.started, end - first_step_at


def chaos_run(args, train_args, workdir: str, logs: str, startup: float, training: float,
              reference: dict) -> dict:
    """Kills and resumes until the run finishes; returns the counts for the table."""
    rng = np.random.default_rng(args.seed)
    sigterm_at = int(rng.integers(args.kills)) if args.kills else -1
    stats = {"sigkill": 0, "sigterm": 0, "resumed_right": 0, "restarts": 0, "problems": [],
             "max_difference": 0.0}
    expected_start = None  # the step the next run must start from
    attempt = 0
    while True:
        run = Run(train_command(args, train_args, workdir),
                  os.path.join(logs, f"run-{attempt:02d}.log"))
        killing = attempt < args.kills
        signum = signal.SIGTERM if attempt == sigterm_at else signal.SIGKILL
        if killing:
            during_startup = attempt % 5 == 4 and signum == signal.SIGKILL
            if during_startup:
                _sleep_while_running(run, rng.uniform(0.0, startup))
            else:
                before = progress_steps(workdir)
                while run.process.poll() is None and progress_steps(workdir) <= before:
                    time.sleep(0.05)
                _sleep_while_running(run, rng.uniform(0.0, 2.0 * training / (args.kills + 1)))
            if run.process.poll() is None:
                run.process.send_signal(signum)
        code = run.wait(args.run_timeout)
        text = run.text()
        if expected_start is not None:
            stats["restarts"] += 1
            started = _start_step(text)
            if started == expected_start:
                stats["resumed_right"] += 1
            else:
                stats["problems"].append(f"run {attempt} started at step {started}, expected "
                                         f"{expected_start}")
        entries = read_loss_log(os.path.join(workdir, LOSS_LOG_FILENAME))
        differences = loss_differences(reference, entries)
        stats["max_difference"] = max([stats["max_difference"], *differences])
        if killing and code == -signal.SIGKILL:
            stats["sigkill"] += 1
        elif killing and signum == signal.SIGTERM and code == 0 and "Received SIGTERM" in text:
            stats["sigterm"] += 1
            if latest_registered_step(workdir) != _last_logged_step(entries):
                stats["problems"].append("after SIGTERM the checkpoint is not at the last step")
        elif code != 0:
            stats["problems"].append(f"run {attempt} exited with {code}; see {run.log_path}")
            return stats
        elif not killing or "Received" not in text:
            return stats  # finished
        expected_start = latest_registered_step(workdir) or 0
        attempt += 1


def _sleep_while_running(run: Run, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while run.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def _start_step(text: str) -> int | None:
    match = re.search(r"Resumed from \S+ at step (\d+)", text)
    if match:
        return int(match.group(1))
    return 0 if "starting from scratch" in text else None


def _last_logged_step(entries: dict) -> int | None:
    return max(entries) if entries else None


def main(argv) -> int:
    args, train_args = parse_args(argv)
    root = args.workroot or tempfile.mkdtemp(prefix="predrnn-chaos-")
    os.makedirs(root, exist_ok=True)
    logs = os.path.join(root, "logs")
    os.makedirs(logs, exist_ok=True)
    with open(os.path.join(REPO, args.flagfile) if not os.path.isabs(args.flagfile)
              else args.flagfile) as handle:
        flagfile_text = handle.read()
    if not any(arg.startswith("--data_dir") for arg in train_args) and (
            "--data_dir" not in flagfile_text):
        train_args.append(f"--data_dir={os.path.join(root, 'data')}")  # one copy for both runs
    reference_dir, chaos_dir = os.path.join(root, "reference"), os.path.join(root, "chaos")
    try:
        startup, training = run_reference(args, train_args, reference_dir, logs)
        reference = read_loss_log(os.path.join(reference_dir, LOSS_LOG_FILENAME))
        stats = chaos_run(args, train_args, chaos_dir, logs, startup, training, reference)
        final = read_loss_log(os.path.join(chaos_dir, LOSS_LOG_FILENAME))
        missing = sorted(set(reference) - set(final))
        if missing:
            stats["problems"].append(f"{len(missing)} reference steps missing, e.g. {missing[:3]}")
        strays = stray_files(chaos_dir)
        rows = [
            ("steps (reference run)", f"{len(reference)}"),
            ("reference start-up / training seconds", f"{startup:.1f} / {training:.1f}"),
            ("kills (SIGKILL + SIGTERM)", f"{stats['sigkill'] + stats['sigterm']} "
                                          f"({stats['sigkill']} + {stats['sigterm']})"),
            ("resumes from the newest checkpoint", f"{stats['resumed_right']} / "
                                                   f"{stats['restarts']}"),
            ("max |loss difference| over all logged steps", f"{stats['max_difference']:.3g}"),
            ("stray files", f"{len(strays)}" + (f" {strays[:5]}" if strays else "")),
        ]
        width = max(len(name) for name, _ in rows)
        print(f"{'check':<{width}}  value")
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        for problem in stats["problems"]:
            print(f"problem: {problem}")
        ok = (not stats["problems"] and stats["max_difference"] == 0.0 and not strays
              and stats["resumed_right"] == stats["restarts"])
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"work directories kept in {root}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
