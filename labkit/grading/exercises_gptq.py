"""Exercises of notebook 04 (GPTQ), in float64: GPTQ's column-after-column error feedback would
otherwise turn one rounding tie into a cascade of different codes.

``gptq_block``'s seeded cases are cut from real GPTQ runs: a layer ``W``, calibration inputs with a
shared component (so the Hessian couples the columns), ``H = 2XᵀX``, its factor ``U`` and the
per-row scales; one case is a whole layer as one block (its codes are those of labkit's full GPTQ,
``gptq_quantize_hessian(..., PerRow(), block_size=in)``), another the *second* block of a layer
after the lazy update from the first.
"""

from __future__ import annotations

import numpy as np

from labkit.quant.gptq import (
    gptq_block, gptq_simplified, inverse_hessian_factor, naive_quantize, quantize_column, row_scales,
)

from .compare import compare_floats
from .exercise_kit import Exercise, Part, _codes, _floats, _floats_rel, _qerr_dequantized, _row_step

WORKED_W = np.array([[1.0, 0.4, 0.4], [0.1, 0.1, 0.9]])


def _column_cases(rng):
    W = rng.standard_normal((32, 8))
    return [
        ("worked example, 3 bits (one value clipped)", {"col": np.array([0.7, -0.2, 0.04, 0.5]),
                                                         "scales": np.array([0.7 / 3, 0.1, 0.1, 0.1]), "n_bits": 3}),
        ("a column with its rows' scales, 8 bits", {"col": W[:, 3], "scales": row_scales(W, 127), "n_bits": 8}),
        ("after error feedback (values beyond the grid), 4 bits",
         {"col": W[:, 5] * 1.5, "scales": row_scales(W, 7), "n_bits": 4}),
    ]


def _rtn_cases(rng):
    return [
        ("worked example, 2 bits", {"W": WORKED_W, "n_bits": 2}),
        ("weight, 4 bits", {"W": rng.standard_normal((24, 32)) * 0.1, "n_bits": 4}),
        ("weight, 8 bits", {"W": rng.standard_normal((16, 24)), "n_bits": 8}),
        ("weight with a zero row, 3 bits", {"W": np.vstack([rng.standard_normal((7, 16)), np.zeros((1, 16))]),
                                            "n_bits": 3}),
    ]


def _layer(rng, out, inp, tokens=None):
    tokens = tokens or 2 * inp
    W = rng.standard_normal((out, inp)) * 0.1
    X = 1.0 + 0.5 * rng.standard_normal((tokens, 1)) + 0.3 * rng.standard_normal((tokens, inp))
    return W, 2.0 * X.T @ X


def _hessian_cases(rng):
    _, H = _layer(rng, 4, 24)
    _, H_dead = _layer(rng, 4, 12)
    H_dead[3, :] = 0.0
    H_dead[:, 3] = 0.0  # input 3 is always 0
    return [
        ("worked example, percdamp 0", {"H": np.array([[4.0, 2.0], [2.0, 3.0]]), "percdamp": 0.0}),
        ("calibration Hessian, percdamp 0.01", {"H": H, "percdamp": 0.01}),
        ("a dead input (H_jj = 0), percdamp 0.01", {"H": H_dead, "percdamp": 0.01}),
        ("percdamp 0.1", {"H": H, "percdamp": 0.1}),
    ]


def _block_inputs(W, H, n_bits, i1, i2):
    """The arguments ``gptq_block`` receives for columns i1:i2 of a lazy-block run."""
    qmax = 2 ** (n_bits - 1) - 1
    U = inverse_hessian_factor(H)
    s = row_scales(W, qmax)
    w = W.copy()
    for a in range(0, i1, i2 - i1):
        b = min(a + (i2 - i1), i1)
        _, E = gptq_block(w[:, a:b], U[a:b, a:b], s, n_bits)
        w[:, b:] -= E @ U[a:b, b:]
    return {"W_block": w[:, i1:i2].copy(), "U_block": U[i1:i2, i1:i2].copy(), "scales": s, "n_bits": n_bits}


def _block_cases(rng):
    H_twins = np.array([[2.0, 2.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 2.0]])  # x₁ = x₂, x₃ independent
    worked = {"W_block": np.array([[0.4, 0.4, 1.0]]), "U_block": inverse_hessian_factor(H_twins),
              "scales": np.array([1.0]), "n_bits": 2}
    W1, H1 = _layer(rng, 16, 32)
    W2, H2 = _layer(rng, 12, 48)
    W3, H3 = _layer(rng, 8, 24)
    return [
        ("worked example: twin inputs, 2 bits", worked),
        ("a whole layer as one block, 4 bits", _block_inputs(W1, H1, 4, 0, 32)),
        ("second block (columns 16–31) after the lazy update, 3 bits", _block_inputs(W2, H2, 3, 16, 32)),
        ("a whole layer, 8 bits", _block_inputs(W3, H3, 8, 0, 24)),
    ]


def _upper_factor(got, ref, inp):
    _floats_rel(0, "U", rtol=1e-7, frac=1e-9)(got, ref, inp)


def _errors(got, ref, inp):
    r = np.asarray(ref[1], np.float64)
    compare_floats("E", got[1], ref[1], rtol=1e-6, atol=1e-9 * max(1.0, float(np.max(np.abs(r)))))


def _qerr_block(inp, out):
    codes = np.asarray(out[0], np.float64)
    return np.asarray(inp["W_block"], np.float64) - codes * np.asarray(inp["scales"], np.float64)[:, None]


EXERCISES = [
    Exercise("quantize_column", "Task 4.1", quantize_column, _column_cases, (Part("codes", 1, _codes(0, "codes")),)),
    Exercise("naive_quantize", "Task 4.2", naive_quantize, _rtn_cases,
             (Part("values", 1, _floats(0, "Ŵ", rtol=1e-9, atol=1e-12, step=_row_step)),),
             deps=("quantize_column",), quant_error=_qerr_dequantized("W")),
    Exercise("gptq_simplified", "Task 4.3", gptq_simplified, _rtn_cases,
             (Part("values", 1, _floats(0, "Ŵ", rtol=1e-7, atol=1e-10)),),
             deps=("quantize_column",), quant_error=_qerr_dequantized("W")),
    Exercise("inverse_hessian_factor", "Task 4.4", inverse_hessian_factor, _hessian_cases,
             (Part("U", 1, _upper_factor),)),
    Exercise("gptq_block", "Task 4.5", gptq_block, _block_cases,
             (Part("codes", 3, _codes(0, "codes")), Part("scaled errors E", 1, _errors)),
             n_outputs=2, deps=("quantize_column",), quant_error=_qerr_block),
]


from .integrity import freeze_module as _freeze  # noqa: E402  (read-only once built)

_freeze(__name__)
