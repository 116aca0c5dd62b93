"""Checks for the fill-ins of notebook 07 (throughput and matmul precision), graded against labkit.bench.

Three exercises, each compared with the function ``labkit bench`` / ``labkit matmul-error`` use:

* ``tokens_per_second(phase, batch, prompt_len, gen_len, seconds)`` — prefill handles
  ``batch·prompt_len`` tokens, decode ``batch·gen_len``; divided by the seconds (reference
  ``labkit.bench.timing.tokens_per_second``). Worked example: prefill, 1 × 128 tokens in 0.25 s → 512.
* ``paired_speedup(seconds, baseline_seconds)`` — the median over repeats of the paired ratio
  ``baseline_seconds[i] / seconds[i]`` (reference ``labkit.bench.timing.summarize(...).speedup``).
  Worked example: ``[0.4, 0.5, 0.4]`` against ``[0.8, 0.9, 1.0]`` → ratios 2.0, 1.8, 2.5 → 2.0.
* ``matmul_rel_error(a, b, fmt, granularity)`` — ``‖AB − A·fq(B)‖_F / ‖AB‖_F`` with B fake-quantized
  as the weight ``Bᵀ: (N, K)`` ("row": one scale per column of B; "tensor": one scale), reference
  ``labkit.bench.matmul_error.quantized_product`` + ``error_metrics``. Tolerance: relative 2e-3, so
  a float32 product is fine; using ``labkit.quant.fake_quantize`` (taught in notebooks 01–03) is
  allowed.

``check_bench(name, fn, seed=0, points=None)`` runs seeded cases (the notebook's worked example
first) and prints one verdict line per case; a hidden test gets a ``Score`` = share of right cases
× ``points``. Tripwire: an answer that calls into ``labkit/bench`` (the references themselves)
scores 0 on that case, and so does one that changes its tensor inputs in place.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys

import torch

from ..bench import matmul_error as _me
from ..bench import timing as _timing
from .cases import run_cases
from .checks import Score
from .compare import GradingError
from .integrity import freeze_module, quiet

_BENCH_DIR = os.path.dirname(os.path.abspath(_timing.__file__)) + os.sep
_LABKIT_DIR = os.path.dirname(_BENCH_DIR.rstrip(os.sep)) + os.sep


def _speedup_reference(seconds, baseline_seconds) -> float:
    return _timing.summarize("decode", 1, 1, 1, list(seconds), list(baseline_seconds)).speedup


def _rel_error_reference(a: torch.Tensor, b: torch.Tensor, fmt: str, granularity: str) -> float:
    c = a.double() @ b.double()
    return _me.error_metrics(c, _me.quantized_product(a, b, fmt, granularity, False))[2]


# captured at import, i.e. in the notebook's setup cell before any student code runs
_REFERENCES = {"tokens_per_second": _timing.tokens_per_second, "paired_speedup": _speedup_reference,
               "matmul_rel_error": _rel_error_reference}

_HINTS = {
    "tokens_per_second": "prefill counts batch·prompt_len tokens, decode batch·gen_len; then divide by seconds",
    "paired_speedup": "ratio per repeat = baseline_seconds[i] / seconds[i]; return the median of the ratios "
                      "(statistics.median: the mean of the middle two when the count is even)",
    "matmul_rel_error": "quantize B as the weight W = B.T (rows reduce over K), compute A @ fq(B) and "
                        "‖C − Ĉ‖_F / ‖C‖_F in float64",
}


def _throughput_cases(gen: torch.Generator):
    secs = (torch.rand(3, generator=gen) + 0.05).tolist()
    return [("worked example: prefill 1×128 tokens in 0.25 s", ("prefill", 1, 128, 32, 0.25)),
            ("decode 1×32 tokens in 0.8 s", ("decode", 1, 128, 32, 0.8)),
            ("decode, batch 4", ("decode", 4, 64, 16, secs[0])),
            ("prefill, batch 2 (gen_len must not matter)", ("prefill", 2, 48, 7, secs[1])),
            ("decode, prompt_len must not matter", ("decode", 1, 500, 9, secs[2]))]


def _speedup_cases(gen: torch.Generator):
    base5 = (torch.rand(5, generator=gen) * 0.5 + 1.0).tolist()
    quant5 = (torch.rand(5, generator=gen) * 0.5 + 0.5).tolist()
    burst = list(quant5)
    burst[2] *= 6.0                                       # someone else's job hit one repeat
    base4 = (torch.rand(4, generator=gen) + 0.5).tolist()
    quant4 = (torch.rand(4, generator=gen) + 0.5).tolist()
    return [("worked example: 3 repeats", ([0.4, 0.5, 0.4], [0.8, 0.9, 1.0])),
            ("5 repeats", (quant5, base5)),
            ("5 repeats, one slowed by a burst of load", (burst, base5)),
            ("4 repeats (even count)", (quant4, base4)),
            ("a slowdown (ratio < 1)", ([1.2, 1.1], [1.0, 1.0]))]


def _rel_error_cases(gen: torch.Generator):
    worked_a = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    worked_b = torch.tensor([[0.1, 3.3], [-4.0, 0.02]])
    a = torch.randn(16, 64, generator=gen)
    b = torch.randn(64, 24, generator=gen)
    b_cols = b * torch.logspace(-2, 1, 24)                 # columns of very different size
    b_out = b.clone()
    b_out[5, 3], b_out[40, 17] = 60.0, -45.0               # two outliers
    return [("worked example (2×2), int8 per-row", (worked_a, worked_b, "int8", "row")),
            ("(16, 64) @ (64, 24), int8 per-row", (a, b, "int8", "row")),
            ("same, fp8 per-row", (a, b, "fp8_e4m3", "row")),
            ("columns of B from 0.01 to 10, int8 per-tensor", (a, b_cols, "int8", "tensor")),
            ("same B, int8 per-row (per-row means per column of B)", (a, b_cols, "int8", "row")),
            ("B with two outliers, fp8 per-tensor", (a, b_out, "fp8_e4m3", "tensor"))]


CASES = {"tokens_per_second": _throughput_cases, "paired_speedup": _speedup_cases,
         "matmul_rel_error": _rel_error_cases}


@contextlib.contextmanager
def _bench_tripwire():
    """Record calls that enter labkit/bench straight from code outside labkit (the student's)."""
    hits: list[str] = []

    def profile(frame, event, arg):
        if event != "call" or not frame.f_code.co_filename.startswith(_BENCH_DIR):
            return
        caller = frame.f_back
        if caller is not None and not caller.f_code.co_filename.startswith(_LABKIT_DIR):
            hits.append(f"labkit.bench.{os.path.basename(frame.f_code.co_filename)[:-3]}.{frame.f_code.co_name}")

    old = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield hits
    finally:
        sys.setprofile(old)


def _as_number(name: str, got) -> float:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)) or isinstance(got, complex):
        raise GradingError(f"{name}: expected one number (a Python float), got {type(got).__name__}"
                           "\n  → return a float, e.g. float(...) of your result")
    return float(got)


def check_bench(name: str, fn, *, seed: int = 0, points: float | None = None) -> Score | None:
    """Grade the student's function ``fn`` for exercise ``name`` (see the module docstring)."""
    if name not in _REFERENCES:
        raise KeyError(f"unknown notebook-07 exercise {name!r}; known: {', '.join(_REFERENCES)}")
    if not callable(fn):
        raise GradingError(f"{name}: expected a function, got {type(fn).__name__}")
    gen = torch.Generator().manual_seed(seed)
    rtol = 2e-3 if name == "matmul_rel_error" else 1e-9

    def grade_case(args, ref):
        copies = [a.clone() if isinstance(a, torch.Tensor) else list(a) if isinstance(a, list) else a
                  for a in args]
        with quiet(), _bench_tripwire() as hits:
            got = fn(*copies)
        if hits:
            raise GradingError(f"your function calls labkit's reference ({', '.join(sorted(set(hits)))}) "
                               "instead of computing the result itself: that scores 0")
        if any(isinstance(a, torch.Tensor) and not torch.equal(c, a) for c, a in zip(copies, args)):
            raise GradingError("your function changed an input tensor in place: leave A and B alone")
        value = _as_number(name, got)
        if not math.isfinite(value) or abs(value - ref) > rtol * abs(ref) + 1e-12:
            raise GradingError(f"expected {ref:.6g}, got {value:.6g}\n  → {_HINTS[name]}")

    return run_cases(name, CASES[name](gen), lambda *args: float(_REFERENCES[name](*args)), grade_case, points)


freeze_module(__name__)
