"""W8A8 in numpy, step by step: the exercise references of notebook 05.

Layout of the math: ``Y = X W`` with activations ``X: (tokens, dim)`` and weight ``W: (dim, out)``
(an ``nn.Linear`` weight is the transpose). An INT8 GEMM multiplies codes and rescales once per
output element, so a scale may vary along tokens (rows of X) and along outputs (columns of W) but
**not along dim** (K), the axis the sum runs over:

    Y[t, o] ≈ sx[t] · sw[o] · Σ_k qx[t, k] · qw[k, o]

* ``quantize_per_token(X)``: ``sx[t] = max|X[t, :]| / 127`` (1.0 for an all-zero token),
  ``qx = clip(round(X / sx), ±127)`` int8. (A per-*channel* activation scale sx[k] would sit
  inside the sum — every product would need its own multiply, and the GEMM is gone.)
* ``w8a8_simulate(X, W)``: fake quantization — X per token, W per output column (the same rule on
  ``Wᵀ``), then ``X̂ Ŵ`` in float64.
* ``w8a8_int_linear(qx, sx, qw, sw)``: the real thing — ``acc = qx @ qw`` in int32 (exact: each
  product ≤ 127², so |acc| ≤ 127²·K, far below 2³¹ for any K < 133 000), then
  ``y = float32(acc) · sx[t] · sw[o]``. It equals ``labkit.nn.w8a8.int8_matmul`` (torch._int_mm)
  bit for bit on the accumulator (a test checks it) and ``w8a8_simulate`` up to float rounding.
* ``smoothquant_best_alpha(X, W, alphas)``: the α of a grid whose smoothed W8A8 output error
  ``mean((XW − w8a8_simulate(X/s, sW))²)`` is smallest (the first on ties).

Worked number: X = [[2.54, −1.0]] → sx = [0.02], qx = [[127, −50]]; W = [[0.5], [0.25]] →
sw = [0.5/127], qw = [[127], [64]]; acc = 127·127 − 50·64 = 12929; y = 12929 · 0.02 · 0.003937 = 1.018.
"""

from __future__ import annotations

import numpy as np

from .arrays import as_numpy
from .smoothquant import apply_smoothing, compute_smooth_factor

QMAX = 127


def quantize_per_token(X):
    """INT8 per row of ``X: (tokens, dim)`` → ``(q int8 (tokens, dim), scales float32 (tokens,))``."""
    a, _ = as_numpy(X, "X", ndim=2)
    a = a.astype(np.float32)
    amax = np.max(np.abs(a), axis=1)
    s = np.where(amax > 0, amax / np.float32(QMAX), np.float32(1.0)).astype(np.float32)
    return np.clip(np.round(a / s[:, None]), -QMAX, QMAX).astype(np.int8), s


def quantize_per_column(W):
    """INT8 per output column of ``W: (dim, out)`` → ``(q int8 (dim, out), scales float32 (out,))``."""
    q, s = quantize_per_token(np.ascontiguousarray(np.asarray(W).T))
    return np.ascontiguousarray(q.T), s


def w8a8_simulate(X, W):
    """Fake-quantized ``X̂ Ŵ`` (X per token, W per output column) → float64 ``(tokens, out)``."""
    qx, sx = quantize_per_token(X)
    qw, sw = quantize_per_column(W)
    Xh = qx.astype(np.float32) * sx[:, None]
    Wh = qw.astype(np.float32) * sw[None, :]
    return Xh.astype(np.float64) @ Wh.astype(np.float64)


def w8a8_int_linear(qx, sx, qw, sw):
    """``(acc int32 (tokens, out), y float32 (tokens, out))`` for int8 ``qx: (tokens, dim)``,
    ``qw: (dim, out)`` and float32 scales ``sx: (tokens,)``, ``sw: (out,)``."""
    qx, qw = np.asarray(qx), np.asarray(qw)
    if qx.dtype != np.int8 or qw.dtype != np.int8:
        raise TypeError(f"qx and qw must be int8 codes, got {qx.dtype} and {qw.dtype}")
    if qx.ndim != 2 or qw.ndim != 2 or qx.shape[1] != qw.shape[0]:
        raise ValueError(f"qx: (tokens, dim) and qw: (dim, out) must share dim, got {qx.shape} and {qw.shape}")
    acc = qx.astype(np.int32) @ qw.astype(np.int32)
    y = acc.astype(np.float32) * np.asarray(sx, np.float32)[:, None] * np.asarray(sw, np.float32)[None, :]
    return acc, y


def w8a8_error(X, W, s=None) -> float:
    """``mean((XW − w8a8_simulate(X/s, s·W))²)`` in float64 (no smoothing when ``s`` is None)."""
    Y = np.asarray(X, np.float64) @ np.asarray(W, np.float64)
    if s is not None:
        X, W = apply_smoothing(np.asarray(X), np.asarray(W), s)
    return float(np.mean((Y - w8a8_simulate(X, W)) ** 2))


def smoothquant_best_alpha(X, W, alphas):
    """``(best alpha, errors float64 (len(alphas),))``: the smoothed W8A8 output error at every α."""
    grid = [float(a) for a in np.asarray(alphas, np.float64).ravel()]
    if not grid:
        raise ValueError("alphas must hold at least one value in [0, 1]")
    errors = np.array([w8a8_error(X, W, compute_smooth_factor(X, W, a)) for a in grid])
    return grid[int(np.argmin(errors))], errors
