"""Per-group, one-sided zero-point, W8A8 and LLM.int8() exercise references against labkit's
general primitives (fake_quantize / choose_qparams), torch's integer matmul and hand-computed cases."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labkit.nn.w8a8 import int8_matmul
from labkit.quant import (
    PerGroup, PerRow, PerToken, choose_qparams, fake_quantize, llm_int8_matmul, perchannel_zeropoint_dequantize,
    perchannel_zeropoint_quantize, pergroup_dequantize, pergroup_fake_quantize_fp8, pergroup_quantize, quantize,
    quantize_per_token, smoothquant_best_alpha, w8a8_int_linear, w8a8_simulate, zeropoint_quantize_storable,
)
from labkit.quant.w8a8 import quantize_per_column, w8a8_error

# values on a 1e-3 grid: a subnormal range (1e-45) has no meaningful scale in either implementation
weights = arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 40)),
                 elements=st.integers(-50_000, 50_000).map(lambda v: v / 1000))


@settings(max_examples=40, deadline=None)
@given(weights, st.integers(1, 48))
def test_per_group_equals_the_general_primitive(w, g):
    q, s = pergroup_quantize(w, g)
    assert s.shape == (w.shape[0], -(-w.shape[1] // g))
    np.testing.assert_array_equal(pergroup_dequantize(q, s, g), fake_quantize(w, "int8", PerGroup(g)))
    np.testing.assert_array_equal(pergroup_fake_quantize_fp8(w, g), fake_quantize(w, "fp8_e4m3", PerGroup(g)))


def test_per_group_worked_example_short_last_group():
    q, s = pergroup_quantize(np.array([[1.27, -0.5, 0.04, 0.01, 3.0]], np.float32), 2)
    np.testing.assert_array_equal(q, [[127, -50, 127, 32, 127]])
    np.testing.assert_allclose(s, [[0.01, 0.04 / 127, 3.0 / 127]], rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(weights)
def test_one_sided_zero_point_equals_the_uint8_primitive(w):
    qp = choose_qparams(w, "uint8", PerRow())
    q, s, z = perchannel_zeropoint_quantize(w)
    np.testing.assert_array_equal(q, quantize(w, qp))
    np.testing.assert_allclose(s, qp.scale, rtol=1e-6)
    np.testing.assert_array_equal(z, qp.zero_point)
    assert z.min() >= 0 and z.max() <= 255
    np.testing.assert_allclose(perchannel_zeropoint_dequantize(q, s, z), fake_quantize(w, "uint8", PerRow()),
                               rtol=1e-6, atol=1e-6)
    q1, s1, z1 = zeropoint_quantize_storable(w[0])
    np.testing.assert_array_equal(q1, q[0])
    assert z1 == z[0]


def test_one_sided_worked_examples():
    q, s, z = zeropoint_quantize_storable(np.array([0.5, 1.0, 2.55], np.float32))
    assert (list(q), z) == ([50, 100, 255], 0) and s == pytest.approx(0.01)
    q, s, z = zeropoint_quantize_storable(np.array([-2.55, -1.0], np.float32))
    assert (list(q), z) == ([0, 155], 255)
    q, s, z = zeropoint_quantize_storable(np.zeros(3, np.float32))
    assert (list(q), float(s), z) == ([0, 0, 0], 1.0, 0)


def test_per_token_and_simulation_match_the_primitives():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 16)).astype(np.float32)
    X[:, 3] *= 40
    W = (rng.standard_normal((16, 8)) * 0.1).astype(np.float32)
    q, s = quantize_per_token(X)
    np.testing.assert_array_equal(q, quantize(X, choose_qparams(X, "int8", PerToken())))
    Xh = fake_quantize(X, "int8", PerToken()).astype(np.float64)
    Wh = fake_quantize(np.ascontiguousarray(W.T), "int8", PerRow()).T.astype(np.float64)
    np.testing.assert_allclose(w8a8_simulate(X, W), Xh @ Wh, rtol=1e-12)


def test_integer_linear_equals_torch_int_mm_and_the_simulation():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((32, 64)).astype(np.float32)
    W = (rng.standard_normal((64, 24)) * 0.1).astype(np.float32)
    qx, sx = quantize_per_token(X)
    qw, sw = quantize_per_column(W)
    acc, y = w8a8_int_linear(qx, sx, qw, sw)
    torch_acc = int8_matmul(torch.from_numpy(qx), torch.from_numpy(np.ascontiguousarray(qw.T))).numpy()
    np.testing.assert_array_equal(acc, torch_acc)
    assert acc.dtype == np.int32 and y.dtype == np.float32
    np.testing.assert_allclose(y, w8a8_simulate(X, W), rtol=1e-5, atol=1e-6)
    acc, _ = w8a8_int_linear(np.full((1, 4096), 127, np.int8), np.ones(1, np.float32),
                             np.full((4096, 1), 127, np.int8), np.ones(1, np.float32))
    assert int(acc[0, 0]) == 127 * 127 * 4096
    with pytest.raises(TypeError, match="int8"):
        w8a8_int_linear(qx.astype(np.int16), sx, qw, sw)


def test_best_alpha_is_the_grid_minimum_and_beats_no_smoothing():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((128, 32)).astype(np.float32)
    X[:, [3, 9]] *= 50
    W = (rng.standard_normal((32, 16)) * 0.1).astype(np.float32)
    grid = np.linspace(0, 1, 11)
    best, errors = smoothquant_best_alpha(X, W, grid)
    assert best == grid[np.argmin(errors)] and errors.shape == (11,)
    assert min(errors) < w8a8_error(X, W) / 2


def test_llm_int8_hand_case_and_it_beats_plain_per_token():
    X = np.array([[0.5, 20.0, -0.25, 1.0]], np.float32)
    W = np.array([[0.2], [0.05], [-0.4], [0.25]], np.float32)
    Y, cols = llm_int8_matmul(X, W, 6.0)
    assert list(cols) == [1]
    rest = np.array([0, 2, 3])
    np.testing.assert_allclose(Y, np.float64(X[0, 1]) * np.float64(W[1, 0]) + w8a8_simulate(X[:, rest], W[rest]),
                               rtol=1e-12)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((64, 48)).astype(np.float32)
    X[:, [5, 30]] *= 40
    W = (rng.standard_normal((48, 32)) * 0.1).astype(np.float32)
    Yf = X.astype(np.float64) @ W
    Y, cols = llm_int8_matmul(X, W, 6.0)
    assert list(cols) == [5, 30]
    assert np.mean((Yf - Y) ** 2) < np.mean((Yf - w8a8_simulate(X, W)) ** 2) / 10
    Y0, none = llm_int8_matmul(X, W, 1e9)
    assert none.size == 0 and np.array_equal(Y0, w8a8_simulate(X, W))
