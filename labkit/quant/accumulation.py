"""What the matmul adds up in: INT8 GEMMs accumulate exactly, FP8 GEMMs on Ada/Hopper do not.

A W8A8 GEMM multiplies 8-bit codes and adds the products along K. Where those sums live decides
whether the "real" low-precision matmul equals the fake-quant float matmul that accuracy studies use:

* **INT8** (``int8_matmul``): ``acc[m, n] = Σ_k qa[m, k]·qb[k, n]`` in int32. Every product is an
  integer of at most 127² = 16129, so the sum is *exact* for K < 2^31 / 16129 ≈ 133 000. The float
  result ``acc · sa[m] · sb[n]`` equals ``fq(A) @ fq(B)`` computed in float64 up to the float32
  rounding of the output (relative ~6e-8). A float32 accumulation of the same codes is *not* exact
  once the sums pass 2^24 (K ≳ 1040 with saturated codes) — the reason integer tensor cores
  accumulate in int32.
* **FP8** (``fp8_matmul_limited``): the product of two e4m3 values has at most 8 significant bits
  and is exact in any float accumulator, but NVIDIA's Ada/Hopper FP8 tensor cores keep the running
  sum with only about 14 significant bits (the DeepSeek-V3 report measured this on H800 and found
  a maximum relative error near 2 % for K = 4096). The emulation here rounds the running sum to
  ``acc_bits`` significant bits (round to nearest, ties to even) after every addition. Its fix,
  ``promote_every=128``: every 128 elements of K the limited partial sum is added into a float32
  accumulator (on the GPU: moved to the CUDA cores) and restarted at 0, so no partial sum grows
  large enough for its rounding step to swallow the next products.

Worked number: with 14 significant bits, a running sum of 1000 has a grid step of 2^(10−14) =
0.0625; adding a product of 0.01 changes nothing — that product is lost. Restarted every 128
elements, the partial sums stay near 128·(typical product), and far fewer products are lost.

Design: pure functions on torch tensors, computed on CPU in float64 where the emulation needs a
wider intermediate than the format it models (a float64 addition of a 14-bit sum and an 8-bit
product is exact, so the only rounding is the one we model). Scales are applied once, at the end:
per-token for A (one scale per row of ``a: (M, K)``) and per-column for B (``b: (K, N)`` is the
transposed weight ``W: (N, K)``, so one scale per output channel). torchao has no accumulator
emulation; ``torch._scaled_mm`` on CPU accumulates in float32.
"""

from __future__ import annotations

import torch

from .granularity import PerRow
from .primitives import choose_qparams, quantize

FP8_ACC_BITS = 14        # Ada/Hopper FP8 tensor cores, as measured in the DeepSeek-V3 report
PROMOTE_EVERY = 128      # DeepSeek-V3's promotion interval N_C along K


def _check_operands(a: torch.Tensor, b: torch.Tensor) -> None:
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.is_floating_point():
            got = f"{t.dtype}{list(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 2-D float tensor, got {got}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {tuple(a.shape)} (M, K), b is {tuple(b.shape)} (K, N)")


def quantize_operands(a: torch.Tensor, b: torch.Tensor, fmt: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes and scales of a W8A8 GEMM: ``(qa (M, K), sa (M,), qb (K, N), sb (N,))``.

    ``a`` per token (row), ``b`` per column (= per row of the weight ``b.T``). Integer codes come
    back as int8, e4m3 codes as float32 tensors holding e4m3 values.
    """
    _check_operands(a, b)
    pa = choose_qparams(a.float(), fmt, PerRow())
    pb = choose_qparams(b.T.float().contiguous(), fmt, PerRow())
    qa, qb = quantize(a.float(), pa), quantize(b.T.float().contiguous(), pb).T
    if not qa.dtype.is_floating_point:
        qa, qb = qa.to(torch.int8), qb.to(torch.int8)
    else:
        qa, qb = qa.float(), qb.float()
    return qa, pa.scale.float(), qb.contiguous(), pb.scale.float()


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """W8A8 INT8 GEMM ``a: (M, K) @ b: (K, N)`` → float32 (M, N): int32 accumulation, then
    ``acc · sa[m] · sb[n]`` (see the module docstring)."""
    qa, sa, qb, sb = quantize_operands(a, b, "int8")
    acc = qa.to(torch.int32) @ qb.to(torch.int32)
    return acc.float() * sa[:, None] * sb[None, :]


def fake_quant_matmul(a: torch.Tensor, b: torch.Tensor, fmt: str) -> torch.Tensor:
    """``dequant(qa) @ dequant(qb)`` in float64: what a fake-quant accuracy study computes, with
    no accumulation error at all. Float64 (M, N)."""
    qa, sa, qb, sb = quantize_operands(a, b, fmt)
    return (qa.double() * sa.double()[:, None]) @ (qb.double() * sb.double()[None, :])


def round_to_bits(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x`` rounded to ``bits`` significant bits (nearest, ties to even); 0 stays 0. Same dtype."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 52:
        raise ValueError(f"bits must be an integer in [1, 52], got {bits!r}")
    mantissa, exponent = torch.frexp(x.double())            # x = m·2^e, |m| in [0.5, 1)
    rounded = torch.ldexp(torch.round(torch.ldexp(mantissa, torch.tensor(bits))), exponent - bits)
    return rounded.to(x.dtype)


def limited_accumulate(qa: torch.Tensor, qb: torch.Tensor, acc_bits: int = FP8_ACC_BITS,
                       promote_every: int | None = None) -> torch.Tensor:
    """Σ_k qa[:, k]·qb[k, :] with the running sum kept to ``acc_bits`` significant bits.

    ``qa: (M, K)``, ``qb: (K, N)`` hold e4m3 values (scales stripped). Products are exact; after each
    addition (in float64) the sum is rounded to ``acc_bits`` bits. ``promote_every=n``: after every n
    elements of K (and after the last, shorter chunk) the limited sum is added into a float32
    accumulator and restarted at 0. ``None``: one limited sum over all of K, converted to float32 at
    the end. Returns float32 (M, N).
    """
    _check_operands(qa, qb)
    if promote_every is not None and (isinstance(promote_every, bool) or not isinstance(promote_every, int)
                                      or promote_every < 1):
        raise ValueError(f"promote_every must be a positive integer or None, got {promote_every!r}")
    a, b = qa.double(), qb.double()
    m, k = a.shape
    total = torch.zeros(m, b.shape[1], dtype=torch.float32)
    acc = torch.zeros(m, b.shape[1], dtype=torch.float64)
    for i in range(k):
        acc = round_to_bits(acc + a[:, i : i + 1] * b[i : i + 1, :], acc_bits)
        if promote_every is not None and (i + 1) % promote_every == 0:
            total, acc = total + acc.float(), torch.zeros_like(acc)
    return total + acc.float()


def fp8_matmul_limited(a: torch.Tensor, b: torch.Tensor, acc_bits: int = FP8_ACC_BITS,
                       promote_every: int | None = None) -> torch.Tensor:
    """W8A8 FP8 e4m3 GEMM with a limited-precision accumulator (see ``limited_accumulate``), then
    ``· sa[m] · sb[n]``. Float32 (M, N)."""
    qa, sa, qb, sb = quantize_operands(a, b, "fp8_e4m3")
    return limited_accumulate(qa, qb, acc_bits, promote_every) * sa[:, None] * sb[None, :]


def relative_error(c_hat: torch.Tensor, c: torch.Tensor) -> float:
    """``‖ĉ − c‖_F / ‖c‖_F`` in float64."""
    c = c.double()
    return float(torch.linalg.vector_norm(c_hat.double() - c) / torch.linalg.vector_norm(c))
