"""Layer micro-benchmark at the default model's shapes, with weights that do not fit in cache.

``bench_layers(["int8-row", "fp8-row"])`` times ``QuantLinear(real)`` against the float32
``nn.Linear`` it came from, at SmolLM2-135M's linear shapes (in → out): 576→576 (q, o), 576→192
(k, v), 576→1536 (gate, up), 1536→576 (down) and the lm_head 576→49152, for 1 token (decode) and
512 tokens (prefill).

Why "cold": one SmolLM2 decoder layer's float32 weights are 3.5 MB and fit in this CPU's 32 MB L3
cache, so timing one layer over and over measures the cache, not the memory. In a model, every
decode step reads all ~100M decoder weights once (~400 MB in float32): from DRAM. So each side
gets distinct layers whose weights together exceed ``cold_bytes`` (default 64 MB) and
every timed call uses the next copy, as the layers of a model do. The lm_head (113 MB) is cold on
its own.

Pairs alternate (baseline, quantized), (quantized, baseline), ... and the reported speedup is the
median of the per-repeat ratios, so a burst of someone else's work on a shared machine slows both
halves of a pair (the convention of ``labkit.bench.timing``). Numbers are measured, never assumed:
run ``python -m labkit.bench.layers`` on the machine in question.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .timing import paired_seconds

SMOLLM2_SHAPES: tuple[tuple[int, int], ...] = ((576, 576), (576, 192), (576, 1536), (1536, 576), (576, 49152))
TOKENS: tuple[int, ...] = (1, 512)


@dataclass(frozen=True)
class LayerTiming:
    scheme: str
    in_features: int
    out_features: int
    tokens: int
    seconds: float  # median per call, quantized
    baseline_seconds: float  # median per call, float32 nn.Linear
    speedup: float  # median of paired baseline / quantized

    def as_dict(self) -> dict:
        return asdict(self)


def _time_round(layers: list[nn.Module], x: torch.Tensor) -> float:
    start = time.perf_counter()
    for layer in layers:
        layer(x)
    return (time.perf_counter() - start) / len(layers)


def _copies(n_in: int, n_out: int, cold_bytes: int) -> int:
    return max(2, -(-cold_bytes // (n_in * n_out)))  # enough 8-bit copies to exceed the cache too


def bench_layer(scheme: str, n_in: int, n_out: int, tokens: int, *, repeats: int = 7,
                cold_bytes: int = 64 * 2**20, seed: int = 0) -> LayerTiming:
    """Median seconds per call of the real-quantized layer and of the float32 layer (cold weights)."""
    from labkit.nn import QuantLinear

    gen = torch.Generator().manual_seed(seed)
    n_quant = _copies(n_in, n_out, cold_bytes)
    n_base = _copies(n_in, n_out, cold_bytes // 4)  # float32 weights are 4x larger: fewer copies
    base, quant = [], []
    for i in range(n_quant):
        lin = nn.Linear(n_in, n_out, bias=False)
        with torch.no_grad():
            lin.weight.normal_(0.0, 0.05, generator=gen)
        quant.append(QuantLinear.from_float(lin, scheme, "real"))
        if i < n_base:
            base.append(lin)
    x = torch.randn(tokens, n_in, generator=gen)
    with torch.inference_mode():  # the warm-up also first-touches the weights
        q_s, b_s = paired_seconds(lambda: _time_round(base, x), lambda: _time_round(quant, x), repeats, warmup=1)
    ratios = [b / q for q, b in zip(q_s, b_s)]
    return LayerTiming(scheme, n_in, n_out, tokens, statistics.median(q_s), statistics.median(b_s),
                       statistics.median(ratios))


def bench_layers(schemes: list[str], shapes=SMOLLM2_SHAPES, tokens=TOKENS, **kwargs) -> list[LayerTiming]:
    """Every scheme (real mode) × shape × token count against float32, in one run.

    The lm_head (out > 10,000) is timed for 1 token only: generation computes logits for the last
    prompt position, never a 512-token lm_head GEMM.
    """
    return [bench_layer(s, n_in, n_out, t, **kwargs) for t in tokens for n_in, n_out in shapes
            if t == 1 or n_out <= 10_000 for s in schemes]


def format_table(rows: list[LayerTiming]) -> str:
    lines = ["| scheme | in→out | tokens | fp32 µs | quant µs | speedup |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.scheme} | {r.in_features}→{r.out_features} | {r.tokens} | "
                     f"{r.baseline_seconds * 1e6:.0f} | {r.seconds * 1e6:.0f} | {r.speedup:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m labkit.bench.layers [scheme ...]
    import sys

    names = sys.argv[1:] or ["int8-row", "int8-group128", "fp8-row", "fp8-group128"]
    print(format_table(bench_layers(names)))
