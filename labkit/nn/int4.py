"""Int4Linear: 4-bit per-group weights multiplied by torch's CPU int4 kernel (W4A16).

Why 4 bits: decoding one token reads every weight once and does two flops with it, so its speed is
set by weight *bytes*: float32 4, int8 1, int4 ½ (plus the scales). Prefill does hundreds of flops
per weight byte and is set by the arithmetic, where a 4-bit weight must first be expanded to a
float — so W4A16 wins decode and can lose prefill (notebook 09 measures both).

The numbers. Symmetric int4 per group of ``g`` consecutive inputs (along K), the same rule as
``labkit.quant`` with ``symmetric_int(4)``: ``s = max|group| / 7``, ``q = clamp(round(w / s), −7, 7)``
(15 levels; −8 is not used, so ``−w`` gives ``−q``). Worked number, one group ``[0.7, −0.35, 0.1,
0.0]``: ``s = 0.1``, codes ``[7, −4, 1, 0]`` (−3.5 rounds half to even → −4), back ``[0.7, −0.4,
0.1, 0.0]``.

The kernel (torch 2.13 CPU, the "tinygemm" layout gpt-fast and torchao's ``Int4CPULayout`` use):

* ``torch.ops.aten._convert_weight_to_int4pack_for_cpu(u: (N, K) int32 in 0..15, 1)`` packs two
  codes per byte into an opaque, blocked ``(N, K/2)`` uint8 buffer (needs N a multiple of 16);
* ``torch.ops.aten._weight_int4pack_mm_for_cpu(x: (M, K), packed, g, sz: (K/g, N, 2))`` computes
  ``y = x Ŵᵀ`` with ``Ŵ[n, k] = (u[n, k] − 8) · sz[k/g, n, 0] + sz[k/g, n, 1]`` (g in 32/64/128/256,
  K a multiple of g). Our symmetric codes become ``u = q + 8`` with zero ``sz[..., 1] = 0``.
* Only a **bfloat16** ``x`` runs a vectorized path (measured, one thread, a (1, 576) × (576, 1536)
  GEMV: bf16 ~60 µs vs fp32 ``nn.Linear`` ~180 µs, while a float32 ``x`` takes a scalar loop ~2 ms).
  So the activation is rounded to bfloat16 and the scales are bfloat16 too (the kernel wants
  ``sz`` in ``x``'s dtype): relative error ≤ 2⁻⁹ each — the "A16" of W4A16. The output comes back
  in the caller's dtype.

Where the kernel is missing (another torch build): ``INT4_KERNEL`` says why, and the forward
dequantizes the weight and calls ``F.linear`` — same numbers, none of the speed.

Layout facts the class needs: the packed buffer is opaque, so ``codes()`` reads it back through
the permutation the packing applies, found once per shape by packing the hexadecimal digits of
each weight's row and column index (``_unpack_positions``). Tested against a float reference.
Differences from torchao: ``Int4WeightOnlyConfig(group_size=g, int4_packing_format=...)`` uses an
asymmetric grid (0..15 with a float zero point per group); this module keeps the symmetric grid of
``labkit.quant`` so RTN and GPTQ codes (``gptq_full``) plug in directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from ..quant.formats import symmetric_int
from ..quant.granularity import PerGroup
from ..quant.primitives import choose_qparams, quantize
from ..schemes import Scheme, register_scheme

INT4 = symmetric_int(4)
KERNEL_GROUP_SIZES = (32, 64, 128, 256)
N_MULTIPLE = 16
ZERO_OFFSET = 8  # the kernel's unsigned nibble u = q + 8


def _kernel_status() -> str | None:
    """None when torch's CPU int4 kernels exist; else a sentence saying what is missing."""
    missing = [n for n in ("_convert_weight_to_int4pack_for_cpu", "_weight_int4pack_mm_for_cpu")
               if not hasattr(torch.ops.aten, n)]
    if missing:
        return (f"torch {torch.__version__} has no {', '.join(missing)}: Int4Linear dequantizes to float and "
                "runs F.linear (same results, no 4-bit speed-up; torch ≥ 2.6 on CPU has the kernel)")
    return None


INT4_KERNEL: str | None = _kernel_status()


def int4_kernel_message() -> str:
    """One line for a notebook: which int4 matmul runs here."""
    return INT4_KERNEL or ("int4 kernel: torch.ops.aten._weight_int4pack_mm_for_cpu "
                           "(4-bit codes read directly, bfloat16 activations)")


def check_kernel_shape(out_features: int, in_features: int, group_size: int) -> None:
    """Raise a ValueError naming the constraint of the int4 kernel that ``(out, in)`` / ``g`` breaks."""
    if group_size not in KERNEL_GROUP_SIZES:
        raise ValueError(f"the int4 kernel takes group sizes {KERNEL_GROUP_SIZES}, got {group_size}")
    if in_features % group_size:
        raise ValueError(f"in_features {in_features} is not a multiple of the group size {group_size}: the int4 "
                         f"kernel has no shorter last group (SmolLM2's 576 = 9·64 takes g = 32 or 64)")
    if out_features % N_MULTIPLE:
        raise ValueError(f"out_features {out_features} is not a multiple of {N_MULTIPLE}, which the int4 kernel's "
                         "packing requires")


def quantize_int4(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Round-to-nearest int4 of ``w: (N, K)`` per group of ``group_size`` along K.

    Returns ``codes: (N, K)`` int8 in −7..7 and ``scale: (N, ceil(K/g))`` float32 (1.0 for an
    all-zero group); the last group is shorter when g does not divide K. ``w`` is not modified.
    """
    qp = choose_qparams(w.detach(), INT4, PerGroup(group_size))
    return quantize(w.detach(), qp), qp.scale.to(torch.float32)


def kernel_layout(codes: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The int4 kernel's inputs from symmetric codes: ``u = codes + 8`` as int32 ``(N, K)`` and
    ``scale_and_zeros: (G, N, 2)`` float32 with ``[..., 0] = scale.T`` and ``[..., 1] = 0``."""
    u = codes.to(torch.int32) + ZERO_OFFSET
    sz = torch.stack([scale.to(torch.float32).T, torch.zeros_like(scale, dtype=torch.float32).T], dim=-1)
    return u, sz.contiguous()


@lru_cache(maxsize=None)
def _unpack_positions(n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For the packed (N, K/2) buffer of an (N, K) matrix: the flat (row·K + col) index of the weight in
    each byte's low and high nibble. Found by packing each hexadecimal digit of the row and column
    indices (the packing moves values, never mixes them)."""
    rows = torch.arange(n, dtype=torch.int64)[:, None].expand(n, k)
    cols = torch.arange(k, dtype=torch.int64)[None, :].expand(n, k)
    flat = rows * k + cols
    lo = torch.zeros(n * k // 2, dtype=torch.int64)
    hi = torch.zeros_like(lo)
    shift = 0
    while (1 << shift) < n * k:
        digit = ((flat >> shift) & 15).to(torch.int32).contiguous()
        p = torch.ops.aten._convert_weight_to_int4pack_for_cpu(digit, 1).reshape(-1).to(torch.int64)
        lo |= (p & 15) << shift
        hi |= (p >> 4) << shift
        shift += 4
    return lo, hi


@dataclass(frozen=True)
class Int4WeightOnly(Scheme):
    """4-bit symmetric weights per group of ``group_size`` along K, float activations (W4A16)."""

    group_size: int = 64

    def __post_init__(self) -> None:
        if self.group_size not in KERNEL_GROUP_SIZES:
            raise ValueError(f"Int4WeightOnly takes the int4 kernel's group sizes {KERNEL_GROUP_SIZES}, "
                             f"got {self.group_size!r}")

    @property
    def name(self) -> str:
        return f"int4-group{self.group_size}"


for _g in KERNEL_GROUP_SIZES:
    register_scheme(f"int4-group{_g}", Int4WeightOnly(_g))


class Int4Linear(nn.Module):
    """A linear layer with int4 per-group weights. ``"fake"`` keeps the dequantized weight in float
    and runs ``F.linear`` (for accuracy); ``"real"`` keeps the kernel's packed codes (½ byte per
    weight) and bfloat16 scales and runs the int4 kernel. Input ``(..., in)`` → ``(..., out)`` in the
    input's dtype. Build with ``from_float`` (round-to-nearest) or ``from_codes`` (e.g. GPTQ's)."""

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, group_size: int,
                 mode: str = "real"):
        super().__init__()
        if mode not in ("fake", "real"):
            raise ValueError(f"unknown mode {mode!r}; known modes: fake, real")
        out_f, in_f = codes.shape
        if codes.dtype != torch.int8 or int(codes.abs().max()) > INT4.qmax:
            raise ValueError("codes must be int8 in −7..7 (symmetric int4), as quantize_int4 and gptq_full return")
        if tuple(scale.shape) != (out_f, -(-in_f // group_size)):
            raise ValueError(f"scale must be (out, in/g) = ({out_f}, {-(-in_f // group_size)}), got {tuple(scale.shape)}")
        self.in_features, self.out_features, self.group_size, self.mode = in_f, out_f, group_size, mode
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)
        s = scale.to(torch.float32)
        if mode == "fake":
            w = codes.to(torch.float32) * s.repeat_interleave(group_size, dim=1)[:, :in_f]
            self.weight = nn.Parameter(w, requires_grad=False)
            return
        check_kernel_shape(out_f, in_f, group_size)
        u, sz = kernel_layout(codes, s)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(u, 1) if INT4_KERNEL is None else \
            _nibbles(u)
        self.register_buffer("packed", packed)
        self.register_buffer("scale_and_zeros", sz.to(torch.bfloat16))

    @classmethod
    def from_float(cls, linear: nn.Linear, group_size: int = 64, mode: str = "real") -> "Int4Linear":
        """Round-to-nearest int4 of ``linear.weight``; ``linear`` is unchanged."""
        codes, scale = quantize_int4(linear.weight.detach().to(torch.float32), group_size)
        return cls(codes, scale, linear.bias, group_size, mode)

    @classmethod
    def from_codes(cls, codes: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None,
                   group_size: int = 64, mode: str = "real") -> "Int4Linear":
        """A layer from given codes ``(out, in)`` int8 in −7..7 and scales ``(out, in/g)``."""
        return cls(codes, scale, bias, group_size, mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "fake":
            return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))
        x2 = x.reshape(-1, self.in_features)
        if INT4_KERNEL is None:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x2.to(torch.bfloat16).contiguous(), self.packed,
                                                          self.group_size, self.scale_and_zeros)
        else:
            y = F.linear(x2.to(torch.float32), self.dequantized_weight())
        y = y.to(x.dtype)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y.reshape(*x.shape[:-1], self.out_features)

    def codes(self) -> torch.Tensor:
        """The int4 codes ``(out, in)`` as int8 in −7..7 (real mode: unpacked from the kernel's layout)."""
        if self.mode == "fake":
            raise ValueError("codes() exists in real mode only; a fake-mode layer stores the dequantized weight")
        n, k = self.out_features, self.in_features
        if INT4_KERNEL is not None:
            u = torch.stack([self.packed & 15, self.packed >> 4], dim=-1).reshape(n, k)
        else:
            lo, hi = _unpack_positions(n, k)
            flat = self.packed.reshape(-1).to(torch.int64)
            u = torch.empty(n * k, dtype=torch.int64)
            u[lo], u[hi] = flat & 15, flat >> 4
            u = u.reshape(n, k)
        return (u.to(torch.int16) - ZERO_OFFSET).to(torch.int8)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight ``(out, in)`` this layer multiplies by (codes × the stored scales)."""
        if self.mode == "fake":
            return self.weight.detach().to(torch.float32)
        s = self.scale_and_zeros[..., 0].T.to(torch.float32)
        return self.codes().to(torch.float32) * s.repeat_interleave(self.group_size, dim=1)[:, : self.in_features]

    def weight_bytes(self) -> int:
        """Bytes stored for the weight: packed codes + scales-and-zeros (real), the float weight (fake)."""
        if self.mode == "fake":
            return self.weight.numel() * self.weight.element_size()
        return sum(t.numel() * t.element_size() for t in (self.packed, self.scale_and_zeros))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"int4 group {self.group_size}, mode={self.mode}")


def _nibbles(u: torch.Tensor) -> torch.Tensor:
    """Fallback packing (no kernel): two codes per byte, column pairs, low nibble first."""
    return (u[:, 0::2] | (u[:, 1::2] << 4)).to(torch.uint8)


def int4_handler(linear: nn.Linear, scheme: Scheme, mode: str) -> nn.Module:
    """``quantize_model`` handler for ``Int4WeightOnly``: round-to-nearest ``Int4Linear``."""
    return Int4Linear.from_float(linear, scheme.group_size, mode)


def _register() -> None:
    from .convert import register_handler

    register_handler(Int4WeightOnly)(int4_handler)


_register()
