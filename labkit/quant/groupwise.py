"""Per-group quantization along K, written out: the exercise references of notebook 03.

A weight ``W: (out, in)`` is cut along ``in`` (the matmul's K) into groups of ``g`` consecutive
columns; every (row, group) block gets its own scale, so ``scales: (out, ceil(in / g))``. When g
does not divide ``in`` the **last group is shorter** (in = 10, g = 4 → columns 0–3, 4–7, 8–9) and
its scale comes from its own elements only — the rule of ``granularity.py``.

* INT8 (``pergroup_quantize`` / ``pergroup_dequantize``): ``scale = max|block| / 127`` (1.0 for an
  all-zero block), codes ``clip(round(W / scale), −127, 127)`` as int8.
* FP8 e4m3 (``pergroup_fake_quantize_fp8``): ``scale = max|block| / 448``; ``W / scale`` is
  clamped to ±448 *before* the cast to ``float8_e4m3fn`` (ml_dtypes) — e4m3fn has no infinity and
  a value cast from beyond its range becomes NaN — then cast back to float32 and multiplied by
  the scale. The clamp only matters for values a hair above 448 after the division's rounding.

Worked number (g = 2, one row): W = [[1.27, −0.5, 0.02, 0.01, 3.0]] → groups [1.27, −0.5],
[0.02, 0.01], [3.0]; int8 scales [0.01, 0.02/127, 3/127], codes [[127, −50, 127, 64, 127]]
(0.01 / (0.02/127) = 63.5 rounds half to even: 64).

All arithmetic in float32 (as ``fake_quantize``, which these equal — a test checks it).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .arrays import as_numpy

INT8_QMAX = 127.0
FP8_E4M3_MAX = 448.0


def _check_group(group_size) -> int:
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size <= 0:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    return int(group_size)


def _group_absmax(W: np.ndarray, g: int) -> np.ndarray:
    out, k = W.shape
    n = -(-k // g)
    padded = np.zeros((out, n * g), W.dtype)  # zeros never raise an absmax: the last group stays short
    padded[:, :k] = W
    return np.max(np.abs(padded.reshape(out, n, g)), axis=2)


def _expand(scales: np.ndarray, g: int, k: int) -> np.ndarray:
    return np.repeat(scales, g, axis=1)[:, :k]


def pergroup_scales(W: np.ndarray, group_size: int, qmax: float) -> np.ndarray:
    """``(out, ceil(in / g))`` float32 scales ``max|block| / qmax`` (1.0 for an all-zero block)."""
    a = np.asarray(W, np.float32)
    amax = _group_absmax(a, _check_group(group_size))
    return np.where(amax > 0, amax / np.float32(qmax), np.float32(1.0)).astype(np.float32)


def pergroup_quantize(W, group_size: int):
    """INT8 per group of ``group_size`` along ``in`` → ``(q int8 (out, in), scales float32 (out, n_groups))``."""
    a, _ = as_numpy(W, "W", ndim=2)
    a = a.astype(np.float32)
    g = _check_group(group_size)
    scales = pergroup_scales(a, g, INT8_QMAX)
    q = np.clip(np.round(a / _expand(scales, g, a.shape[1])), -127, 127).astype(np.int8)
    return q, scales


def pergroup_dequantize(q, scales, group_size: int):
    """``Ŵ[i, j] = q[i, j] · scales[i, j // g]`` → float32 ``(out, in)``."""
    g = _check_group(group_size)
    q = np.asarray(q)
    s = np.asarray(scales, np.float32)
    if q.ndim != 2 or s.shape != (q.shape[0], -(-q.shape[1] // g)):
        raise ValueError(f"scales must be (out, ceil(in / g)) = ({q.shape[0]}, {-(-q.shape[1] // g)}) "
                         f"for q {q.shape} and g = {g}, got {s.shape}")
    return q.astype(np.float32) * _expand(s, g, q.shape[1])


def pergroup_fake_quantize_fp8(W, group_size: int):
    """FP8 e4m3 per group along ``in``: quantize and dequantize → float32 ``(out, in)``."""
    a, _ = as_numpy(W, "W", ndim=2)
    a = a.astype(np.float32)
    g = _check_group(group_size)
    s = _expand(pergroup_scales(a, g, FP8_E4M3_MAX), g, a.shape[1])
    codes = np.clip(a / s, -FP8_E4M3_MAX, FP8_E4M3_MAX).astype(ml_dtypes.float8_e4m3fn)
    return codes.astype(np.float32) * s
