"""OpenSTL's PyTorch MIM (chengtan9907/OpenSTL), transcribed as a parity reference.

Used by tests/test_mim.py. The modules keep OpenSTL's key names, shapes and forward passes:
openstl/modules/predrnn_modules.py (SpatioTemporalLSTMCell, the first layer),
openstl/modules/mim_modules.py (MIMBlock with its MIMS method, MIMN) and
openstl/models/mim_model.py (MIM_Model). ``openstl/methods/mim.py`` builds
``MIM_Model(len(num_hidden), num_hidden, hparams)``; the moving-MNIST defaults of
configs/mmnist/MIM.py are num_hidden='128,128,128,128', filter_size=5, stride=1,
patch_size=4, layer_norm=0, reverse_scheduled_sampling=0, batch_size=val_batch_size=16.

Two things to know when comparing against it:

* ``MIMBlock.convlstm_c`` (the MIM-S memory) is module state that survives between calls of
  ``MIM_Model.forward`` (OpenSTL never resets it; hence its batch_size == val_batch_size
  assertion). A fresh module starts from zero; call :func:`reset_mim_states` before each
  forward to compare sequences independently, as our model treats them.
* The forward passes are OpenSTL's line for line; only the form changed: the repeated
  ``nn.Sequential(Conv2d[, LayerNorm])`` blocks are built by ``_conv`` (same modules, same
  keys), ``x != None`` reads ``x is not None``, and blank lines went. :func:`openstl_configs`
  builds the ``configs`` namespace they read from one of our Configs (stride 1).

Tool module: it imports torch at the top, so import it only where torch is wanted.
"""

from __future__ import annotations

import types

import numpy as np
import torch
from torch import nn

# ---------------------------------------------------------------------------------------
# The OpenSTL code, transcribed.
# ---------------------------------------------------------------------------------------


def _conv(in_channel, out_channel, filter_size, stride, padding, layer_norm, height, width):
    """OpenSTL's ``nn.Sequential(Conv2d(bias=False)[, LayerNorm([C, H, W])])`` pattern."""
    modules = [nn.Conv2d(in_channel, out_channel, kernel_size=filter_size, stride=stride,
                         padding=padding, bias=False)]
    if layer_norm:
        modules.append(nn.LayerNorm([out_channel, height, width]))
    return nn.Sequential(*modules)


class SpatioTemporalLSTMCell(nn.Module):
    """openstl/modules/predrnn_modules.py."""

    def __init__(self, in_channel, num_hidden, height, width, filter_size, stride, layer_norm):
        super().__init__()
        self.num_hidden = num_hidden
        self.padding = filter_size // 2
        self._forget_bias = 1.0
        args = (filter_size, stride, self.padding, layer_norm, height, width)
        self.conv_x = _conv(in_channel, num_hidden * 7, *args)
        self.conv_h = _conv(num_hidden, num_hidden * 4, *args)
        self.conv_m = _conv(num_hidden, num_hidden * 3, *args)
        self.conv_o = _conv(num_hidden * 2, num_hidden, *args)
        self.conv_last = nn.Conv2d(num_hidden * 2, num_hidden, kernel_size=1, stride=1,
                                   padding=0, bias=False)

    def forward(self, x_t, h_t, c_t, m_t):
        x_concat = self.conv_x(x_t)
        h_concat = self.conv_h(h_t)
        m_concat = self.conv_m(m_t)
        i_x, f_x, g_x, i_x_prime, f_x_prime, g_x_prime, o_x = \
            torch.split(x_concat, self.num_hidden, dim=1)
        i_h, f_h, g_h, o_h = torch.split(h_concat, self.num_hidden, dim=1)
        i_m, f_m, g_m = torch.split(m_concat, self.num_hidden, dim=1)
        i_t = torch.sigmoid(i_x + i_h)
        f_t = torch.sigmoid(f_x + f_h + self._forget_bias)
        g_t = torch.tanh(g_x + g_h)
        c_new = f_t * c_t + i_t * g_t
        i_t_prime = torch.sigmoid(i_x_prime + i_m)
        f_t_prime = torch.sigmoid(f_x_prime + f_m + self._forget_bias)
        g_t_prime = torch.tanh(g_x_prime + g_m)
        m_new = f_t_prime * m_t + i_t_prime * g_t_prime
        mem = torch.cat((c_new, m_new), 1)
        o_t = torch.sigmoid(o_x + o_h + self.conv_o(mem))
        h_new = o_t * torch.tanh(self.conv_last(mem))
        return h_new, c_new, m_new


class MIMBlock(nn.Module):
    """openstl/modules/mim_modules.py MIMBlock (MIM-S is its ``MIMS`` method)."""

    def __init__(self, in_channel, num_hidden, height, width, filter_size, stride, layer_norm):
        super().__init__()
        self.convlstm_c = None
        self.num_hidden = num_hidden
        self.padding = filter_size // 2
        self._forget_bias = 1.0
        self.ct_weight = nn.Parameter(torch.zeros(num_hidden * 2, height, width))
        self.oc_weight = nn.Parameter(torch.zeros(num_hidden, height, width))
        args = (filter_size, stride, self.padding, layer_norm, height, width)
        self.conv_t_cc = _conv(in_channel, num_hidden * 3, *args)
        self.conv_s_cc = _conv(num_hidden, num_hidden * 4, *args)
        self.conv_x_cc = _conv(num_hidden, num_hidden * 4, *args)
        self.conv_h_concat = _conv(num_hidden, num_hidden * 4, *args)
        self.conv_x_concat = _conv(num_hidden, num_hidden * 4, *args)
        self.conv_last = nn.Conv2d(num_hidden * 2, num_hidden, kernel_size=1, stride=1,
                                   padding=0, bias=False)

    def _init_state(self, inputs):
        return torch.zeros_like(inputs)

    def MIMS(self, x, h_t, c_t):  # noqa: N802 (OpenSTL's name)
        if h_t is None:
            h_t = self._init_state(x)
        if c_t is None:
            c_t = self._init_state(x)
        h_concat = self.conv_h_concat(h_t)
        i_h, g_h, f_h, o_h = torch.split(h_concat, self.num_hidden, dim=1)
        ct_activation = torch.mul(c_t.repeat(1, 2, 1, 1), self.ct_weight)
        i_c, f_c = torch.split(ct_activation, self.num_hidden, dim=1)
        i_ = i_h + i_c
        f_ = f_h + f_c
        g_ = g_h
        o_ = o_h
        if x is not None:
            x_concat = self.conv_x_concat(x)
            i_x, g_x, f_x, o_x = torch.split(x_concat, self.num_hidden, dim=1)
            i_ = i_ + i_x
            f_ = f_ + f_x
            g_ = g_ + g_x
            o_ = o_ + o_x
        i_ = torch.sigmoid(i_)
        f_ = torch.sigmoid(f_ + self._forget_bias)
        c_new = f_ * c_t + i_ * torch.tanh(g_)
        o_c = torch.mul(c_new, self.oc_weight)
        h_new = torch.sigmoid(o_ + o_c) * torch.tanh(c_new)
        return h_new, c_new

    def forward(self, x, diff_h, h, c, m):
        h = self._init_state(x) if h is None else h
        c = self._init_state(x) if c is None else c
        m = self._init_state(x) if m is None else m
        diff_h = self._init_state(x) if diff_h is None else diff_h
        t_cc = self.conv_t_cc(h)
        s_cc = self.conv_s_cc(m)
        x_cc = self.conv_x_cc(x)
        i_s, g_s, f_s, o_s = torch.split(s_cc, self.num_hidden, dim=1)
        i_t, g_t, o_t = torch.split(t_cc, self.num_hidden, dim=1)
        i_x, g_x, f_x, o_x = torch.split(x_cc, self.num_hidden, dim=1)
        i = torch.sigmoid(i_x + i_t)
        i_ = torch.sigmoid(i_x + i_s)
        g = torch.tanh(g_x + g_t)
        g_ = torch.tanh(g_x + g_s)
        f_ = torch.sigmoid(f_x + f_s + self._forget_bias)
        o = torch.sigmoid(o_x + o_t + o_s)
        new_m = f_ * m + i_ * g_
        c, self.convlstm_c = self.MIMS(
            diff_h, c, self.convlstm_c if self.convlstm_c is None else self.convlstm_c.detach())
        new_c = c + i * g
        cell = torch.cat((new_c, new_m), 1)
        new_h = o * torch.tanh(self.conv_last(cell))
        return new_h, new_c, new_m


class MIMN(nn.Module):
    """openstl/modules/mim_modules.py MIMN (its conv_last is created but never used)."""

    def __init__(self, in_channel, num_hidden, height, width, filter_size, stride, layer_norm):
        super().__init__()
        self.num_hidden = num_hidden
        self.padding = filter_size // 2
        self._forget_bias = 1.0
        self.ct_weight = nn.Parameter(torch.zeros(num_hidden * 2, height, width))
        self.oc_weight = nn.Parameter(torch.zeros(num_hidden, height, width))
        args = (filter_size, stride, self.padding, layer_norm, height, width)
        self.conv_h_concat = _conv(in_channel, num_hidden * 4, *args)
        self.conv_x_concat = _conv(in_channel, num_hidden * 4, *args)
        self.conv_last = nn.Conv2d(num_hidden * 2, num_hidden, kernel_size=1, stride=1,
                                   padding=0, bias=False)

    def _init_state(self, inputs):
        return torch.zeros_like(inputs)

    def forward(self, x, h_t, c_t):
        if h_t is None:
            h_t = self._init_state(x)
        if c_t is None:
            c_t = self._init_state(x)
        h_concat = self.conv_h_concat(h_t)
        i_h, g_h, f_h, o_h = torch.split(h_concat, self.num_hidden, dim=1)
        ct_activation = torch.mul(c_t.repeat(1, 2, 1, 1), self.ct_weight)
        i_c, f_c = torch.split(ct_activation, self.num_hidden, dim=1)
        i_ = i_h + i_c
        f_ = f_h + f_c
        g_ = g_h
        o_ = o_h
        if x is not None:
            x_concat = self.conv_x_concat(x)
            i_x, g_x, f_x, o_x = torch.split(x_concat, self.num_hidden, dim=1)
            i_ = i_ + i_x
            f_ = f_ + f_x
            g_ = g_ + g_x
            o_ = o_ + o_x
        i_ = torch.sigmoid(i_)
        f_ = torch.sigmoid(f_ + self._forget_bias)
        c_new = f_ * c_t + i_ * torch.tanh(g_)
        o_c = torch.mul(c_new, self.oc_weight)
        h_new = torch.sigmoid(o_ + o_c) * torch.tanh(c_new)
        return h_new, c_new


class MIM_Model(nn.Module):  # noqa: N801 (OpenSTL's name)
    """openstl/models/mim_model.py."""

    def __init__(self, num_layers, num_hidden, configs, **kwargs):
        super().__init__()
        T, C, H, W = configs.in_shape  # noqa: N806
        self.configs = configs
        self.frame_channel = configs.patch_size * configs.patch_size * C
        self.num_layers = num_layers
        self.num_hidden = num_hidden
        stlstm_layer, stlstm_layer_diff = [], []
        height = H // configs.patch_size
        width = W // configs.patch_size
        self.MSE_criterion = nn.MSELoss()
        for i in range(num_layers):
            in_channel = self.frame_channel if i == 0 else num_hidden[i - 1]
            if i < 1:
                stlstm_layer.append(
                    SpatioTemporalLSTMCell(in_channel, num_hidden[i], height, width,
                                           configs.filter_size, configs.stride,
                                           configs.layer_norm))
            else:
                stlstm_layer.append(
                    MIMBlock(in_channel, num_hidden[i], height, width, configs.filter_size,
                             configs.stride, configs.layer_norm))
        for i in range(num_layers - 1):
            stlstm_layer_diff.append(
                MIMN(num_hidden[i], num_hidden[i + 1], height, width, configs.filter_size,
                     configs.stride, configs.layer_norm))
        self.stlstm_layer = nn.ModuleList(stlstm_layer)
        self.stlstm_layer_diff = nn.ModuleList(stlstm_layer_diff)
        self.conv_last = nn.Conv2d(num_hidden[num_layers - 1], self.frame_channel,
                                   kernel_size=1, stride=1, padding=0, bias=False)

    def forward(self, frames_tensor, mask_true, **kwargs):
        # [batch, length, height, width, channel] -> [batch, length, channel, height, width]
        device = frames_tensor.device
        frames = frames_tensor.permute(0, 1, 4, 2, 3).contiguous()
        mask_true = mask_true.permute(0, 1, 4, 2, 3).contiguous()
        batch = frames.shape[0]
        height = frames.shape[3]
        width = frames.shape[4]
        next_frames = []
        h_t = []
        c_t = []
        hidden_state_diff = []
        cell_state_diff = []
        for i in range(self.num_layers):
            zeros = torch.zeros([batch, self.num_hidden[i], height, width], device=device)
            h_t.append(zeros)
            c_t.append(zeros)
            hidden_state_diff.append(None)
            cell_state_diff.append(None)
        st_memory = torch.zeros([batch, self.num_hidden[0], height, width], device=device)
        for t in range(self.configs.pre_seq_length + self.configs.aft_seq_length - 1):
            # reverse schedule sampling
            if self.configs.reverse_scheduled_sampling == 1:
                if t == 0:
                    net = frames[:, t]
                else:
                    net = mask_true[:, t - 1] * frames[:, t] + \
                          (1 - mask_true[:, t - 1]) * x_gen  # noqa: F821 (set at t = 0)
            else:
                if t < self.configs.pre_seq_length:
                    net = frames[:, t]
                else:
                    net = mask_true[:, t - self.configs.pre_seq_length] * frames[:, t] + \
                          (1 - mask_true[:, t - self.configs.pre_seq_length]) * x_gen  # noqa: F821
            preh = h_t[0]
            h_t[0], c_t[0], st_memory = self.stlstm_layer[0](net, h_t[0], c_t[0], st_memory)
            for i in range(1, self.num_layers):
                if t > 0:
                    if i == 1:
                        hidden_state_diff[i - 1], cell_state_diff[i - 1] = \
                            self.stlstm_layer_diff[i - 1](
                                h_t[i - 1] - preh, hidden_state_diff[i - 1],
                                cell_state_diff[i - 1])
                    else:
                        hidden_state_diff[i - 1], cell_state_diff[i - 1] = \
                            self.stlstm_layer_diff[i - 1](
                                hidden_state_diff[i - 2], hidden_state_diff[i - 1],
                                cell_state_diff[i - 1])
                else:
                    self.stlstm_layer_diff[i - 1](torch.zeros_like(h_t[i - 1]), None, None)
                h_t[i], c_t[i], st_memory = self.stlstm_layer[i](
                    h_t[i - 1], hidden_state_diff[i - 1], h_t[i], c_t[i], st_memory)
            x_gen = self.conv_last(h_t[self.num_layers - 1])
            next_frames.append(x_gen)
        # [length, batch, channel, height, width] -> [batch, length, height, width, channel]
        next_frames = torch.stack(next_frames, dim=0).permute(1, 0, 3, 4, 2).contiguous()
        if kwargs.get("return_loss", True):
            loss = self.MSE_criterion(next_frames, frames_tensor[:, 1:])
        else:
            loss = None
        return next_frames, loss


# ---------------------------------------------------------------------------------------
# Construction from our Config, patching and the mask layout OpenSTL's method feeds in.
# ---------------------------------------------------------------------------------------


def openstl_configs(config) -> types.SimpleNamespace:
    """The ``configs`` (OpenSTL hparams) MIM_Model reads, for one of our Configs (stride 1)."""
    return types.SimpleNamespace(
        in_shape=(config.total_length, config.img_channel, config.img_width, config.img_width),
        patch_size=config.patch_size, filter_size=config.filter_size, stride=1,
        layer_norm=int(config.layer_norm), pre_seq_length=config.input_length,
        aft_seq_length=config.total_length - config.input_length,
        reverse_scheduled_sampling=int(config.reverse_scheduled_sampling))


def build_openstl_mim(config) -> MIM_Model:
    """``openstl/methods/mim.py`` ``_build_model`` for ``config`` (PyTorch's default init)."""
    num_hidden = [int(size) for size in config.num_hidden]
    return MIM_Model(len(num_hidden), num_hidden, openstl_configs(config))


def reset_mim_states(network: MIM_Model) -> None:
    """Forgets the MIM-S memory ``convlstm_c`` OpenSTL carries over from the last forward."""
    for layer in network.stlstm_layer:
        if isinstance(layer, MIMBlock):
            layer.convlstm_c = None


def reshape_patch(img_tensor, patch_size):
    """openstl/utils ``reshape_patch`` (the same as the official PredRNN code)."""
    batch_size, seq_length, img_height, img_width, num_channels = np.shape(img_tensor)
    a = np.reshape(img_tensor, [batch_size, seq_length, img_height // patch_size, patch_size,
                                img_width // patch_size, patch_size, num_channels])
    b = np.transpose(a, [0, 1, 2, 4, 3, 5, 6])
    return np.reshape(b, [batch_size, seq_length, img_height // patch_size,
                          img_width // patch_size, patch_size * patch_size * num_channels])


def reshape_patch_back(patch_tensor, patch_size):
    """openstl/utils ``reshape_patch_back``."""
    batch_size, seq_length, patch_height, patch_width, channels = np.shape(patch_tensor)
    img_channels = channels // (patch_size * patch_size)
    a = np.reshape(patch_tensor, [batch_size, seq_length, patch_height, patch_width,
                                  patch_size, patch_size, img_channels])
    b = np.transpose(a, [0, 1, 2, 4, 3, 5, 6])
    return np.reshape(b, [batch_size, seq_length, patch_height * patch_size,
                          patch_width * patch_size, img_channels])


def openstl_mask(mask: np.ndarray, config) -> np.ndarray:
    """A ``[B, M]`` 0/1 mask as the full tensor ``[B, M, H/p, W/p, p*p*C]`` OpenSTL feeds."""
    width = config.img_width // config.patch_size
    channels = config.patch_size * config.patch_size * config.img_channel
    shape = (*mask.shape, width, width, channels)
    return np.ascontiguousarray(np.broadcast_to(mask[:, :, None, None, None], shape))


def run_openstl(network: MIM_Model, frames: np.ndarray, mask: np.ndarray, config) -> np.ndarray:
    """OpenSTL's forward on image-space frames from zero MIM-S state; image-space output."""
    reset_mim_states(network)
    patches = reshape_patch(frames, config.patch_size)
    with torch.no_grad():
        next_frames, _ = network(torch.from_numpy(np.ascontiguousarray(patches)),
                                 torch.from_numpy(openstl_mask(mask, config)))
    return reshape_patch_back(next_frames.numpy(), config.patch_size)
