"""GPTQ's core idea, simplified: quantize one column, hand its error to the columns not yet done.

The exercise references (the full algorithm, with the inverse Hessian, is ``gptq_full.py``).

A weight ``W: (out, in)`` computes ``y = W x``: column ``j`` multiplies input feature ``x_j``.
Round-to-nearest (``naive_quantize``) rounds every column on its own and lets the errors add up
in ``y``. GPTQ quantizes the columns one after another and, after each, changes the columns that
are still in full precision so that they cancel the error just made. The real GPTQ decides how
much each remaining column takes from the inverse Hessian of the layer's inputs; this simplified
version assumes nothing about the inputs and spreads the error **uniformly**:

    for j = 0 .. in−1:
        Q[:, j]   = quantize_column(W[:, j])          # scale chosen from the column *now*
        err       = W[:, j] − Q[:, j]                  # shape (out,)
        W[:, j+1:] += err[:, None] / (in − j − 1)      # each remaining column gets an equal share

(on a copy of ``W``; the last column's error has nowhere to go). Every row sum is thereby
preserved up to the last column's rounding error — it is exactly the right correction when all
inputs are equal (``x_j = c`` for all j, the extreme of correlated inputs), and the wrong one
for independent inputs, where it only adds noise to the later columns.

Worked number (n_bits = 2, so codes −1, 0, 1): W = [[1, 1, 1], [0.3, 0.3, 0.3]].
Round-to-nearest: every column is [1, 0.3] with scale 1 → [1, 0]; row 2 sums to 0 instead of 0.9.
Simplified GPTQ: column 0 → [1, 0], err [0, 0.3], each of the 2 remaining columns gets 0.15;
column 1 is now [1, 0.45] → [1, 0], err [0, 0.45], all of it to column 2; column 2 is [1, 0.75]
→ [1, 1]. Row 2 of Ŵ is [0, 0, 1]: it sums to 1, off by 0.1 instead of 0.9.

``quantize_column`` is symmetric absmax at ``n_bits`` (qmax = 2^(n_bits−1) − 1, scale =
max|col| / qmax, 1.0 for an all-zero column, ``np.round`` = half to even) and returns the
*dequantized* values. Arithmetic in W's float dtype.
"""

from __future__ import annotations

import numpy as np

from .arrays import as_numpy, check_bits


def _quantize_column(col: np.ndarray, qmax: int) -> np.ndarray:
    amax = np.max(np.abs(col))
    scale = amax / qmax if amax > 0 else col.dtype.type(1.0)
    return np.clip(np.round(col / scale), -qmax, qmax) * scale


def quantize_column(col, n_bits: int = 8):
    """Symmetric absmax quantize-dequantize of one column ``col: (out,)`` → ``(out,)`` floats.

    Example: ``quantize_column(np.array([0.7, -0.2, 0.05]), n_bits=3)`` — qmax 3, scale 0.7/3:
    0.7 → 3, −0.2 → round(−0.857) = −1, 0.05 → round(0.214) = 0 → [0.7, −0.2333, 0.0].
    """
    a, back = as_numpy(col, "col", ndim=1)
    return back.array(_quantize_column(a, check_bits(n_bits)))


def naive_quantize(W, n_bits: int = 8):
    """Round-to-nearest baseline: every column of ``W: (out, in)`` through ``quantize_column`` on
    its own (one scale per column) → dequantized ``(out, in)``."""
    a, back = as_numpy(W, "W", ndim=2)
    qmax = check_bits(n_bits)
    Q = np.empty_like(a)
    for j in range(a.shape[1]):
        Q[:, j] = _quantize_column(a[:, j], qmax)
    return back.array(Q)


def gptq_simplified(W, n_bits: int = 8):
    """Column-by-column quantization of ``W: (out, in)`` with each column's error spread
    uniformly over the remaining columns (see the module docstring) → dequantized ``(out, in)``.

    Each remaining column ``k > j`` receives ``err / (in − j − 1)``; a column's scale is chosen
    when it is reached, from its values *after* the corrections it received. ``W`` is not changed.
    """
    a, back = as_numpy(W, "W", ndim=2)  # as_numpy copies, so the updates below stay local
    qmax = check_bits(n_bits)
    n = a.shape[1]
    Q = np.empty_like(a)
    for j in range(n):
        Q[:, j] = _quantize_column(a[:, j], qmax)
        remaining = n - j - 1
        if remaining > 0:
            err = a[:, j] - Q[:, j]
            a[:, j + 1 :] += err[:, None] / remaining
    return back.array(Q)
