"""Weights of OpenSTL's PyTorch MIM (``openstl/models/mim_model.py``) <-> our Keras MIM.

OpenSTL saves ``model.state_dict()`` (bare, ``checkpoint.pth`` / ``best.pth``) or, under
PyTorch Lightning, ``{'state_dict': {'model.' + key: tensor}}``. For L layers of ``nh``
hidden channels, kernel ``k``, patch size ``p``, ``in_0 = p*p*img_channel`` and
``W = img_width / p``, ``MIM_Model.state_dict()`` holds (convolutions bias-free, PyTorch
layout ``[out, in, kh, kw]``; ``LN`` marks the ``.1.weight`` / ``.1.bias`` affines
``[out, W, W]`` present only with ``layer_norm``)::

    stlstm_layer.0.conv_x.0.weight       [7*nh, in_0, k, k]  LN   -> cells[0].conv_x, norm_x
    stlstm_layer.0.conv_h / conv_m / conv_o  (as the official ST-LSTM)  -> conv_h, conv_m, ...
    stlstm_layer.0.conv_last.weight      [nh, 2*nh, 1, 1]
    stlstm_layer.{l}.ct_weight      [2*nh, W, W]  -> cells[l].stationary.input_forget_peephole
    stlstm_layer.{l}.oc_weight      [nh, W, W]    -> cells[l].stationary.output_peephole
    stlstm_layer.{l}.conv_t_cc.0.weight  [3*nh, nh, k, k]  LN  -> cells[l].conv_t, norm_t
    stlstm_layer.{l}.conv_s_cc.0.weight  [4*nh, nh, k, k]  LN  -> cells[l].conv_s, norm_s
    stlstm_layer.{l}.conv_x_cc.0.weight  [4*nh, nh, k, k]  LN  -> cells[l].conv_x, norm_x
    stlstm_layer.{l}.conv_h_concat.0.weight [4*nh, nh, k, k] LN -> cells[l].stationary.conv_h
    stlstm_layer.{l}.conv_x_concat.0.weight [4*nh, nh, k, k] LN -> cells[l].stationary.conv_x
    stlstm_layer.{l}.conv_last.weight    [nh, 2*nh, 1, 1]  -> cells[l].conv_last
    stlstm_layer_diff.{d}.ct_weight / oc_weight / conv_h_concat / conv_x_concat
                                         (as above)       -> difference_cells[d]....
    stlstm_layer_diff.{d}.conv_last.weight [nh, 2*nh, 1, 1]  created by OpenSTL, never used:
                                         checked and dropped on import, zeros on export
    conv_last.weight                     [in_0, nh, 1, 1]  -> output_conv

for l = 1 .. L-1 and d = 0 .. L-2. The decoupling ``adapter`` is ours (OpenSTL's MIM has
none): an ``adapter.weight [nh, nh, 1, 1]`` key is loaded if present, else the adapter keeps
its initial value; it is written only on request. Peepholes and layer-norm affines go
``[C, H, W]`` <-> ``(H, W, C)``, kernels ``[out, in, kh, kw]`` <-> ``[kh, kw, in, out]``:
pure transposes, exact both ways. torch is imported only to read or write files.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from predrnn_tf.config import Config
from predrnn_tf.errors import CheckpointFormatError

LIGHTNING_ENTRY = "state_dict"
LIGHTNING_PREFIX = "model."
ADAPTER_KEY = "adapter.weight"
_PERMUTATIONS = {  # kind -> (PyTorch -> Keras, Keras -> PyTorch)
    "conv": ((2, 3, 1, 0), (3, 2, 0, 1)),
    "norm": ((1, 2, 0), (2, 0, 1)),
}
_ST_LSTM_CONVS = (("conv_x", 7, "in", "norm_x"), ("conv_h", 4, "nh", "norm_h"),
                  ("conv_m", 3, "nh", "norm_m"), ("conv_o", 1, "2nh", "norm_o"))
# OpenSTL name -> (out multiple, our path inside the block, our norm name)
_BLOCK_CONVS = (("conv_t_cc", 3, ("conv_t",), "norm_t"), ("conv_s_cc", 4, ("conv_s",), "norm_s"),
                ("conv_x_cc", 4, ("conv_x",), "norm_x"),
                ("conv_h_concat", 4, ("stationary", "conv_h"), "norm_h"),
                ("conv_x_concat", 4, ("stationary", "conv_x"), "norm_x"))


@dataclasses.dataclass(frozen=True)
class MIMWeightSpec:
    """One tensor of OpenSTL's MIM state_dict and the Keras variable it maps to.

    Attributes:
      torch_key: the OpenSTL state_dict key.
      torch_shape: its shape in PyTorch layout.
      kind: ``"conv"`` (kernel transpose), ``"norm"`` (``[C,H,W]`` -> ``(H,W,C)``, for layer
        norms and peepholes) or ``"unused"`` (OpenSTL's dead MIMN conv_last; no variable).
      variable_path: attribute names / list indices from the model to the variable.
    """

    torch_key: str
    torch_shape: tuple[int, ...]
    kind: str
    variable_path: tuple[str | int, ...]


def _conv_specs(key: str, shape: tuple[int, ...], path: tuple, norm: str | None,
                config: Config) -> list[MIMWeightSpec]:
    """``key.0.weight`` (or ``key.weight`` without ``norm``) and its layer-norm affines."""
    if norm is None:
        return [MIMWeightSpec(f"{key}.weight", shape, "conv", (*path, "kernel"))]
    specs = [MIMWeightSpec(f"{key}.0.weight", shape, "conv", (*path, "kernel"))]
    if config.layer_norm:
        width = config.patched_width
        norm_path = (*path[:-1], norm)
        specs.append(MIMWeightSpec(f"{key}.1.weight", (shape[0], width, width), "norm",
                                   (*norm_path, "gamma")))
        specs.append(MIMWeightSpec(f"{key}.1.bias", (shape[0], width, width), "norm",
                                   (*norm_path, "beta")))
    return specs


def _peephole_specs(prefix: str, path: tuple, hidden: int, width: int) -> list[MIMWeightSpec]:
    return [MIMWeightSpec(f"{prefix}.ct_weight", (2 * hidden, width, width), "norm",
                          (*path, "input_forget_peephole")),
            MIMWeightSpec(f"{prefix}.oc_weight", (hidden, width, width), "norm",
                          (*path, "output_peephole"))]


def _layer_specs(layer: int, config: Config) -> list[MIMWeightSpec]:
    hidden, k = config.num_hidden[0], config.filter_size
    prefix, path = f"stlstm_layer.{layer}", ("cells", layer)
    specs = []
    if layer == 0:
        inputs = {"in": config.patched_channels, "nh": hidden, "2nh": 2 * hidden}
        for conv, multiple, source, norm in _ST_LSTM_CONVS:
            specs += _conv_specs(f"{prefix}.{conv}", (multiple * hidden, inputs[source], k, k),
                                 (*path, conv), norm, config)
    else:
        specs += _peephole_specs(prefix, (*path, "stationary"), hidden, config.patched_width)
        for conv, multiple, ours, norm in _BLOCK_CONVS:
            specs += _conv_specs(f"{prefix}.{conv}", (multiple * hidden, hidden, k, k),
                                 (*path, *ours), norm, config)
    specs += _conv_specs(f"{prefix}.conv_last", (hidden, 2 * hidden, 1, 1),
                         (*path, "conv_last"), None, config)
    return specs


def _difference_specs(index: int, config: Config) -> list[MIMWeightSpec]:
    hidden, k = config.num_hidden[0], config.filter_size
    prefix, path = f"stlstm_layer_diff.{index}", ("difference_cells", index)
    specs = _peephole_specs(prefix, path, hidden, config.patched_width)
    for conv, ours, norm in (("conv_h_concat", "conv_h", "norm_h"),
                             ("conv_x_concat", "conv_x", "norm_x")):
        specs += _conv_specs(f"{prefix}.{conv}", (4 * hidden, hidden, k, k), (*path, ours),
                             norm, config)
    specs.append(MIMWeightSpec(f"{prefix}.conv_last.weight", (hidden, 2 * hidden, 1, 1),
                               "unused", ()))
    return specs


def weight_specs(config: Config) -> list[MIMWeightSpec]:
    """Every tensor of OpenSTL's ``MIM_Model.state_dict()`` for ``config``, in its key order.

    Raises:
      CheckpointFormatError: if ``config`` has no OpenSTL MIM layout.
    """
    check_mim_config(config)
    specs = []
    for layer in range(len(config.num_hidden)):
        specs += _layer_specs(layer, config)
    for index in range(len(config.num_hidden) - 1):
        specs += _difference_specs(index, config)
    top = config.num_hidden[-1]
    specs.append(MIMWeightSpec("conv_last.weight", (config.patched_channels, top, 1, 1), "conv",
                               ("output_conv", "kernel")))
    return specs


def check_mim_config(config: Config) -> None:
    """Raises CheckpointFormatError if OpenSTL's MIM has no layout matching ``config``."""
    if config.model_name != "mim":
        raise CheckpointFormatError(
            f"--model_name={config.model_name} is not an OpenSTL MIM; use --model_name=mim")
    if len(set(config.num_hidden)) != 1:
        raise CheckpointFormatError(
            f"--num_hidden must be equal sizes for OpenSTL's MIM, got "
            f"{','.join(str(size) for size in config.num_hidden)}")


def expected_shapes(config: Config) -> dict[str, tuple[int, ...]]:
    """``{OpenSTL key: PyTorch shape}`` for ``config``, in OpenSTL's key order."""
    return {spec.torch_key: spec.torch_shape for spec in weight_specs(config)}


def _describe(config: Config) -> str:
    hidden = ",".join(str(size) for size in config.num_hidden)
    return (f"--model_name=mim --num_hidden={hidden} --filter_size={config.filter_size} "
            f"--patch_size={config.patch_size} --img_width={config.img_width} "
            f"--img_channel={config.img_channel} --layer_norm={str(config.layer_norm).lower()}")


def check_shapes(shapes: Mapping[str, Sequence[int]], config: Config,
                 source: str = "checkpoint") -> None:
    """Checks an OpenSTL MIM state_dict's keys and shapes against ``config``.

    Expected keys first (missing key or wrong shape), then the others (unexpected key);
    ``adapter.weight`` is optional. The error names the first mismatch in one line.

    Raises:
      CheckpointFormatError: naming the file, the key and what is wrong.
    """
    expected = expected_shapes(config)
    optional = {ADAPTER_KEY: (config.num_hidden[0], config.num_hidden[0], 1, 1)}
    for key in expected:
        if key not in shapes:
            raise CheckpointFormatError(
                f"{source}: missing key {key!r}; expected by {_describe(config)}")
    for key, found in shapes.items():
        wanted = expected.get(key, optional.get(key))
        if wanted is None:
            raise CheckpointFormatError(
                f"{source}: unexpected key {key!r}; not in the layout of {_describe(config)}")
        found = tuple(int(size) for size in found)
        if found != wanted:
            raise CheckpointFormatError(
                f"{source}: wrong shape for {key!r}: got {list(found)}, expected "
                f"{list(wanted)} from {_describe(config)}")


def to_keras(value: np.ndarray, kind: str) -> np.ndarray:
    """PyTorch layout -> Keras layout for a ``"conv"`` or ``"norm"`` tensor."""
    return np.ascontiguousarray(np.transpose(value, _permutation(kind)[0]))


def to_torch(value: np.ndarray, kind: str) -> np.ndarray:
    """Keras layout -> PyTorch layout; the exact inverse of :func:`to_keras`."""
    return np.ascontiguousarray(np.transpose(value, _permutation(kind)[1]))


def _permutation(kind: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if kind not in _PERMUTATIONS:
        raise ValueError(f"kind must be 'conv' or 'norm', received kind={kind!r}")
    return _PERMUTATIONS[kind]


def find_variable(model: Any, path: Sequence[str | int]):
    """Follows ``path`` (attribute names and list indices) from ``model`` to a variable."""
    target = model
    for part in path:
        target = target[part] if isinstance(part, int) else getattr(target, part)
    return target


def _assign(variable, value: np.ndarray, key: str) -> None:
    if tuple(variable.shape) != value.shape:
        raise CheckpointFormatError(
            f"model variable {variable.path} has shape {tuple(variable.shape)}, but {key} maps "
            f"to {value.shape}: the model was not built from this config")
    variable.assign(value)


def load_state_dict(model: Any, state_dict: Mapping[str, np.ndarray], config: Config,
                    source: str = "checkpoint") -> None:
    """Checks an OpenSTL MIM state_dict against ``config`` and assigns it to a built model.

    Args:
      model: a built :class:`predrnn_tf.models.mim.MIM` made from ``config``.
      state_dict: ``{OpenSTL key: array}`` in PyTorch layout (see :func:`openstl_state_dict`
        for Lightning checkpoints).
      config: the configuration of ``model``.
      source: the file name, used in error messages.

    Raises:
      CheckpointFormatError: on the first missing key, unexpected key or wrong shape.
    """
    check_shapes({key: np.shape(value) for key, value in state_dict.items()}, config, source)
    for spec in weight_specs(config):
        if spec.kind == "unused":
            continue
        value = to_keras(np.asarray(state_dict[spec.torch_key], np.float32), spec.kind)
        _assign(find_variable(model, spec.variable_path), value, spec.torch_key)
    if ADAPTER_KEY in state_dict and getattr(model, "adapter", None) is not None:
        value = to_keras(np.asarray(state_dict[ADAPTER_KEY], np.float32), "conv")
        _assign(model.adapter.kernel, value, ADAPTER_KEY)


def model_state_dict(model: Any, config: Config,
                     include_adapter: bool = False) -> collections.OrderedDict:
    """OpenSTL's MIM state_dict of a built model: ``{key: float32 array}``, PyTorch layout.

    OpenSTL's unused MIMN ``conv_last`` tensors are written as zeros, so OpenSTL's strict
    ``load_state_dict`` accepts the result. ``include_adapter`` adds ``adapter.weight``
    (not an OpenSTL key; a strict OpenSTL load would refuse it).
    """
    state_dict = collections.OrderedDict()
    for spec in weight_specs(config):
        if spec.kind == "unused":
            state_dict[spec.torch_key] = np.zeros(spec.torch_shape, np.float32)
            continue
        variable = find_variable(model, spec.variable_path)
        state_dict[spec.torch_key] = to_torch(np.asarray(variable.numpy(), np.float32),
                                              spec.kind)
    if include_adapter and getattr(model, "adapter", None) is not None:
        state_dict[ADAPTER_KEY] = to_torch(model.adapter.kernel.numpy(), "conv")
    return state_dict


def openstl_state_dict(contents: Any, source: str = "checkpoint") -> collections.OrderedDict:
    """The MIM state_dict inside what ``torch.load`` returned for an OpenSTL file.

    Accepts a bare state_dict or a Lightning checkpoint ``{'state_dict': {'model.' + key}}``;
    values are converted with ``np.asarray`` (CPU tensors or arrays).

    Raises:
      CheckpointFormatError: if ``contents`` holds no state_dict.
    """
    if isinstance(contents, Mapping) and isinstance(contents.get(LIGHTNING_ENTRY), Mapping):
        contents = contents[LIGHTNING_ENTRY]
    if not isinstance(contents, Mapping) or not contents:
        raise CheckpointFormatError(f"{source} holds no OpenSTL state_dict (expected the file "
                                    f"of torch.save(model.state_dict(), path))")
    keys = [str(key) for key in contents]
    strip = all(key.startswith(LIGHTNING_PREFIX) for key in keys)
    return collections.OrderedDict(
        (key[len(LIGHTNING_PREFIX):] if strip else key, np.asarray(_to_numpy(value), np.float32))
        for key, value in zip(keys, contents.values()))


def _to_numpy(value: Any):
    return value.detach().cpu().float().numpy() if hasattr(value, "detach") else value


def read_openstl_checkpoint(path: str) -> collections.OrderedDict:
    """Reads an OpenSTL MIM checkpoint file on the CPU (``weights_only=True``).

    Raises:
      ImportError: torch is not installed.
      CheckpointFormatError: the file is missing, unreadable or holds no state_dict.
    """
    import torch

    if not os.path.isfile(path):
        raise CheckpointFormatError(f"--checkpoint={path} does not exist")
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointFormatError(
            f"--checkpoint={path} is not a readable PyTorch checkpoint: {reason}") from error
    return openstl_state_dict(contents, source=f"--checkpoint={path}")
