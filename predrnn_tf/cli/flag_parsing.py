"""absl flag definitions mirroring :class:`predrnn_tf.config.Config`, for entry points only.

Library code never imports this module. ``define_config_flags()`` defines one flag per
Config field (the official ``run.py`` names), ``config_from_flags()`` builds the frozen
Config, and ``run_or_exit()`` turns every user error (any
:class:`predrnn_tf.errors.PredRNNError`, a missing or unreadable file) into one line on
stderr and exit status 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import sys
from collections.abc import Callable, Iterator

from absl import flags

from predrnn_tf.config import Config, parse_num_hidden, validate_config
from predrnn_tf.errors import OutputError, PredRNNError

MAX_ENSEMBLE_SIZE = 1_000  # members: --ensemble_size of predrnn-predict and predrnn-evaluate

HELP = {
    "model_name": "predrnn_v2 | predrnn | predrnn_m_only | convlstm | mim.",
    "num_hidden": "Hidden channels per layer, comma-separated, e.g. 128,128,128,128.",
    "filter_size": "Kernel size of the recurrent convolutions (odd).",
    "patch_size": "Space-to-depth patch size: frames enter the cells as H/p x W/p x p*p*C.",
    "layer_norm": "Layer normalisation inside the ST-LSTM cells.",
    "memory_bottom_up": "Ablation switch: pass M from layer l-1 to layer l within a step.",
    "memory_top_down": "Ablation switch: pass the top layer's M to layer 0 at the next step.",
    "conv_lstm_peephole": "Peephole connections in the ConvLSTM baseline.",
    "residual_frames": "Each predicted frame is the step's input frame plus a learned change "
                       "(starts as persistence; not in the official code).",
    "advection_prior": "With --residual_frames: the change is added to the input frame moved "
                       "along the input frames' motion (block matching, semi-Lagrangian), so "
                       "the untrained model is an extrapolation forecast.",
    "keep_dry_pixels": "With --residual_frames on rain-rate (dBR) storage: the learned change "
                       "acts only where the prior frame has rain; its dry pixels stay dry.",
    "zero_mean_change": "With --residual_frames: the learned change has zero mean over the "
                        "prior frame's wet pixels (per sample and frame), so the model moves "
                        "and reshapes rain but adds or removes none in net (training scale).",
    "dataset_name": "Dataset NAME: shards NAME-{train,test}-*.tfrecord and NAME-metadata.json. "
                    "'synthetic_radar' is generated on first use. Several sources: a comma "
                    "list, NAME or NAME:WEIGHT (default weight 1: equal shares), mixed in "
                    "training; the test split is the first NAME's.",
    "data_dir": "Folder of the dataset's TFRecord shards and metadata.",
    "img_width": "Frame height and width in pixels.",
    "img_channel": "Channels per frame.",
    "input_length": "Input frames before the forecast.",
    "total_length": "Frames per training sequence (input + output).",
    "shuffle_buffer": "Records in the shuffle buffer (bounds the reader's memory).",
    "deterministic": "Reproducible runs: op determinism, ordered input, exact resume.",
    "skip_corrupt": "Skip corrupt records (counted in the logs) instead of failing.",
    "decouple_beta": "Weight of the memory decoupling loss (predrnn_v2).",
    "frame_loss": "mse (official) | masked_mse (radar: no-data pixels, pixel 0, ignored) | "
                  "balanced_mse (masked, weighted by the true rain rate as Shi et al. 2017) | "
                  "rain_rate_mse (masked, squared error in (mm/h)^2 of a dBR dataset).",
    "csi_loss_weight": "Weight of the soft-CSI rain-area loss (1 - soft CSI at "
                       "--csi_loss_thresholds_mmh, dBR rain-rate datasets) added to the frame "
                       "loss in training; 0 = off.",
    "csi_loss_thresholds_mmh": "Soft-CSI loss: rain-rate thresholds in mm/h, comma-separated.",
    "csi_loss_temperature_db": "Soft-CSI loss: width in dB of the sigmoid that scores a "
                               "forecast pixel's exceedance of a threshold.",
    "ensemble_loss": "none (the --frame_loss of one forecast) | fair_crps (radar, with "
                     "--advection_prior: each sequence is forecast by --ensemble_loss_members "
                     "members whose advection motion gets STEPS' BPS perturbation, and the loss "
                     "is their fair CRPS in [0, 1] pixels over valid pixels). The weights are "
                     "the same: evaluate, export and predict read the model as usual.",
    "ensemble_loss_members": "Members per sequence of --ensemble_loss=fair_crps (2 to 64; "
                             "the batch is forecast this many times per step).",
    "ensemble_noise_std": "Members of --ensemble_loss=fair_crps and of --ensemble_size get "
                          "smooth Gaussian noise of this std (drawn on a 4x coarser patched "
                          "grid, upsampled) added to every recurrent state before the first "
                          "forecast step; no new weights. 0 = off (motion perturbation only).",
    "augment": "Training input: random 90-degree rotations, flips and random crops to "
               "--img_width (stored frames may be larger), in tf.data.",
    "augment_time_reversal": "Training input: each sequence is played backwards with "
                             "probability 0.5 (growth and decay equally likely), in tf.data; "
                             "never applied to test data.",
    "wet_sampling": "Training input: keep each record with probability max(floor, 1 - "
                    "exp(-wet_fraction / scale)) of its stored wet fraction (share of pixels "
                    ">= 0.1 mm/h; radar converted by tools/make_radar.py), so dry sequences "
                    "are drawn less often (as DGMR); recorded in the data card.",
    "wet_sampling_floor": "Wet sampling: acceptance of a dry sequence, in (0, 1].",
    "wet_sampling_scale": "Wet sampling: wet fraction at which acceptance reaches 63%, in "
                          "(0, 1].",
    "validation_fraction": "Hold out the last ceil(fraction x shards) train shards (the "
                           "latest in time for radar) as the validation split; 0 = none.",
    "data_service": "grpc://HOST:PORT of a tf.data service dispatcher: the input pipeline "
                    "runs on its workers (input-bound runs); empty = in this process.",
    "reverse_scheduled_sampling": "Reverse scheduled sampling (PredRNN-V2 curriculum).",
    "r_sampling_step_1": "Reverse sampling: iteration where the encoder curve starts.",
    "r_sampling_step_2": "Reverse sampling: iteration where both curves end.",
    "r_exp_alpha": "Reverse sampling: time constant of the exponential/sigmoid curve.",
    "r_sampling_curve": "Reverse sampling encoder curve: exponential | linear | sigmoid.",
    "r_sampling_strategy": "Reverse sampling strategy: 2 = both start at 0.5 (official), "
                           "1 = encoder from 0, decoder from 1.",
    "scheduled_sampling": "Scheduled sampling of the decoder inputs (PredRNN v1).",
    "sampling_stop_iter": "Scheduled sampling: iteration where eta reaches 0.",
    "sampling_start_value": "Scheduled sampling: initial eta.",
    "sampling_changing_rate": "Scheduled sampling: decrease of eta per iteration.",
    "lr": "Adam learning rate.",
    "batch_size": "Global batch size (sequences per iteration, whatever the device count).",
    "max_iterations": "Training iterations.",
    "reverse_input": "Also train on the time-reversed batch every iteration (official v2).",
    "gradient_clip_norm": "Clip gradients to this global norm (0 = off).",
    "precision": "float32 | mixed_float16 (GPUs) | mixed_bfloat16 (TPUs, AVX512-BF16 CPUs).",
    "jit_compile": "XLA-compile the train step (slow to compile on CPU: measure first).",
    "keras_adam": "Keras's Adam (epsilon 1e-7 added before the bias correction) instead of "
                  "the official code's torch.optim.Adam (epsilon 1e-8, after it).",
    "remat": "Recompute each time step's activations in the backward pass (PredRNN family): "
             "much less training memory, about one more forward pass of time.",
    "seed": "Seed of weights, masks and input order.",
    "display_interval": "Iterations between prediction image summaries.",
    "test_interval": "Iterations between test passes.",
    "snapshot_interval": "Iterations between checkpoints.",
    "num_test_batches": "Test batches per test pass (0 = the whole test split).",
    "log_every": "Iterations between progress lines.",
    "distribution_strategy": "default | mirrored | multi_worker_mirrored.",
    "num_devices": "Limit mirrored training to this many GPUs (0 = all visible).",
    "nan_policy": "On a non-finite loss: stop (keep the last good checkpoint) | skip_step.",
}


def define_config_flags(skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None,
                        help_suffix: str = "") -> None:
    """Defines one absl flag per Config field, defaults from Config.

    Args:
      skip: fields that get no flag.
      only: if given, the only fields that get a flag (e.g. the data fields of ``evaluate``).
      help_suffix: appended to every help text (e.g. "Default: the work directory's value.").
    """
    defaults = Config()
    for field in dataclasses.fields(Config):
        if field.name in skip or field.name in flags.FLAGS:
            continue
        if only is not None and field.name not in only:
            continue
        default = getattr(defaults, field.name)
        help_text = " ".join(filter(None, (HELP.get(field.name, field.name), help_suffix)))
        if isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text)
        elif isinstance(default, tuple):
            flags.DEFINE_string(field.name, ",".join(map(str, default)), help_text)
        else:
            flags.DEFINE_string(field.name, default, help_text)


def config_from_flags(base: Config | None = None, only_set: bool = False) -> Config:
    """Builds and validates a Config from the parsed flags.

    Args:
      base: values for flags that were not given on the command line (default: Config()).
      only_set: if True, take from the flags only those present on the command line or in
        a flagfile, keeping ``base`` for the rest (used to resume or evaluate a workdir).
    """
    base = base or Config()
    values = {}
    for field in dataclasses.fields(Config):
        if field.name not in flags.FLAGS:
            continue
        if only_set and not flags.FLAGS[field.name].present:
            continue
        value = flags.FLAGS[field.name].value
        values[field.name] = parse_num_hidden(value) if field.name == "num_hidden" else value
    return validate_config(base.replace(**values))


def absolute_path(path: str) -> str:
    """``path`` with ``~`` expanded, made absolute against the current directory (once)."""
    return os.path.abspath(os.path.expanduser(path))


def resolve_path_flags(*names: str) -> None:
    """Makes the given path flags absolute (once, against the current folder), as train does."""
    for name in names:
        value = flags.FLAGS[name].value
        if value:
            flags.FLAGS[name].value = absolute_path(value)


def describe_checkpoint(path: str) -> str:
    """``"checkpoint ckpt-N (step N)"`` (the step stored in it, else the name's suffix)."""
    from predrnn_tf.errors import CheckpointError
    from predrnn_tf.workdir import step_of

    name = os.path.basename(path)
    try:
        return f"checkpoint {name} (step {step_of(path)})"
    except CheckpointError:  # neither a stored step nor a -N suffix
        return f"checkpoint {name}"


def log_workdir(workdir: str, doing: str) -> str:
    """Logs (and returns) ``Work directory /abs/path: <doing>.``, as training does."""
    from absl import logging

    line = f"Work directory {absolute_path(workdir)}: {doing}."
    logging.info("%s", line)
    return line


def _silence_stderr() -> int:
    """Points file descriptor 2 at /dev/null; returns a duplicate of the original."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    return saved


def _restore_stderr(saved: int) -> None:
    os.dup2(saved, 2)
    os.close(saved)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its start-up chatter on stderr silenced.

    The CPU-only start-up of the GPU-capable wheel prints lines such as "Could not find
    cuda drivers" from C++, which would bury our one-line errors. Import errors still show.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    from predrnn_tf.training import cpu_features

    cpu_features.apply_tensorflow_environment()  # oneDNN on AVX2-only CPUs (issue 34)
    saved = _silence_stderr()
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        _restore_stderr(saved)


def parse_flags_or_exit(argv: list[str]) -> list[str]:
    """Parses ``argv`` into ``flags.FLAGS``; a bad flag is one ``error:`` line and exit 2.

    Returns:
      The positional arguments left (``argv[0]`` first), as ``absl.app.run`` passes them.
    """
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


HELP_ARGUMENTS = ("--help", "-h", "-?", "--helpshort", "--help=true")


def command_flag_modules(main: Callable[..., object]) -> list[str]:
    """The modules whose flags are the command's own (not absl's, not TensorFlow's)."""
    names = {"__main__", sys.argv[0], getattr(main, "__module__", "")}
    return [name for name in flags.FLAGS.flags_by_module_dict()
            if name in names or name.startswith("predrnn_tf") or name.startswith("tools")]


def print_command_help(main: Callable[..., object]) -> None:
    """``--help``: the command's docstring and its own flags with their help, on stdout.

    absl's ``--help`` lists the flags of the main module only, which for a console script is
    the generated wrapper (none); ``--helpfull`` adds every absl and TensorFlow flag.
    """
    module = sys.modules.get(getattr(main, "__module__", ""), sys.modules["__main__"])
    if (module.__doc__ or "").strip():
        print(module.__doc__.strip(), end="\n\n")
    print("Flags:")
    for name in command_flag_modules(main):
        print(flags.FLAGS.module_help(name))
    print("\n(--helpfull also lists absl's and TensorFlow's flags.)")


def run_app(main: Callable[[list[str]], object]) -> None:
    """``absl.app.run(main)`` with flag errors as one line and TF's start-up noise silenced.

    Flags are parsed once up front so that a bad flag gives ``error: ...`` and exit 2; the
    runtime's device probing during ``app.run``'s start-up writes to /dev/null, and stderr
    is restored as soon as ``main`` starts.
    """
    from absl import app

    app.define_help_flags()
    if any(argument in HELP_ARGUMENTS for argument in sys.argv[1:]):
        print_command_help(main)
        sys.exit(0)
    parse_flags_or_exit(sys.argv)
    saved = _silence_stderr()

    def main_with_stderr(argv):
        _restore_stderr(saved)
        return main(argv)

    app.run(main_with_stderr)


def run_or_exit(main: Callable[[], object], errors: tuple[type[BaseException], ...] = ()) -> None:
    """Runs ``main``; user errors become one line on stderr and exit status 2.

    Args:
      main: the entry point's body.
      errors: exception types reported the same way besides every
        :class:`~predrnn_tf.errors.PredRNNError`, ``FileNotFoundError`` and
        ``PermissionError`` (e.g. ``ImportError`` for an optional dependency).
    """
    known = (PredRNNError, FileNotFoundError, PermissionError) + tuple(errors)
    try:
        main()
    except known as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run_tool(work: Callable[[], object],
             errors: tuple[type[BaseException], ...] = ()) -> None:
    """Entry point of a tool without positional arguments: ``run_app`` + ``run_or_exit``.

    Args:
      work: the tool's body, called after flag parsing.
      errors: extra exception types reported as one line with exit status 2.
    """
    from absl import app

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        run_or_exit(work, errors=errors)

    run_app(main)


_WRITE_FAILURE = re.compile(r"No space left|File too large|Read-only file system|Disk quota "
                            r"exceeded|Permission denied", re.IGNORECASE)
_ANYWHERE = (errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT)


def _write_failure_reason(error: BaseException, folder: str) -> str | None:
    """``"No space left on device (ENOSPC)"`` for a failed write, else None.

    A full disk, a file size limit, a read-only file system or a quota count wherever they
    happen; a permission error only for a path under ``folder`` (an unreadable input is not
    an output problem). TensorFlow's file system raises ``tf.errors.OpError`` whose message
    holds the same text.
    """
    if isinstance(error, OSError) and error.errno is not None:
        inside = os.path.abspath(str(error.filename or "")).startswith(folder)
        if error.errno in _ANYWHERE or (error.errno in (errno.EACCES, errno.EPERM) and inside):
            return f"{error.strerror or os.strerror(error.errno)} " \
                   f"({errno.errorcode.get(error.errno, error.errno)})"
        return None
    text = getattr(error, "message", None) or str(error)
    match = _WRITE_FAILURE.search(text)
    if not match or not type(error).__module__.startswith("tensorflow"):
        return None
    if match.group(0).lower() == "permission denied" and folder not in text:
        return None
    return match.group(0)


@contextlib.contextmanager
def writing_to(flag: str, folder: str) -> Iterator[None]:
    """Turns a failed write (read-only folder, full disk, ``ulimit -f``) into one line.

    Python ignores SIGXFSZ, so a file size limit surfaces as EFBIG like a full disk.

    Args:
      flag: the flag naming the output, e.g. ``--export_dir``.
      folder: its value.

    Raises:
      OutputError: naming the flag, the folder, the reason and its errno.
    """
    folder = os.path.abspath(folder)
    try:
        yield
    except PredRNNError:
        raise
    except Exception as error:
        reason = _write_failure_reason(error, folder)
        if reason is None:
            raise
        raise OutputError(f"writing {flag}={folder} failed: {reason}: free space, raise the "
                          f"file size limit (ulimit -f) or choose a writable folder; nothing "
                          f"was published") from None
