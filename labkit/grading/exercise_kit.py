"""The pieces every exercise table is built from: ``Exercise``, ``Part``, seeded inputs, comparisons.

One ``Exercise`` per student function. ``cases(rng)`` draws fresh inputs from a seeded generator
(the visible check uses seed 0, the hidden tests other seeds), always starting with the small
worked example of the notebook so a student can redo the first case by hand. ``parts`` split the
output into separately scored pieces (scale, zero point, codes…) with weights: a right scale with
wrong codes earns the scale's share. ``deps`` names references injected into the student's
globals while the check runs, so a wrong ``quantize_column`` does not also sink ``gptq_block``.
The tables themselves live in ``exercises_formats`` (notebooks 01–03), ``exercises_gptq`` (04) and
``exercises_w8a8`` (05); ``exercises`` merges them into ``EXERCISES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable

import numpy as np

import labkit.quant as Q

from .cases import Part  # the case engine's scored piece: name, weight, compare(got, ref, inputs)
from .compare import GradingError, check_array, check_scalar, compare_codes, compare_floats

F32 = np.float32


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


def _row_step(inp, ref):
    """One grid step per row of W (per-row absmax scales): the slack for a rounding tie."""
    W = np.asarray(inp["W"], dtype=np.float64)
    qmax = 2 ** (inp.get("n_bits", 8) - 1) - 1
    return (np.max(np.abs(W), axis=1) / qmax)[:, None]


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


def _ints(i, label):
    """An integer array (any signed/unsigned dtype) holding exactly the reference's values."""
    def cmp(got, ref, inp):
        g, r = got[i], ref[i]
        check_array(label, g, shape=r.shape)
        if g.dtype.kind not in "iu":
            raise GradingError(f"{label}: expected integers, got dtype {g.dtype}\n  → round, then cast with .astype(...)")
        info = np.iinfo(r.dtype)
        if g.size and (int(g.min()) < info.min or int(g.max()) > info.max):
            raise GradingError(f"{label}: values from {int(g.min())} to {int(g.max())} do not fit {r.dtype} "
                               f"({info.min}..{info.max})\n  → a uint8 zero point must itself be a code")
        compare_codes(label, g.astype(r.dtype), r, tie_frac=0.0)
    return cmp


def _floats_rel(i, label, rtol=1e-5, frac=1e-6):
    """Floats within ``rtol`` or within ``frac`` of the reference's largest magnitude (outputs of a
    matmul have entries near 0 whose relative error means nothing)."""
    def cmp(got, ref, inp):
        r = np.asarray(ref[i], np.float64)
        atol = frac * float(np.max(np.abs(r))) if r.size else 0.0
        compare_floats(label, got[i], ref[i], rtol=rtol, atol=atol)
    return cmp


def _number(i, label, rtol=1e-9):
    return lambda got, ref, inp: check_scalar(label, got[i], ref[i], rtol=rtol, atol=1e-12)


def _output_error(X_key="X", W_key="W"):
    """Histogram data x − x̂ for a matmul exercise: the float product minus the returned output."""
    def qerr(inp, out):
        Y = np.asarray(inp[X_key], np.float64) @ np.asarray(inp[W_key], np.float64)
        return Y - np.asarray(out[0], np.float64)
    return qerr


from .integrity import freeze_module as _freeze  # noqa: E402  (read-only once built)

_freeze(__name__)
