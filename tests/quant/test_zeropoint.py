"""Zero-point exercise reference: hand-computed cases and the uint8 primitive as a second implementation."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labkit.quant import PerTensor, choose_qparams, quantize, zeropoint_dequantize, zeropoint_quantize


def test_hand_computed_case():
    q, scale, zp = zeropoint_quantize(np.array([-0.5, 0.0, 2.05], dtype=np.float32))
    assert q.dtype == np.uint8 and isinstance(zp, int)
    np.testing.assert_array_equal(q, [0, 50, 255])
    assert scale == pytest.approx(0.01, rel=1e-6) and zp == 50
    np.testing.assert_allclose(zeropoint_dequantize(q, scale, zp), [-0.5, 0.0, 2.05], atol=1e-6)


def test_dequantize_does_not_wrap_uint8():
    out = zeropoint_dequantize(np.array([0], np.uint8), np.float32(0.01), 50)
    np.testing.assert_allclose(out, [-0.5], atol=1e-7)


def test_positive_data_zero_point_follows_the_formula():
    # min 1, max 2: scale 1/255, zero_point = round(-255) = -255 (outside 0..255, by the formula)
    x = np.array([1.0, 1.25, 2.0], dtype=np.float32)
    q, scale, zp = zeropoint_quantize(x)
    assert zp == -255
    np.testing.assert_array_equal(q, [0, 64, 255])  # round(318.75) - 255 = 64
    np.testing.assert_allclose(zeropoint_dequantize(q, scale, zp), x, atol=scale / 2 + 1e-7)


@pytest.mark.parametrize("c", [0.0, 3.7, -3.7])
def test_constant_input_is_guarded_and_exact(c):
    x = np.full(4, c, dtype=np.float32)
    q, scale, zp = zeropoint_quantize(x)
    assert np.isfinite(scale) and scale > 0
    np.testing.assert_allclose(zeropoint_dequantize(q, scale, zp), x, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, st.integers(1, 40), elements=st.floats(-100, 100, width=32)),
    st.floats(-50, -0.5, width=32), st.floats(0.5, 50, width=32),
)
def test_matches_uint8_primitive_on_data_straddling_zero(x, lo, hi):
    x = np.concatenate([x, np.array([lo, hi], np.float32)])  # min < 0 < max
    q, scale, zp = zeropoint_quantize(x)
    qp = choose_qparams(x, "uint8", PerTensor())
    assert np.float32(scale) == qp.scale and zp == int(qp.zero_point)
    np.testing.assert_array_equal(q, quantize(x, qp))
    assert np.all(np.abs(zeropoint_dequantize(q, scale, zp) - x) <= scale / 2 * (1 + 1e-4) + 1e-6)


def test_torch_and_errors():
    x = torch.tensor([-0.5, 0.0, 2.05])
    q, scale, zp = zeropoint_quantize(x)
    assert q.dtype == torch.uint8 and q.tolist() == [0, 50, 255] and zp == 50
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        zeropoint_quantize(np.array([0.0, np.nan]))
    with pytest.raises(TypeError, match="zero_point must be an integer"):
        zeropoint_dequantize(np.zeros(2, np.uint8), 0.1, 1.5)
