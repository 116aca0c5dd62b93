"""LLM.int8()'s mixed-precision decomposition (Dettmers et al., 2022): the exercise reference.

A handful of activation *feature columns* (channels) carry values far above the rest on almost
every token. LLM.int8() splits the matmul ``Y = X W`` (``X: (tokens, dim)``, ``W: (dim, out)``)
along dim: the outlier columns ``O = {j : max_t |X[t, j]| > threshold}`` are multiplied in float
(``X[:, O] @ W[O, :]``), all other columns in INT8 — X per token, W per output column, as in
``w8a8.py`` — and the two partial products are added. The per-token scales now follow the
regular channels, so they keep their resolution.

What it costs: a gather of |O| columns of X and rows of W, a second (float) matmul of
``tokens × |O| × out`` multiply-adds next to the INT8 one of ``tokens × (dim − |O|) × out``, and
the sum of two outputs. The paper uses threshold 6.0 on real LLM activations, where |O| is a few
of thousands of channels; the decomposition pays only while |O| stays that small.

Worked number: dim = 4, threshold 6, X = [[0.5, 20, −0.25, 1.0]] → O = [1]; the float part is
20 · W[1, :], the INT8 part quantizes [0.5, −0.25, 1.0] with sx = 1.0 / 127 instead of 20 / 127.
"""

from __future__ import annotations

import numpy as np

from .arrays import as_numpy
from .w8a8 import w8a8_simulate


def outlier_columns(X, threshold: float) -> np.ndarray:
    """Sorted int64 indices j with ``max_t |X[t, j]| > threshold``."""
    a, _ = as_numpy(X, "X", ndim=2)
    return np.flatnonzero(np.max(np.abs(a), axis=0) > threshold).astype(np.int64)


def llm_int8_matmul(X, W, threshold: float = 6.0):
    """``(Y float64 (tokens, out), outlier_cols int64)``: outlier columns in float, the rest W8A8."""
    x, _ = as_numpy(X, "X", ndim=2)
    w, _ = as_numpy(W, "W", ndim=2)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"X: (tokens, dim) and W: (dim, out) must share dim, got {x.shape} and {w.shape}")
    cols = outlier_columns(x, threshold)
    rest = np.setdiff1d(np.arange(x.shape[1]), cols)
    Y = x[:, cols].astype(np.float64) @ w[cols, :].astype(np.float64)
    if rest.size:
        Y = Y + w8a8_simulate(x[:, rest], w[rest, :])
    return Y, cols
