"""Why 8-bit weights speed up decode but not prefill on this CPU — and what changes on a GPU.

A forward pass over T tokens of a decoder with P matmul parameters (every linear, lm_head included)
does ``2·P·T`` FLOPs and must read the ``P·b`` weight bytes at least once (b = bytes per weight).
Its time is at least ``max(FLOPs / peak_flops, bytes / bandwidth)`` (the roofline). The ratio
``FLOPs / bytes = 2T / b`` (arithmetic intensity) decides which bound binds: below the machine's
``peak_flops / bandwidth`` the pass is memory bound, above it compute bound.

* **Decode** (T = batch = 1) has intensity 2/b: 0.5 FLOP/byte in fp32, 2 in int8. Every machine is
  memory bound there, so time ∝ weight bytes, and 8-bit weights read 4× fewer bytes than fp32 (2×
  fewer than bf16). The speedup is real if the kernel reads the int8 codes and converts them *in
  registers* (``torch.ops.aten._weight_int8pack_mm`` on CPU, fused dequant GEMV / ``_int_mm`` /
  ``_scaled_mm`` on GPU) — not if it first writes a dequantized fp32 copy of the weight to memory,
  which reads 1 byte and writes and reads 4 more per weight: the 0.37x a student measured.
* **Prefill** (T = prompt length, e.g. 128) has intensity 2·128/4 = 64 FLOP/byte in fp32 — compute
  bound on this CPU. Weight-only quantization keeps the activations in float, so the multiply-adds
  still run as fp32/bf16 FMAs: the FLOPs do not shrink, and dequantizing adds work. This CPU (AMD
  EPYC, AVX-512 with VNNI) has no int8/fp8 *matrix* units (no AMX); VNNI int8 dot products would
  need 8-bit activations too (W8A8), and torch's CPU ``_int_mm`` does not reach fp32 GEMM speed. So
  the best a weight-only scheme can do in prefill is ≈1.0x (dequantize a tile, then the fp32 GEMM).
  One measured exception, and why it is not an 8-bit win: INT8 per-row/per-tensor prefill runs
  ``_weight_int8pack_mm``, which rounds the activations to bf16 and uses the CPU's AVX512-BF16
  dot-product instructions — twice the multiply-adds per instruction of fp32 FMAs. It beats the
  fp32 baseline (~1.4x measured) for the same reason a bf16 baseline would; against a bf16 GEMM
  it has nothing left to win.

Worked numbers (``model_matmul_params`` below; run ``labkit bench --roofline`` to print them):

* SmolLM2-135M (the default model): 30 layers × 3.54 M linear weights + the tied 49152×576 lm_head
  (28.3 M) = **134.5 M** matmul weights. Decode reads 538 MB per token in fp32, 134.5 MB in int8 —
  up to 4× faster when memory bound. Prefill of 128 tokens is 34.4 GFLOP against the same 538 MB:
  intensity 64 FLOP/byte, far above this CPU's ridge (``labkit bench --kernels`` prints the
  measured read bandwidth and fp32 GEMM rate of the machine it runs on; their ratio is the ridge).
* Qwen3-1.7B: 28 layers × 50.3 M + the tied 151936×2048 lm_head (311 M) = **1.72 G** matmul
  weights. On an RTX 4090 (~1.0 TB/s; dense tensor-core peaks 165 bf16, 330 fp8, 660 int8
  TFLOPS) decode at batch 1 reads 3.44 GB (bf16) → ≥ 3.4 ms/token (≤ 293 tok/s); with 8-bit
  weights 1.72 GB → ≥ 1.7 ms (≤ 586 tok/s), while the FLOPs (3.4 GFLOP) take 21 µs: 2x from
  bytes alone. The 4090's ridge point is 165 FLOP/byte for bf16: decode stays memory bound up to a
  batch of ~165 sequences (bf16 weights) or ~80 (8-bit weights, bf16 math). A 1024-token prefill
  is 3.5 TFLOP → 21 ms at 165 TFLOPS vs 3.4 ms to read the weights: compute bound, so weight-only
  8 bits cannot help; **W8A8** can — FP8 tensor cores halve it (10.7 ms), INT8 ones quarter it
  (5.3 ms) — if activation quantization is fused so it costs less than it saves.
  An H100 SXM (3.35 TB/s; ~990 bf16 / 1980 fp8 / 1980 int8 dense TFLOPS) has a ridge near 300
  FLOP/byte: the same picture with every number faster.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Hardware:
    """Spec-sheet peaks (dense, no sparsity) — upper bounds to compare measurements with, not results."""

    name: str
    bandwidth_gb_s: float
    tflops: dict  # compute dtype -> dense TFLOPS


HARDWARE: dict[str, Hardware] = {
    "rtx4090": Hardware("RTX 4090", 1008.0, {"bf16": 165.0, "fp8": 330.0, "int8": 660.0}),
    "h100-sxm": Hardware("H100 SXM", 3350.0, {"bf16": 989.0, "fp8": 1979.0, "int8": 1979.0}),
}


def model_matmul_params(config: Any, include_lm_head: bool = True) -> int:
    """Number of weights the matmuls of one token read: all decoder linears (+ lm_head).

    Works from a Llama/Qwen2/Qwen3 config (``hidden_size``, ``intermediate_size``,
    ``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``, optional ``head_dim``,
    ``vocab_size``). A tied lm_head is still a matmul of ``vocab × hidden`` per token.
    """
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    d = getattr(config, "head_dim", None) or h // heads
    attn = h * heads * d + 2 * h * kv * d + heads * d * h  # q, k, v, o
    mlp = 3 * h * inter  # gate, up, down
    total = layers * (attn + mlp)
    return total + (config.vocab_size * h if include_lm_head else 0)


@dataclass(frozen=True)
class Roofline:
    """Lower-bound times of one forward pass of ``tokens`` tokens (seconds) and which bound binds."""

    params: int
    tokens: int
    bytes_per_weight: float
    flops: float
    weight_bytes: float
    intensity: float  # FLOP / byte
    compute_s: float
    memory_s: float
    bound: str  # "memory" or "compute"

    def as_dict(self) -> dict:
        return asdict(self)


def roofline(params: int, tokens: int, bytes_per_weight: float, peak_tflops: float, bandwidth_gb_s: float) -> Roofline:
    """``2·params·tokens`` FLOPs vs ``params·bytes_per_weight`` bytes (weights only; KV cache and
    activations are small next to them at the sizes of this lab)."""
    if params <= 0 or tokens <= 0 or bytes_per_weight <= 0 or peak_tflops <= 0 or bandwidth_gb_s <= 0:
        raise ValueError("params, tokens, bytes_per_weight, peak_tflops and bandwidth_gb_s must all be positive")
    flops = 2.0 * params * tokens
    nbytes = params * bytes_per_weight
    compute_s = flops / (peak_tflops * 1e12)
    memory_s = nbytes / (bandwidth_gb_s * 1e9)
    return Roofline(params, tokens, bytes_per_weight, flops, nbytes, flops / nbytes, compute_s, memory_s,
                    "memory" if memory_s >= compute_s else "compute")


# Bigger than any cache this lab's machines report (the shared VM says 480 MiB of L3): the probe
# must stream from DRAM as a decode step does.
PROBE_BYTES = 1 << 30


@dataclass(frozen=True)
class Bandwidth:
    """Measured read bandwidth: best of ``repeats`` reads of ``nbytes`` of float32 at ``threads``,
    by the probe named in ``probe``."""

    gb_s: float
    nbytes: int
    threads: int
    repeats: int
    load_avg_1min: float
    probe: str = "torch.sum"

    def as_dict(self) -> dict:
        return asdict(self)


def measure_bandwidth(nbytes: int = PROBE_BYTES, repeats: int = 5, threads: int | None = None) -> Bandwidth:
    """Read bandwidth of this machine, measured now over an ``nbytes`` float32 tensor (one read of
    every byte, nothing written), best of ``repeats``, with ``threads`` threads (default: the current
    torch setting — use the benchmark's own). Two probes read the same tensor: ``torch.sum`` and,
    where the native decode step can be built, its float32 GEMV (``native.gemv_read_gb_s``: eight
    accumulators, a software prefetch, its thread pool) — the higher reading counts. Best-of, because
    the roofline is the machine's ceiling; a shared machine only ever lowers a single reading, and a
    probe slower than the decode step itself would put the step above 100 % of its roofline (measured
    on the lab's VM: torch.sum 12.4 GB/s, the float32 decode step 13.0 GB/s)."""
    import time

    import torch

    if nbytes < 1 << 20 or repeats < 1:
        raise ValueError(f"nbytes must be ≥ 1 MiB and repeats ≥ 1, got nbytes={nbytes}, repeats={repeats}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        data = torch.ones(nbytes // 4)
        data.sum()  # first touch
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            data.sum()
            best = min(best, time.perf_counter() - start)
        used = torch.get_num_threads()
        gb_s, probe = data.numel() * 4 / best / 1e9, "torch.sum"
        try:
            from .native import NativeUnavailable, gemv_read_gb_s

            native = gemv_read_gb_s(data, threads=used, repeats=repeats)
            if native > gb_s:
                gb_s, probe = native, "native GEMV"
        except (NativeUnavailable, OSError, ValueError):
            pass  # no C compiler here (or a probe too small for the blocked layout): torch.sum alone
    finally:
        torch.set_num_threads(before)
    return Bandwidth(gb_s, data.numel() * 4, used, repeats, os.getloadavg()[0], probe)


def roofline_tokens_per_s(bytes_per_token: float, bandwidth_gb_s: float) -> float:
    """Decode's memory roofline: a token cannot be faster than reading its bytes once."""
    if bytes_per_token <= 0 or bandwidth_gb_s <= 0:
        raise ValueError("bytes_per_token and bandwidth_gb_s must be positive")
    return bandwidth_gb_s * 1e9 / bytes_per_token
