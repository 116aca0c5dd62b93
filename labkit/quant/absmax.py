"""Absmax (symmetric) int8 quantization: the exercise references, per tensor and per channel.

How it works: the largest magnitude is mapped to the largest code, 127, and everything else
scales linearly,

    scale = max|x| / 127,    q = clip(round(x / scale), -127, 127),    x̂ = q · scale.

Worked number: x = [0.5, -1.27, 0.004] → max|x| = 1.27, scale = 0.01, q = [50, -127, 0],
x̂ = [0.5, -1.27, 0.0]. The 0.004 is lost: the rounding error is at most scale/2 = 0.005, so
one outlier (x[0] = 100 among values of size ~1) makes scale ≈ 0.79 and wipes the rest out.

Per channel: a weight ``W: (out, in)`` gets one scale per output row, ``scales[i] =
max|W[i, :]| / 127``, so a row 100× larger than the others no longer costs them their precision.

Conventions (shared with ``labkit.quant.primitives``, whose ``int8`` + ``PerTensor()`` /
``PerRow()`` give the same codes): the grid is -127..127 (not -128) so that zero is exact and
-x quantizes to -q; ``np.round`` rounds half to even; an all-zero tensor (or row) gets scale
1.0, because any scale represents zero exactly and 1.0 avoids 0/0. Arithmetic is done in the
input's float dtype (see ``arrays.py``), the scale of ``absmax_quantize`` is a numpy scalar of
that dtype (a Python float for torch input).
"""

from __future__ import annotations

import numpy as np

from .arrays import as_numpy, check_scale, codes_as_numpy

QMAX = 127  # int8's symmetric bound, the same as FORMATS["int8"].qmax


def _absmax_codes(x: np.ndarray, scale) -> np.ndarray:
    return np.clip(np.round(x / scale), -QMAX, QMAX).astype(np.int8)


def _tensor_scale(x: np.ndarray):
    amax = np.max(np.abs(x))
    return amax / QMAX if amax > 0 else x.dtype.type(1.0)


def absmax_quantize(x):
    """Symmetric int8 absmax quantization of ``x`` (any shape) → ``(q, scale)``.

    ``q``: int8, same shape as ``x``; ``scale``: ``max|x| / 127`` (1.0 if ``x`` is all zeros).
    Example: ``absmax_quantize(np.array([0.5, -1.27, 0.004]))`` → ``([50, -127, 0], 0.01)``.
    """
    a, back = as_numpy(x, "x")
    scale = _tensor_scale(a)
    q = _absmax_codes(a, scale)
    return back.array(q), (float(scale) if back.is_torch else scale)


def absmax_dequantize(q, scale):
    """``x̂ = q · scale`` for the codes of ``absmax_quantize`` (same shape as ``q``).

    The codes are cast to float32 first, so the result is float32 (float64 if ``scale`` is a
    numpy float64) and an int8 product can never overflow."""
    a, back = codes_as_numpy(q, "q")
    return back.array(a.astype(np.float32) * check_scale(scale))


def pertensor_absmax_quantize(W):
    """Absmax int8 with ONE scale for the whole weight ``W: (out, in)`` → ``(q (out, in) int8, scale)``.

    The same math as ``absmax_quantize``; the name pairs it with ``perchannel_absmax_quantize``.
    """
    as_numpy(W, "W", ndim=2)
    return absmax_quantize(W)


def pertensor_dequantize(q, scale):
    """``Ŵ = q · scale`` for ``q: (out, in)`` and one scalar ``scale``."""
    codes_as_numpy(q, "q", ndim=2)
    return absmax_dequantize(q, scale)


def perchannel_absmax_quantize(W):
    """Absmax int8 with one scale per output row of ``W: (out, in)`` → ``(q (out, in) int8, scales (out,))``.

    ``scales[i] = max|W[i, :]| / 127`` (1.0 for an all-zero row). Example: W = [[1.27, -0.5],
    [0.0, 0.0]] → scales [0.01, 1.0], q [[127, -50], [0, 0]].
    """
    a, back = as_numpy(W, "W", ndim=2)
    amax = np.max(np.abs(a), axis=1)
    scales = np.where(amax > 0, amax / QMAX, 1.0).astype(a.dtype)
    q = _absmax_codes(a, scales[:, None])
    return back.array(q), back.array(scales)


def perchannel_dequantize(q, scales):
    """``Ŵ[i, j] = q[i, j] · scales[i]`` for ``q: (out, in)``, ``scales: (out,)``."""
    a, back = codes_as_numpy(q, "q", ndim=2)
    s = np.asarray(check_scale(scales, "scales"))
    if s.shape != (a.shape[0],):
        raise ValueError(
            f"scales must have one entry per row of q: expected shape ({a.shape[0]},), got {s.shape}"
        )
    return back.array(a.astype(np.float32) * s[:, None])
