"""The model answers of notebooks 06 and 09 (the same code as the source notebooks' solutions)."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from labkit.quant import PerGroup, PerRow, PerTensor


def quantize_weight(w, fmt, granularity):
    qmax = {"int8": 127.0, "fp8_e4m3": 448.0}[fmt]
    x = w.detach().float()
    n, k = x.shape
    if isinstance(granularity, PerTensor):
        blocks = x.reshape(1, 1, n * k)
    elif isinstance(granularity, PerRow):
        blocks = x.reshape(n, 1, k)
    else:
        g = granularity.group_size
        blocks = F.pad(x, (0, -k % g)).reshape(n, -1, g)
    amax = blocks.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    if fmt == "int8":
        codes = torch.clamp(torch.round(blocks / scale), -qmax, qmax).to(torch.int8)
    else:
        codes = torch.clamp(blocks / scale, -qmax, qmax).to(torch.float8_e4m3fn)
    codes = codes.reshape(n, -1)[:, :k]
    if isinstance(granularity, PerTensor):
        scale = scale.reshape(())
    elif isinstance(granularity, PerRow):
        scale = scale.reshape(n)
    else:
        scale = scale.reshape(n, -1)
    return codes, scale


class WeightOnlyLinear(nn.Module):
    def __init__(self, linear, fmt, granularity, mode):
        super().__init__()
        self.mode, self.shape = mode, tuple(linear.weight.shape)
        codes, scale = quantize_weight(linear.weight, fmt, granularity)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        if mode == "fake":
            self.weight = nn.Parameter(self._dequantize(codes, scale).to(linear.weight.dtype), requires_grad=False)
        else:
            self.register_buffer("codes", codes)
            self.register_buffer("scale", scale)

    def _dequantize(self, codes, scale):
        n, k = self.shape
        if scale.ndim == 0:
            s = scale
        elif scale.ndim == 1:
            s = scale[:, None]
        else:
            s = scale.repeat_interleave(-(-k // scale.shape[1]), dim=1)[:, :k]
        return codes.float() * s

    def forward(self, x):
        w = self.weight if self.mode == "fake" else self._dequantize(self.codes, self.scale)
        b = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, w.to(x.dtype), b)


def swap_linears(model, make_layer, include_lm_head=False):
    new = copy.deepcopy(model)
    names = [name for name, m in new.named_modules()
             if isinstance(m, nn.Linear) and (include_lm_head or name != "lm_head")]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = new.get_submodule(parent_name) if parent_name else new
        setattr(parent, child, make_layer(new.get_submodule(name)))
    return new


def quantize_int4_groups(w, group_size):
    x = w.detach().float()
    n, k = x.shape
    blocks = F.pad(x, (0, -k % group_size)).reshape(n, -1, group_size)
    amax = blocks.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / 7, torch.ones_like(amax))
    codes = torch.clamp(torch.round(blocks / scale), -7, 7).to(torch.int8)
    return codes.reshape(n, -1)[:, :k], scale.reshape(n, -1)


def int4_kernel_inputs(codes, scale):
    u = codes.to(torch.int32) + 8
    sz = torch.stack([scale.float().T, torch.zeros_like(scale.float()).T], dim=-1)
    return u, sz.contiguous()


def collect_hessians(model, windows, names):
    H = {name: None for name in names}

    def hook_for(name):
        def hook(module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            h = 2 * x.T @ x
            H[name] = h if H[name] is None else H[name] + h
        return hook

    handles = [model.get_submodule(n).register_forward_pre_hook(hook_for(n)) for n in names]
    try:
        with torch.no_grad():
            for row in windows:
                model(input_ids=row[None])
    finally:
        for h in handles:
            h.remove()
    return tuple(H[n] for n in names)


def gptq_model(model, hessians, group_size, layer_gptq):
    new = copy.deepcopy(model)
    with torch.no_grad():
        for name, H in hessians.items():
            layer = new.get_submodule(name)
            layer.weight.copy_(layer_gptq(layer.weight, H, group_size))
    return new
