"""W8A8 linear: 8-bit weights *and* 8-bit activations, in INT8 or FP8 (e4m3).

A weight-only linear dequantizes its weight and multiplies in float; a W8A8 linear multiplies the
8-bit codes themselves, which is what INT8/FP8 tensor cores do, so the activations must be
quantized on the fly:

    x: (tokens, in)  → per-token scale  sx = max|x_t| / qmax,  codes  qx = Q(x / sx)   (dynamic)
    W: (out, in)     → per-row   scale  sw = max|W_o| / qmax,  codes  qw = Q(W / sw)   (offline)
    y[t, o] = sx[t] · sw[o] · Σ_k qx[t, k] · qw[o, k]  (+ bias[o])

Both scales factor out of the sum, so the inner loop is a pure 8-bit matmul and the scaling is
one multiply per output — the reason per-token × per-row is the finest granularity that needs no
new kernel. Worked number (int8): x_t = [2.54, −1.0] → sx = 0.02, qx = [127, −50];
W_o = [0.5, 0.25] → sw = 0.5/127, qw = [127, 64]; Σ = 127·127 − 50·64 = 12929;
y = 0.02 · 0.003937 · 12929 = 1.018 (float: 1.02).

How the 8-bit matmul runs:

* INT8: ``torch._int_mm`` (int8 × int8 → int32, exact) where it runs — on CPU always, on CUDA when
  tokens > 16 and in/out are multiples of 8; otherwise the same sum in float64, which is exact for
  int8 codes (|Σ| < 127² · K ≪ 2^53).
* FP8 e4m3: ``torch._scaled_mm`` on CUDA with compute capability ≥ 8.9 (Ada, Hopper), which takes the
  per-token and per-row scales itself; elsewhere the codes are decoded to float32 and multiplied,
  accumulating in float32 as the tensor cores do (Ada's FP8 accumulator is narrower still).

An activation that is one outlier channel and many small ones is where INT8 loses: the per-token
scale follows the outlier and the uniform grid leaves the small channels a few codes each. FP8's
grid is finer near zero (relative error ≤ 2^-4 at every magnitude), so it suffers less — and
SmoothQuant (``labkit.models.smoothing``) shrinks the outliers before either format sees them.

Differences from torchao: torchao's ``Int8DynamicActivationInt8WeightConfig`` and
``Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())`` swap the weight for a tensor
subclass and keep ``nn.Linear``; here the module is explicit, with ``from_float`` for the offline
packing and a forward of a few lines. The int8 grid is ±127 (``labkit.quant.formats``), as torchao's
symmetric int8.
"""

from __future__ import annotations

import torch
from torch import nn

from ..quant.formats import Format, get_format
from ..quant.granularity import PerRow, PerToken
from ..quant.primitives import choose_qparams, quantize
from ..schemes import W8A8_FORMATS


def _w8a8_format(fmt: str | Format) -> Format:
    f = get_format(fmt)
    if f.name not in W8A8_FORMATS:
        raise ValueError(f"W8A8 supports the formats {W8A8_FORMATS}, got {f.name!r}")
    return f


def fp8_matmul_on_gpu(device: torch.device) -> bool:
    """True if ``torch._scaled_mm`` has FP8 tensor cores on ``device`` (CUDA, SM ≥ 8.9)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


def int8_matmul(qx: torch.Tensor, qw: torch.Tensor) -> torch.Tensor:
    """``qx: (m, k) int8 @ qw: (n, k) int8ᵀ → (m, n)`` exact integer sums (int32 or float64)."""
    if qx.device.type == "cpu" or (qx.shape[0] > 16 and qx.shape[1] % 8 == 0 and qw.shape[0] % 8 == 0):
        return torch._int_mm(qx, qw.t())
    return qx.double() @ qw.double().t()


def _pad16(t: torch.Tensor) -> torch.Tensor:
    """Zero-pad both dims of a 2-D tensor to multiples of 16 (what the FP8 tensor-core GEMM accepts)."""
    rows, cols = -t.shape[0] % 16, -t.shape[1] % 16
    if not (rows or cols):
        return t
    out = torch.zeros(t.shape[0] + rows, t.shape[1] + cols, dtype=t.dtype, device=t.device)
    out[: t.shape[0], : t.shape[1]] = t
    return out


def fp8_matmul(qx, sx, qw, sw) -> torch.Tensor:
    """``(sx[:, None] · qx) @ (sw[:, None] · qw)ᵀ`` for e4m3 codes ``qx: (m, k)``, ``qw: (n, k)``,
    scales ``sx: (m,)``, ``sw: (n,)`` → float32 ``(m, n)``."""
    if fp8_matmul_on_gpu(qx.device):
        # Unit tensor-wise scales keep a float32 output (row-wise scales force bf16 out); the
        # per-token and per-row scales are applied to the float32 sums afterwards.
        m, n = qx.shape[0], qw.shape[0]
        one = torch.ones((), device=qx.device)
        acc = torch._scaled_mm(_pad16(qx), _pad16(qw).t(), scale_a=one, scale_b=one, out_dtype=torch.float32)
        return acc[:m, :n] * sx[:, None] * sw[None, :]
    return (qx.float() @ qw.float().t()) * sx[:, None] * sw[None, :]


class W8A8Linear(nn.Module):
    """``nn.Linear`` replacement: per-row 8-bit weight codes, per-token 8-bit activations at run time.

    Buffers: ``qweight (out, in)`` int8 or float8_e4m3fn, ``weight_scale (out,)`` float32,
    ``bias (out,)`` in the original dtype or None. Input ``(..., in)`` → output ``(..., out)`` in
    the input's dtype.
    """

    def __init__(self, qweight: torch.Tensor, weight_scale: torch.Tensor, bias: torch.Tensor | None, fmt: str | Format):
        super().__init__()
        self.fmt = _w8a8_format(fmt)
        if qweight.ndim != 2 or weight_scale.shape != (qweight.shape[0],):
            raise ValueError(f"qweight must be (out, in) and weight_scale (out,), got {tuple(qweight.shape)} "
                             f"and {tuple(weight_scale.shape)}")
        self.out_features, self.in_features = qweight.shape
        self.register_buffer("qweight", qweight)
        self.register_buffer("weight_scale", weight_scale.float())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_float(cls, linear: nn.Linear, fmt: str | Format = "int8") -> "W8A8Linear":
        """Quantize ``linear.weight`` per row (offline); ``linear`` is not changed."""
        f = _w8a8_format(fmt)
        w = linear.weight.detach()
        qp = choose_qparams(w, f, PerRow())
        return cls(quantize(w, qp), qp.scale, linear.bias, f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        qp = choose_qparams(x2, self.fmt, PerToken())  # dynamic: one scale per token, every call
        qx = quantize(x2, qp)
        if self.fmt.is_float:
            y = fp8_matmul(qx, qp.scale, self.qweight, self.weight_scale)
        else:
            y = int8_matmul(qx, self.qweight).float() * qp.scale[:, None] * self.weight_scale[None, :]
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight ``(out, in)`` this module multiplies by (for error reports and tests)."""
        return self.qweight.float() * self.weight_scale[:, None]

    def weight_bytes(self) -> int:
        """Bytes stored for the weight: 8-bit codes + float32 row scales (what quantize_model reports)."""
        return sum(t.numel() * t.element_size() for t in (self.qweight, self.weight_scale))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"scheme=W8A8 {self.fmt.name} (weights per row, activations per token, dynamic)")
