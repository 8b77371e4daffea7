"""Speed measurements behind ``tools/benchmark.py`` and ``tools/benchmark_official.py``.

The analytic FLOPs of one update (``conv_shapes``, ``conv_flops``, ``update_flops``), the
conv peak of the model's own convolution shapes (``make_conv_pass``, ``measure_conv_peak``),
the seconds of the real train step and of the compiled forecast (``time_updates``,
``time_forecasts``), and what the CPU offers (``cpu_flags``, ``native_bfloat16``).
TensorFlow is imported inside the functions that need it.
"""

from __future__ import annotations

import resource
import time

from predrnn_tf.training import cpu_features


def conv_shapes(config, with_adapter: bool = True) -> list[tuple[int, int, int, int]]:
    """(kernel, in, out, count) of every convolution in one unrolled forward pass.

    ``with_adapter=False`` leaves out predrnn_v2's decoupling adapter, which a serving graph
    prunes (its loss is not an output there).
    """
    steps = config.total_length - 1
    shapes = []
    for layer, hidden in enumerate(config.num_hidden):
        inputs = config.patched_channels if layer == 0 else config.num_hidden[layer - 1]
        k = config.filter_size
        if config.model_name in ("predrnn_v2", "predrnn"):
            shapes += [(k, inputs, 7 * hidden, steps), (k, hidden, 4 * hidden, steps),
                       (k, hidden, 3 * hidden, steps), (k, 2 * hidden, hidden, steps),
                       (1, 2 * hidden, hidden, steps)]
            if config.model_name == "predrnn_v2" and with_adapter:
                shapes.append((1, hidden, hidden, 2 * steps))
        elif config.model_name == "predrnn_m_only":
            shapes += [(k, inputs, 4 * hidden, steps), (k, hidden, 3 * hidden, steps),
                       (k, hidden, hidden, steps)]
        else:
            shapes += [(k, inputs, 4 * hidden, steps), (k, hidden, 4 * hidden, steps)]
    shapes.append((1, config.num_hidden[-1], config.patched_channels, steps))
    return shapes


def conv_flops(kernel: int, inputs: int, outputs: int, batch: int, size: int) -> float:
    """Forward FLOPs (2 per multiply-add) of one stride-1 'same' convolution."""
    return 2.0 * batch * size * size * kernel * kernel * inputs * outputs


def update_flops(config) -> float:
    """Analytic FLOPs of one update: 3x the forward convolutions (forward, input and filter
    gradients); element-wise gate arithmetic is not counted."""
    size = config.patched_width
    return 3.0 * sum(count * conv_flops(k, cin, cout, config.batch_size, size)
                     for k, cin, cout, count in conv_shapes(config))


def best_seconds(function, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``function`` (after one untimed call).

    The best, not the mean: a peak is what TF can reach, and on a shared machine other
    processes only ever slow a call down. The outputs are not copied to NumPy (an eager
    call on the CPU returns when its ops are done; a copy would be timed as conv time).
    """
    function()
    best = float("inf")
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def make_conv_pass(kernel_size: int, inputs: int, outputs: int, batch: int, size: int,
                   dtype, backward: bool = True):
    """A ``tf.function`` running one convolution's forward pass, and with ``backward`` its
    input and filter gradients, on random ``[batch, size, size, inputs]`` data.

    It returns the forward output beside the gradients: the gradients of a convolution do
    not depend on its output, so a function returning only them would let TF prune the
    forward convolution away (an earlier version did, and timed 2 convolutions for 3).
    """
    import tensorflow as tf

    images = tf.random.normal([batch, size, size, inputs], dtype=dtype)
    kernel = tf.Variable(tf.random.normal([kernel_size, kernel_size, inputs, outputs],
                                          dtype=dtype))

    @tf.function
    def conv_pass():
        if not backward:
            return tf.nn.conv2d(images, kernel, 1, "SAME")
        with tf.GradientTape() as tape:
            tape.watch(images)
            features = tf.nn.conv2d(images, kernel, 1, "SAME")
            loss = tf.reduce_sum(tf.cast(features, tf.float32))
        return features, tape.gradient(loss, [images, kernel])

    return conv_pass


def distinct_conv_shapes(config, only_conv_h: bool = False) -> dict[tuple[int, int, int], int]:
    """``{(kernel, in, out): count}`` of :func:`conv_shapes`; with ``only_conv_h`` the one
    shape of the last layer's conv_h (what an emulated bfloat16 peak can afford to time)."""
    distinct = {}
    for k, cin, cout, count in conv_shapes(config):
        distinct[(k, cin, cout)] = distinct.get((k, cin, cout), 0) + count
    if only_conv_h:
        hidden = config.num_hidden[-1]
        key = (config.filter_size, hidden, 4 * hidden)
        return {key: distinct.get(key, 1)}
    return distinct


def measure_conv_peak(config, precision: str, repeats: int, backward: bool = True,
                      only_conv_h: bool = False) -> float:
    """GFLOP/s of forward + backward (or forward only) of the model's own conv shapes
    (the fused per-cell convolutions, the model's batch, patched size and compute dtype),
    each shape timed as the best of ``repeats`` and weighted by its count in a step
    (``only_conv_h``: the conv_h shape alone, see :func:`distinct_conv_shapes`)."""
    import tensorflow as tf

    dtype = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16,
             "mixed_float16": tf.float16}[precision]
    size, batch = config.patched_width, config.batch_size
    total_flops, total_time = 0.0, 0.0
    for (k, cin, cout), count in distinct_conv_shapes(config, only_conv_h).items():
        conv_pass = make_conv_pass(k, cin, cout, batch, size, dtype, backward)
        total_flops += (3.0 if backward else 1.0) * conv_flops(k, cin, cout, batch, size) * count
        total_time += best_seconds(conv_pass, repeats) * count
    return total_flops / total_time / 1e9


def synthetic_trainer(config):
    """``(trainer, train step, frames)``: the real train step fed one random batch forever.

    ``frames`` is the float32 batch ``[batch_size, total_length, W, W, C]``; reverse_input is
    off (one update per call).
    """
    import numpy as np
    import tensorflow as tf

    from predrnn_tf.training.trainer import Trainer

    config = config.replace(reverse_input=False)
    trainer = Trainer(config, "/nonexistent", tf.distribute.get_strategy())
    shape = (config.batch_size, config.total_length, config.img_width, config.img_width,
             config.img_channel)
    frames = np.random.default_rng(0).random(shape, dtype=np.float32)
    trainer.train_iterator = iter(tf.data.Dataset.from_tensors(frames).repeat())
    return trainer, trainer.make_train_step(), frames


def time_updates(config, warmup: int, steps: int) -> float:
    """Seconds per update of the real train step on an in-memory random batch."""
    import tensorflow as tf

    trainer, step, _ = synthetic_trainer(config)
    half = tf.constant(0.5)
    for _ in range(warmup):
        float(step(trainer.train_iterator, half, half)["loss"])
    start = time.perf_counter()
    for _ in range(steps):
        float(step(trainer.train_iterator, half, half)["loss"])
    return (time.perf_counter() - start) / steps


def time_forecasts(config, warmup: int, steps: int) -> float:
    """Seconds per call of the one compiled forecast (models/forecasting.py) on a random
    ``[batch_size, input_length, H, W, C]`` batch: ``total_length - 1`` steps, no gradient."""
    import numpy as np
    import tensorflow as tf

    from predrnn_tf.models.builder import build_model
    from predrnn_tf.models.forecasting import make_forecast_function

    model = build_model(config)
    forecast = make_forecast_function(model)
    shape = (config.batch_size, config.input_length, config.img_width, config.img_width,
             config.img_channel)
    inputs = tf.constant(np.random.default_rng(0).random(shape, dtype=np.float32))
    for _ in range(max(warmup, 1)):  # the first call traces
        forecast(inputs).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        forecast(inputs).numpy()
    return (time.perf_counter() - start) / steps


def peak_rss_gib() -> float:
    """This process's peak resident memory in GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    return cpu_features.cpu_flags()


def native_bfloat16() -> bool:
    """True if the CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16)."""
    return cpu_features.native_bfloat16(cpu_features.cpu_flags())


def onednn_convolutions() -> bool:
    """True if TensorFlow runs its CPU convolutions through oneDNN in this process.

    TF reads ``TF_ENABLE_ONEDNN_OPTS`` once, at import; unset, it is on only on CPUs with
    AVX512_VNNI, AVX512_BF16 or AMX (TF 2.21). Asks TF's own answer where it has one.
    """
    import tensorflow as tf

    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return tf.sysconfig.get_build_info().get("is_onednn_enabled", False)
