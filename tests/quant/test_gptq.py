"""GPTQ exercise references (quantize_column, naive_quantize, gptq_simplified, inverse_hessian_factor,
gptq_block, gptq_lazy) against hand-computed cases, explicit loops and labkit's full GPTQ (torch)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labkit.quant import (
    PerRow, fake_quantize, gptq_block, gptq_lazy, gptq_quantize_hessian, gptq_simplified, inverse_hessian_factor,
    naive_quantize, quantize_column, symmetric_int,
)


def test_quantize_column_hand_computed():
    codes = quantize_column(np.array([0.7, -0.2, 0.04, 0.5]), np.array([0.7 / 3, 0.1, 0.1, 0.1]), n_bits=3)
    np.testing.assert_array_equal(codes, [3, -2, 0, 3])  # 0.5 / 0.1 = 5 clips to qmax 3
    assert codes.dtype == np.int8


def test_worked_example_of_the_docstring():
    w = np.array([[1.0, 0.4, 0.4], [0.1, 0.1, 0.9]])
    np.testing.assert_allclose(naive_quantize(w, 2), [[1, 0, 0], [0, 0, 0.9]])
    np.testing.assert_allclose(gptq_simplified(w, 2), [[1, 0, 1], [0, 0, 0.9]], atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 10)),
              elements=st.floats(-10, 10, width=32)), st.integers(2, 8))
def test_naive_is_per_row_symmetric_int(w, bits):
    # the general primitive with PerRow() is an independent second implementation
    expected = fake_quantize(w, symmetric_int(bits), PerRow())
    np.testing.assert_allclose(naive_quantize(w, bits), expected, rtol=1e-6, atol=1e-6)


def _reference_loop(w, bits):
    """Independent restatement: explicit loops, float64, per-row scales of the original W."""
    w = w.astype(np.float64).copy()
    out, n = w.shape
    qmax = 2 ** (bits - 1) - 1
    s = [max(abs(v) for v in w[i]) / qmax or 1.0 for i in range(out)]
    q = np.zeros_like(w)
    for j in range(n):
        for i in range(out):
            q[i, j] = min(max(round(w[i, j] / s[i]), -qmax), qmax) * s[i]
        for k in range(j + 1, n):
            for i in range(out):
                w[i, k] += (w[i, j] - q[i, j]) / (n - j - 1)
    return q


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 7)),
              elements=st.floats(-5, 5)), st.sampled_from([3, 4, 8]))
def test_gptq_simplified_matches_an_explicit_loop(w, bits):
    np.testing.assert_allclose(gptq_simplified(w, bits), _reference_loop(w, bits), atol=1e-9)


def test_inverse_hessian_factor_hand_computed_and_dead_inputs():
    U = inverse_hessian_factor(np.array([[4.0, 2.0], [2.0, 3.0]]), 0.0)
    np.testing.assert_allclose(U.T @ U, [[0.375, -0.25], [-0.25, 0.5]], atol=1e-15)
    assert U[1, 0] == 0 and U[0, 0] > 0 and U[1, 1] == pytest.approx(3 ** -0.5)
    H = np.diag([2.0, 0.0, 4.0])
    U = inverse_hessian_factor(H, 0.0)
    np.testing.assert_allclose(np.diag(U) ** 2, [0.5, 1.0, 0.25])  # the dead input got H_jj = 1


def test_gptq_block_twin_inputs_worked_example():
    U = inverse_hessian_factor(np.array([[2.0, 2.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 2.0]]))
    codes, E = gptq_block(np.array([[0.4, 0.4, 1.0]]), U, np.array([1.0]), 2)
    np.testing.assert_array_equal(codes, [[0, 1, 1]])  # round-to-nearest would give [0, 0, 1]
    assert E[0, 0] == pytest.approx(0.4 / U[0, 0])


@pytest.mark.parametrize("bits,block", [(2, 16), (3, 7), (4, 32), (4, 96), (8, 64)])
def test_lazy_blocks_give_the_full_gptq_codes(bits, block):
    rng = np.random.default_rng(bits * 100 + block)
    W = rng.standard_normal((24, 96)) * 0.1
    X = 1.0 + 0.5 * rng.standard_normal((200, 1)) + 0.3 * rng.standard_normal((200, 96))
    X[:, 7] = 0.0  # a dead input
    H = 2 * X.T @ X
    codes, scales = gptq_lazy(W, H, bits, block)
    full = gptq_quantize_hessian(torch.tensor(W), torch.tensor(H), bits, PerRow(), block_size=block)
    np.testing.assert_array_equal(codes, full.codes.numpy())
    np.testing.assert_allclose(scales, full.scale.numpy(), rtol=1e-6)


def test_input_unchanged_and_errors():
    w = np.ones((2, 3))
    gptq_simplified(w, 4)
    gptq_block(w, np.eye(3), np.ones(2), 4)
    np.testing.assert_array_equal(w, np.ones((2, 3)))
    with pytest.raises(ValueError, match="W must be a 2-D matrix"):
        gptq_simplified(np.ones(3), 4)
    with pytest.raises(ValueError, match="scales must have one entry per row"):
        quantize_column(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="n_bits must be an integer from 2 to 8"):
        naive_quantize(w, 1)
    with pytest.raises(ValueError, match="H must be square"):
        inverse_hessian_factor(np.ones((2, 3)))
