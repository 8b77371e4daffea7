"""The stacked recurrent model that owns the unroll: PredRNN-V2, PredRNN, M-only, ConvLSTM."""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from predrnn_tf.layers import ConvLSTMCell, SpatioTemporalLSTMCell, ZigzagMemoryCell
from predrnn_tf.layers.st_lstm_cell import make_conv
from predrnn_tf.models.advection import advect_frame, estimate_motion
from predrnn_tf.models.forecasting import unroll_forecast
from predrnn_tf.models.frame_change import shape_change
from predrnn_tf.models.inputs import check_mask, check_model_frames, check_output_length
from predrnn_tf.models.losses import adapted_decoupling_cosine
from predrnn_tf.models.masks import mask_index, mask_length
from predrnn_tf.models.patches import patch_frames, unpatch_frames

CELL_TYPES = {
    "predrnn_v2": "st_lstm",
    "predrnn": "st_lstm",
    "predrnn_m_only": "zigzag_memory",
    "convlstm": "conv_lstm",
}


def _data_one(values) -> tf.Tensor:
    """Exactly 1.0, computed from ``values`` so that no graph optimiser can fold it."""
    first = tf.cast(tf.reduce_max(tf.reshape(values, [-1])[:1]), tf.bool)
    return tf.where(tf.equal(first, first), tf.ones([], values.dtype), values.dtype.max)


@tf.custom_gradient
def gradient_chain(weight):
    """Identity; its gradient (times an unfoldable exact 1.0) ends one chain link.

    The remat unroll hands each step its own link of a chain of the weights, so the tape
    sums a weight's gradient step by step (one add of two per link) instead of keeping all
    ``T - 1`` per-step weight gradients for one ``AddN`` at the end (about 1.7 GB for the
    paper model). The multiply stops grappler from merging the adds back into that AddN.
    """
    def gradient(upstream):
        return upstream * _data_one(upstream)

    return tf.identity(weight), gradient


def remat_step(flat_step, variables):
    """``(recomputed step, weight tensors)``: ``flat_step(net, *state)`` under
    ``tf.recompute_grad`` with every weight passed in as a tensor (read once here, mapped
    onto its variable by a ``keras.StatelessScope``), so the step's weight gradients are
    ordinary input gradients that :func:`gradient_chain` can sum as the backward pass goes.
    """
    variables = list(variables)
    if not variables:
        return tf.recompute_grad(flat_step), []
    with keras.src.backend.AutocastScope(None):  # the stored dtype; layers cast per step
        weights = [tf.convert_to_tensor(variable.value) for variable in variables]

    def step(net, *tensors):
        state, step_weights = tensors[:-len(variables)], tensors[-len(variables):]
        with keras.StatelessScope(state_mapping=list(zip(variables, step_weights))):
            return flat_step(net, *state)

    return tf.recompute_grad(step), weights


def check_arguments(model_name, num_hidden, input_length, total_length, residual_frames,
                    advection_prior, dry_below, zero_mean_change=False) -> None:
    """Raises a ValueError stating the received values for a bad :class:`PredRNN` argument."""
    if model_name not in CELL_TYPES:
        raise ValueError(f"model_name must be one of {sorted(CELL_TYPES)}, "
                         f"received model_name={model_name!r}")
    if CELL_TYPES[model_name] != "conv_lstm" and len(set(num_hidden)) != 1:
        raise ValueError(f"{model_name} needs equal hidden sizes (M passes between layers), "
                         f"received num_hidden={num_hidden}")
    if not 1 <= input_length < total_length:
        raise ValueError(f"need 1 <= input_length < total_length, received "
                         f"input_length={input_length}, total_length={total_length}")
    if advection_prior and not residual_frames:
        raise ValueError("advection_prior=True needs residual_frames=True (the learned change "
                         "is added to the advected frame), received residual_frames=False")
    if not 0.0 <= dry_below < 1.0 or ((dry_below or zero_mean_change) and not residual_frames):
        raise ValueError("dry_below must be in [0, 1); it and zero_mean_change need residual_frames"
                         f"=True, received dry_below={dry_below}, residual_frames={residual_frames}"
                         f", zero_mean_change={zero_mean_change}")


class PredRNN(keras.Model):
    """A stack of recurrent cells unrolled over a frame sequence with sampled inputs.

    Layer 0 reads the patched frame, layer l > 0 reads the hidden state of layer l - 1.
    With ST-LSTM or M-only cells the spatiotemporal memory M zigzags: bottom-up through the
    layers within a step, and from the top layer at step t to layer 0 at step t + 1. All
    states start at zero. A bias-free 1x1 convolution maps the top hidden state to the
    next patched frame.

    Args:
      model_name: one of ``predrnn_v2``, ``predrnn``, ``predrnn_m_only``, ``convlstm``.
      num_hidden: hidden channels per layer.
      filter_size: kernel size of the cells.
      patch_size: space-to-depth factor p.
      img_channel: channels of the image frames.
      input_length: frames given before the forecast starts.
      total_length: frames per training sequence.
      layer_norm: layer normalisation inside the ST-LSTM cells.
      reverse_scheduled_sampling: mask layout, see :meth:`call`.
      memory_bottom_up: pass M from layer l - 1 to layer l within a step (ablation if False:
        each layer keeps its own M from the previous step).
      memory_top_down: pass the top layer's M to layer 0 at the next step (ablation if False:
        layer 0 keeps its own M from the previous step).
      conv_lstm_peephole: peephole connections in the ConvLSTM baseline.
      remat: recompute each time step's activations in the backward pass
        (``tf.recompute_grad`` around one step of the whole stack): far less memory in
        training, the same gradients, one more forward pass of compute.
      residual_frames: each predicted frame is the step's input frame (true or fed back)
        plus the output convolution's change; that convolution starts at zero, so an
        untrained model is persistence. Not in the official code (a radar option).
      advection_prior: with ``residual_frames``, the change is added to the step's input
        frame moved one step along the motion of the true input frames
        (:mod:`predrnn_tf.models.advection`) instead of to the input frame itself: an
        untrained model is an extrapolation forecast. Not in the official code.
      dry_below: with ``residual_frames``, a pixel of the prior frame (the input, or the
        input advected) below this [0, 1] value is dry and keeps the prior's value: the
        learned change acts only on rain, so the model cannot paint rain on dry ground.
        0 (the default) lets the change act everywhere. Not in the official code.
      zero_mean_change: with ``residual_frames``, the change has zero mean over the prior's
        wet pixels (:mod:`predrnn_tf.models.frame_change`). Not in the official code.
      **kwargs: standard Keras model arguments.
    """

    def __init__(self, model_name: str = "predrnn_v2", num_hidden=(128, 128, 128, 128),
                 filter_size: int = 5, patch_size: int = 4, img_channel: int = 1,
                 input_length: int = 10, total_length: int = 20, layer_norm: bool = False,
                 reverse_scheduled_sampling: bool = True, memory_bottom_up: bool = True,
                 memory_top_down: bool = True, conv_lstm_peephole: bool = False,
                 remat: bool = False, residual_frames: bool = False,
                 advection_prior: bool = False, dry_below: float = 0.0,
                 zero_mean_change: bool = False, **kwargs):
        super().__init__(**kwargs)
        num_hidden = tuple(int(size) for size in num_hidden)
        check_arguments(model_name, num_hidden, input_length, total_length, residual_frames,
                        advection_prior, dry_below, zero_mean_change)
        cell_type = CELL_TYPES[model_name]
        self.model_name = model_name
        self.num_hidden = num_hidden
        self.filter_size = filter_size
        self.patch_size = patch_size
        self.img_channel = img_channel
        self.input_length = input_length
        self.total_length = total_length
        self.layer_norm = layer_norm
        self.reverse_scheduled_sampling = reverse_scheduled_sampling
        self.memory_bottom_up = memory_bottom_up
        self.memory_top_down = memory_top_down
        self.conv_lstm_peephole = conv_lstm_peephole
        self.remat = bool(remat)
        self.residual_frames = bool(residual_frames)
        self.advection_prior = bool(advection_prior)
        self.dry_below = float(dry_below)
        self.zero_mean_change = bool(zero_mean_change)
        self.cell_type = cell_type
        self.num_layers = len(num_hidden)
        self.cells = [self._make_cell(index, size) for index, size in enumerate(num_hidden)]
        for cell in self.cells:  # tf.train.Checkpoint does not follow Keras 3 lists (TrackedList).
            setattr(self, cell.name, cell)
        self.output_conv = make_conv(patch_size * patch_size * img_channel, 1, "output_conv")
        if self.residual_frames:
            self.output_conv.kernel_initializer = keras.initializers.Zeros()
        self.adapter = None
        if model_name == "predrnn_v2":
            self.adapter = make_conv(num_hidden[0], 1, "adapter")

    def _make_cell(self, index: int, size: int) -> keras.layers.Layer:
        name = f"cell_{index}"
        if self.cell_type == "st_lstm":
            return SpatioTemporalLSTMCell(size, self.filter_size, self.layer_norm, name=name)
        if self.cell_type == "zigzag_memory":
            return ZigzagMemoryCell(size, self.filter_size, name=name)
        return ConvLSTMCell(size, self.filter_size, self.conv_lstm_peephole, name=name)

    @property
    def mask_length(self) -> int:
        """Mask entries per sample for a training sequence of ``total_length`` frames."""
        return mask_length(self.reverse_scheduled_sampling, self.input_length, self.total_length)

    def build(self, frames_shape, mask_shape=None):
        """Creates every weight from the frame shape ``[B, T, H, W, C]``, without computing."""
        batch, _, height, width, _ = frames_shape
        p = self.patch_size
        patched_height = None if height is None else height // p
        patched_width = None if width is None else width // p
        input_channels = p * p * self.img_channel
        for index, cell in enumerate(self.cells):
            channels = input_channels if index == 0 else self.num_hidden[index - 1]
            inputs_shape = (batch, patched_height, patched_width, channels)
            state_shape = (batch, patched_height, patched_width, self.num_hidden[index])
            if self.cell_type == "st_lstm":
                cell.build(inputs_shape, state_shape, state_shape, state_shape)
            else:
                cell.build(inputs_shape, state_shape)
        top_shape = (batch, patched_height, patched_width, self.num_hidden[-1])
        self.output_conv.build(top_shape)
        if self.adapter is not None:
            self.adapter.build(top_shape)
        self.built = True

    def call(self, frames, mask, training=None):
        """Unrolls ``T - 1`` steps and predicts frames 2..T.

        Args:
          frames: ``[B, T, H, W, C]`` float in [0, 1]; T must be static.
          mask: ``[B, M]`` 0/1 per (sample, step). With reverse scheduled sampling
            ``M = T - 2`` and step ``t >= 1`` reads ``mask[:, t-1]*true_t + (1-mask)*x_gen``;
            otherwise ``M = T - input_length - 1`` and step ``t >= input_length`` reads
            ``mask[:, t-input_length]*true_t + (1-mask)*x_gen``.
          training: no dropout or batch norm; ``False`` (the forecast) lets a mixed-precision
          model cast its kernels once per call instead of once per step.

        Returns:
          ``(predictions, decouple_loss)``: predictions ``[B, T-1, H, W, C]`` float32 and the
          decoupling loss, a float32 scalar: the mean |cosine| over layers, steps and the
          batch (0 unless ``predrnn_v2``). A distributed caller scales it by its share of
          the global batch (see predrnn_tf/training/trainer.py).
        """
        dtype = self.compute_dtype
        time_steps = frames.shape[1]
        if time_steps is None:
            raise ValueError("frames must have a static time dimension, received None")
        patches = patch_frames(tf.cast(frames, dtype), self.patch_size)  # [B, T, Hp, Wp, p*p*C]
        mask = check_mask(mask, frames.shape[0], mask_length(
            self.reverse_scheduled_sampling, self.input_length, time_steps))  # [B, M]
        mask = tf.cast(mask, dtype)[:, :, None, None, None]  # [B, M, 1, 1, 1]
        state = self._flat_state(self._zero_state(patches))
        kernels = self._kernels_cast_once(training)
        if self.remat:
            step_function, weights = remat_step(self._flat_step, self.variables)
        else:
            step_function, weights = functools.partial(self._flat_step, kernels=kernels), []
        motion = self._input_motion(frames)  # [B, H, W, 2], None without the advection prior
        predictions, cosines, generated = [], [], None
        for step in range(time_steps - 1):
            net = self._step_input(patches, mask, generated, step)
            if step > 0:
                weights = [gradient_chain(weight) for weight in weights]
            outputs = step_function(net, *state, *weights)
            generated = self._add_frame_prior(outputs[0], net, motion)
            state = list(outputs[1:1 + len(state)])
            predictions.append(generated)
            cosines.extend(outputs[1 + len(state):])
        predictions = tf.stack(predictions, axis=1)  # [B, T-1, Hp, Wp, p*p*C]
        predictions = tf.cast(unpatch_frames(predictions, self.patch_size), tf.float32)
        if cosines:
            decouple_loss = tf.reduce_mean(tf.stack(cosines, axis=0))  # mean of [steps*L, B]
        else:
            decouple_loss = tf.zeros([], tf.float32)
        return predictions, decouple_loss

    def _flat_state(self, state):
        """The state dict as one flat list: hidden, cell, memory (each one per layer)."""
        return [*state["hidden"], *state["cell"], *state["memory"]]

    def _kernels_cast_once(self, training):
        """Per layer, the ST-LSTM kernels cast to the compute dtype once for the whole unroll.

        Only under a mixed policy, with ``training=False`` (the forecast) and without remat;
        otherwise None: Keras casts each kernel at every step, and a training step's kernel
        gradients then add up in float32, one cast per use.
        """
        if (training is not False or self.remat or self.cell_type != "st_lstm"
                or self.compute_dtype == self.variable_dtype):
            return None
        return [cell.cast_kernels(self.compute_dtype) for cell in self.cells]

    def _flat_step(self, net, *flat_state, kernels=None):
        """One step of the whole stack on tensors only (the unit ``tf.recompute_grad`` wraps).

        Returns:
          ``(generated, *new flat state, *per-layer [B] cosines)``.
        """
        layers = self.num_layers
        state = {"hidden": list(flat_state[:layers]),
                 "cell": list(flat_state[layers:2 * layers]),
                 "memory": list(flat_state[2 * layers:])}
        top_hidden, cosines = self._step(net, state, kernels)
        generated = self.output_conv(top_hidden)
        return (generated, *self._flat_state(state), *cosines)

    def _input_motion(self, frames):
        if not self.advection_prior:
            return None
        return estimate_motion(frames[:, :self.input_length])

    def _add_frame_prior(self, change, net, motion):
        """A residual model's frame: the step input (or it advected) plus the shaped change."""
        if not self.residual_frames:
            return change
        prior = net  # [B, Hp, Wp, p*p*C]: persistence
        if motion is not None:
            frame = unpatch_frames(net[:, None], self.patch_size)[:, 0]  # [B, H, W, C]
            prior = patch_frames(advect_frame(frame, motion)[:, None], self.patch_size)[:, 0]
        return shape_change(change, prior, self.dry_below, self.zero_mean_change) + prior

    def _zero_state(self, patches):
        shape = tf.shape(patches)
        def zeros(channels):
            return tf.zeros([shape[0], shape[2], shape[3], channels], patches.dtype)
        return {
            "hidden": [zeros(size) for size in self.num_hidden],
            "cell": [zeros(size) for size in self.num_hidden],
            "memory": [zeros(size) for size in self.num_hidden],
        }

    def _step_input(self, patches, mask, generated, step):
        true_frame = patches[:, step]
        index = mask_index(step, self.reverse_scheduled_sampling, self.input_length)
        if generated is None or index is None:
            return true_frame
        with tf.name_scope("mask_mixing"):
            weight = mask[:, index]
            return weight * true_frame + (1.0 - weight) * generated

    def _memory_input(self, state, layer):
        memory = state["memory"]
        if layer == 0:
            return memory[-1] if self.memory_top_down else memory[0]
        return memory[layer - 1] if self.memory_bottom_up else memory[layer]

    def _step(self, net, state, kernels=None):
        """Advances every layer one step in place; returns (top hidden, list of [B] cosines)."""
        cosines = []
        for layer, cell in enumerate(self.cells):
            inputs = net if layer == 0 else state["hidden"][layer - 1]
            if self.cell_type == "st_lstm":
                memory = self._memory_input(state, layer)
                hidden, cell_state, memory, delta_c, delta_m = cell(
                    inputs, state["hidden"][layer], state["cell"][layer], memory,
                    kernels=None if kernels is None else kernels[layer])
                state["cell"][layer] = cell_state
                state["memory"][layer] = memory
                if self.adapter is not None:
                    cosines.append(self._decoupling(delta_c, delta_m))
            elif self.cell_type == "zigzag_memory":
                hidden, memory = cell(inputs, self._memory_input(state, layer))
                state["memory"][layer] = memory
            else:
                hidden, cell_state = cell(inputs, state["hidden"][layer], state["cell"][layer])
                state["cell"][layer] = cell_state
            state["hidden"][layer] = hidden
        return state["hidden"][-1], cosines

    def _decoupling(self, delta_c, delta_m):
        with tf.name_scope("decoupling_loss"):
            return adapted_decoupling_cosine(self.adapter, delta_c, delta_m)

    def forecast(self, input_frames, output_length: int | None = None):
        """Forecasts ``output_length`` frames from ``[B, input_length, H, W, C]`` inputs.

        All inputs are true frames; every later step reads the model's own prediction.

        Args:
          input_frames: ``[B, input_length, H, W, C]`` float in [0, 1] or uint8 0..255
            (the accepted input: :mod:`predrnn_tf.models.inputs`).
          output_length: frames to forecast, a positive int; None = as trained.

        Returns:
          ``[B, output_length, H, W, C]`` float32 (not clipped).

        Raises:
          InputError: one line, for a wrong rank, shape, dtype, range, NaN or length.
        """
        output_length = check_output_length(output_length, self.total_length - self.input_length)
        return unroll_forecast(self, check_model_frames(self, input_frames), output_length)

    def get_config(self):
        config = super().get_config()
        config.update({
            "model_name": self.model_name,
            "num_hidden": list(self.num_hidden),
            "filter_size": self.filter_size,
            "patch_size": self.patch_size,
            "img_channel": self.img_channel,
            "input_length": self.input_length,
            "total_length": self.total_length,
            "layer_norm": self.layer_norm,
            "reverse_scheduled_sampling": self.reverse_scheduled_sampling,
            "memory_bottom_up": self.memory_bottom_up,
            "memory_top_down": self.memory_top_down,
            "conv_lstm_peephole": self.conv_lstm_peephole,
            "remat": self.remat,
            "residual_frames": self.residual_frames,
            "advection_prior": self.advection_prior,
            "dry_below": self.dry_below,
            "zero_mean_change": self.zero_mean_change,
        })
        return config
