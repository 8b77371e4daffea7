"""MIM (Memory In Memory, Wang et al., CVPR 2019) as OpenSTL implements it, with decoupling.

The unroll is OpenSTL's ``openstl/models/mim_model.py`` ``MIM_Model.forward`` (transcribed in
tools/openstl_mim_reference.py and parity-tested in tests/test_mim.py): layer 0 is an
ST-LSTM, layers l >= 1 are MIM blocks, and layers 0 .. L-2 each feed a MIM-N cell whose
output drives the MIM-S inside the block above. The spatiotemporal memory M zigzags as in
PredRNN. Patching, the mask layout and the call / forecast contract are PredRNN's.

Where OpenSTL (and the authors' code it ports) differs from the paper's equations, this
model follows OpenSTL so that OpenSTL checkpoints import (predrnn_tf/interop/mim_pytorch.py):

1. Every convolution is bias-free and every forget gate gets a constant ``+1.0``; the paper
   writes learnt biases ``b``.
2. MIM-N and MIM-S are peephole ConvLSTMs with a hidden state *and* a cell state: gates
   read convolutions of the previous hidden state (for MIM-S: the block's C_{t-1}) and
   element-wise (Hadamard) peepholes ``ct_weight`` on the previous cell state for i and f and
   ``oc_weight`` on the new cell state for o, both zero-initialised ``[C, H, W]`` tensors. The
   paper's MIM-N gates read only the difference and a convolution of N_{t-1}.
3. The MIM-N of layer l >= 2 reads the MIM-N output of layer l - 1, not the difference
   ``H^{l-1}_t - H^{l-1}_{t-1}`` of the hidden states of layer l - 1 (the paper). Only the
   first MIM-N reads a difference, ``H^0_t - H^0_{t-1}``.
4. At the first step MIM-N is not run (OpenSTL calls it on zeros and discards the result):
   every MIM block reads a zero difference, and MIM-N starts from zero state at step 1. The
   paper would read ``H_1 - 0``.
5. Inside the MIM block the gates i, g and i', g' share the input convolution (one
   ``conv_x_cc`` gives i_x, g_x, f_x, o_x for both C and M), the output gate is
   ``sigmoid(o_x + o_t + o_s)`` from x, H_{t-1} and the *incoming* M (no term in the new C_t
   and M_t, unlike the paper's ST-LSTM-style output gate).
6. The MIM-S memory S (OpenSTL ``convlstm_c``) is detached at every step: no gradient flows
   into S_{t-1} (``stop_stationary_gradient=True`` keeps this; False lets it flow).
7. OpenSTL keeps S as module state that survives from one forward call (batch) to the next
   and never resets it; here S starts at zero for every sequence, like every other state
   (sequences are independent, and graphs and serving stay stateless). The forward passes
   agree when OpenSTL's S is reset before each call (``reset_mim_states``).
8. OpenSTL's MIMN creates a ``conv_last`` it never uses; it has no variable here (the import
   checks and drops it, the export writes zeros).

Decoupling (PredRNN-V2's loss, not in MIM or OpenSTL): with ``decouple=True`` one shared,
bias-free 1x1 ``adapter`` maps the memory increments of every layer at every step, and the
loss is the mean |cosine| (:func:`decoupling_cosine`) between the adapted increments of the
cell memory C and of the spatiotemporal memory M, averaged over layers and steps:

* layer 0 (ST-LSTM): ``delta_c = i * g`` and ``delta_m = i' * g'``, as in PredRNN-V2;
* MIM blocks: ``delta_c = sigmoid(i_x + i_t) * tanh(g_x + g_t)``, the new content written to
  C on top of the MIM-S output (``C_t = T_t + delta_c``), and
  ``delta_m = sigmoid(i_x + i_s) * tanh(g_x + g_s)``, the new content written to M
  (``M_t = f' * M + delta_m``). MIM-N and MIM-S memories are not decoupled.
"""

from __future__ import annotations

from typing import ClassVar

import tensorflow as tf

from predrnn_tf.layers.mim_cell import MIMBlockCell, NonStationaryCell
from predrnn_tf.layers.st_lstm_cell import SpatioTemporalLSTMCell, make_conv
from predrnn_tf.models.base import RecurrentModel, check_lengths
from predrnn_tf.models.losses import adapted_decoupling_cosine


class MIM(RecurrentModel):
    """MIM unrolled over a frame sequence with sampled inputs; see the module docstring.

    Args:
      num_hidden: hidden channels per layer; all equal (OpenSTL's cells need it).
      filter_size: kernel size of the cells.
      patch_size: space-to-depth factor p.
      img_channel: channels of the image frames.
      input_length: frames given before the forecast starts.
      total_length: frames per training sequence.
      layer_norm: layer normalisation inside every cell (OpenSTL ``layer_norm``).
      reverse_scheduled_sampling: mask layout, see :meth:`call`.
      decouple: add the shared adapter and compute the decoupling loss; if False the loss is
        zeros (use with ``decouple_beta=0``) and the model has exactly OpenSTL's weights.
      stop_stationary_gradient: detach the MIM-S memory between steps, as OpenSTL.
      **kwargs: standard Keras model arguments.
    """

    CONFIG_FIELDS: ClassVar[tuple[str, ...]] = RecurrentModel.CONFIG_FIELDS + (
        "decouple", "stop_stationary_gradient")

    def __init__(self, num_hidden=(128, 128, 128, 128), filter_size: int = 5,
                 patch_size: int = 4, img_channel: int = 1, input_length: int = 10,
                 total_length: int = 20, layer_norm: bool = False,
                 reverse_scheduled_sampling: bool = False, decouple: bool = True,
                 stop_stationary_gradient: bool = True, **kwargs):
        num_hidden = tuple(int(size) for size in num_hidden)
        if not num_hidden or len(set(num_hidden)) != 1:
            raise ValueError(f"MIM needs one or more equal hidden sizes (its cells pass states "
                             f"between layers), received num_hidden={num_hidden}")
        check_lengths(input_length, total_length)
        super().__init__(num_hidden, filter_size, patch_size, img_channel, input_length,
                         total_length, layer_norm, reverse_scheduled_sampling, **kwargs)
        self.decouple = decouple
        self.stop_stationary_gradient = stop_stationary_gradient
        size = num_hidden[0]
        self.cells = [SpatioTemporalLSTMCell(size, filter_size, layer_norm, name="cell_0")]
        self.cells += [MIMBlockCell(size, filter_size, layer_norm, name=f"cell_{index}")
                       for index in range(1, self.num_layers)]
        self.difference_cells = [NonStationaryCell(size, filter_size, layer_norm,
                                                   name=f"difference_cell_{index}")
                                 for index in range(self.num_layers - 1)]
        self._track_cells(self.cells + self.difference_cells)
        self.output_conv = make_conv(patch_size * patch_size * img_channel, 1, "output_conv")
        self.adapter = make_conv(size, 1, "adapter") if decouple else None

    def build(self, frames_shape, mask_shape=None):
        """Creates every weight from the frame shape ``[B, T, H, W, C]``, without computing.

        Raises:
          ValueError: if H or W is not static (the peepholes and layer norms are (H, W, C)).
        """
        batch, _, height, width, _ = frames_shape
        if height is None or width is None:
            raise ValueError(f"MIM needs a static frame size, received frames_shape="
                             f"{tuple(frames_shape)}")
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"frame size {height}x{width} is not a multiple of "
                             f"patch_size={p}")
        size = self.num_hidden[0]
        state_shape = (batch, height // p, width // p, size)
        frame_shape = (batch, height // p, width // p, p * p * self.img_channel)
        self.cells[0].build(frame_shape, state_shape, state_shape, state_shape)
        for cell in self.cells[1:]:
            cell.build(state_shape, *[state_shape] * 5)
        for cell in self.difference_cells:
            cell.build(state_shape, state_shape, state_shape)
        self.output_conv.build(state_shape)
        if self.adapter is not None:
            self.adapter.build(state_shape)
        self.built = True

    def call(self, frames, mask, training=None):
        """Unrolls ``T - 1`` steps and predicts frames 2..T.

        Args:
          frames: ``[B, T, H, W, C]`` float in [0, 1]; T, H and W must be static.
          mask: ``[B, M]`` 0/1 per (sample, step), laid out as for PredRNN
            (:mod:`predrnn_tf.masks`): with reverse scheduled sampling ``M = T - 2`` and
            step ``t >= 1`` reads ``mask[:, t-1]*true_t + (1-mask)*x_gen``; otherwise
            ``M = T - input_length - 1`` and step ``t >= input_length`` reads
            ``mask[:, t-input_length]*true_t + (1-mask)*x_gen``.
          training: unused (no dropout or batch norm); kept for the Keras contract.

        Returns:
          ``(predictions, decouple_loss)``: predictions ``[B, T-1, H, W, C]`` float32 and the
          decoupling loss, a float32 scalar: the mean over layers, steps and the batch (0
          when ``decouple`` is False), as :meth:`PredRNN.call`.
        """
        del training
        patches, mask = self._prepare_inputs(frames, mask)  # [B, T, Hp, Wp, p*p*C], [B, M, ...]
        state = self._zero_state(patches)
        predictions, cosines, generated = [], [], None
        for step in range(frames.shape[1] - 1):
            net = self._step_input(patches, mask, generated, step)
            top_hidden = self._step(net, state, step, cosines)
            generated = self.output_conv(top_hidden)
            predictions.append(generated)
        return self._finish(predictions, cosines)

    def _zero_state(self, patches):
        shape = tf.shape(patches)
        zeros = tf.zeros([shape[0], shape[2], shape[3], self.num_hidden[0]], patches.dtype)
        layers = self.num_layers
        return {
            "hidden": [zeros] * layers,
            "cell": [zeros] * layers,
            "stationary_cell": [zeros] * layers,  # index 0 unused (layer 0 is an ST-LSTM)
            "difference_hidden": [zeros] * (layers - 1),
            "difference_cell": [zeros] * (layers - 1),
            "memory": zeros,
        }

    def _step(self, net, state, step, cosines):
        """Advances every layer one step in place, appending [B] cosines; returns top hidden."""
        previous_bottom = state["hidden"][0]
        hidden, cell, memory, delta_c, delta_m = self.cells[0](
            net, state["hidden"][0], state["cell"][0], state["memory"])
        state["hidden"][0], state["cell"][0], state["memory"] = hidden, cell, memory
        self._add_decoupling(cosines, delta_c, delta_m)
        for layer in range(1, self.num_layers):
            if step > 0:
                self._advance_difference(state, layer - 1, previous_bottom)
            stationary_cell = state["stationary_cell"][layer]
            if self.stop_stationary_gradient:
                stationary_cell = tf.stop_gradient(stationary_cell)
            outputs = self.cells[layer](
                state["hidden"][layer - 1], state["difference_hidden"][layer - 1],
                state["hidden"][layer], state["cell"][layer], state["memory"], stationary_cell)
            hidden, cell, memory, stationary_cell, delta_c, delta_m = outputs
            state["hidden"][layer], state["cell"][layer] = hidden, cell
            state["memory"], state["stationary_cell"][layer] = memory, stationary_cell
            self._add_decoupling(cosines, delta_c, delta_m)
        return state["hidden"][-1]

    def _advance_difference(self, state, index, previous_bottom):
        """MIM-N ``index``: the first reads H^0_t - H^0_{t-1}, the others MIM-N ``index-1``."""
        if index == 0:
            inputs = state["hidden"][0] - previous_bottom
        else:
            inputs = state["difference_hidden"][index - 1]
        hidden, cell = self.difference_cells[index](
            inputs, state["difference_hidden"][index], state["difference_cell"][index])
        state["difference_hidden"][index], state["difference_cell"][index] = hidden, cell

    def _add_decoupling(self, cosines, delta_c, delta_m):
        if self.adapter is None:
            return
        cosines.append(adapted_decoupling_cosine(self.adapter, delta_c, delta_m))
