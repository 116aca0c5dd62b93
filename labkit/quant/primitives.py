"""choose_qparams → quantize → dequantize: the three steps of every quantizer in the lab.

Same vocabulary as torchao's ``quant_primitives``:

1. ``choose_qparams(x, fmt, granularity)`` looks at the data once and picks a scale per block
   (and a zero point for asymmetric formats). Symmetric: ``scale = absmax / qmax``.
   Asymmetric (uint8): the range ``[min(x, 0), max(x, 0)]`` is stretched over 0..255 and
   ``zero_point = qmin - round(lo / scale)``, so that real 0.0 lands exactly on a code.
2. ``quantize(x, qparams)`` maps reals to codes: integers ``clip(round(x / s) + zp, qmin, qmax)``
   (round half to even), floats ``fp8(clip(x / s, -max, max))``.
3. ``dequantize(codes, qparams)`` maps back: ``(q - zp) * s``.

``fake_quantize`` composes the three and returns the input's dtype — the "fake" (simulated)
quantization used to measure accuracy; "real" quantization keeps the codes and scales.

Worked number (int8, per-tensor): x = [0.5, -1.27, 0.004] → absmax 1.27, scale 0.01,
codes [50, -127, 0], dequantized [0.5, -1.27, 0.0]; the 0.004 is lost (|error| ≤ scale/2).

Design choice: an all-zero block gets scale 1.0 (its codes are 0 and dequantize to exactly 0)
instead of torchao's clamp of the scale to float32 eps; tiny but non-zero blocks therefore keep
their own scale and are not flushed to zero. Work happens in float32 whatever the input dtype.
The reductions (which axis a granularity uses) are described in ``granularity.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .backend import Array, TorchOps, check_float_input, ops_for
from .formats import Format, get_format
from .granularity import MIN_NDIM, Granularity, PerGroup, PerTensor, check_granularity, scale_shape


@dataclass(frozen=True)
class QParams:
    """Quantization parameters of one tensor.

    ``scale`` (float32) has shape ``scale_shape(shape, granularity)``: ``()`` per tensor,
    ``(out,)`` per row of ``w: (out, in)``, ``(out, ceil(in / g))`` per group.
    ``zero_point`` has the same shape (integer values stored as float32) for asymmetric
    formats and is ``None`` for symmetric ones. ``shape`` is the shape of the quantized tensor.
    """

    fmt: Format
    granularity: Granularity
    scale: Array
    zero_point: Array | None
    shape: tuple[int, ...]


def _blocks(ops, x, granularity: Granularity):
    """View ``x`` as ``scale_shape + (block,)``: the last axis holds the elements of one block."""
    if isinstance(granularity, PerTensor):
        return x.reshape(-1)
    if isinstance(granularity, PerGroup):
        g = granularity.group_size
        k = x.shape[-1]
        pad = -k % g
        if pad:
            x = ops.pad_last(x, pad)
        return x.reshape(tuple(x.shape[:-1]) + ((k + pad) // g, g))
    return x


def _unblock(xb, shape: tuple[int, ...], granularity: Granularity):
    if isinstance(granularity, PerGroup):
        flat = xb.reshape(tuple(xb.shape[:-2]) + (-1,))
        return flat[..., : shape[-1]]
    return xb.reshape(shape)


def choose_qparams(x: Array, fmt: str | Format, granularity: Granularity) -> QParams:
    """Pick scales (and zero points) for ``x`` in format ``fmt`` at ``granularity``."""
    fmt = get_format(fmt)
    granularity = check_granularity(granularity)
    ops = check_float_input(x, "x", MIN_NDIM[type(granularity)])
    xb = _blocks(ops, ops.float32(x), granularity)
    one = ops.scalar(1.0, xb)
    if fmt.symmetric:
        amax = ops.amax(ops.abs(xb))
        scale = ops.where(amax > 0, amax / fmt.qmax, one)
        zero_point = None
    else:
        lo = ops.minimum(ops.amin(xb), 0.0)
        hi = ops.maximum(ops.amax(xb), 0.0)
        width = hi - lo
        scale = ops.where(width > 0, width / (fmt.qmax - fmt.qmin), one)
        zero_point = ops.clip(fmt.qmin - ops.rint(lo / scale), fmt.qmin, fmt.qmax)
    expected = scale_shape(tuple(x.shape), granularity)
    scale = scale.reshape(expected)
    if zero_point is not None:
        zero_point = zero_point.reshape(expected)
    return QParams(fmt, granularity, scale, zero_point, tuple(x.shape))


def _expand(ops, value, granularity):
    """Scale-shaped array → broadcastable against the blocked tensor."""
    return value.reshape(tuple(value.shape) + (1,)) if not isinstance(granularity, PerTensor) else value


def quantize(x: Array, qparams: QParams) -> Array:
    """Codes of ``x``: int8/uint8 (int4 in an int8 container) or float8 arrays, shape of ``x``."""
    ops = check_float_input(x, "x")
    if tuple(x.shape) != qparams.shape:
        raise ValueError(f"x has shape {tuple(x.shape)} but qparams were chosen for shape {qparams.shape}")
    fmt, g = qparams.fmt, qparams.granularity
    xb = _blocks(ops, ops.float32(x), g)
    scaled = xb / _expand(ops, qparams.scale, g)
    if fmt.is_float:
        # saturate first: fp8 e4m3fn has no Inf, and an out-of-range cast gives NaN
        q = ops.clip(scaled, fmt.qmin, fmt.qmax)
    else:
        q = ops.rint(scaled)
        if qparams.zero_point is not None:
            q = q + _expand(ops, qparams.zero_point, g)
        q = ops.clip(q, fmt.qmin, fmt.qmax)
    return ops.codes(_unblock(q, qparams.shape, g), fmt)


def dequantize(codes: Array, qparams: QParams, dtype=None) -> Array:
    """Real values ``(q - zp) * scale`` of ``codes``; float32 unless ``dtype`` is given."""
    ops = ops_for(codes, "codes")
    if tuple(codes.shape) != qparams.shape:
        raise ValueError(f"codes have shape {tuple(codes.shape)} but qparams are for shape {qparams.shape}")
    g = qparams.granularity
    qb = _blocks(ops, ops.float32(codes), g)
    if qparams.zero_point is not None:
        qb = qb - _expand(ops, qparams.zero_point, g)
    out = _unblock(qb * _expand(ops, qparams.scale, g), qparams.shape, g)
    if dtype is not None:
        out = out.to(dtype) if ops is TorchOps else out.astype(dtype)
    return out


def fake_quantize(x: Array, fmt: str | Format, granularity: Granularity) -> Array:
    """Quantize and dequantize ``x`` in one go; same shape, dtype (and device) as ``x``."""
    qparams = choose_qparams(x, fmt, granularity)
    out = dequantize(quantize(x, qparams), qparams)
    return ops_for(x).like(out, x)
