"""Weights of the official PyTorch PredRNN (thuml/predrnn-pytorch) <-> our Keras model.

The official ``model_factory.save`` writes ``torch.save({'net_param': state_dict}, path)``.
For ``predrnn_v2`` and ``predrnn`` with L layers of ``nh`` hidden channels, kernel ``k``,
patch size ``p`` and ``W = img_width / p`` its state_dict holds (all convolutions bias-free,
PyTorch layout ``[out, in, kh, kw]``)::

    cell_list.{l}.conv_x.0.weight   [7*nh, in_l, k, k]    in_0 = p*p*img_channel, else nh
    cell_list.{l}.conv_h.0.weight   [4*nh, nh, k, k]
    cell_list.{l}.conv_m.0.weight   [3*nh, nh, k, k]
    cell_list.{l}.conv_o.0.weight   [nh, 2*nh, k, k]
    cell_list.{l}.conv_last.weight  [nh, 2*nh, 1, 1]
    cell_list.{l}.conv_x.1.weight / .bias   [7*nh, W, W]   (layer norm only; also conv_h.1,
                                                            conv_m.1, conv_o.1)
    conv_last.weight                [p*p*img_channel, nh, 1, 1]   (our ``output_conv``)
    adapter.weight                  [nh, nh, 1, 1]                (predrnn_v2 only)

Keras kernels are ``[kh, kw, in, out]`` and our layer-norm affines ``(H, W, C)``; both
frameworks convolve by cross-correlation, so the mapping is a pure transpose, exact in both
directions. Channel split orders are the same on both sides. The mapping functions here are
pure NumPy; torch is imported only by :func:`read_torch_checkpoint` and
:func:`write_torch_checkpoint`.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from predrnn_tf import files
from predrnn_tf.config import Config
from predrnn_tf.errors import CheckpointFormatError

OFFICIAL_MODEL_NAMES = ("predrnn_v2", "predrnn")
STATE_DICT_ENTRY = "net_param"
TORCH_INSTALL_HINT = ("torch is needed to read or write PyTorch checkpoints: "
                      "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")

# PyTorch conv weight [out, in, kh, kw] <-> Keras kernel [kh, kw, in, out].
_CONV_TO_KERAS = (2, 3, 1, 0)
_CONV_TO_TORCH = (3, 2, 0, 1)
# PyTorch LayerNorm([C, H, W]) affine [C, H, W] <-> our LayerNormalization affine (H, W, C).
_NORM_TO_KERAS = (1, 2, 0)
_NORM_TO_TORCH = (2, 0, 1)

_CELL_CONVS = ("conv_x", "conv_h", "conv_m", "conv_o")
_NORM_OF_CONV = {"conv_x": "norm_x", "conv_h": "norm_h", "conv_m": "norm_m", "conv_o": "norm_o"}




@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """One tensor of the official state_dict and the Keras variable it maps to.

    Attributes:
      torch_key: the official state_dict key.
      torch_shape: its shape in PyTorch layout.
      kind: ``"conv"`` (kernel transpose) or ``"norm"`` (layer-norm affine transpose).
      variable_path: attribute names / list indices from the model to the Keras variable,
        e.g. ``("cells", 0, "conv_x", "kernel")``.
    """

    torch_key: str
    torch_shape: tuple[int, ...]
    kind: str
    variable_path: tuple[str | int, ...]


def check_official_config(config: Config) -> None:
    """Raises CheckpointFormatError if the official code has no model matching ``config``."""
    if config.model_name not in OFFICIAL_MODEL_NAMES:
        raise CheckpointFormatError(
            f"--model_name={config.model_name} has no official PyTorch checkpoint layout; "
            f"use one of {', '.join(OFFICIAL_MODEL_NAMES)}")
    if not (config.memory_bottom_up and config.memory_top_down):
        raise CheckpointFormatError(
            "--memory_bottom_up and --memory_top_down must both be true: the official code "
            "has no memory-flow ablation")
    if config.residual_frames or config.zero_mean_change:
        raise CheckpointFormatError(
            "--residual_frames=true (and --zero_mean_change, which needs it) has no official "
            "PyTorch counterpart (the official network predicts each frame directly)")


def weight_specs(config: Config) -> list[WeightSpec]:
    """Every tensor of the official state_dict for ``config``, in the official key order.

    Raises:
      CheckpointFormatError: if ``config`` is not an official model (see
        :func:`check_official_config`).
    """
    check_official_config(config)
    specs = []
    k = config.filter_size
    width = config.patched_width
    for layer, hidden in enumerate(config.num_hidden):
        in_channels = config.patched_channels if layer == 0 else config.num_hidden[layer - 1]
        conv_shapes = {
            "conv_x": (7 * hidden, in_channels, k, k),
            "conv_h": (4 * hidden, hidden, k, k),
            "conv_m": (3 * hidden, hidden, k, k),
            "conv_o": (hidden, 2 * hidden, k, k),
        }
        prefix = f"cell_list.{layer}"
        for conv in _CELL_CONVS:
            shape = conv_shapes[conv]
            specs.append(WeightSpec(f"{prefix}.{conv}.0.weight", shape, "conv",
                                    ("cells", layer, conv, "kernel")))
            if config.layer_norm:
                norm_shape = (shape[0], width, width)
                norm = _NORM_OF_CONV[conv]
                specs.append(WeightSpec(f"{prefix}.{conv}.1.weight", norm_shape, "norm",
                                        ("cells", layer, norm, "gamma")))
                specs.append(WeightSpec(f"{prefix}.{conv}.1.bias", norm_shape, "norm",
                                        ("cells", layer, norm, "beta")))
        specs.append(WeightSpec(f"{prefix}.conv_last.weight", (hidden, 2 * hidden, 1, 1), "conv",
                                ("cells", layer, "conv_last", "kernel")))
    top = config.num_hidden[-1]
    specs.append(WeightSpec("conv_last.weight", (config.patched_channels, top, 1, 1), "conv",
                            ("output_conv", "kernel")))
    if config.model_name == "predrnn_v2":
        adapter = config.num_hidden[0]
        specs.append(WeightSpec("adapter.weight", (adapter, adapter, 1, 1), "conv",
                                ("adapter", "kernel")))
    return specs


def expected_shapes(config: Config) -> dict[str, tuple[int, ...]]:
    """``{official key: PyTorch shape}`` for ``config``, in the official key order."""
    return {spec.torch_key: spec.torch_shape for spec in weight_specs(config)}


def _describe(config: Config) -> str:
    hidden = ",".join(str(size) for size in config.num_hidden)
    return (f"--model_name={config.model_name} --num_hidden={hidden} "
            f"--filter_size={config.filter_size} --patch_size={config.patch_size} "
            f"--img_width={config.img_width} --img_channel={config.img_channel} "
            f"--layer_norm={str(config.layer_norm).lower()}")


def _unexpected_key_hint(key: str, config: Config) -> str:
    if key.startswith("adapter."):
        return " (a predrnn_v2 checkpoint? set --model_name=predrnn_v2)"
    if ".1.weight" in key or ".1.bias" in key:
        return " (a layer-norm checkpoint? set --layer_norm=true)"
    if key.endswith(".bias"):
        return " (convolution biases come from an old official version; not supported)"
    if key.startswith("cell_list."):
        return f" (more layers than --num_hidden={len(config.num_hidden)} layers?)"
    return ""


def _missing_key_hint(key: str) -> str:
    if key.startswith("adapter."):
        return " (a predrnn checkpoint? set --model_name=predrnn)"
    if ".1.weight" in key or ".1.bias" in key:
        return " (saved without layer norm? set --layer_norm=false)"
    if key.startswith("cell_list."):
        return " (fewer layers than --num_hidden lists?)"
    return ""


def check_shapes(shapes: Mapping[str, Sequence[int]], config: Config,
                 source: str = "checkpoint") -> None:
    """Checks a state_dict's keys and shapes against ``config``.

    Expected keys are checked in the official order (missing key or wrong shape), then
    the remaining keys (unexpected key), so the error names the first mismatch.

    Args:
      shapes: ``{key: shape}`` of the state_dict.
      config: the configuration the weights must fit.
      source: the file name, used in the error message.

    Raises:
      CheckpointFormatError: one line naming the file, the key and what is wrong.
    """
    expected = expected_shapes(config)
    for key, shape in expected.items():
        if key not in shapes:
            raise CheckpointFormatError(
                f"{source}: missing key {key!r}{_missing_key_hint(key)}; expected by "
                f"{_describe(config)}")
        found = tuple(int(size) for size in shapes[key])
        if found != shape:
            raise CheckpointFormatError(
                f"{source}: wrong shape for {key!r}: got {list(found)}, expected {list(shape)} "
                f"from {_describe(config)}")
    for key in shapes:
        if key not in expected:
            raise CheckpointFormatError(
                f"{source}: unexpected key {key!r}{_unexpected_key_hint(key, config)}; not in "
                f"the layout of {_describe(config)}")


def to_keras(value: np.ndarray, kind: str) -> np.ndarray:
    """PyTorch layout -> Keras layout: conv ``[out,in,kh,kw]`` -> ``[kh,kw,in,out]``;
    norm ``[C,H,W]`` -> ``(H,W,C)``."""
    return np.ascontiguousarray(np.transpose(value, _permutation(kind, to_torch=False)))


def to_torch(value: np.ndarray, kind: str) -> np.ndarray:
    """Keras layout -> PyTorch layout; the exact inverse of :func:`to_keras`."""
    return np.ascontiguousarray(np.transpose(value, _permutation(kind, to_torch=True)))


def _permutation(kind: str, to_torch: bool) -> tuple[int, ...]:
    if kind == "conv":
        return _CONV_TO_TORCH if to_torch else _CONV_TO_KERAS
    if kind == "norm":
        return _NORM_TO_TORCH if to_torch else _NORM_TO_KERAS
    raise ValueError(f"kind must be 'conv' or 'norm', received kind={kind!r}")


def find_variable(model: Any, path: Sequence[str | int]):
    """Follows ``path`` (attribute names and list indices) from ``model`` to a variable."""
    target = model
    for part in path:
        target = target[part] if isinstance(part, int) else getattr(target, part)
    return target


def load_state_dict(model: Any, state_dict: Mapping[str, np.ndarray], config: Config,
                    source: str = "checkpoint") -> None:
    """Checks an official state_dict against ``config`` and assigns it to a built model.

    Args:
      model: a built :class:`predrnn_tf.models.PredRNN` made from ``config``.
      state_dict: ``{official key: array}`` in PyTorch layout.
      config: the configuration of ``model``.
      source: the file name, used in error messages.

    Raises:
      CheckpointFormatError: on the first missing key, unexpected key or wrong shape.
    """
    check_shapes({key: np.shape(value) for key, value in state_dict.items()}, config, source)
    for spec in weight_specs(config):
        variable = find_variable(model, spec.variable_path)
        value = to_keras(np.asarray(state_dict[spec.torch_key], dtype=np.float32), spec.kind)
        if tuple(variable.shape) != value.shape:
            raise CheckpointFormatError(
                f"model variable {variable.path} has shape {tuple(variable.shape)}, but "
                f"{spec.torch_key} maps to {value.shape}: the model was not built from this "
                f"config")
        variable.assign(value)


def model_state_dict(model: Any, config: Config) -> collections.OrderedDict:
    """The official state_dict of a built model: ``{key: float32 array}`` in PyTorch layout."""
    state_dict = collections.OrderedDict()
    for spec in weight_specs(config):
        variable = find_variable(model, spec.variable_path)
        state_dict[spec.torch_key] = to_torch(np.asarray(variable.numpy(), np.float32),
                                              spec.kind)
    check_shapes({key: value.shape for key, value in state_dict.items()}, config, "model")
    return state_dict


def import_torch():
    """Imports torch lazily; raises ImportError with the install command if it is missing."""
    try:
        import torch
    except ImportError as error:
        raise ImportError(TORCH_INSTALL_HINT) from error
    return torch


def read_torch_checkpoint(path: str) -> collections.OrderedDict:
    """Reads an official checkpoint (``{'net_param': state_dict}``, or a bare state_dict).

    Tensors are loaded on the CPU with ``weights_only=True`` (no code runs from the file).

    Returns:
      ``{key: float32 NumPy array}`` in the file's key order.

    Raises:
      ImportError: torch is not installed (the message says how to install it).
      CheckpointFormatError: the file is missing or is not a PyTorch state_dict.
    """
    torch = import_torch()
    if not os.path.isfile(path):
        raise CheckpointFormatError(f"--checkpoint={path} does not exist")
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointFormatError(
            f"--checkpoint={path} is not a readable PyTorch checkpoint: {reason}") from error
    if isinstance(contents, Mapping) and STATE_DICT_ENTRY in contents:
        contents = contents[STATE_DICT_ENTRY]
    if not isinstance(contents, Mapping) or not all(
            isinstance(value, torch.Tensor) for value in contents.values()):
        raise CheckpointFormatError(
            f"--checkpoint={path} holds no '{STATE_DICT_ENTRY}' state_dict of tensors (expected "
            f"a file written by torch.save({{'{STATE_DICT_ENTRY}': state_dict}}, path))")
    return collections.OrderedDict(
        (str(key), value.detach().to(torch.float32).numpy()) for key, value in contents.items())


def write_torch_checkpoint(state_dict: Mapping[str, np.ndarray], path: str) -> str:
    """Writes ``torch.save({'net_param': state_dict}, path)`` atomically, as the official code.

    Args:
      state_dict: ``{key: array}`` in PyTorch layout (saved as float32 CPU tensors).
      path: the output file; written to a temporary name first, then renamed.

    Returns:
      ``path``.
    """
    torch = import_torch()
    tensors = collections.OrderedDict(
        (key, torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
        for key, value in state_dict.items())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with files.atomic_path(path) as temporary:
        torch.save({STATE_DICT_ENTRY: tensors}, temporary)
    return path
