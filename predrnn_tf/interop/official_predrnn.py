"""The official PyTorch PredRNN / PredRNN-V2 (thuml/predrnn-pytorch), transcribed.

Used by the parity tests (tests/test_pytorch.py), the side-by-side speed benchmark
(tools/benchmark_official.py) and the training fidelity check (tools/fidelity.py). The
modules keep the official key names, shapes and forward passes:
core/layers/SpatioTemporalLSTMCell.py and SpatioTemporalLSTMCell_v2.py, core/models/predrnn.py
and predrnn_v2.py, core/utils/preprocess.py (reshape_patch) and the train update of
core/models/model_factory.py. The only change: the forward passes also
return the decoupling loss, which the official code folds into its training loss.

It imports torch at the top, so import it only where torch is wanted; nothing else in the
package imports it.
"""

from __future__ import annotations

import contextlib
import types

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from predrnn_tf import files

# ---------------------------------------------------------------------------------------
# The official code, transcribed.
# ---------------------------------------------------------------------------------------


class OfficialSpatioTemporalLSTMCellV2(nn.Module):
    """core/layers/SpatioTemporalLSTMCell_v2.py."""

    def __init__(self, in_channel, num_hidden, width, filter_size, stride, layer_norm):
        super().__init__()
        self.num_hidden = num_hidden
        self.padding = filter_size // 2
        self._forget_bias = 1.0
        if layer_norm:
            self.conv_x = nn.Sequential(
                nn.Conv2d(in_channel, num_hidden * 7, kernel_size=filter_size, stride=stride,
                          padding=self.padding, bias=False),
                nn.LayerNorm([num_hidden * 7, width, width]))
            self.conv_h = nn.Sequential(
                nn.Conv2d(num_hidden, num_hidden * 4, kernel_size=filter_size, stride=stride,
                          padding=self.padding, bias=False),
                nn.LayerNorm([num_hidden * 4, width, width]))
            self.conv_m = nn.Sequential(
                nn.Conv2d(num_hidden, num_hidden * 3, kernel_size=filter_size, stride=stride,
                          padding=self.padding, bias=False),
                nn.LayerNorm([num_hidden * 3, width, width]))
            self.conv_o = nn.Sequential(
                nn.Conv2d(num_hidden * 2, num_hidden, kernel_size=filter_size, stride=stride,
                          padding=self.padding, bias=False),
                nn.LayerNorm([num_hidden, width, width]))
        else:
            self.conv_x = nn.Sequential(
                nn.Conv2d(in_channel, num_hidden * 7, kernel_size=filter_size, stride=stride,
                          padding=self.padding, bias=False))
            self.conv_h = nn.Sequential(
                nn.Conv2d(num_hidden, num_hidden * 4, kernel_size=filter_size, stride=stride,
                          padding=self.padding, bias=False))
            self.conv_m = nn.Sequential(
                nn.Conv2d(num_hidden, num_hidden * 3, kernel_size=filter_size, stride=stride,
                          padding=self.padding, bias=False))
            self.conv_o = nn.Sequential(
                nn.Conv2d(num_hidden * 2, num_hidden, kernel_size=filter_size, stride=stride,
                          padding=self.padding, bias=False))
        self.conv_last = nn.Conv2d(num_hidden * 2, num_hidden, kernel_size=1, stride=1,
                                   padding=0, bias=False)

    def forward(self, x_t, h_t, c_t, m_t):
        x_concat = self.conv_x(x_t)
        h_concat = self.conv_h(h_t)
        m_concat = self.conv_m(m_t)
        i_x, f_x, g_x, i_x_prime, f_x_prime, g_x_prime, o_x = torch.split(
            x_concat, self.num_hidden, dim=1)
        i_h, f_h, g_h, o_h = torch.split(h_concat, self.num_hidden, dim=1)
        i_m, f_m, g_m = torch.split(m_concat, self.num_hidden, dim=1)

        i_t = torch.sigmoid(i_x + i_h)
        f_t = torch.sigmoid(f_x + f_h + self._forget_bias)
        g_t = torch.tanh(g_x + g_h)

        delta_c = i_t * g_t
        c_new = f_t * c_t + delta_c

        i_t_prime = torch.sigmoid(i_x_prime + i_m)
        f_t_prime = torch.sigmoid(f_x_prime + f_m + self._forget_bias)
        g_t_prime = torch.tanh(g_x_prime + g_m)

        delta_m = i_t_prime * g_t_prime
        m_new = f_t_prime * m_t + delta_m

        mem = torch.cat((c_new, m_new), 1)
        o_t = torch.sigmoid(o_x + o_h + self.conv_o(mem))
        h_new = o_t * torch.tanh(self.conv_last(mem))

        return h_new, c_new, m_new, delta_c, delta_m


class OfficialSpatioTemporalLSTMCell(OfficialSpatioTemporalLSTMCellV2):
    """core/layers/SpatioTemporalLSTMCell.py: the same layers and gates, three outputs."""

    def forward(self, x_t, h_t, c_t, m_t):
        h_new, c_new, m_new, _, _ = super().forward(x_t, h_t, c_t, m_t)
        return h_new, c_new, m_new


class OfficialPredRNNV2(nn.Module):
    """core/models/predrnn_v2.py (RNN)."""

    def __init__(self, num_layers, num_hidden, configs):
        super().__init__()
        self.configs = configs
        self.frame_channel = configs.patch_size * configs.patch_size * configs.img_channel
        self.num_layers = num_layers
        self.num_hidden = num_hidden
        cell_list = []
        width = configs.img_width // configs.patch_size
        self.MSE_criterion = nn.MSELoss()
        for i in range(num_layers):
            in_channel = self.frame_channel if i == 0 else num_hidden[i - 1]
            cell_list.append(OfficialSpatioTemporalLSTMCellV2(
                in_channel, num_hidden[i], width, configs.filter_size, configs.stride,
                configs.layer_norm))
        self.cell_list = nn.ModuleList(cell_list)
        self.conv_last = nn.Conv2d(num_hidden[num_layers - 1], self.frame_channel,
                                   kernel_size=1, stride=1, padding=0, bias=False)
        adapter_num_hidden = num_hidden[0]
        self.adapter = nn.Conv2d(adapter_num_hidden, adapter_num_hidden, 1, stride=1, padding=0,
                                 bias=False)

    def forward(self, frames_tensor, mask_true):
        frames = frames_tensor.permute(0, 1, 4, 2, 3).contiguous()
        mask_true = mask_true.permute(0, 1, 4, 2, 3).contiguous()
        batch = frames.shape[0]
        height = frames.shape[3]
        width = frames.shape[4]
        next_frames = []
        h_t = []
        c_t = []
        delta_c_list = []
        delta_m_list = []
        decouple_loss = []
        for i in range(self.num_layers):
            zeros = torch.zeros([batch, self.num_hidden[i], height, width])
            h_t.append(zeros)
            c_t.append(zeros)
            delta_c_list.append(zeros)
            delta_m_list.append(zeros)
        memory = torch.zeros([batch, self.num_hidden[0], height, width])
        x_gen = None
        for t in range(self.configs.total_length - 1):
            if self.configs.reverse_scheduled_sampling == 1:
                if t == 0:
                    net = frames[:, t]
                else:
                    net = mask_true[:, t - 1] * frames[:, t] + (1 - mask_true[:, t - 1]) * x_gen
            else:
                if t < self.configs.input_length:
                    net = frames[:, t]
                else:
                    net = mask_true[:, t - self.configs.input_length] * frames[:, t] + \
                          (1 - mask_true[:, t - self.configs.input_length]) * x_gen

            h_t[0], c_t[0], memory, delta_c, delta_m = self.cell_list[0](
                net, h_t[0], c_t[0], memory)
            delta_c_list[0] = F.normalize(
                self.adapter(delta_c).view(delta_c.shape[0], delta_c.shape[1], -1), dim=2)
            delta_m_list[0] = F.normalize(
                self.adapter(delta_m).view(delta_m.shape[0], delta_m.shape[1], -1), dim=2)
            for i in range(1, self.num_layers):
                h_t[i], c_t[i], memory, delta_c, delta_m = self.cell_list[i](
                    h_t[i - 1], h_t[i], c_t[i], memory)
                delta_c_list[i] = F.normalize(
                    self.adapter(delta_c).view(delta_c.shape[0], delta_c.shape[1], -1), dim=2)
                delta_m_list[i] = F.normalize(
                    self.adapter(delta_m).view(delta_m.shape[0], delta_m.shape[1], -1), dim=2)

            x_gen = self.conv_last(h_t[self.num_layers - 1])
            next_frames.append(x_gen)
            for i in range(0, self.num_layers):
                decouple_loss.append(torch.mean(torch.abs(
                    torch.cosine_similarity(delta_c_list[i], delta_m_list[i], dim=2))))

        decouple_loss = torch.mean(torch.stack(decouple_loss, dim=0))
        next_frames = torch.stack(next_frames, dim=0).permute(1, 0, 3, 4, 2).contiguous()
        loss = self.MSE_criterion(next_frames, frames_tensor[:, 1:]) + \
            self.configs.decouple_beta * decouple_loss
        return next_frames, loss, decouple_loss


class OfficialPredRNN(nn.Module):
    """core/models/predrnn.py (RNN)."""

    def __init__(self, num_layers, num_hidden, configs):
        super().__init__()
        self.configs = configs
        self.frame_channel = configs.patch_size * configs.patch_size * configs.img_channel
        self.num_layers = num_layers
        self.num_hidden = num_hidden
        cell_list = []
        width = configs.img_width // configs.patch_size
        self.MSE_criterion = nn.MSELoss()
        for i in range(num_layers):
            in_channel = self.frame_channel if i == 0 else num_hidden[i - 1]
            cell_list.append(OfficialSpatioTemporalLSTMCell(
                in_channel, num_hidden[i], width, configs.filter_size, configs.stride,
                configs.layer_norm))
        self.cell_list = nn.ModuleList(cell_list)
        self.conv_last = nn.Conv2d(num_hidden[num_layers - 1], self.frame_channel,
                                   kernel_size=1, stride=1, padding=0, bias=False)

    def forward(self, frames_tensor, mask_true):
        frames = frames_tensor.permute(0, 1, 4, 2, 3).contiguous()
        mask_true = mask_true.permute(0, 1, 4, 2, 3).contiguous()
        batch = frames.shape[0]
        height = frames.shape[3]
        width = frames.shape[4]
        next_frames = []
        h_t = []
        c_t = []
        for i in range(self.num_layers):
            zeros = torch.zeros([batch, self.num_hidden[i], height, width])
            h_t.append(zeros)
            c_t.append(zeros)
        memory = torch.zeros([batch, self.num_hidden[0], height, width])
        x_gen = None
        for t in range(self.configs.total_length - 1):
            if self.configs.reverse_scheduled_sampling == 1:
                if t == 0:
                    net = frames[:, t]
                else:
                    net = mask_true[:, t - 1] * frames[:, t] + (1 - mask_true[:, t - 1]) * x_gen
            else:
                if t < self.configs.input_length:
                    net = frames[:, t]
                else:
                    net = mask_true[:, t - self.configs.input_length] * frames[:, t] + \
                          (1 - mask_true[:, t - self.configs.input_length]) * x_gen

            h_t[0], c_t[0], memory = self.cell_list[0](net, h_t[0], c_t[0], memory)
            for i in range(1, self.num_layers):
                h_t[i], c_t[i], memory = self.cell_list[i](h_t[i - 1], h_t[i], c_t[i], memory)

            x_gen = self.conv_last(h_t[self.num_layers - 1])
            next_frames.append(x_gen)

        next_frames = torch.stack(next_frames, dim=0).permute(1, 0, 3, 4, 2).contiguous()
        loss = self.MSE_criterion(next_frames, frames_tensor[:, 1:])
        return next_frames, loss, torch.zeros(())


def reshape_patch(img_tensor, patch_size):
    """core/utils/preprocess.py."""
    batch_size, seq_length, img_height, img_width, num_channels = np.shape(img_tensor)
    a = np.reshape(img_tensor, [batch_size, seq_length, img_height // patch_size, patch_size,
                                img_width // patch_size, patch_size, num_channels])
    b = np.transpose(a, [0, 1, 2, 4, 3, 5, 6])
    return np.reshape(b, [batch_size, seq_length, img_height // patch_size,
                          img_width // patch_size, patch_size * patch_size * num_channels])


def reshape_patch_back(patch_tensor, patch_size):
    """core/utils/preprocess.py."""
    batch_size, seq_length, patch_height, patch_width, channels = np.shape(patch_tensor)
    img_channels = channels // (patch_size * patch_size)
    a = np.reshape(patch_tensor, [batch_size, seq_length, patch_height, patch_width,
                                  patch_size, patch_size, img_channels])
    b = np.transpose(a, [0, 1, 2, 4, 3, 5, 6])
    return np.reshape(b, [batch_size, seq_length, patch_height * patch_size,
                          patch_width * patch_size, img_channels])


# ---------------------------------------------------------------------------------------
# Construction from our Config, the official mask layout and the official train update.
# ---------------------------------------------------------------------------------------


# The official run.py's --stride: always 1 (our Config has no stride field).
OFFICIAL_STRIDE = 1


def official_configs(config) -> types.SimpleNamespace:
    """The official ``args`` namespace (run.py flag names) for one of our Configs."""
    return types.SimpleNamespace(
        patch_size=config.patch_size, img_channel=config.img_channel,
        img_width=config.img_width, filter_size=config.filter_size,
        stride=OFFICIAL_STRIDE,
        layer_norm=int(config.layer_norm), total_length=config.total_length,
        input_length=config.input_length,
        reverse_scheduled_sampling=int(config.reverse_scheduled_sampling),
        decouple_beta=config.decouple_beta, lr=config.lr, device="cpu")


def build_official_network(config) -> nn.Module:
    """The official network for ``config`` (predrnn_v2 or predrnn), PyTorch's default init."""
    networks = {"predrnn_v2": OfficialPredRNNV2, "predrnn": OfficialPredRNN}
    if config.model_name not in networks:
        raise ValueError(f"the official code has no --model_name={config.model_name} "
                         f"(expected one of {sorted(networks)})")
    network_class = networks[config.model_name]
    return network_class(len(config.num_hidden), list(config.num_hidden),
                         official_configs(config))


def official_mask_length(config) -> int:
    """Mask entries per sample: ``T - 2`` (reserve_schedule_sampling_exp) or
    ``T - input_length - 1`` (schedule_sampling), as run.py builds ``real_input_flag``."""
    if config.reverse_scheduled_sampling:
        return config.total_length - 2
    return config.total_length - config.input_length - 1


def official_mask(mask: np.ndarray, config) -> np.ndarray:
    """A ``[B, M]`` 0/1 mask as the official full tensor ``[B, M, H/p, W/p, p*p*C]``."""
    width = config.patched_width
    shape = (*mask.shape, width, width, config.patched_channels)
    return np.ascontiguousarray(np.broadcast_to(mask[:, :, None, None, None], shape))


class OfficialModel:
    """core/models/model_factory.py ``Model``: the network and its Adam optimizer.

    Args:
      config: our Config (model_name, sizes, decouple_beta, lr).
      autocast_dtype: None for the official float32 update, or e.g. ``torch.bfloat16`` to
        run the forward pass under ``torch.autocast("cpu", dtype=...)`` (not in the official
        code; the backward pass follows autocast's casts as usual).
      memory_format: ``torch.contiguous_format`` (NCHW, the official code as it is) or
        ``torch.channels_last``: the convolution weights are stored NHWC, so every
        convolution (and each state derived from one) runs NHWC. The same operations on the
        same values; only the layout and the kernels' summation order change. On CPU the
        NCHW convolutions of PyTorch's oneDNN path reorder their input, output and weights
        into blocked layouts at every call, which costs more than the convolutions at small
        sizes (tools/fidelity.py --mode=train uses channels_last for that reason).
    """

    def __init__(self, config, autocast_dtype: torch.dtype | None = None,
                 memory_format: torch.memory_format = torch.contiguous_format):
        self.configs = official_configs(config)
        self.autocast_dtype = autocast_dtype
        self.network = build_official_network(config).to(memory_format=memory_format)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.configs.lr)

    def _forward_context(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=self.autocast_dtype)

    def train(self, frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One update, as the official ``Model.train``: forward (MSE + decouple_beta *
        decoupling loss), backward, Adam step.

        Args:
          frames: patched frames ``[B, T, H/p, W/p, p*p*C]`` (after reshape_patch).
          mask: the official full mask ``[B, M, H/p, W/p, p*p*C]`` (see official_mask).

        Returns:
          The loss of the update.
        """
        frames_tensor = torch.FloatTensor(frames).to(self.configs.device)
        mask_tensor = torch.FloatTensor(mask).to(self.configs.device)
        self.optimizer.zero_grad()
        with self._forward_context():
            _, loss, _ = self.network(frames_tensor, mask_tensor)
        loss.backward()
        self.optimizer.step()
        return loss.detach().cpu().numpy()

    def save(self, path: str, **extra) -> None:
        """Writes the network, Adam's state and ``extra`` (e.g. the loop's position) to
        ``path`` through a temporary name, so an interrupted save leaves the old file."""
        state = {"network": self.network.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "extra": extra}
        with files.atomic_write(path) as handle:
            torch.save(state, handle)

    def load(self, path: str) -> dict:
        """Restores what :meth:`save` wrote; returns its ``extra`` dict."""
        state = torch.load(path, weights_only=False)
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        return state["extra"]
