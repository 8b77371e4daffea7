"""The frozen run configuration shared by training, evaluation and export.

Field names follow the official PyTorch ``run.py`` so that users can move their
settings over unchanged. Only the entry points (``train.py``, ``evaluate.py``,
``export.py`` and ``tools/``) read absl flags; they build a :class:`Config` and pass it
to library functions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from typing import Any

from predrnn_tf import files
from predrnn_tf.errors import ConfigError

MODEL_NAMES = ("predrnn_v2", "predrnn", "predrnn_m_only", "convlstm", "mim")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
ENCODER_CURVES = ("exponential", "linear", "sigmoid")
DISTRIBUTION_STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")
NAN_POLICIES = ("stop", "skip_step")
FRAME_LOSSES = ("mse", "masked_mse", "balanced_mse", "rain_rate_mse")  # predrnn_tf/models/losses.py
ENSEMBLE_LOSSES = ("none", "fair_crps")  # losses.fair_crps, the trainer's members

# Fields that must name one of a fixed set of values, with the allowed values.
_CHOICES = (("model_name", MODEL_NAMES), ("precision", PRECISIONS),
            ("r_sampling_curve", ENCODER_CURVES),
            ("distribution_strategy", DISTRIBUTION_STRATEGIES), ("nan_policy", NAN_POLICIES),
            ("frame_loss", FRAME_LOSSES), ("ensemble_loss", ENSEMBLE_LOSSES))

# Largest accepted value of each integer field (the default bound is INT_MAX: TensorFlow's
# int32 counters). The tighter ones keep a typo (one zero too many) from allocating
# terabytes or running for years before anything fails.
INT_MAX = 2**31 - 1
_INT_LIMITS = {"filter_size": 63, "patch_size": 64, "img_width": 8192, "img_channel": 64,
               "input_length": 10_000, "total_length": 10_000, "batch_size": 65_536,
               "shuffle_buffer": 10_000_000, "num_devices": 4096, "ensemble_loss_members": 64}
MAX_HIDDEN = 4096  # channels per layer
MAX_LAYERS = 64

# Fields that define the model (its weights' shapes or what the weights compute): resuming a
# checkpoint with another value is refused.
MODEL_DEFINING_FIELDS = (
    "model_name", "num_hidden", "filter_size", "patch_size", "layer_norm", "img_width",
    "img_channel", "conv_lstm_peephole", "memory_bottom_up", "memory_top_down",
    "residual_frames", "advection_prior", "keep_dry_pixels", "zero_mean_change",
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a run. Immutable; saved as JSON in the work directory."""

    # Model.
    model_name: str = "predrnn_v2"
    num_hidden: tuple[int, ...] = (128, 128, 128, 128)
    filter_size: int = 5
    patch_size: int = 4
    layer_norm: bool = False
    memory_bottom_up: bool = True
    memory_top_down: bool = True
    conv_lstm_peephole: bool = False
    residual_frames: bool = False
    advection_prior: bool = False
    keep_dry_pixels: bool = False
    zero_mean_change: bool = False
    # Data.
    dataset_name: str = "synthetic_radar"
    data_dir: str = ""
    img_width: int = 64
    img_channel: int = 1
    input_length: int = 10
    total_length: int = 20
    shuffle_buffer: int = 256
    deterministic: bool = False
    skip_corrupt: bool = False
    augment: bool = False
    augment_time_reversal: bool = False
    # Input at scale: checked and used by predrnn_tf/data/scale_out.options_from_config.
    wet_sampling: bool = False
    wet_sampling_floor: float = 0.05
    wet_sampling_scale: float = 0.1
    validation_fraction: float = 0.0
    data_service: str = ""
    # Loss.
    decouple_beta: float = 0.1
    frame_loss: str = "mse"
    csi_loss_weight: float = 0.0
    csi_loss_thresholds_mmh: str = "1.0"
    csi_loss_temperature_db: float = 1.0
    ensemble_loss: str = "none"
    ensemble_loss_members: int = 2
    ensemble_noise_std: float = 0.0
    # Sampling schedules.
    reverse_scheduled_sampling: bool = True
    r_sampling_step_1: int = 25000
    r_sampling_step_2: int = 50000
    r_exp_alpha: float = 2500.0
    r_sampling_curve: str = "exponential"
    r_sampling_strategy: int = 2
    scheduled_sampling: bool = True
    sampling_stop_iter: int = 50000
    sampling_start_value: float = 1.0
    sampling_changing_rate: float = 0.00002
    # Optimisation.
    lr: float = 1e-4
    batch_size: int = 8
    max_iterations: int = 80000
    reverse_input: bool = True
    gradient_clip_norm: float = 0.0
    precision: str = "float32"
    jit_compile: bool = False
    keras_adam: bool = False
    remat: bool = False
    seed: int = 0
    # Intervals.
    display_interval: int = 100
    test_interval: int = 5000
    snapshot_interval: int = 5000
    num_test_batches: int = 0
    log_every: int = 10
    # Scale-out and fault tolerance.
    distribution_strategy: str = "default"
    num_devices: int = 0
    nan_policy: str = "stop"

    @property
    def output_length(self) -> int:
        """Number of frames forecast after the input part."""
        return self.total_length - self.input_length

    @property
    def patched_width(self) -> int:
        """Spatial size of the patched frames the recurrent cells see."""
        return self.img_width // self.patch_size

    @property
    def patched_channels(self) -> int:
        """Channels of a patched frame: patch_size**2 * img_channel."""
        return self.patch_size * self.patch_size * self.img_channel

    def replace(self, **changes: Any) -> Config:
        """Returns a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of all fields."""
        values = dataclasses.asdict(self)
        values["num_hidden"] = list(self.num_hidden)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Builds a Config from a dict, ignoring unknown keys.

        Unknown keys come from newer versions, or from older ones: ``stride`` (always 1,
        the official models' convolution stride) was a field until it was removed.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        kwargs = {key: value for key, value in values.items() if key in known}
        if "num_hidden" in kwargs:
            kwargs["num_hidden"] = parse_num_hidden(kwargs["num_hidden"])
        return cls(**kwargs)


def parse_num_hidden(value: Any) -> tuple[int, ...]:
    """Parses "128,128" or a sequence of ints into a tuple of ints."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
    else:
        parts = list(value)
    try:
        sizes = tuple(int(part) for part in parts)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"--num_hidden must be comma-separated integers, got {value!r}") from error
    if not sizes or min(sizes) <= 0:
        raise ConfigError(f"--num_hidden must list positive integers, got {value!r}")
    return sizes


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate_config(config: Config) -> Config:
    """Checks cross-field constraints; raises ConfigError naming the flag.

    Args:
      config: the configuration to check.

    Returns:
      The same config, for chaining.
    """
    if not isinstance(config, Config):
        raise ConfigError(f"expected a predrnn_tf.Config, received {type(config).__name__}")
    _validate_types(config)
    _validate_choices(config)
    _validate_frames(config)
    _validate_architecture(config)
    _validate_optimisation(config)
    _validate_schedules(config)
    return config


def _validate_types(config: Config) -> None:
    """Every field has its default's type (ints for ints, finite numbers for floats...)."""
    for field in dataclasses.fields(Config):
        value, default = getattr(config, field.name), field.default
        if isinstance(default, bool):
            _require(isinstance(value, bool), f"--{field.name} must be true or false, got "
                                              f"{value!r}")
        elif isinstance(default, int):
            _require(isinstance(value, numbers.Integral) and not isinstance(value, bool),
                     f"--{field.name} must be an integer, got {value!r}")
            limit = _INT_LIMITS.get(field.name, INT_MAX)
            _require(-INT_MAX <= value <= limit,
                     f"--{field.name}={value} is too large (at most {limit})")
        elif isinstance(default, float):
            _require(isinstance(value, numbers.Real) and not isinstance(value, bool),
                     f"--{field.name} must be a number, got {value!r}")
            _require(math.isfinite(value), f"--{field.name} must be finite, got {value}")
        elif isinstance(default, str):
            _require(isinstance(value, str), f"--{field.name} must be a string, got {value!r}")
    hidden = config.num_hidden
    _require(isinstance(hidden, tuple) and all(
        isinstance(size, numbers.Integral) and not isinstance(size, bool) for size in hidden),
        f"--num_hidden must be a tuple of integers, got {hidden!r}")
    _require(len(hidden) <= MAX_LAYERS and all(0 < size <= MAX_HIDDEN for size in hidden),
             f"--num_hidden must list 1 to {MAX_LAYERS} layers of 1 to {MAX_HIDDEN} channels, "
             f"got {','.join(map(str, hidden))}")


def _validate_choices(config: Config) -> None:
    """The fields that name one of a fixed set of values."""
    for name, allowed in _CHOICES:
        value = getattr(config, name)
        _require(value in allowed, f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
    _require(config.r_sampling_strategy in (1, 2),
             f"--r_sampling_strategy must be 1 or 2, got {config.r_sampling_strategy}")


def _validate_frames(config: Config) -> None:
    """Sequence lengths and frame sizes."""
    _require(config.total_length >= 2,
             f"--total_length must be at least 2, got {config.total_length}")
    _require(1 <= config.input_length < config.total_length,
             f"--input_length must be in [1, total_length={config.total_length}), "
             f"got {config.input_length}")
    _require(config.patch_size >= 1, f"--patch_size must be positive, got {config.patch_size}")
    _require(config.img_width > 0 and config.img_width % config.patch_size == 0,
             f"--img_width={config.img_width} must be a positive multiple of "
             f"--patch_size={config.patch_size}")
    _require(config.img_channel >= 1, f"--img_channel must be positive, got {config.img_channel}")


def _validate_architecture(config: Config) -> None:
    """Kernel and layer sizes."""
    _require(config.filter_size >= 1 and config.filter_size % 2 == 1,
             f"--filter_size must be a positive odd number, got {config.filter_size}")
    _require(len(config.num_hidden) >= 1, "--num_hidden must list at least one layer")
    if config.model_name in ("predrnn_v2", "predrnn", "predrnn_m_only", "mim"):
        _require(len(set(config.num_hidden)) == 1,
                 f"--num_hidden must be equal sizes for {config.model_name} (the zigzag memory "
                 f"passes between layers), got {','.join(map(str, config.num_hidden))}")
    _require(config.model_name != "mim" or (config.memory_bottom_up and config.memory_top_down),
             "--memory_bottom_up=false / --memory_top_down=false are not implemented for "
             "--model_name=mim")
    _require(config.model_name != "mim" or not config.residual_frames,
             "--residual_frames=true is not implemented for --model_name=mim")
    _require(config.residual_frames or not config.advection_prior,
             "--advection_prior=true needs --residual_frames=true (the learned change is added "
             "to the advected frame)")
    _require(config.residual_frames or not config.keep_dry_pixels,
             "--keep_dry_pixels=true needs --residual_frames=true (it gates the learned change)")
    _require(config.residual_frames or not config.zero_mean_change,
             "--zero_mean_change=true needs --residual_frames=true (it centres the learned "
             "change)")


def _validate_optimisation(config: Config) -> None:
    """Batch, learning rate, iterations and intervals."""
    _require(config.batch_size >= 1, f"--batch_size must be positive, got {config.batch_size}")
    _require(config.lr > 0, f"--lr must be positive, got {config.lr}")
    _require(config.max_iterations >= 0,
             f"--max_iterations must be >= 0, got {config.max_iterations}")
    _require(config.num_test_batches >= 0,
             f"--num_test_batches must be >= 0 (0 = the whole test split), got "
             f"{config.num_test_batches}")
    _require(config.num_devices >= 0,
             f"--num_devices must be >= 0 (0 = all visible), got {config.num_devices}")
    _require(config.seed >= 0, f"--seed must be >= 0, got {config.seed}")
    for name in ("display_interval", "test_interval", "snapshot_interval", "log_every"):
        value = getattr(config, name)
        _require(value >= 1, f"--{name} must be positive, got {value}")
    _require(config.csi_loss_weight >= 0,
             f"--csi_loss_weight must be >= 0 (0 = off), got {config.csi_loss_weight}")
    _require(config.csi_loss_temperature_db > 0,
             f"--csi_loss_temperature_db must be positive, got {config.csi_loss_temperature_db}")
    parse_csi_thresholds(config.csi_loss_thresholds_mmh)
    _require(config.ensemble_loss_members >= 2, "--ensemble_loss_members must be at least "
             f"2 (the fair CRPS compares members), got {config.ensemble_loss_members}")
    _require(config.ensemble_loss == "none" or config.advection_prior, f"--ensemble_loss="
             f"{config.ensemble_loss} needs --advection_prior=true (members perturb its motion)")
    noise = config.ensemble_noise_std  # the members learn to use it: only with an ensemble loss
    _require(0 <= noise <= 10 and (noise == 0 or config.ensemble_loss != "none"),
             f"--ensemble_noise_std must be in [0, 10] and needs --ensemble_loss=fair_crps, got "
             f"{noise} with --ensemble_loss={config.ensemble_loss}")


def _validate_schedules(config: Config) -> None:
    """The loss weight, the sampling schedules, clipping and the input pipeline."""
    _require(config.r_sampling_step_2 > config.r_sampling_step_1 >= 0,
             f"--r_sampling_step_2={config.r_sampling_step_2} must exceed "
             f"--r_sampling_step_1={config.r_sampling_step_1} >= 0")
    _require(config.r_exp_alpha > 0, f"--r_exp_alpha must be positive, got {config.r_exp_alpha}")
    _require(config.shuffle_buffer >= 1,
             f"--shuffle_buffer must be positive, got {config.shuffle_buffer}")
    _require(0 <= config.sampling_start_value <= 1,
             f"--sampling_start_value must be in [0, 1], got {config.sampling_start_value}")
    for name in ("decouple_beta", "gradient_clip_norm", "sampling_changing_rate",
                 "sampling_stop_iter"):
        _require(getattr(config, name) >= 0, f"--{name} must be >= 0, got {getattr(config, name)}")
    _require(bool(config.dataset_name), "--dataset_name must not be empty")
    _require(os.sep not in config.dataset_name and config.dataset_name not in (".", ".."),
             f"--dataset_name is a file prefix, not a path: got {config.dataset_name!r} (put "
             f"the folder in --data_dir)")


def parse_csi_thresholds(value: str) -> tuple[float, ...]:
    """Parses ``--csi_loss_thresholds_mmh`` ("1.0" or "0.5,1,5") into positive rain rates."""
    try:
        thresholds = tuple(float(part) for part in str(value).split(","))
    except ValueError:
        thresholds = ()
    if not thresholds or not all(math.isfinite(item) and item > 0 for item in thresholds):
        raise ConfigError(f"--csi_loss_thresholds_mmh must be comma-separated positive rain "
                          f"rates in mm/h, got {value!r}")
    return thresholds


CONFIG_FILENAME = "config.json"


def save_config(config: Config, workdir: str) -> str:
    """Writes ``config.json`` into ``workdir`` atomically (use ``WorkDir.save_config``).

    A ``data_dir`` inside the work directory is stored relative to it (and one outside as an
    absolute path), so a moved or copied work directory still finds its data.
    """
    os.makedirs(workdir, exist_ok=True)
    values = config.to_dict()
    if config.data_dir:
        data_dir = os.path.abspath(config.data_dir)
        inside = os.path.relpath(data_dir, os.path.abspath(workdir))
        values["data_dir"] = inside if not inside.startswith(os.pardir) else data_dir
    return files.write_json(os.path.join(workdir, CONFIG_FILENAME), values, sort_keys=True)


def load_config(workdir: str) -> Config:
    """Reads the ``config.json`` saved by training in ``workdir`` (use ``WorkDir.config``).

    A relative ``data_dir`` is resolved against ``workdir``. ConfigError names the file when
    it is missing, not JSON, or holds a value of the wrong type or range.
    """
    path = os.path.join(workdir, CONFIG_FILENAME)
    if os.path.isdir(path) or (os.path.exists(workdir) and not os.path.isdir(workdir)):
        raise ConfigError(f"--workdir={workdir} is not a training workdir ({path} is not a file)")
    if not os.path.exists(path):
        raise ConfigError(f"--workdir={workdir} has no {CONFIG_FILENAME}: not a training workdir")
    try:
        with open(path) as handle:
            values = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a JSON object, found {type(values).__name__}")
    try:
        config = validate_config(Config.from_dict(values))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error
    if config.data_dir and not os.path.isabs(config.data_dir):
        config = config.replace(data_dir=os.path.normpath(
            os.path.join(os.path.abspath(workdir), config.data_dir)))
    return config


def changed_model_fields(saved: Config, requested: Config) -> list[str]:
    """Names of model-defining fields that differ between two configs."""
    changed = [name for name in MODEL_DEFINING_FIELDS
               if getattr(saved, name) != getattr(requested, name)]
    # MIM has its decoupling adapter only when decouple_beta > 0.
    if saved.model_name == "mim" and (saved.decouple_beta > 0) != (requested.decouple_beta > 0):
        changed.append("decouple_beta")
    return changed
