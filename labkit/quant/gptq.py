"""GPTQ's core, step by step: the exercise references of notebook 04 (numpy, float64).

The full algorithm, in torch and with per-group scales, is ``gptq_full.py``; these functions are
the same math cut into the pieces a student writes, and together (``gptq_lazy``) they give
*identical codes* to ``gptq_quantize_hessian(..., PerRow(), block_size=B)`` (a test checks it).

A weight ``W: (out, in)`` computes ``y = W x``: column ``j`` multiplies input feature ``x_j``.
**Scales first, the same for every method**: one scale per output row, chosen from the original
W before anything moves, ``scales[i] = max|W[i, :]| / qmax`` (qmax = 2^(n_bits−1) − 1; 1.0 for an
all-zero row) — the choice of the GPTQ reference code. Round-to-nearest (``naive_quantize``)
then rounds every column on its own with those scales; GPTQ rounds the columns one after another
and, after each, changes the columns still in full precision so that they cancel the error just
made. Comparing the two with the same scales isolates what the error feedback buys.

1. ``quantize_column(col, scales, n_bits)`` → integer codes ``clip(round(col / scales), ±qmax)``
   (``np.round``: halves to even).
2. ``gptq_simplified``: the error of column j spread *uniformly* over the ``in − j − 1`` columns
   left — right when all inputs are equal, noise when they are independent.
3. ``inverse_hessian_factor(H)``: the upper Cholesky factor U of ``(H + λI)⁻¹``, ``H = 2XᵀX``,
   ``λ = percdamp · mean(diag H)``; an input that is always 0 (``H_jj = 0``) gets ``H_jj = 1``.
   Its rows are the successive inverse Hessians of the columns left (a Schur complement each).
4. ``gptq_block(W_block, U_block, scales, n_bits)``: the inner loop. For each column i of the
   block: codes ``q = quantize_column(w_i)``, scaled error ``e = (w_i − q·scales) / U_ii``, and the
   columns after i in the block move by ``−e ⊗ U[i, i+1:]``. Returns the codes and the errors E.
5. ``gptq_lazy``: the lazy-block skeleton. After each block, the columns after it receive the
   whole block's updates in one matrix product ``W[:, i2:] −= E · U[i1:i2, i2:]``.

Worked number (2 bits, codes −1, 0, 1): W = [[1.0, 0.4, 0.4], [0.1, 0.1, 0.9]], row scales
[1.0, 0.9]. Round-to-nearest: row 1 → [1, 0, 0] (sums to 1.0 instead of 1.8). Simplified GPTQ:
column 0 exact; column 1's 0.4 rounds to 0 and its error 0.4 moves to column 2, 0.8 → 1:
row 1 → [1, 0, 1], off by 0.2.
"""

from __future__ import annotations

import numpy as np

from .arrays import as_numpy, check_bits


def row_scales(W: np.ndarray, qmax: int) -> np.ndarray:
    """Per-row absmax scales ``(out,)`` of ``W: (out, in)``; 1.0 for an all-zero row."""
    amax = np.max(np.abs(W), axis=1)
    return np.where(amax > 0, amax / qmax, 1.0).astype(W.dtype)


def _codes(col: np.ndarray, scales: np.ndarray, qmax: int) -> np.ndarray:
    return np.clip(np.round(col / scales), -qmax, qmax)


def quantize_column(col, scales, n_bits: int = 8):
    """Integer codes of one column ``col: (out,)`` with per-row ``scales: (out,)`` → int8 ``(out,)``.

    Example: ``quantize_column([0.7, -0.2, 0.05], [0.7/3, 0.1, 0.1], 3)`` → [3, −2, 0]
    (0.05 / 0.1 = 0.5 rounds half to even: 0).
    """
    c, _ = as_numpy(np.asarray(col), "col", ndim=1)
    s, _ = as_numpy(np.asarray(scales), "scales", ndim=1)
    if s.shape != c.shape:
        raise ValueError(f"scales must have one entry per row: col {c.shape}, scales {s.shape}")
    return _codes(c, s, check_bits(n_bits)).astype(np.int8)


def naive_quantize(W, n_bits: int = 8):
    """Round-to-nearest with per-row scales (the same scales GPTQ uses) → dequantized ``(out, in)``."""
    a, back = as_numpy(W, "W", ndim=2)
    qmax = check_bits(n_bits)
    s = row_scales(a, qmax)
    return back.array(_codes(a, s[:, None], qmax) * s[:, None])


def gptq_simplified(W, n_bits: int = 8):
    """Per-row scales from the original ``W: (out, in)``, then column by column: quantize, and
    spread the column's error uniformly over the columns left → dequantized ``(out, in)``."""
    a, back = as_numpy(W, "W", ndim=2)  # as_numpy copies: the updates below stay local
    qmax = check_bits(n_bits)
    s = row_scales(a, qmax)
    n = a.shape[1]
    Q = np.empty_like(a)
    for j in range(n):
        Q[:, j] = _codes(a[:, j], s, qmax) * s
        if j + 1 < n:
            a[:, j + 1:] += (a[:, j] - Q[:, j])[:, None] / (n - j - 1)
    return back.array(Q)


def inverse_hessian_factor(H, percdamp: float = 0.01) -> np.ndarray:
    """Upper-triangular U with ``UᵀU = (H' + percdamp·mean(diag H')·I)⁻¹`` for ``H: (in, in)``
    (float64), where H' is H with ``H'_jj = 1`` for every dead input (``H_jj = 0``)."""
    h, _ = as_numpy(np.asarray(H, dtype=np.float64), "H", ndim=2)
    if h.shape[0] != h.shape[1]:
        raise ValueError(f"H must be square (in, in), got {h.shape}")
    d = np.arange(h.shape[0])
    dead = h[d, d] == 0
    h[d[dead], d[dead]] = 1.0
    h[d, d] += percdamp * np.mean(h[d, d])
    L = np.linalg.cholesky(np.linalg.inv(h))  # lower, L Lᵀ = H⁻¹
    return L.T


def gptq_block(W_block, U_block, scales, n_bits: int = 4):
    """One lazy block of GPTQ: ``W_block: (out, B)`` current columns, ``U_block: (B, B)`` the block's
    part of U, ``scales: (out,)`` → ``(codes int8 (out, B), E float64 (out, B))``. Input unchanged."""
    w, _ = as_numpy(np.asarray(W_block, dtype=np.float64), "W_block", ndim=2)
    u = np.asarray(U_block, dtype=np.float64)
    s = np.asarray(scales, dtype=np.float64)
    qmax = check_bits(n_bits)
    B = w.shape[1]
    codes = np.empty(w.shape, dtype=np.int8)
    E = np.empty_like(w)
    for i in range(B):
        q = _codes(w[:, i], s, qmax)
        codes[:, i] = q
        E[:, i] = (w[:, i] - q * s) / u[i, i]
        w[:, i + 1:] -= np.outer(E[:, i], u[i, i + 1:])
    return codes, E


def gptq_lazy(W, H, n_bits: int = 4, block_size: int = 32, percdamp: float = 0.01, block=gptq_block):
    """The lazy-block skeleton around ``block`` → ``(codes int8 (out, in), scales (out,))``.

    Dead inputs (``H_jj = 0``) get weight 0, as in ``gptq_full``.
    """
    w, _ = as_numpy(np.asarray(W, dtype=np.float64), "W", ndim=2)
    h = np.asarray(H, dtype=np.float64)
    qmax = check_bits(n_bits)
    w[:, np.diag(h) == 0] = 0.0
    U = inverse_hessian_factor(h, percdamp)
    s = row_scales(w, qmax)
    n = w.shape[1]
    codes = np.empty(w.shape, dtype=np.int8)
    for i1 in range(0, n, block_size):
        i2 = min(i1 + block_size, n)
        codes[:, i1:i2], E = block(w[:, i1:i2], U[i1:i2, i1:i2], s, n_bits)
        w[:, i2:] -= E @ U[i1:i2, i2:]
    return codes, s
