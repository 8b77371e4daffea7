"""The paper's stacked unroll: PredRNN-V2, PredRNN, M-only (zigzag memory) and ConvLSTM.

Which cell a variant stacks, and whether it has the decoupling adapter, is the table
:data:`VARIANTS`; how each cell is made, built and stepped is the registry
:mod:`predrnn_tf.models.cells`. Anything beyond the paper's output (the radar recipe's
residual frames) is an ``output_head`` composed around the unroll
(:mod:`predrnn_tf.models.radar_head`), not an option of this class.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import keras
import tensorflow as tf

from predrnn_tf.layers.st_lstm_cell import make_conv
from predrnn_tf.models.base import RecurrentModel, check_lengths
from predrnn_tf.models.cells import CellKind, CellOptions, get_cell_kind
from predrnn_tf.models.losses import adapted_decoupling_cosine
from predrnn_tf.models.remat import gradient_chain, remat_step


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model of the PredRNN family.

    Attributes:
      cell_kind: the :data:`predrnn_tf.models.cells.CELL_KINDS` key of its cells.
      decouple: it has the shared 1x1 ``adapter`` and a decoupling loss (PredRNN-V2).
    """

    cell_kind: str
    decouple: bool = False


VARIANTS: dict[str, Variant] = {
    "predrnn_v2": Variant("st_lstm", decouple=True),
    "predrnn": Variant("st_lstm"),
    "predrnn_m_only": Variant("zigzag_memory"),
    "convlstm": Variant("conv_lstm"),
}


def check_arguments(model_name: str, num_hidden, input_length: int, total_length: int) -> None:
    """Raises a ValueError stating the received values for a bad :class:`PredRNN` argument."""
    if model_name not in VARIANTS:
        raise ValueError(f"model_name must be one of {sorted(VARIANTS)}, "
                         f"received model_name={model_name!r}")
    if get_cell_kind(VARIANTS[model_name].cell_kind).uses_memory and len(set(num_hidden)) != 1:
        raise ValueError(f"{model_name} needs equal hidden sizes (M passes between layers), "
                         f"received num_hidden={num_hidden}")
    check_lengths(input_length, total_length)


class PredRNN(RecurrentModel):
    """A stack of recurrent cells unrolled over a frame sequence with sampled inputs.

    Layer 0 reads the patched frame, layer l > 0 reads the hidden state of layer l - 1.
    With ST-LSTM or M-only cells the spatiotemporal memory M zigzags: bottom-up through the
    layers within a step, and from the top layer at step t to layer 0 at step t + 1. All
    states start at zero. A bias-free 1x1 convolution maps the top hidden state to the
    next patched frame (or, with an ``output_head``, to what the head makes a frame of).

    Args:
      model_name: a :data:`VARIANTS` key: ``predrnn_v2``, ``predrnn``, ``predrnn_m_only``,
        ``convlstm``.
      num_hidden, filter_size, patch_size, img_channel, input_length, total_length,
      layer_norm, reverse_scheduled_sampling: as :class:`~predrnn_tf.models.base.RecurrentModel`.
      memory_bottom_up: pass M from layer l - 1 to layer l within a step (ablation if False:
        each layer keeps its own M from the previous step).
      memory_top_down: pass the top layer's M to layer 0 at the next step (ablation if False:
        layer 0 keeps its own M from the previous step).
      conv_lstm_peephole: peephole connections in the ConvLSTM baseline.
      remat: recompute each time step's activations in the backward pass
        (``tf.recompute_grad`` around one step of the whole stack): far less memory in
        training, the same gradients, one more forward pass of compute.
      output_head: None (the paper: the output convolution gives the frame), or a weightless
        layer ``head(change, step_input, motion, patch_size=p) -> frame`` with
        ``input_motion(input_frames)`` and ``output_kernel_initializer`` (e.g.
        :class:`~predrnn_tf.models.radar_head.RadarHead`).
      **kwargs: standard Keras model arguments.
    """

    CONFIG_FIELDS: ClassVar[tuple[str, ...]] = RecurrentModel.CONFIG_FIELDS + (
        "model_name", "memory_bottom_up", "memory_top_down", "conv_lstm_peephole", "remat")

    def __init__(self, model_name: str = "predrnn_v2", num_hidden=(128, 128, 128, 128),
                 filter_size: int = 5, patch_size: int = 4, img_channel: int = 1,
                 input_length: int = 10, total_length: int = 20, layer_norm: bool = False,
                 reverse_scheduled_sampling: bool = True, memory_bottom_up: bool = True,
                 memory_top_down: bool = True, conv_lstm_peephole: bool = False,
                 remat: bool = False, output_head: keras.layers.Layer | None = None, **kwargs):
        num_hidden = tuple(int(size) for size in num_hidden)
        check_arguments(model_name, num_hidden, input_length, total_length)
        super().__init__(num_hidden, filter_size, patch_size, img_channel, input_length,
                         total_length, layer_norm, reverse_scheduled_sampling, **kwargs)
        self.model_name = model_name
        self.memory_bottom_up = memory_bottom_up
        self.memory_top_down = memory_top_down
        self.conv_lstm_peephole = conv_lstm_peephole
        self.remat = bool(remat)
        self.cell_kind: CellKind = get_cell_kind(VARIANTS[model_name].cell_kind)
        options = CellOptions(filter_size, layer_norm, conv_lstm_peephole)
        self.cells = [self.cell_kind.make(size, options, f"cell_{index}")
                      for index, size in enumerate(num_hidden)]
        self._track_cells(self.cells)
        self.output_conv = make_conv(patch_size * patch_size * img_channel, 1, "output_conv")
        self.output_head = output_head
        initializer = getattr(output_head, "output_kernel_initializer", None)
        if initializer is not None:
            self.output_conv.kernel_initializer = keras.initializers.get(initializer)
        self.adapter = None
        if VARIANTS[model_name].decouple:
            self.adapter = make_conv(num_hidden[0], 1, "adapter")

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
            self.cell_kind.build(cell, inputs_shape, state_shape)
        top_shape = (batch, patched_height, patched_width, self.num_hidden[-1])
        self.output_conv.build(top_shape)
        if self.adapter is not None:
            self.adapter.build(top_shape)
        self.built = True

    def call(self, frames, mask, training=None):
        """Unrolls ``T - 1`` steps and predicts frames 2..T.

        Args:
          frames: ``[B, T, H, W, C]`` float in [0, 1]; T must be static.
          mask: ``[B, M]`` 0/1 per (sample, step) (layout: :mod:`predrnn_tf.masks`). With
            reverse scheduled sampling ``M = T - 2`` and step ``t >= 1`` reads
            ``mask[:, t-1]*true_t + (1-mask)*x_gen``; otherwise ``M = T - input_length - 1``
            and step ``t >= input_length`` reads ``mask[:, t-input_length]*true_t + ...``.
          training: no dropout or batch norm; ``False`` (the forecast) lets a mixed-precision
            model cast its kernels once per call instead of once per step.

        Returns:
          ``(predictions, decouple_loss)``: predictions ``[B, T-1, H, W, C]`` float32 and the
          decoupling loss, a float32 scalar: the mean |cosine| over layers, steps and the
          batch (0 unless ``predrnn_v2``). A distributed caller scales it by its share of
          the global batch (see predrnn_tf/training/trainer.py).
        """
        patches, mask = self._prepare_inputs(frames, mask)  # [B, T, Hp, Wp, p*p*C], [B, M, ...]
        state = self._flat_state(self._zero_state(patches))
        if self.remat:
            step_function, weights = remat_step(self._flat_step, self.variables)
        else:
            kernels = self._kernels_cast_once(training)
            step_function, weights = functools.partial(self._flat_step, kernels=kernels), []
        motion = None
        if self.output_head is not None:
            motion = self.output_head.input_motion(frames[:, :self.input_length])
        predictions, cosines, generated = [], [], None
        for step in range(frames.shape[1] - 1):
            if step == self.input_length - 1:  # the first forecast step
                state = self._perturbed_state(state)
            net = self._step_input(patches, mask, generated, step)
            if step > 0:
                weights = [gradient_chain(weight) for weight in weights]
            outputs = step_function(net, *state, *weights)
            generated = self._frame(outputs[0], net, motion)
            state = list(outputs[1:1 + len(state)])
            predictions.append(generated)
            cosines.extend(outputs[1 + len(state):])
        return self._finish(predictions, cosines)

    def _perturbed_state(self, state):
        """The head's ``perturb_state(state)`` (an ensemble's member noise), else ``state``."""
        perturb = getattr(self.output_head, "perturb_state", None)
        return state if perturb is None else perturb(state)

    def _frame(self, change, net, motion):
        """The step's patched frame: the output itself, or the head's frame of it."""
        if self.output_head is None:
            return change
        return self.output_head(change, net, motion, patch_size=self.patch_size)

    def _flat_state(self, state):
        """The state dict as one flat list: hidden, cell, memory (each one per layer)."""
        return [*state["hidden"], *state["cell"], *state["memory"]]

    def _kernels_cast_once(self, training):
        """Per layer, the cells' kernels cast to the compute dtype once for the whole unroll.

        Only under a mixed policy, with ``training=False`` (the forecast), without remat and
        for cells that can (:attr:`CellKind.casts_kernels`); otherwise None: Keras casts each
        kernel at every step, and a training step's kernel gradients then add up in float32,
        one cast per use.
        """
        if (training is not False or self.remat or not self.cell_kind.casts_kernels
                or self.compute_dtype == self.variable_dtype):
            return None
        return [cell.cast_kernels(self.compute_dtype) for cell in self.cells]

    def _flat_step(self, net, *flat_state, kernels=None):
        """One step of the whole stack on tensors only (the unit ``tf.recompute_grad`` wraps).

        Returns:
          ``(output, *new flat state, *per-layer [B] cosines)``.
        """
        layers = self.num_layers
        state = {"hidden": list(flat_state[:layers]),
                 "cell": list(flat_state[layers:2 * layers]),
                 "memory": list(flat_state[2 * layers:])}
        top_hidden, cosines = self._step(net, state, kernels)
        output = self.output_conv(top_hidden)
        return (output, *self._flat_state(state), *cosines)

    def _zero_state(self, patches):
        shape = tf.shape(patches)

        def zeros(channels):
            return tf.zeros([shape[0], shape[2], shape[3], channels], patches.dtype)

        return {
            "hidden": [zeros(size) for size in self.num_hidden],
            "cell": [zeros(size) for size in self.num_hidden],
            "memory": [zeros(size) for size in self.num_hidden],
        }

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
            hidden, cell_state, memory, increments = self.cell_kind.step(
                cell, inputs, state["hidden"][layer], state["cell"][layer],
                self._memory_input(state, layer),
                None if kernels is None else kernels[layer])
            state["hidden"][layer], state["cell"][layer] = hidden, cell_state
            if self.cell_kind.uses_memory:
                state["memory"][layer] = memory
            if self.adapter is not None and increments is not None:
                cosines.append(self._decoupling(*increments))
        return state["hidden"][-1], cosines

    def _decoupling(self, delta_c, delta_m):
        with tf.name_scope("decoupling_loss"):
            return adapted_decoupling_cosine(self.adapter, delta_c, delta_m)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["output_head"] = (None if self.output_head is None
                                 else keras.saving.serialize_keras_object(self.output_head))
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PredRNN:
        config = dict(config)
        head = config.pop("output_head", None)
        if head is not None:
            head = keras.saving.deserialize_keras_object(head)
        return cls(output_head=head, **config)
