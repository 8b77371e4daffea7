"""LPIPS (Zhang et al. 2018), AlexNet backbone with the v0.1 linear heads, as Keras layers.

This is a transcription of the ``lpips`` PyTorch package (``lpips.LPIPS(net="alex")``):
inputs in [-1, 1] go through a fixed scaling layer, the five ReLU outputs of torchvision's
AlexNet ``features``, a unit normalisation over channels, squared differences, one 1x1 linear
head per layer, a spatial average, and a sum over layers.

The weights come from a ``.npz`` written by ``tools/convert_lpips_weights.py`` (PyTorch names
and layouts: ``features.{0,3,6,8,10}.{weight,bias}`` ``[out, in, kh, kw]`` and
``lin{0..4}.weight`` ``[1, C, 1, 1]``). Nothing is downloaded.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from predrnn_tf import files
from predrnn_tf.errors import LPIPSWeightsError

WEIGHTS_FORMAT_VERSION = 1
# torchvision AlexNet features: (index in ``features``, out channels, kernel, stride, padding,
# max pool before this conv).
ALEXNET_CONVOLUTIONS = (
    (0, 64, 11, 4, 2, False),
    (3, 192, 5, 1, 2, True),
    (6, 384, 3, 1, 1, True),
    (8, 256, 3, 1, 1, False),
    (10, 256, 3, 1, 1, False),
)
# lpips.ScalingLayer constants.
SCALING_SHIFT = (-0.030, -0.088, -0.188)
SCALING_SCALE = (0.458, 0.448, 0.450)
NORMALIZE_EPSILON = 1e-10
MINIMUM_SIZE = 31
CONVERT_COMMAND = (
    "python tools/convert_lpips_weights.py --alexnet_weights=PATH/alexnet-owt-7be5be79.pth "
    "--output=lpips_alex.npz")




def expected_weight_shapes() -> dict[str, tuple[int, ...]]:
    """PyTorch-layout shapes of every array in an LPIPS weights file."""
    shapes = {}
    in_channels = 3
    for index, (layer, out_channels, kernel, _, _, _) in enumerate(ALEXNET_CONVOLUTIONS):
        shapes[f"features.{layer}.weight"] = (out_channels, in_channels, kernel, kernel)
        shapes[f"features.{layer}.bias"] = (out_channels,)
        shapes[f"lin{index}.weight"] = (1, out_channels, 1, 1)
        in_channels = out_channels
    return shapes


def weights_from_state_dicts(alexnet_state: dict[str, Any],
                             linear_state: dict[str, Any]) -> dict[str, np.ndarray]:
    """Picks the LPIPS arrays from a torchvision AlexNet and an lpips linear-head state dict.

    Args:
      alexnet_state: torchvision AlexNet state dict (``features.N.weight`` ...), values numpy
        arrays or anything ``np.asarray`` accepts.
      linear_state: lpips ``weights/v0.1/alex.pth`` (``linK.model.1.weight``).

    Returns:
      A dict of float32 arrays named as :func:`expected_weight_shapes`.
    """
    weights = {}
    for name in expected_weight_shapes():
        if name.startswith("features."):
            source, key = alexnet_state, name
        else:
            source, key = linear_state, name.replace(".weight", ".model.1.weight")
        if key not in source:
            raise LPIPSWeightsError(f"state dict has no {key!r} (keys: {sorted(source)[:8]}...)")
        weights[name] = np.asarray(source[key], np.float32)
    check_weights(weights, "state dicts")
    return weights


def check_weights(weights: dict[str, np.ndarray], source: str) -> None:
    """Raises LPIPSWeightsError naming ``source`` if an array is missing or misshapen."""
    for name, shape in expected_weight_shapes().items():
        if name not in weights:
            raise LPIPSWeightsError(f"{source}: missing array {name!r}")
        if tuple(weights[name].shape) != shape:
            raise LPIPSWeightsError(f"{source}: {name!r} has shape {tuple(weights[name].shape)}, "
                                    f"expected {shape}")


def save_weights_file(weights: dict[str, np.ndarray], path: str) -> None:
    """Writes the weights ``.npz`` atomically (through :func:`predrnn_tf.files.atomic_write`).

    The file keeps the name ``path`` even if it does not end with ``.npz``.
    """
    check_weights(weights, path)
    with files.atomic_write(path, "wb") as handle:  # a file object: np.savez adds no suffix
        np.savez(handle, format_version=np.int64(WEIGHTS_FORMAT_VERSION), **weights)


def read_weights_file(path: str) -> dict[str, np.ndarray]:
    """Reads and checks a weights ``.npz``; LPIPSWeightsError naming the file otherwise."""
    if not os.path.exists(path):
        raise LPIPSWeightsError(f"LPIPS weights file {path} does not exist; make one with: "
                                f"{CONVERT_COMMAND}")
    try:
        with np.load(path) as archive:
            weights = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise LPIPSWeightsError(f"{path} is not an LPIPS weights .npz: {error}") from error
    check_weights(weights, path)
    return weights


class LPIPS(keras.Model):
    """LPIPS distance between two batches of images.

    Call with ``(images_a, images_b)``, each ``[N, H, W, C]`` with values in [0, 1] and C in
    {1, 3} (gray frames are repeated to 3 channels); returns ``[N]`` float32 distances.

    Args:
      rescale_inputs: if True (default, correct), maps [0, 1] to [-1, 1] as LPIPS expects
        (``lpips.LPIPS(..., normalize=True)``); if False, feeds [0, 1] unchanged, as the
        official predrnn-pytorch trainer does, for side-by-side comparison with its numbers.
      **kwargs: passed to ``keras.Model``.
    """

    def __init__(self, rescale_inputs: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.rescale_inputs = rescale_inputs
        self.paddings = []
        self.pools = []
        self.convolutions = []
        self.linear_heads = []
        for index, (_, channels, kernel, stride, padding, pool) in enumerate(
                ALEXNET_CONVOLUTIONS):
            self.pools.append(
                keras.layers.MaxPooling2D(3, strides=2, padding="valid", name=f"pool{index}")
                if pool else None)
            self.paddings.append(keras.layers.ZeroPadding2D(padding, name=f"pad{index}"))
            self.convolutions.append(keras.layers.Conv2D(
                channels, kernel, strides=stride, padding="valid", activation="relu",
                name=f"conv{index}"))
            self.linear_heads.append(
                keras.layers.Conv2D(1, 1, use_bias=False, name=f"lin{index}"))

    def build(self, input_shape: Any) -> None:
        """Builds every layer for ``[N, H, W, 3]`` inputs."""
        shape = (None, None, None, 3)
        layers = zip(self.pools, self.paddings, self.convolutions, self.linear_heads, strict=True)
        for pool, padding, convolution, head in layers:
            if pool is not None:
                pool.build(shape)
                shape = pool.compute_output_shape(shape)
            padding.build(shape)
            shape = padding.compute_output_shape(shape)
            convolution.build(shape)
            shape = convolution.compute_output_shape(shape)
            head.build(shape)
        self.built = True

    def features(self, images: tf.Tensor) -> list[tf.Tensor]:
        """The five AlexNet ReLU outputs for [-1, 1] RGB images ``[N, H, W, 3]``."""
        shift = tf.constant(SCALING_SHIFT, images.dtype)
        scale = tf.constant(SCALING_SCALE, images.dtype)
        values = (images - shift) / scale
        outputs = []
        layers = zip(self.pools, self.paddings, self.convolutions, strict=True)
        for pool, padding, convolution in layers:
            if pool is not None:
                values = pool(values)
            values = convolution(padding(values))
            outputs.append(values)
        return outputs

    def prepare(self, images: Any) -> tf.Tensor:
        """[0, 1] images ``[N, H, W, 1 or 3]`` -> float32 RGB in the network's input range."""
        images = tf.convert_to_tensor(images, tf.float32)
        channels = images.shape[-1]
        if images.shape.rank != 4 or channels not in (1, 3):
            raise ValueError(f"LPIPS takes images [N, H, W, 1 or 3], got shape {images.shape}")
        height, width = images.shape[1], images.shape[2]
        if height is not None and width is not None and min(height, width) < MINIMUM_SIZE:
            raise ValueError(f"LPIPS (AlexNet) needs images of at least {MINIMUM_SIZE}x"
                             f"{MINIMUM_SIZE} pixels, got {height}x{width}")
        if channels == 1:
            images = tf.tile(images, [1, 1, 1, 3])  # [N, H, W, 3]
        if self.rescale_inputs:
            images = images * 2.0 - 1.0
        return images

    def call(self, inputs: Any) -> tf.Tensor:
        images_a, images_b = inputs
        features_a = self.features(self.prepare(images_a))
        features_b = self.features(self.prepare(images_b))
        total = 0.0
        triples = zip(features_a, features_b, self.linear_heads, strict=True)
        for feature_a, feature_b, head in triples:
            normalized_a = feature_a / (
                tf.sqrt(tf.reduce_sum(tf.square(feature_a), axis=-1, keepdims=True))
                + NORMALIZE_EPSILON)
            normalized_b = feature_b / (
                tf.sqrt(tf.reduce_sum(tf.square(feature_b), axis=-1, keepdims=True))
                + NORMALIZE_EPSILON)
            weighted = head(tf.square(normalized_a - normalized_b))  # [N, h, w, 1]
            total += tf.reduce_mean(weighted, axis=[1, 2, 3])
        return total

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"rescale_inputs": self.rescale_inputs})
        return config

    def set_torch_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Assigns PyTorch-layout arrays (see :func:`expected_weight_shapes`)."""
        check_weights(weights, "weights")
        if not self.built:
            self.build((None, None, None, 3))
        for index, (layer, *_) in enumerate(ALEXNET_CONVOLUTIONS):
            kernel = np.transpose(weights[f"features.{layer}.weight"], (2, 3, 1, 0))  # HWIO
            self.convolutions[index].set_weights([kernel, weights[f"features.{layer}.bias"]])
            head = np.transpose(weights[f"lin{index}.weight"], (2, 3, 1, 0))  # [1, 1, C, 1]
            self.linear_heads[index].set_weights([head])

    def distance(self, images_a: Any, images_b: Any) -> tf.Tensor:
        """``[N]`` distances; same as calling the model on ``(images_a, images_b)``."""
        return self((images_a, images_b))


def load_lpips(path: str, rescale_inputs: bool = True) -> LPIPS:
    """Builds an :class:`LPIPS` model with the weights of a converted ``.npz`` file."""
    model = LPIPS(rescale_inputs=rescale_inputs)
    model.set_torch_weights(read_weights_file(path))
    return model


class LPIPSDistance:
    """A compiled ``(truth, prediction) -> [N]`` callable for :class:`FrameMetrics`."""

    def __init__(self, model: LPIPS):
        self.model = model
        self._distance = tf.function(lambda a, b: model((a, b)), reduce_retracing=True)

    def __call__(self, images_a: Any, images_b: Any) -> np.ndarray:
        return self._distance(tf.convert_to_tensor(images_a, tf.float32),
                              tf.convert_to_tensor(images_b, tf.float32)).numpy()
