"""Array backends: the handful of operations the quantizers need, for numpy and for torch.

The quantizers are written once against this small interface, so a numpy array and a torch
tensor go through the same arithmetic with each library's own kernels (``np.rint`` and
``torch.round`` both round half to even; fp8 casts come from ``ml_dtypes`` and from torch's
``float8_*`` dtypes, which implement the same saturate-free round-to-nearest-even rule). That is
what makes "numpy == torch" a real test rather than a tautology. Work is done in float32;
torch results come back in the caller's dtype and device.
"""

from __future__ import annotations

import math
from typing import Any

import ml_dtypes
import numpy as np

try:  # torch is a dependency of labkit, but the pure numpy path must not need it at import time
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

from .formats import Format

Array = Any  # np.ndarray | torch.Tensor


class NumpyOps:
    name = "numpy"

    @staticmethod
    def float32(x):
        return np.asarray(x, dtype=np.float32)

    @staticmethod
    def amax(x, axis=-1):
        return np.max(x, axis=axis)

    @staticmethod
    def amin(x, axis=-1):
        return np.min(x, axis=axis)

    abs = staticmethod(np.abs)
    rint = staticmethod(np.rint)
    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def clip(x, lo, hi):
        return np.clip(x, lo, hi)

    @staticmethod
    def pad_last(x, n):
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n)])

    @staticmethod
    def all_finite(x) -> bool:
        # max and min propagate NaN and an Inf is itself the max or min: two reductions, no mask
        return bool(np.isfinite(np.max(x)) and np.isfinite(np.min(x)))

    @staticmethod
    def codes(x, fmt: Format):
        if fmt.is_float:
            return x.astype(ml_dtypes.float8_e4m3fn if fmt.name == "fp8_e4m3" else ml_dtypes.float8_e5m2)
        return x.astype(np.uint8 if fmt.qmin >= 0 else np.int8)

    @staticmethod
    def like(x, ref):
        """Return float32 result ``x`` in the float dtype of ``ref`` (float64 stays float64)."""
        dtype = ref.dtype if np.issubdtype(ref.dtype, np.floating) else np.float32
        return np.asarray(x).astype(dtype)

    @staticmethod
    def scalar(value, ref):
        return np.float32(value)


class TorchOps:
    name = "torch"

    @staticmethod
    def float32(x):
        return x.to(torch.float32)

    @staticmethod
    def amax(x, axis=-1):
        return torch.amax(x, dim=axis)

    @staticmethod
    def amin(x, axis=-1):
        return torch.amin(x, dim=axis)

    abs = staticmethod(lambda x: torch.abs(x))
    rint = staticmethod(lambda x: torch.round(x))
    where = staticmethod(lambda c, a, b: torch.where(c, a, b))
    maximum = staticmethod(lambda a, b: torch.maximum(a, torch.as_tensor(b, dtype=a.dtype, device=a.device)))
    minimum = staticmethod(lambda a, b: torch.minimum(a, torch.as_tensor(b, dtype=a.dtype, device=a.device)))

    @staticmethod
    def clip(x, lo, hi):
        return torch.clamp(x, lo, hi)

    @staticmethod
    def pad_last(x, n):
        return torch.nn.functional.pad(x, (0, n))

    @staticmethod
    def all_finite(x) -> bool:
        # a whole-tensor bool mask costs more than the quantization itself on big weights;
        # amax/amin propagate NaN and an Inf is itself the extreme, so two reductions suffice
        lo, hi = torch.aminmax(x)
        return bool(torch.isfinite(lo) and torch.isfinite(hi))

    @staticmethod
    def codes(x, fmt: Format):
        if fmt.is_float:
            return x.to(torch.float8_e4m3fn if fmt.name == "fp8_e4m3" else torch.float8_e5m2)
        return x.to(torch.uint8 if fmt.qmin >= 0 else torch.int8)

    @staticmethod
    def like(x, ref):
        return x.to(ref.dtype if ref.is_floating_point() else torch.float32)

    @staticmethod
    def scalar(value, ref):
        return torch.tensor(value, dtype=torch.float32, device=ref.device)


def ops_for(x: Array, name: str = "x"):
    """The backend for ``x``; anything that is neither numpy nor torch is a TypeError."""
    if torch is not None and isinstance(x, torch.Tensor):
        return TorchOps
    if isinstance(x, np.ndarray):
        return NumpyOps
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


def check_float_input(x: Array, name: str = "x", min_ndim: int = 0):
    """Validate a tensor to be quantized; returns its backend.

    Rejects non-arrays, non-float dtypes, empty tensors, too few dimensions, NaN and Inf, each
    with a message that names ``name`` and says what was found.
    """
    ops = ops_for(x, name)
    is_float = x.is_floating_point() if ops is TorchOps else np.issubdtype(x.dtype, np.floating)
    if not is_float:
        raise TypeError(f"{name} must be a floating-point array to quantize, got dtype {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}")
    if math.prod(x.shape) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); there is nothing to quantize")
    if not ops.all_finite(x):
        bad = int((~np.isfinite(x)).sum()) if ops is NumpyOps else int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or Inf value(s); quantization needs finite inputs")
    return ops
