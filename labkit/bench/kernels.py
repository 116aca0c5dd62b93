"""Kernel micro-benchmarks: one quantized linear against ``nn.Linear`` at Qwen3-1.7B's MLP shapes.

``labkit bench --kernels`` times ``QuantLinear(real).forward`` and the float linear it came from on
the same input, for in→out = 2048→6144 (gate/up) and 6144→2048 (down), with 1 token (decode: a
GEMV, memory bound) and 128 tokens (prefill: a GEMM, compute bound). Each timing is the mean of
``inner`` calls; ``repeats`` such timings alternate between the two layers and the medians are
reported with the median paired speedup (``timing.py`` explains why paired).

It also measures the machine, so the kernels can be read against its roofline (``roofline.py``):
``stream_gb_s`` — reading a float32 tensor larger than the caches once (``roofline.measure_bandwidth``) — and ``fp32_gflops`` — a
1024×2048 @ 2048×2048 matmul. A GEMV that reads its weight at close to ``stream_gb_s`` cannot get
faster without reading fewer bytes, which is the whole argument for 8-bit weights in decode.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .timing import mean_seconds, paired_seconds

SHAPES: tuple[tuple[int, int], ...] = ((2048, 6144), (6144, 2048))  # (in_features, out_features)
TOKENS: tuple[int, ...] = (1, 128)


@dataclass(frozen=True)
class KernelTiming:
    scheme: str
    in_features: int
    out_features: int
    tokens: int
    seconds: float
    baseline_seconds: float
    speedup: float
    weight_bytes: int
    baseline_weight_bytes: int
    weight_gb_s: float  # weight bytes / seconds: how close a GEMV gets to the memory roofline


def time_linear_pair(base: nn.Module, quant: nn.Module, x: torch.Tensor, repeats: int = 5, inner: int = 10,
                     warmup: int = 2) -> tuple[float, float, float]:
    """Median seconds per call of ``quant(x)`` and ``base(x)``, and the median paired speedup."""
    with torch.inference_mode():
        q_s, b_s = paired_seconds(lambda: mean_seconds(lambda: base(x), inner),
                                  lambda: mean_seconds(lambda: quant(x), inner), repeats, warmup)
    ratios = [b / q for q, b in zip(q_s, b_s)]
    return statistics.median(q_s), statistics.median(b_s), statistics.median(ratios)


def machine_peaks(inner: int = 5) -> dict:
    """Measured ``stream_gb_s`` (read bandwidth, ``roofline.measure_bandwidth``) and ``fp32_gflops``
    (a 1024×2048 @ 2048×2048 GEMM) of this device at the current torch thread count."""
    from .roofline import measure_bandwidth

    a, b = torch.randn(1024, 2048), torch.randn(2048, 2048)
    with torch.inference_mode():
        a @ b
        mm_s = min(mean_seconds(lambda: a @ b) for _ in range(inner))
    return {"stream_gb_s": measure_bandwidth(repeats=inner).gb_s, "fp32_gflops": 2 * 1024 * 2048 * 2048 / mm_s / 1e9}


def bench_kernels(schemes: list[str], shapes=SHAPES, tokens=TOKENS, repeats: int = 5, inner: int = 10,
                  seed: int = 0) -> list[KernelTiming]:
    """Time every ``scheme`` (real mode) at every shape and token count against the float32 linear."""
    from labkit.nn import QuantLinear

    gen = torch.Generator().manual_seed(seed)
    rows = []
    for k, n in shapes:
        base = nn.Linear(k, n, bias=False)
        with torch.no_grad():
            base.weight.copy_(torch.randn(n, k, generator=gen) * k**-0.5)
        base_bytes = base.weight.numel() * base.weight.element_size()
        for name in schemes:
            quant = QuantLinear.from_float(base, name, mode="real")
            for m in tokens:
                x = torch.randn(m, k, generator=gen)
                q_s, b_s, speedup = time_linear_pair(base, quant, x, repeats, inner)
                wb = int(quant.weight_bytes())
                rows.append(KernelTiming(name, k, n, m, q_s, b_s, speedup, wb, base_bytes, wb / q_s / 1e9))
    return rows


def as_dicts(rows: list[KernelTiming]) -> list[dict]:
    return [asdict(r) for r in rows]
