"""Writes the LPIPS (AlexNet, v0.1) weights file that predrnn_tf.lpips reads.

Inputs, both PyTorch files that stay on your disk (nothing is downloaded):
- the linear heads shipped inside the ``lpips`` PyPI package
  (``site-packages/lpips/weights/v0.1/alex.pth``; found without importing lpips, or pass
  ``--lpips_weights``);
- a torchvision AlexNet ImageNet state dict (``alexnet-owt-7be5be79.pth``, in
  ``~/.cache/torch/hub/checkpoints/`` after any torchvision AlexNet download; or pass
  ``--alexnet_weights``).

Usage:
  pip install lpips   # only for its weights file
  python tools/convert_lpips_weights.py --alexnet_weights=PATH/alexnet-owt-7be5be79.pth \
      --output=lpips_alex.npz
  python -m predrnn_tf.evaluate ... --lpips_weights=lpips_alex.npz
"""

from __future__ import annotations

import importlib.util
import os
import sys

from absl import app, flags

from predrnn_tf.evaluation import lpips

ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"

_ALEXNET_WEIGHTS = flags.DEFINE_string(
    "alexnet_weights", None,
    f"torchvision AlexNet state dict; default: ~/.cache/torch/hub/checkpoints/{ALEXNET_FILENAME}")
_LPIPS_WEIGHTS = flags.DEFINE_string(
    "lpips_weights", None,
    "lpips linear heads (alex.pth); default: weights/v0.1/alex.pth inside the installed "
    "lpips package")
_OUTPUT = flags.DEFINE_string("output", "lpips_alex.npz", "The .npz weights file to write.")


def find_lpips_heads() -> str:
    """Path of lpips/weights/v0.1/alex.pth in the installed package, without importing it."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the lpips package is not installed: `pip install lpips` or pass --lpips_weights")
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "weights", "v0.1", "alex.pth")
        if os.path.exists(path):
            return path
    raise FileNotFoundError("the installed lpips package has no weights/v0.1/alex.pth; "
                            "pass --lpips_weights")


def default_alexnet_path() -> str:
    """torch hub's cache location of the torchvision AlexNet weights."""
    torch_home = os.environ.get(
        "TORCH_HOME", os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return os.path.expanduser(os.path.join(torch_home, "hub", "checkpoints", ALEXNET_FILENAME))


def load_state_dict(path: str, flag_name: str) -> dict:
    """torch.load on CPU, as numpy arrays; FileNotFoundError naming the flag."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"--{flag_name}={path} does not exist")
    try:
        import torch
    except ImportError as error:
        raise ImportError("the converter needs PyTorch to read .pth files: pip install torch") \
            from error
    state = torch.load(path, map_location="cpu", weights_only=True)
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    return {key: value.numpy() for key, value in state.items() if hasattr(value, "numpy")}


def main(argv: list[str]) -> None:
    del argv
    try:
        heads_path = _LPIPS_WEIGHTS.value or find_lpips_heads()
        alexnet_path = _ALEXNET_WEIGHTS.value or default_alexnet_path()
        weights = lpips.weights_from_state_dicts(
            load_state_dict(alexnet_path, "alexnet_weights"),
            load_state_dict(heads_path, "lpips_weights"))
        output = _OUTPUT.value
        if os.path.dirname(output):
            os.makedirs(os.path.dirname(output), exist_ok=True)
        lpips.save_weights_file(weights, output)
    except (OSError, ImportError, ValueError, RuntimeError) as error:
        print(f"convert_lpips_weights: error: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {output} (AlexNet from {alexnet_path}, linear heads from {heads_path})")


if __name__ == "__main__":
    app.run(main)
