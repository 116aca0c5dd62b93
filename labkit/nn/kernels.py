"""Matmul kernels for real (stored 8-bit) weight-only quantization: ``y = x @ Ŵᵀ`` without Ŵ.

A real-quantized linear keeps codes ``q`` and float32 scales ``s`` and never a float copy of the
weight; ``Ŵ = q · s``. How fast ``x @ Ŵᵀ`` runs depends on two things:

* **Decode (a few tokens) is memory bound.** A (1, 576) @ (576, 1536) GEMV does 2 flops per weight
  but must read every weight once: 4 bytes in float32, 1 byte as int8. Reading 4x fewer bytes can
  make it up to 4x faster — if the kernel reads the 8-bit codes directly. Dequantizing the whole
  weight first (read 1 byte, write 4, read 4 again) is *slower* than float32: that is how a
  student's per-tensor "real" INT8 ended at 0.37x of BF16.
* **Prefill (hundreds of tokens) is compute bound.** (512, 576) @ (576, 1536) does 512 flops per
  weight byte read; the float32 GEMM's FMA units are the limit, and this CPU (AVX-512, 2 cores)
  has no int8 or fp8 matrix unit for a weight-only kernel to use. Converting codes once per call
  costs ~1/500 of the GEMM, so "dequantize, then the ordinary GEMM" is the right prefill kernel.
  On a GPU it differs: a 4090 reads ~1 TB/s and does 165 (bf16) / 330 (fp8) / 660 (int8) dense
  TFLOPS, so an 8-bit *GEMM* (``torch._int_mm``, ``torch._scaled_mm``, activations quantized per
  token) is also a prefill win there.

The kernels, per device and phase (decode = at most ``DECODE_MAX_TOKENS`` rows):

=============  ========================================  =====================================
scheme         CPU decode                                CPU prefill / fallback
=============  ========================================  =====================================
int8 row/tens  ``aten._weight_int8pack_mm`` (bf16 x)    same kernel (it beats the fp32 GEMM)
int8 group     ``_weight_int8pack_mm`` per K-group       dequantize → float GEMM
               (small N·g: chunked conversion as fp8)
fp8 row/tens   codes → float in L2-sized chunks → GEMV    dequantize → float GEMM
fp8 group      same, a batched GEMV over the groups      dequantize → float GEMM
=============  ========================================  =====================================

Measured with ``python -m labkit.bench.layers`` (SmolLM2 shapes, cold weights, 1 thread) on the
lab's earlier 2-core AVX-512 AMD EPYC VM, busy, November 2026 — ratios vs float32 ``nn.Linear`` in the
same run: decode int8-row 1.2x (576→192) to 3.2x (576→1536, lm_head 576→49152); int8 groups
0.4–1.6x on decoder shapes and 3–4x on the lm_head; fp8 0.6–1.0x (row) and 0.3–0.6x (groups).
Prefill (512 tokens): int8-row 1.3–1.5x, dequantize → GEMM 0.9–0.97x. Ratios of one run on one
machine, not constants: re-measure on yours. (A whole decode step at batch 1 avoids these per-layer
calls altogether: ``labkit.bench.native``.)

``_weight_int8pack_mm(x, q: (N, K) int8, s: (N,))`` is the CPU int8 weight-only kernel
(torch 2.13): ``x`` must be 2-D and contiguous, ``q`` contiguous, K a multiple of 16
(otherwise wrong results or a crash), ``s`` must have ``x``'s dtype, and only
bfloat16 ``x`` runs a vectorized path (float32 and float16 ``x`` fall back to a scalar loop ~6x
slower than a float32 GEMV). So a float32 activation is rounded to bfloat16 (relative error
≤ 2^-9 per element — the "A16" of W8A16) and the float32 per-row scale is applied *after* the
kernel (a bf16 scale would add a systematic 2^-9 error per row). Per group, the codes are stored
group-major (``pack_group_major``: group 0's (N, g) block, then group 1's, ...), so each group is
a contiguous (N, g) int8 matrix: y = Σ_j s[:, j] · (x_j @ q_jᵀ), one kernel call per group.

FP8 on this CPU has no arithmetic at all; torch's ``float8 → float32`` cast is a scalar loop
(~0.7 G elements/s, slower than a float32 GEMV). The e4m3 bit pattern ``s eeee mmm`` is, shifted
left by 20, exactly a float32 with sign s, exponent eeee and mantissa mmm, but exponent bias 127
instead of 7: ``value = float32_bits(code << 20) · 2^120``, for every code including subnormals
(``fp8_code_values``). Four vectorized integer/float ops instead of a scalar loop.

CUDA (not testable here, marked ``gpu`` in the tests): int8 row/tensor decode (≤ 16 tokens) runs the
weight-only int8 GEMV ``_weight_int8pack_mm`` (CUDA has it too) — the codes are read once, never
dequantized into a temporary; with > 16 tokens ``torch._int_mm`` (int8 activations per token; K and
N padded to multiples of 8). fp8 row/tensor with > 16 tokens on SM ≥ 8.9 uses ``torch._scaled_mm``
with row-wise scales (bf16 output, K and N multiples of 16). Both quantize the activations per token
(``quantize_per_token``: ``choose_qparams(x, fmt, PerToken())`` + ``quantize`` from
``labkit.quant``, bounds from its formats table), as the tensor cores require. Everything else —
fp8 decode, fp8 before SM 8.9, every per-group scheme — dequantizes into a temporary, then the GEMM.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from ..quant.formats import Format
from ..quant.granularity import Granularity, PerGroup, PerToken
from ..quant.primitives import choose_qparams, quantize

DECODE_MAX_TOKENS = 16
INT8PACK_K_MULTIPLE = 16
INT8PACK_MIN_CALL_ELEMENTS = 1 << 16  # below this many weights per group call, convert instead
CHUNK_ELEMENTS = 1 << 17  # codes converted per step: a 512 KB float32 temporary stays in L2

# e4m3 bits placed in a float32: keep the sign (bit 31) and exponent+mantissa (bits 26..20),
# drop the sign-extension copies that a shifted negative int8 leaves in bits 27..30.
_E4M3_MASK = 0x87F00000 - (1 << 32)  # as a signed int32
_E4M3_REBIAS = 2.0**120  # 2^(127 - 7)


def fp8_code_values(bits: torch.Tensor, fmt: Format) -> torch.Tensor:
    """Float32 values of fp8 codes stored as raw bytes ``bits`` (uint8, any shape), unscaled."""
    if fmt.name == "fp8_e4m3":
        t = bits.view(torch.int8).to(torch.int32)
        t.bitwise_left_shift_(20).bitwise_and_(_E4M3_MASK)
        return t.view(torch.float32).mul_(_E4M3_REBIAS)
    return bits.view(torch.float8_e5m2).to(torch.float32)


def code_values(qweight: torch.Tensor, fmt: Format) -> torch.Tensor:
    """Float32 values of stored codes (int8 codes, or fp8 codes kept as uint8 bytes)."""
    return fp8_code_values(qweight, fmt) if fmt.is_float else qweight.to(torch.float32)


def pack_group_major(codes: torch.Tensor, group_size: int) -> torch.Tensor:
    """``(N, K)`` codes → flat ``(N·K,)`` with each K-group contiguous: group 0's ``(N, g)`` block,
    then group 1's, ..., then the shorter last group ``(N, K mod g)``. No padding, no extra bytes."""
    k = codes.shape[1]
    return torch.cat([codes[:, a:a + group_size].reshape(-1) for a in range(0, k, group_size)])


def split_groups(flat: torch.Tensor, n: int, k: int, g: int):
    """Views of a group-major buffer: ``full (K // g, N, g)`` and ``tail (N, K mod g)`` (or None)."""
    g_full = k // g
    full = flat[: g_full * n * g].view(g_full, n, g) if g_full else None
    tail = flat[g_full * n * g:].view(n, k - g_full * g) if k % g else None
    return full, tail


def dequantize_weight(qweight: torch.Tensor, scale: torch.Tensor, fmt: Format, granularity,
                      in_features: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``Ŵ = q · s`` as an ``(N, K)`` tensor of ``dtype``.

    Layouts: ``qweight (N, K)`` with ``scale ()`` or ``(N,)``; per group a group-major flat
    ``qweight (N·K,)`` (``pack_group_major``) with ``scale (N, G)``. int8 codes are multiplied
    by the float32 scales in one pass (``torch.mul`` promotes int8 · float32 → float32) straight
    into the output, so a prefill pays one read of the codes and one write of the weight.
    """
    s = scale.to(torch.float32)
    codes = code_values if fmt.is_float else (lambda q, fmt: q)
    if not isinstance(granularity, PerGroup):
        return torch.mul(codes(qweight, fmt), s.reshape(-1, 1) if s.ndim else s).to(dtype)
    n, g = s.shape[0], granularity.group_size
    full, tail = split_groups(qweight, n, in_features, g)
    w = torch.empty(n, in_features, dtype=torch.float32, device=qweight.device)
    if full is not None:  # (N, G, g) view of w ← (G, N, g) codes permuted · (N, G, 1) scales
        g_full = full.shape[0]
        torch.mul(codes(full, fmt).permute(1, 0, 2), s[:, :g_full].unsqueeze(-1),
                  out=w[:, : g_full * g].view(n, g_full, g))
    if tail is not None:
        torch.mul(codes(tail, fmt), s[:, -1:], out=w[:, in_features - tail.shape[1]:])
    return w.to(dtype)


@lru_cache(maxsize=64)
def _unit_scales(n: int, device: torch.device) -> torch.Tensor:
    return torch.ones(n, dtype=torch.bfloat16, device=device)


def int8pack_mm(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``x: (M, K) @ q: (N, K) int8ᵀ`` by the CPU int8 kernel, bf16 activations → bf16 (M, N).

    torch 2.13's kernel needs K % 16 == 0: other K give wrong sums (M = 1) or a segfault (M > 1),
    measured on this AVX-512 CPU. Such K (tiny test layers, a short last group) take a float path.
    """
    if q.shape[1] % INT8PACK_K_MULTIPLE:
        return F.linear(x.to(torch.float32), q.to(torch.float32))
    xb = x.to(torch.bfloat16).contiguous()  # a column slice (row stride ≠ K) gives wrong sums
    return torch.ops.aten._weight_int8pack_mm(xb, q, _unit_scales(q.shape[0], q.device))


def int8_rowwise_cpu(x, qweight, scale, fmt, granularity):
    """Weight-only int8 GEMV/GEMM: int8 codes read once, bf16 activations, fp32 row scales after.

    Also the CUDA decode kernel (torch 2.13 registers ``_weight_int8pack_mm`` for CUDA too): a decode
    step is memory bound, so reading 1 byte per weight is the whole win; dequantizing the weight into
    a bf16 temporary every step would read 1 + write 2 + read 2 bytes instead of 2 (~0.4x of bf16).
    """
    return int8pack_mm(x, qweight) * scale.to(torch.float32)


def int8_grouped_cpu(x, qweight, scale, fmt, granularity):
    """y = Σ_j s[:, j] · (x_j @ q_jᵀ): one int8 kernel call per K-group, accumulated in float32.

    Each call costs ~10 µs of overhead, so for small groups × few rows (576→192 at g = 64: nine
    calls on 12K weights each) converting the codes in cache-sized chunks is faster.
    """
    n, g, k = scale.shape[0], granularity.group_size, x.shape[1]
    if n * g < INT8PACK_MIN_CALL_ELEMENTS:
        return converted_decode_cpu(x, qweight, scale, fmt, granularity)
    s = scale.to(torch.float32)
    xb = x.to(torch.bfloat16)
    y = None
    for j, a in enumerate(range(0, k, g)):
        b = min(a + g, k)
        q = qweight[a * n: b * n].view(n, b - a)  # group j's (N, b - a) block, contiguous
        part = int8pack_mm(xb[:, a:b], q)
        y = part * s[:, j] if y is None else y.addcmul_(part, s[:, j])
    return y


def _e4m3_unbiased(bits: torch.Tensor) -> torch.Tensor:
    """e4m3 code values times 2^-120 (the float32 bit trick without its last multiply)."""
    t = bits.view(torch.int8).to(torch.int32)
    return t.bitwise_left_shift_(20).bitwise_and_(_E4M3_MASK).view(torch.float32)


def _chunks(n: int, k: int):
    rows = max(1, CHUNK_ELEMENTS // k)
    return [(a, min(a + rows, n)) for a in range(0, n, rows)]


def converted_decode_cpu(x, qweight, scale, fmt, granularity):
    """Convert the codes to float32 chunk by chunk and multiply; scales are applied to the output.

    Chunks of ``CHUNK_ELEMENTS`` codes keep the float32 temporary in the L2 cache: converting the
    whole 576×49152 lm_head at once writes and re-reads 113 MB through DRAM (0.1x of float32,
    measured), chunk by chunk it never leaves the cache. For e4m3 the 2^120 of the bit trick is
    folded into the scales too (one pass less), unless scale · 2^120 would overflow float32.
    """
    x32 = x.to(torch.float32)
    s = scale.to(torch.float32)
    if fmt.name == "fp8_e4m3" and s.abs().max() < 2.0**7:
        values, s = _e4m3_unbiased, s * _E4M3_REBIAS
    else:
        def values(codes):
            return code_values(codes, fmt)
    grouped = isinstance(granularity, PerGroup)
    n, k = (scale.shape[0] if grouped else qweight.shape[0]), x.shape[1]
    if not grouped:
        parts = [F.linear(x32, values(qweight[a:b])) for a, b in _chunks(n, k)]
        return (torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]) * s
    g = granularity.group_size
    full, tail = split_groups(qweight, n, k, g)
    parts = []
    for a, b in _chunks(n, k):
        y = 0
        if full is not None:
            g_full = full.shape[0]
            xg = x32[:, : g_full * g].reshape(-1, g_full, g).transpose(0, 1)  # (G, M, g)
            partial = torch.bmm(xg, values(full[:, a:b]).transpose(1, 2))  # (G, M, rows) code sums
            y = (partial * s[a:b, :g_full].t().unsqueeze(1)).sum(0)
        if tail is not None:
            y = y + F.linear(x32[:, k - tail.shape[1]:], values(tail[a:b])) * s[a:b, -1]
        parts.append(y)
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def dequant_mm(x, qweight, scale, fmt, granularity):
    """Dequantize into a temporary in x's dtype (freed after the call), then the float GEMM."""
    return F.linear(x, dequantize_weight(qweight, scale, fmt, granularity, x.shape[1], x.dtype))


# ---- CUDA (tensor cores): activations quantized per token, then an 8-bit GEMM ----------------

def _pad_to(t: torch.Tensor, dim: int, multiple: int) -> torch.Tensor:
    pad = -t.shape[dim] % multiple
    if not pad:
        return t
    widths = [0, 0] * (t.ndim - 1 - dim % t.ndim) + [0, pad]
    return F.pad(t, widths)


def quantize_per_token(x: torch.Tensor, fmt: Format) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations ``x: (M, K)`` → codes ``(M, K)`` in ``fmt`` (int8, or float8 dtype) and float32
    scales ``(M, 1)``: one absmax scale per token, the primitives of ``labkit.quant`` (an all-zero
    token gets scale 1 and zero codes)."""
    qp = choose_qparams(x, fmt, PerToken())
    return quantize(x, qp), qp.scale.reshape(-1, 1)


def int8_rowwise_cuda(x, qweight, scale, fmt, granularity):
    if x.shape[0] <= 16:  # torch._int_mm needs M > 16; decode takes the weight-only int8 GEMV
        return int8_rowwise_cpu(x, qweight, scale, fmt, granularity)
    qx, sx = quantize_per_token(x, fmt)
    n = qweight.shape[0]
    qx, qw = _pad_to(qx, 1, 8), _pad_to(_pad_to(qweight, 1, 8), 0, 8)
    acc = torch._int_mm(qx, qw.t())[:, :n]  # qw.t() is column-major, as cuBLASLt wants
    return acc.to(torch.float32) * sx * scale.to(torch.float32)


def fp8_rowwise_cuda(x, qweight, scale, fmt, granularity):
    if fmt.name != "fp8_e4m3" or torch.cuda.get_device_capability(x.device) < (8, 9) or x.shape[0] <= 16:
        return dequant_mm(x, qweight, scale, fmt, granularity)
    qx, sx = quantize_per_token(x, fmt)
    n = qweight.shape[0]
    qw = _pad_to(_pad_to(qweight.view(torch.float8_e4m3fn), 1, 16), 0, 16)
    qx = _pad_to(qx, 1, 16)
    sw = _pad_to(scale.to(torch.float32).expand(n).reshape(1, n), 1, 16).contiguous()
    y = torch._scaled_mm(qx, qw.t(), scale_a=sx.contiguous(), scale_b=sw, out_dtype=torch.bfloat16)
    return y[:, :n].to(torch.float32)


# (device type, format kind, grouped?, decode?) → kernel(x (M, K), qweight, scale, fmt) → (M, N)
KERNELS = {
    ("cpu", "int", False, True): int8_rowwise_cpu,
    ("cpu", "int", False, False): int8_rowwise_cpu,
    ("cpu", "int", True, True): int8_grouped_cpu,
    ("cpu", "int", True, False): dequant_mm,
    ("cpu", "float", False, True): converted_decode_cpu,
    ("cpu", "float", True, True): converted_decode_cpu,
    ("cpu", "float", False, False): dequant_mm,  # one big GEMM beats chunked GEMMs (0.95x vs 0.8x)
    ("cpu", "float", True, False): dequant_mm,
    ("cuda", "int", False, True): int8_rowwise_cpu,  # weight-only int8 GEMV (see its docstring)
    ("cuda", "int", False, False): int8_rowwise_cuda,
    ("cuda", "float", False, False): fp8_rowwise_cuda,
}


def pick_kernel(device: torch.device, fmt: Format, granularity: Granularity, tokens: int):
    """The kernel for this device, format, granularity and number of tokens (dequant_mm if none)."""
    key = (device.type, fmt.kind, isinstance(granularity, PerGroup), tokens <= DECODE_MAX_TOKENS)
    return KERNELS.get(key, dequant_mm)


def weight_only_mm(x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor, fmt: Format,
                   granularity: Granularity) -> torch.Tensor:
    """``x: (M, K)`` float → ``x @ Ŵᵀ: (M, N)`` (float32 or x's dtype), Ŵ given by codes + scales."""
    kernel = pick_kernel(x.device, fmt, granularity, x.shape[0])
    return kernel(x, qweight, scale, fmt, granularity)
