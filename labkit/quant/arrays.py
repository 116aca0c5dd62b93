"""Plain-numpy plumbing for the exercise references (absmax, zero point, GPTQ-simplified, SmoothQuant).

The exercise references are written in plain numpy, line for line like the formulas the students
implement, so that a student's answer and labkit's can be compared number for number. They also
accept torch tensors: ``as_numpy`` copies the tensor to a float numpy array (bfloat16/float16 become
float32, because numpy has no bfloat16) and ``Back`` turns numpy results back into tensors on the
caller's device. Arithmetic therefore happens in the input's numpy float dtype: float32 stays
float32, float64 stays float64 — exactly what ``np.round(x / scale)`` in a student's cell does.

Worked example: ``as_numpy(torch.tensor([1.5], dtype=torch.bfloat16), "x")`` returns
``(array([1.5], dtype=float32), back)`` and ``back.array(np.array([3], np.int8))`` is
``tensor([3], dtype=torch.int8)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import TorchOps, check_float_input

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Back:
    """Converts numpy results to the caller's kind of array (numpy stays numpy)."""

    is_torch: bool
    device: Any = None

    def array(self, a: np.ndarray):
        if not self.is_torch:
            return a
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)


def as_numpy(x, name: str, ndim: int | None = None) -> tuple[np.ndarray, Back]:
    """Validate ``x`` and return it as a float numpy array plus the converter back.

    ``ndim`` (if given) is the exact number of dimensions required; NaN/Inf, empty and non-float
    inputs are rejected by ``check_float_input`` with a message naming ``name``.
    """
    ops = check_float_input(x, name)
    if ndim is not None and x.ndim != ndim:
        what = {1: "a 1-D vector", 2: "a 2-D matrix"}.get(ndim, f"{ndim}-D")
        raise ValueError(f"{name} must be {what}, got shape {tuple(x.shape)} ({x.ndim}-D)")
    if ops is TorchOps:
        t = x.detach()
        if t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float32)
        return t.cpu().numpy().copy(), Back(True, x.device)
    return np.array(x, copy=True), Back(False)


def check_bits(n_bits: int) -> int:
    """``qmax = 2^(n_bits-1) - 1`` of a symmetric integer grid; n_bits must be 2..8."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or not 2 <= n_bits <= 8:
        raise ValueError(f"n_bits must be an integer from 2 to 8, got {n_bits!r}")
    return 2 ** (int(n_bits) - 1) - 1


def codes_as_numpy(q, name: str = "q", ndim: int | None = None) -> tuple[np.ndarray, Back]:
    """Like ``as_numpy`` for quantized codes (integer arrays are welcome here)."""
    if torch is not None and isinstance(q, torch.Tensor):
        a, back = q.detach().cpu().numpy(), Back(True, q.device)
    elif isinstance(q, np.ndarray):
        a, back = q, Back(False)
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(q).__name__}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a, back


def check_scale(scale, name: str = "scale"):
    """Validate a scale (Python float, numpy or torch): finite and > 0. Torch becomes numpy;
    numpy and Python numbers come back unchanged so that ``q * scale`` follows numpy's own
    type promotion, as it does in a student's cell."""
    if torch is not None and isinstance(scale, torch.Tensor):
        scale = scale.detach().cpu().numpy()
    s = np.asarray(scale)
    if not np.issubdtype(s.dtype, np.number) or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"{name} must be finite and positive (x was divided by it), got {scale!r}")
    return scale
