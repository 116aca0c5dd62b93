"""QuantLinear: an ``nn.Linear`` whose weight went through a weight-only scheme, fake or real.

Two modes, one numerical meaning:

* ``"fake"`` — the weight is quantized and immediately dequantized, ``Ŵ = dequantize(quantize(W))``,
  and stored in the model's dtype. The forward is the ordinary ``F.linear``: this is the
  *reference* for what a scheme does to accuracy, and it saves no memory.
* ``"real"`` — only the codes and scales are kept: buffers ``qweight`` (int8, or the raw bytes of
  fp8 codes as uint8) and ``scale`` (float32). The forward calls a kernel from
  ``labkit.nn.kernels`` that multiplies with the codes directly (or dequantizes into a temporary
  for that call only). An fp32 layer shrinks ~4x.

Layouts of the real buffers: per tensor / per row ``qweight (out, in)``, ``scale ()`` / ``(out,)``;
per group ``qweight (out·in,)`` *group-major* — group 0's (out, g) block, then group 1's, ... and
the shorter last group — so that each group is one contiguous matrix for the int8 kernel, and
``scale (out, G)``.

fp8 codes are stored as uint8 bytes, not as a ``float8_e4m3fn`` tensor, because
``model.to(torch.bfloat16)`` casts every floating-point buffer — float8 included — and would turn
the codes into wrong numbers. ``codes()`` gives them back with their real dtype.

The conversion is offline and separate from the runtime (gpt-fast's ``quantize.py``):
``QuantLinear.from_float(linear, scheme, mode)`` does the rounding and packing once; ``forward``
is a few lines. ``linear`` itself is never modified.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..quant.formats import Format
from ..quant.granularity import PerGroup
from ..quant.primitives import choose_qparams, dequantize, quantize
from ..schemes import Scheme, WeightOnly, get_scheme
from .kernels import dequantize_weight, pack_group_major, split_groups, weight_only_mm

MODES = ("fake", "real")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known modes: {', '.join(MODES)} "
                         "(fake = quantize-dequantize in the model's dtype, real = 8-bit codes + scales in memory)")
    return mode


class QuantLinear(nn.Module):
    """Weight-only quantized linear. Input ``(..., in_features)`` → output ``(..., out_features)``
    in the input's dtype. Build it with ``QuantLinear.from_float``."""

    def __init__(self, in_features: int, out_features: int, scheme: WeightOnly, mode: str, *,
                 bias: torch.Tensor | None, weight: torch.Tensor | None = None,
                 qweight: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.scheme, self.mode = scheme, check_mode(mode)
        if mode == "fake":
            self.weight = nn.Parameter(weight, requires_grad=False)
        else:
            self.register_buffer("qweight", qweight)
            self.register_buffer("scale", scale)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)

    @classmethod
    def from_float(cls, linear: nn.Linear, scheme: str | Scheme, mode: str = "fake") -> "QuantLinear":
        """Quantize ``linear.weight: (out, in)`` with a ``WeightOnly`` scheme; ``linear`` is unchanged."""
        scheme = get_scheme(scheme)
        if not isinstance(scheme, WeightOnly):
            raise TypeError(f"QuantLinear implements WeightOnly schemes, got {scheme!r}")
        check_mode(mode)
        w = linear.weight.detach()
        fmt, g = scheme.format, scheme.granularity
        qp = choose_qparams(w, fmt, g)
        codes = quantize(w, qp)  # (out, in) int8 / float8
        bias = None if linear.bias is None else linear.bias.detach().clone()
        out_f, in_f = w.shape
        if mode == "fake":
            return cls(in_f, out_f, scheme, mode, bias=bias, weight=dequantize(codes, qp, dtype=w.dtype))
        if fmt.is_float:
            codes = codes.view(torch.uint8)
        if isinstance(g, PerGroup):
            codes = pack_group_major(codes, g.group_size)
        return cls(in_f, out_f, scheme, mode, bias=bias, qweight=codes.contiguous(),
                   scale=qp.scale.to(torch.float32).contiguous())

    @property
    def format(self) -> Format:
        return self.scheme.format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "fake":
            return F.linear(x, self.weight, self.bias)
        y = weight_only_mm(x.reshape(-1, self.in_features), self.qweight, self.scale, self.format,
                           self.scheme.granularity)
        y = y if self.bias is None else y + self.bias
        return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight ``(out, in)`` this layer multiplies by (for reports and tests)."""
        if self.mode == "fake":
            return self.weight.detach().to(torch.float32)
        return dequantize_weight(self.qweight, self.scale, self.format, self.scheme.granularity, self.in_features)

    def codes(self) -> torch.Tensor:
        """Real mode: the codes as ``(out, in)`` int8 or float8 (unpacked from the stored layout)."""
        if self.mode != "real":
            raise ValueError("codes() exists in real mode only; a fake-mode layer stores the dequantized weight")
        q, g = self.qweight, self.scheme.granularity
        if isinstance(g, PerGroup):
            full, tail = split_groups(q, self.out_features, self.in_features, g.group_size)
            parts = ([full.transpose(0, 1).reshape(self.out_features, -1)] if full is not None else []) + \
                ([tail] if tail is not None else [])
            q = torch.cat(parts, dim=1)
        if self.format.is_float:
            q = q.view(torch.float8_e4m3fn if self.format.name == "fp8_e4m3" else torch.float8_e5m2)
        return q

    def weight_bytes(self) -> int:
        """Bytes of what this layer stores for its weight (codes + scales, or the fake weight)."""
        if self.mode == "fake":
            return self.weight.numel() * self.weight.element_size()
        return sum(t.numel() * t.element_size() for t in (self.qweight, self.scale))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, scheme={self.scheme.name}, mode={self.mode}")
