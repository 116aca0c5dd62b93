"""Exercises of notebook 05: SmoothQuant's factors, per-token W8A8 (simulated and in integers),
the α search, and LLM.int8()'s outlier decomposition. Layout ``X: (tokens, dim)``, ``W: (dim, out)``."""

from __future__ import annotations

import numpy as np

from labkit.quant.llm_int8 import llm_int8_matmul
from labkit.quant.w8a8 import (
    quantize_per_column, quantize_per_token, smoothquant_best_alpha, w8a8_int_linear, w8a8_simulate,
)

from .compare import GradingError, check_array
from .exercise_kit import (
    F32, Exercise, Part, _activations, _array_shape, _codes, _floats, _floats_rel, _ints, _number,
    _output_error, _ref,
)


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


def _weight(rng, dim=32, out=48):
    return (rng.standard_normal((dim, out)) * 0.1).astype(F32)


WORKED_X = np.array([[2.54, -1.0], [0.0, 0.0]], F32)
WORKED_W = np.array([[0.5], [0.25]], F32)


def _token_cases(rng):
    return [
        ("worked example (second token all zero)", {"X": WORKED_X}),
        ("outlier channels", {"X": _activations(rng)}),
        ("plain activations", {"X": rng.standard_normal((40, 24)).astype(F32)}),
    ]


def _qerr_token(inp, out):
    q, s = out
    return inp["X"] - np.asarray(q, np.float64) * np.asarray(s, np.float64)[:, None]


def _sim_cases(rng):
    return [
        ("worked example", {"X": WORKED_X, "W": WORKED_W}),
        ("outlier channels", {"X": _activations(rng), "W": _weight(rng)}),
        ("plain activations, weight with a dead column",
         {"X": rng.standard_normal((20, 16)).astype(F32), "W": np.hstack([_weight(rng, 16, 8), np.zeros((16, 1), F32)])}),
    ]


def _int_case(X, W):
    qx, sx = quantize_per_token(X)
    qw, sw = quantize_per_column(W)
    return {"qx": qx, "sx": sx, "qw": qw, "sw": sw}


def _int_cases(rng):
    K = 4096
    full = {"qx": np.full((4, K), 127, np.int8), "sx": np.full(4, 0.01, F32),
            "qw": np.where(rng.random((K, 3)) < 0.5, -127, 127).astype(np.int8), "sw": np.full(3, 0.001, F32)}
    full["qw"][:, 0] = 127  # one column's sum is 127² · 4096 = 66 064 384: far beyond int16
    return [
        ("worked example", _int_case(WORKED_X[:1], WORKED_W)),
        ("outlier channels", _int_case(_activations(rng), _weight(rng))),
        (f"K = {K}, all codes ±127", full),
    ]


def _acc(got, ref, inp):
    g = got[0]
    check_array("acc", g, shape=ref[0].shape)
    if g.dtype != np.int32:
        raise GradingError(f"acc: expected dtype int32, got {g.dtype}\n  → numpy multiplies int8 by int8 in int8 "
                           "(it wraps around at ±128): cast both code arrays to np.int32 before the product")
    _ints(0, "acc")(got, ref, inp)


def _y_from_acc(got, ref, inp):
    check_array("y", got[1], shape=ref[1].shape, dtype=np.dtype(np.float32))
    _floats_rel(1, "y", rtol=1e-6, frac=1e-7)(got, ref, inp)


def _alpha_cases(rng):
    grid = np.round(np.linspace(0.0, 1.0, 11), 2)
    return [
        ("outlier channels (×30)", {"X": _activations(rng, 128, 32), "W": _weight(rng), "alphas": grid}),
        ("strong outliers (×100), fine grid", {"X": _activations(rng, 96, 32, outliers=2, factor=100.0),
                                               "W": _weight(rng), "alphas": np.round(np.linspace(0.3, 0.95, 14), 3)}),
        ("no outliers", {"X": rng.standard_normal((64, 16)).astype(F32), "W": _weight(rng, 16, 24),
                         "alphas": grid}),
    ]


def _llm_int8_cases(rng):
    X = _activations(rng, 64, 32, outliers=3, factor=30.0)
    return [
        ("worked example", {"X": np.array([[0.5, 20.0, -0.25, 1.0], [0.1, -18.0, 0.3, -0.7]], F32),
                            "W": np.array([[0.2, -0.1], [0.05, 0.3], [-0.4, 0.1], [0.25, 0.2]], F32), "threshold": 6.0}),
        ("three outlier channels, threshold 6", {"X": X, "W": _weight(rng), "threshold": 6.0}),
        ("no outliers above the threshold", {"X": rng.standard_normal((32, 16)).astype(F32) * 0.5,
                                             "W": _weight(rng, 16, 8), "threshold": 6.0}),
        ("threshold 20", {"X": X, "W": _weight(rng), "threshold": 20.0}),
    ]


def _outlier_cols(got, ref, inp):
    g = got[1]
    check_array("outlier_cols", g, shape=ref[1].shape)
    if g.dtype.kind not in "iu":
        raise GradingError(f"outlier_cols: expected integer indices, got dtype {g.dtype}")
    if g.size and not bool(np.all(g[1:] > g[:-1])):
        raise GradingError("outlier_cols: expected the column indices in increasing order")
    _ints(1, "outlier_cols")((None, g.astype(np.int64)), ref, inp)


EXERCISES = [
    Exercise("compute_smooth_factor", "Task 5.1", _ref("compute_smooth_factor"), _smooth_cases,
             (Part("values", 1, _array_shape(0, "s", lambda i: (i["X"].shape[1],))),)),
    Exercise("apply_smoothing", "Task 5.2", _ref("apply_smoothing"), _apply_cases,
             (Part("X / s", 1, _floats(0, "X_smooth", rtol=1e-6)), Part("s · W", 1, _floats(1, "W_smooth", rtol=1e-6))),
             n_outputs=2),
    Exercise("quantize_per_token", "Task 5.3", quantize_per_token, _token_cases,
             (Part("scales", 1, _array_shape(1, "scales", lambda i: (i["X"].shape[0],))), Part("codes q", 1, _codes(0))),
             n_outputs=2, quant_error=_qerr_token),
    Exercise("w8a8_simulate", "Task 5.4", w8a8_simulate, _sim_cases,
             (Part("Ŷ", 1, _floats_rel(0, "Ŷ", rtol=1e-5, frac=1e-6)),),
             deps=("quantize_per_token",), quant_error=_output_error()),
    Exercise("w8a8_int_linear", "Task 5.5", w8a8_int_linear, _int_cases,
             (Part("int32 accumulator", 2, _acc), Part("rescaled y", 1, _y_from_acc)), n_outputs=2),
    Exercise("smoothquant_best_alpha", "Task 5.6", smoothquant_best_alpha, _alpha_cases,
             (Part("errors per alpha", 1, _floats_rel(1, "errors", rtol=1e-4, frac=1e-6)),
              Part("best alpha", 2, _number(0, "best alpha"))),
             n_outputs=2, deps=("compute_smooth_factor", "apply_smoothing", "w8a8_simulate")),
    Exercise("llm_int8_matmul", "Task 5.7", llm_int8_matmul, _llm_int8_cases,
             (Part("outlier columns", 1, _outlier_cols), Part("Y", 2, _floats_rel(0, "Y", rtol=1e-5, frac=1e-6))),
             n_outputs=2, deps=("w8a8_simulate",), quant_error=_output_error()),
]


from .integrity import freeze_module as _freeze  # noqa: E402  (read-only once built)

_freeze(__name__)
