"""The graded exercises of hw4: for each fill-in, its reference, seeded inputs and how to compare.

One ``Exercise`` per student function. ``cases(rng)`` draws fresh inputs from a seeded generator
(the visible check uses seed 0, the hidden tests other seeds), always starting with the small
worked example of the notebook so a student can redo the first case by hand. ``parts`` split the
output into separately scored pieces (scale, zero point, codes…) with weights: a right scale with
wrong codes earns the scale's share. ``deps`` names references injected into the student's
globals while the check runs, so a wrong ``quantize_column`` does not also sink ``gptq_simplified``.

Inputs are float32 where the exercise is about formats (as activations and weights are), float64
for GPTQ, whose column-after-column error feedback would otherwise turn one rounding tie into a
cascade of different codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable

import numpy as np

import labkit.quant as Q

from .compare import check_array, check_scalar, compare_codes, compare_floats

F32 = np.float32


@dataclass(frozen=True)
class Part:
    """A scored piece of the output: ``compare(got, ref, inputs)`` raises ``GradingError``."""

    name: str
    weight: float
    compare: Callable


@dataclass(frozen=True)
class Exercise:
    name: str
    task: str
    reference: Callable
    cases: Callable  # rng -> list of (label, kwargs)
    parts: tuple[Part, ...]
    n_outputs: int = 1
    deps: tuple[str, ...] = ()
    quant_error: Callable | None = None  # (inputs, outputs) -> x − x̂
    notes: str = ""
    extra: dict = field(default_factory=dict)


def _ref(name: str):
    """labkit's reference, captured when grading is imported (before any student cell runs)."""
    return getattr(Q, name, None)


# -- inputs ---------------------------------------------------------------------------------------

def _normal(rng, n, scale=1.0):
    return (rng.standard_normal(n) * scale).astype(F32)


def _with_outlier(rng, n=1000, value=100.0):
    x = _normal(rng, n)
    x[rng.integers(n)] = value
    return x


def _weight_outlier_row(rng, out=16, inp=64, factor=100.0):
    W = (rng.standard_normal((out, inp)) * 0.05).astype(F32)
    W[rng.integers(out)] *= factor
    return W


def _gelu_like(rng, n=1000):
    x = rng.standard_normal(n) * 1.5
    return (x / (1 + np.exp(-1.702 * x))).astype(F32)  # post-activation: skewed, min ≈ −0.17


def _activations(rng, tokens=64, dim=32, outliers=3, factor=30.0):
    X = rng.standard_normal((tokens, dim)).astype(F32)
    X[:, rng.choice(dim, outliers, replace=False)] *= factor
    return X


# -- comparisons ----------------------------------------------------------------------------------

def _scale(i, label="scale", rtol=1e-5):
    return lambda got, ref, inp: check_scalar(label, got[i], ref[i], rtol=rtol)


def _codes(i, label="q"):
    return lambda got, ref, inp: compare_codes(label, got[i], ref[i])


def _floats(i, label, rtol=1e-5, atol=1e-7, step=None):
    def cmp(got, ref, inp):
        s = step(inp, ref) if step else None
        compare_floats(label, got[i], ref[i], rtol=rtol, atol=atol, step=s)
    return cmp


def _column_step(inp, ref):
    W = np.asarray(inp.get("col", inp.get("W")), dtype=np.float64)
    qmax = 2 ** (inp.get("n_bits", 8) - 1) - 1
    return np.max(np.abs(W), axis=0) / qmax


def _array_shape(i, label, shape_of):
    def cmp(got, ref, inp):
        check_array(label, got[i], shape=shape_of(inp), kind="f")
        compare_floats(label, got[i], ref[i])
    return cmp


# -- quantization errors for the histograms --------------------------------------------------------

def _qerr_absmax(inp, out):
    q, scale = out
    return inp["x" if "x" in inp else "W"] - np.asarray(q, np.float64) * np.asarray(scale, np.float64)


def _qerr_perchannel(inp, out):
    q, scales = out
    return inp["W"] - np.asarray(q, np.float64) * np.asarray(scales, np.float64)[:, None]


def _qerr_zeropoint(inp, out):
    q, scale, zp = out
    return inp["x"] - (np.asarray(q, np.float64) - float(zp)) * float(scale)


def _qerr_dequantized(key):
    return lambda inp, out: np.asarray(inp[key], np.float64) - np.asarray(out[0], np.float64)


# -- the registry ---------------------------------------------------------------------------------

def _absmax_cases(rng):
    return [
        ("worked example", {"x": np.array([0.5, -1.27, 0.004], F32)}),
        ("1000 normal samples", {"x": _normal(rng, 1000)}),
        ("one outlier", {"x": _with_outlier(rng)}),
        ("a 2-D array", {"x": rng.uniform(-3, 2, (24, 40)).astype(F32)}),
    ]


def _dequant_cases(rng):
    return [
        ("worked example", {"q": np.array([50, -127, 0], np.int8), "scale": F32(0.01)}),
        ("random codes", {"q": rng.integers(-127, 128, 500).astype(np.int8), "scale": F32(rng.uniform(0.001, 0.1))}),
        ("2-D codes", {"q": rng.integers(-127, 128, (8, 30)).astype(np.int8), "scale": F32(rng.uniform(0.5, 2))}),
    ]


def _zp_cases(rng):
    return [
        ("worked example", {"x": np.array([-0.5, 0.0, 2.05], F32)}),
        ("post-activation (skewed)", {"x": _gelu_like(rng)}),
        ("uniform in [-1, 3]", {"x": rng.uniform(-1, 3, 800).astype(F32)}),
        ("a 2-D array", {"x": (rng.standard_normal((20, 30)) + 1.0).astype(F32)}),
    ]


def _zp_dequant_cases(rng):
    return [
        ("worked example", {"q": np.array([0, 50, 255], np.uint8), "scale": F32(0.01), "zero_point": 50}),
        ("random codes", {"q": rng.integers(0, 256, 600).astype(np.uint8), "scale": F32(rng.uniform(0.001, 0.05)),
                          "zero_point": int(rng.integers(1, 255))}),
        ("2-D codes", {"q": rng.integers(0, 256, (10, 12)).astype(np.uint8), "scale": F32(rng.uniform(0.01, 1)),
                       "zero_point": int(rng.integers(100, 200))}),
    ]


def _weight_cases(rng):
    return [
        ("worked example", {"W": np.array([[1.27, -0.5], [0.0, 0.0], [0.02, 0.01]], F32)}),
        ("weight with an outlier row", {"W": _weight_outlier_row(rng)}),
        ("plain weight", {"W": (rng.standard_normal((12, 40)) * 0.1).astype(F32)}),
    ]


def _perchannel_dequant_cases(rng):
    return [
        ("worked example", {"q": np.array([[127, -50], [0, 0]], np.int8), "scales": np.array([0.01, 1.0], F32)}),
        ("random codes", {"q": rng.integers(-127, 128, (16, 24)).astype(np.int8),
                          "scales": rng.uniform(1e-3, 1.0, 16).astype(F32)}),
    ]


def _column_cases(rng):
    return [
        ("worked example, 3 bits", {"col": np.array([0.7, -0.2, 0.05]), "n_bits": 3}),
        ("normal column, 8 bits", {"col": rng.standard_normal(64), "n_bits": 8}),
        ("normal column, 4 bits", {"col": rng.standard_normal(64) * 0.1, "n_bits": 4}),
    ]


def _gptq_cases(rng):
    return [
        ("worked example, 2 bits", {"W": np.array([[1.0, 1.0, 1.0], [0.3, 0.3, 0.3]]), "n_bits": 2}),
        ("weight, 4 bits", {"W": rng.standard_normal((24, 32)) * 0.1, "n_bits": 4}),
        ("weight, 8 bits", {"W": rng.standard_normal((16, 24)), "n_bits": 8}),
        ("weight, 3 bits", {"W": rng.standard_normal((8, 16)), "n_bits": 3}),
    ]


def _smooth_cases(rng):
    X, W = _activations(rng), (rng.standard_normal((32, 48)) * 0.1).astype(F32)
    return [
        ("worked example", {"X": np.array([[4.0, 1.0], [-2.0, 0.5]], F32), "W": np.array([[1.0, 2.0], [0.25, -1.0]], F32),
                            "alpha": 0.5}),
        ("outlier channels, alpha 0.5", {"X": X, "W": W, "alpha": 0.5}),
        ("alpha 0.8", {"X": X, "W": W, "alpha": 0.8}),
        ("alpha 0.25", {"X": _activations(rng, 16, 32), "W": W, "alpha": 0.25}),
    ]


def _apply_cases(rng):
    X, W = _activations(rng), (rng.standard_normal((32, 48)) * 0.1).astype(F32)
    return [
        ("worked example", {"X": np.array([[4.0, 1.0]], F32), "W": np.array([[1.0, 2.0], [0.25, -1.0]], F32),
                            "s": np.array([2.0, 0.5], F32)}),
        ("outlier channels", {"X": X, "W": W, "s": rng.uniform(0.1, 10, 32).astype(F32)}),
    ]


EXERCISES: MappingProxyType = MappingProxyType({e.name: e for e in [
    Exercise("absmax_quantize", "Task 1.1", _ref("absmax_quantize"), _absmax_cases,
             (Part("scale", 1, _scale(1)), Part("codes q", 2, _codes(0))), n_outputs=2, quant_error=_qerr_absmax),
    Exercise("absmax_dequantize", "Task 1.2", _ref("absmax_dequantize"), _dequant_cases,
             (Part("values", 1, _floats(0, "x̂")),)),
    Exercise("zeropoint_quantize", "Task 2.1", _ref("zeropoint_quantize"), _zp_cases,
             (Part("scale", 1, _scale(1)),
              Part("zero_point", 1, lambda g, r, i: check_scalar("zero_point", g[2], r[2], integer=True)),
              Part("codes q", 2, _codes(0))), n_outputs=3, quant_error=_qerr_zeropoint),
    Exercise("zeropoint_dequantize", "Task 2.2", _ref("zeropoint_dequantize"), _zp_dequant_cases,
             (Part("values", 1, _floats(0, "x̂", atol=1e-5)),)),
    Exercise("pertensor_absmax_quantize", "Task 3.1", _ref("pertensor_absmax_quantize"), _weight_cases,
             (Part("scale", 1, _scale(1)), Part("codes q", 1, _codes(0))), n_outputs=2, quant_error=_qerr_absmax),
    Exercise("perchannel_absmax_quantize", "Task 3.2", _ref("perchannel_absmax_quantize"), _weight_cases,
             (Part("scales", 1, _array_shape(1, "scales", lambda i: (i["W"].shape[0],))),
              Part("codes q", 2, _codes(0))), n_outputs=2, quant_error=_qerr_perchannel),
    Exercise("perchannel_dequantize", "Task 3.3", _ref("perchannel_dequantize"), _perchannel_dequant_cases,
             (Part("values", 1, _floats(0, "Ŵ")),)),
    Exercise("quantize_column", "Task 4.1", _ref("quantize_column"), _column_cases,
             (Part("values", 1, _floats(0, "dequantized column", rtol=1e-9, atol=1e-12, step=_column_step)),),
             quant_error=_qerr_dequantized("col")),
    Exercise("naive_quantize", "Task 4.2", _ref("naive_quantize"), _gptq_cases,
             (Part("values", 1, _floats(0, "Ŵ", rtol=1e-9, atol=1e-12, step=_column_step)),),
             deps=("quantize_column",), quant_error=_qerr_dequantized("W")),
    Exercise("gptq_simplified", "Task 4.3", _ref("gptq_simplified"), _gptq_cases,
             (Part("values", 1, _floats(0, "Ŵ", rtol=1e-7, atol=1e-10)),),
             deps=("quantize_column",), quant_error=_qerr_dequantized("W")),
    Exercise("compute_smooth_factor", "Task 5.1", _ref("compute_smooth_factor"), _smooth_cases,
             (Part("values", 1, _array_shape(0, "s", lambda i: (i["X"].shape[1],))),)),
    Exercise("apply_smoothing", "Task 5.2", _ref("apply_smoothing"), _apply_cases,
             (Part("X / s", 1, _floats(0, "X_smooth", rtol=1e-6)), Part("s · W", 1, _floats(1, "W_smooth", rtol=1e-6))),
             n_outputs=2),
]})
