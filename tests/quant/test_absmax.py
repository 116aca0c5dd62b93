"""Absmax exercise references: hand-computed cases, and the general primitives as a second implementation."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labkit.quant import (
    PerRow, PerTensor, absmax_dequantize, absmax_quantize, choose_qparams, perchannel_absmax_quantize,
    perchannel_dequantize, pertensor_absmax_quantize, pertensor_dequantize, quantize,
)

finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


def test_hand_computed_case():
    q, scale = absmax_quantize(np.array([0.5, -1.27, 0.004], dtype=np.float32))
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, [50, -127, 0])
    assert scale == pytest.approx(0.01, rel=1e-6)
    np.testing.assert_allclose(absmax_dequantize(q, scale), [0.5, -1.27, 0.0], atol=1e-6)


def test_half_rounds_to_even():
    # max 127 → scale exactly 1.0; 2.5 → 2 and 3.5 → 4 under round-half-to-even
    q, scale = absmax_quantize(np.array([127.0, 2.5, 3.5, -2.5], dtype=np.float32))
    assert scale == 1.0
    np.testing.assert_array_equal(q, [127, 2, 4, -2])


def test_all_zero_is_guarded():
    q, scale = absmax_quantize(np.zeros(5, dtype=np.float32))
    assert scale == 1.0 and not q.any()
    qw, scales = perchannel_absmax_quantize(np.array([[1.27, -0.5], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_array_equal(qw, [[127, -50], [0, 0]])
    np.testing.assert_allclose(scales, [0.01, 1.0], rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.integers(1, 40), elements=finite))
def test_matches_int8_pertensor_primitive(x):
    q, scale = absmax_quantize(x)
    qp = choose_qparams(x, "int8", PerTensor())
    assert np.float32(scale) == qp.scale
    np.testing.assert_array_equal(q, quantize(x, qp))
    assert np.all(np.abs(absmax_dequantize(q, scale) - x) <= scale / 2 * (1 + 1e-5))


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 12)), elements=finite))
def test_perchannel_matches_int8_perrow_primitive(w):
    q, scales = perchannel_absmax_quantize(w)
    qp = choose_qparams(w, "int8", PerRow())
    np.testing.assert_array_equal(scales, qp.scale)
    np.testing.assert_array_equal(q, quantize(w, qp))
    w_hat = perchannel_dequantize(q, scales)
    assert np.all(np.abs(w_hat - w) <= scales[:, None] / 2 * (1 + 1e-5))


def test_one_large_row_per_channel_beats_per_tensor():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 64)).astype(np.float32)
    w[3] *= 100
    q, s = pertensor_absmax_quantize(w)
    qc, sc = perchannel_absmax_quantize(w)
    small = np.arange(8) != 3
    err_t = np.mean((pertensor_dequantize(q, s) - w)[small] ** 2)
    err_c = np.mean((perchannel_dequantize(qc, sc) - w)[small] ** 2)
    assert err_c < err_t / 100, f"per-channel MSE {err_c} should be far below per-tensor {err_t}"


def test_torch_in_torch_out_same_codes():
    x = torch.randn(4, 16, dtype=torch.bfloat16)
    q, scale = absmax_quantize(x)
    q_np, scale_np = absmax_quantize(x.float().numpy())
    assert isinstance(q, torch.Tensor) and q.dtype == torch.int8
    np.testing.assert_array_equal(q.numpy(), q_np)
    assert scale == pytest.approx(float(scale_np))
    qc, sc = perchannel_absmax_quantize(x)
    assert isinstance(perchannel_dequantize(qc, sc), torch.Tensor)


def test_input_not_mutated():
    w = np.array([[1.0, -2.0], [0.5, 0.25]], dtype=np.float32)
    before = w.copy()
    perchannel_absmax_quantize(w)
    absmax_quantize(w)
    np.testing.assert_array_equal(w, before)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_named(bad):
    with pytest.raises(ValueError, match="W contains 1 NaN or Inf"):
        perchannel_absmax_quantize(np.array([[1.0, bad]], dtype=np.float32))
    with pytest.raises(ValueError, match="x contains"):
        absmax_quantize(np.array([1.0, bad]))


def test_wrong_ndim_and_shapes():
    with pytest.raises(ValueError, match="W must be a 2-D matrix"):
        perchannel_absmax_quantize(np.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match="W must be a 2-D matrix"):
        pertensor_absmax_quantize(np.ones((2, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="one entry per row"):
        perchannel_dequantize(np.ones((3, 2), np.int8), np.ones(2, np.float32))
    with pytest.raises(ValueError, match="finite and positive"):
        absmax_dequantize(np.ones(3, np.int8), 0.0)
    with pytest.raises(ValueError, match="empty"):
        absmax_quantize(np.zeros(0, dtype=np.float32))
