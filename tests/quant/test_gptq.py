"""GPTQ exercise references (quantize_column, naive_quantize, gptq_simplified)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labkit.quant import (
    PerRow, fake_quantize, gptq_simplified, naive_quantize, quantize_column, symmetric_int,
)


def test_quantize_column_hand_computed():
    out = quantize_column(np.array([0.7, -0.2, 0.05]), n_bits=3)  # qmax 3, scale 0.7/3
    np.testing.assert_allclose(out, [0.7, -0.7 / 3, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(quantize_column(np.zeros(3, np.float32)), np.zeros(3))


def test_worked_example_of_the_docstring():
    w = np.array([[1, 1, 1], [0.3, 0.3, 0.3]], dtype=np.float32)
    np.testing.assert_allclose(naive_quantize(w, 2), [[1, 1, 1], [0, 0, 0]])
    np.testing.assert_allclose(gptq_simplified(w, 2), [[1, 1, 1], [0, 0, 1]], atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 10)),
              elements=st.floats(-10, 10, width=32)), st.integers(2, 8))
def test_naive_is_per_column_symmetric_int(w, bits):
    # the general primitive, per row of W^T = per column of W, is an independent second implementation
    expected = fake_quantize(np.ascontiguousarray(w.T), symmetric_int(bits), PerRow()).T
    np.testing.assert_allclose(naive_quantize(w, bits), expected, rtol=1e-6, atol=1e-6)


def _reference_loop(w, bits):
    """Independent restatement: explicit double loop, float64, error split k by k."""
    w = w.astype(np.float64).copy()
    out, n = w.shape
    qmax = 2 ** (bits - 1) - 1
    q = np.zeros_like(w)
    for j in range(n):
        amax = max(abs(w[i, j]) for i in range(out))
        s = amax / qmax if amax > 0 else 1.0
        for i in range(out):
            q[i, j] = min(max(round(w[i, j] / s), -qmax), qmax) * s
        for k in range(j + 1, n):
            for i in range(out):
                w[i, k] += (w[i, j] - q[i, j]) / (n - j - 1)
    return q


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 7)),
              elements=st.floats(-5, 5)), st.sampled_from([3, 4, 8]))
def test_gptq_simplified_matches_an_explicit_loop(w, bits):
    np.testing.assert_allclose(gptq_simplified(w, bits), _reference_loop(w, bits), atol=1e-9)


def test_row_sums_preserved_up_to_last_column():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 64))
    q = gptq_simplified(w, 4)
    last_col = w.sum(1) - q[:, :-1].sum(1)  # the last column after all updates (row sums are invariant)
    last_scale = np.abs(last_col).max() / 7  # its 4-bit scale: the only error left in a row sum
    assert np.all(np.abs(w.sum(1) - q.sum(1)) <= last_scale / 2 + 1e-9)
    naive_err = np.abs(w.sum(1) - naive_quantize(w, 4).sum(1)).mean()
    gptq_err = np.abs(w.sum(1) - q.sum(1)).mean()
    assert gptq_err < naive_err / 3, f"row-sum error {gptq_err} vs round-to-nearest {naive_err}"


def test_input_unchanged_torch_and_errors():
    w = np.ones((2, 3), np.float32)
    gptq_simplified(w, 4)
    np.testing.assert_array_equal(w, np.ones((2, 3)))
    out = gptq_simplified(torch.ones(2, 3), 4)
    assert isinstance(out, torch.Tensor)
    with pytest.raises(ValueError, match="W must be a 2-D matrix"):
        gptq_simplified(np.ones(3), 4)
    with pytest.raises(ValueError, match="col must be a 1-D vector"):
        quantize_column(np.ones((2, 2)))
    with pytest.raises(ValueError, match="n_bits must be an integer from 2 to 8"):
        naive_quantize(w, 1)
    with pytest.raises(ValueError, match="W contains 1 NaN"):
        naive_quantize(np.array([[np.nan, 1.0]]))
