"""Zero-point (asymmetric) uint8 quantization: the exercise reference.

How it works: absmax wastes half of the grid on data that is mostly positive (post-ReLU
activations never use the negative codes). Zero-point quantization stretches the actual range
[min, max] over all 256 codes 0..255 and shifts it with an integer zero point,

    scale = (max − min) / 255,   zero_point = round(−min / scale),
    q = clip(round(x / scale) + zero_point, 0, 255),   x̂ = scale · (q − zero_point).

Worked number: x = [-0.5, 0.0, 2.05] → scale = 2.55/255 = 0.01, zero_point = round(50) = 50,
q = [0, 50, 255], x̂ = [-0.5, 0.0, 2.05]. Real 0.0 lands exactly on code 50: that is the point of
an *integer* zero point (zero padding and ReLU zeros stay exact).

Conventions: ``np.round`` rounds half to even. The zero point is a Python int and is *not*
clipped: for data that does not straddle 0 (say all in [1, 2]) it falls outside 0..255
(here −255), which is fine for the formula but cannot be stored in a uint8 — the general
``labkit.quant.primitives`` (``uint8``) avoids that by always widening the range to include 0,
and on data that straddles 0 the two give the same codes. Degenerate range (all elements equal,
so max − min = 0): the range is widened to include 0 the same way, so a constant c is still
reproduced exactly; all zeros get scale 1.0 and zero_point 0.
"""

from __future__ import annotations

import numpy as np

from .arrays import as_numpy, check_scale, codes_as_numpy

QMIN, QMAX = 0, 255  # uint8, the same bounds as FORMATS["uint8"]


def zeropoint_quantize(x):
    """Asymmetric uint8 quantization of ``x`` (any shape) → ``(q uint8, scale, zero_point: int)``.

    Example: ``zeropoint_quantize(np.array([-0.5, 0.0, 2.05]))`` → ``([0, 50, 255], 0.01, 50)``.
    """
    a, back = as_numpy(x, "x")
    lo, hi = np.min(a), np.max(a)
    if hi == lo:  # constant input: widen to [min(c, 0), max(c, 0)] instead of dividing by 0
        lo, hi = min(lo, a.dtype.type(0)), max(hi, a.dtype.type(0))
    scale = (hi - lo) / (QMAX - QMIN) if hi > lo else a.dtype.type(1.0)
    zero_point = int(np.round(-lo / scale))
    q = np.clip(np.round(a / scale) + zero_point, QMIN, QMAX).astype(np.uint8)
    return back.array(q), (float(scale) if back.is_torch else scale), zero_point


def zeropoint_dequantize(q, scale, zero_point):
    """``x̂ = scale · (q − zero_point)``, same shape as ``q``.

    The subtraction is done in float32: ``q`` is uint8, and ``q − zero_point`` in uint8 would
    wrap around (0 − 50 = 206).
    """
    a, back = codes_as_numpy(q, "q")
    if isinstance(zero_point, bool) or not isinstance(zero_point, (int, np.integer)):
        raise TypeError(f"zero_point must be an integer, got {type(zero_point).__name__} {zero_point!r}")
    return back.array((a.astype(np.float32) - int(zero_point)) * check_scale(scale))


# -- data that does not straddle 0, and one zero point per row -------------------------------------
#
# A uint8 zero point must itself be a code (0..255): it is stored next to the codes and subtracted
# from them in the kernel. ``zeropoint_quantize`` gives z = round(−min / scale), which for data in
# [1, 2] is −255 and for data in [−2, −1] is 510: not storable. The fix of every real kernel
# (and of ``labkit.quant.primitives``): stretch the grid over [min(x, 0), max(x, 0)], a range that
# always contains 0, so z lands in 0..255 (z = 0 for all-positive data, 255 for all-negative).
# Worked number: x = [0.5, 1.0, 2.55] → range [0, 2.55], scale 0.01, z = 0, q = [50, 100, 255];
# x = [−2.55, −1.0] → range [−2.55, 0], scale 0.01, z = 255, q = [0, 155]. The price is a coarser
# grid for data far from 0 (x in [100, 101] keeps only one code's worth of resolution per 0.4).


def _range_with_zero(lo, hi):
    return np.minimum(lo, 0), np.maximum(hi, 0)


def zeropoint_quantize_storable(x):
    """Asymmetric uint8 over ``[min(x, 0), max(x, 0)]`` → ``(q uint8, scale, zero_point int in 0..255)``.

    An all-zero ``x`` gets scale 1.0 and zero point 0.
    """
    a, back = as_numpy(x, "x")
    lo, hi = _range_with_zero(np.min(a), np.max(a))
    scale = (hi - lo) / (QMAX - QMIN) if hi > lo else a.dtype.type(1.0)
    zero_point = int(np.round(-lo / scale))
    q = np.clip(np.round(a / scale) + zero_point, QMIN, QMAX).astype(np.uint8)
    return back.array(q), scale, zero_point


def perchannel_zeropoint_quantize(W):
    """One scale and zero point per row of ``W: (out, in)``, each row's range including 0 →
    ``(q uint8 (out, in), scales (out,) W's dtype, zero_points int32 (out,) in 0..255)``."""
    a, _ = as_numpy(W, "W", ndim=2)
    lo, hi = _range_with_zero(np.min(a, axis=1), np.max(a, axis=1))
    width = hi - lo
    scales = np.where(width > 0, width / (QMAX - QMIN), 1.0).astype(a.dtype)
    zero_points = np.round(-lo / scales).astype(np.int32)
    q = np.clip(np.round(a / scales[:, None]) + zero_points[:, None], QMIN, QMAX).astype(np.uint8)
    return q, scales, zero_points


def perchannel_zeropoint_dequantize(q, scales, zero_points):
    """``Ŵ[i, j] = scales[i] · (q[i, j] − zero_points[i])`` (in float32, no uint8 wrap-around)."""
    a, _ = codes_as_numpy(q, "q", ndim=2)
    s = np.asarray(scales)
    z = np.asarray(zero_points)
    if s.shape != (a.shape[0],) or z.shape != (a.shape[0],):
        raise ValueError(f"scales and zero_points must be ({a.shape[0]},) for q {a.shape}, got {s.shape}, {z.shape}")
    return (a.astype(np.float32) - z[:, None].astype(np.float32)) * s[:, None]
