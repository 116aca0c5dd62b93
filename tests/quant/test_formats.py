"""The format table, checked against the bit-level definitions of the formats."""

import itertools

import ml_dtypes
import numpy as np
import pytest
import torch

from labkit.quant import FORMATS, PerTensor, choose_qparams, dequantize, get_format, quantize, symmetric_int


def e4m3fn_grid() -> np.ndarray:
    """Every finite float8 e4m3fn value, enumerated from the bits: 1 sign, 4 exponent (bias 7),
    3 mantissa; exponent 0 is subnormal (m/8 · 2^-6); S.1111.111 is NaN (no infinities)."""
    values = []
    for sign, e, m in itertools.product((1, -1), range(16), range(8)):
        if e == 15 and m == 7:
            continue
        values.append(sign * (m / 8 * 2.0**-6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)))
    return np.unique(np.array(values))


def round_to_grid(y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Nearest grid value, ties to the value with an even mantissa (its bit pattern ends in 0)."""
    out = np.empty_like(y)
    for i, v in enumerate(y):
        d = np.abs(grid - v)
        best = grid[d == d.min()]
        if len(best) == 2:  # a tie: the even code is the one whose mantissa LSB is 0
            codes = [int(np.array(b, dtype=ml_dtypes.float8_e4m3fn).view(np.uint8)) for b in best]
            best = best[[c % 2 == 0 for c in codes]]
        out[i] = best[0]
    return out


def test_table_bounds_match_the_dtypes():
    assert (FORMATS["int8"].qmin, FORMATS["int8"].qmax) == (-127, 127)
    assert (FORMATS["uint8"].qmin, FORMATS["uint8"].qmax) == (0, 255)
    assert (FORMATS["int4"].qmin, FORMATS["int4"].qmax) == (-7, 7)
    assert FORMATS["fp8_e4m3"].qmax == torch.finfo(torch.float8_e4m3fn).max == 448
    assert FORMATS["fp8_e5m2"].qmax == torch.finfo(torch.float8_e5m2).max == 57344
    assert FORMATS["fp8_e4m3"].qmax == e4m3fn_grid().max()
    assert FORMATS["fp8_e4m3"].mantissa_bits == 3 and FORMATS["fp8_e5m2"].mantissa_bits == 2
    assert FORMATS["int8"].symmetric and not FORMATS["uint8"].symmetric


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_fp8_e4m3_rounds_to_the_enumerated_grid(lib):
    grid = e4m3fn_grid()
    pos = grid[grid > 0]
    mids = (pos[1:] + pos[:-1]) / 2  # exact ties: round half to even must decide them
    rng = np.random.default_rng(0)
    y = np.concatenate([[448.0], pos, mids, -mids[::7], rng.uniform(-448, 448, 300), rng.uniform(-0.05, 0.05, 100)])
    y = y.astype(np.float32)
    x = torch.from_numpy(y) if lib == "torch" else y
    qp = choose_qparams(x, "fp8_e4m3", PerTensor())
    assert float(qp.scale) == 1.0  # absmax 448 → scale exactly 1, so the codes are the cast itself
    got = np.asarray(dequantize(quantize(x, qp), qp), dtype=np.float64)
    np.testing.assert_array_equal(got, round_to_grid(y.astype(np.float64), grid))


def test_get_format_names_aliases_and_errors():
    assert get_format("fp8") is FORMATS["fp8_e4m3"] and get_format("E5M2") is FORMATS["fp8_e5m2"]
    assert get_format("int4") is symmetric_int(4) is FORMATS["int4"]
    assert get_format(FORMATS["uint8"]) is FORMATS["uint8"]
    assert (get_format("int3").qmin, get_format("int3").qmax) == (-3, 3)
    with pytest.raises(ValueError, match="unknown format 'int16'.*int8, uint8, int4, fp8_e4m3, fp8_e5m2"):
        get_format("int16")
    with pytest.raises(TypeError, match="fmt must be a format name"):
        get_format(8)


@pytest.mark.parametrize("bits", range(2, 9))
def test_symmetric_int_bounds(bits):
    f = symmetric_int(bits)
    assert f.qmax == 2 ** (bits - 1) - 1 and f.qmin == -f.qmax and f.kind == "int"


@pytest.mark.parametrize("bad", [1, 9, 0, True, 4.0, "4"])
def test_symmetric_int_rejects(bad):
    with pytest.raises(ValueError, match="n_bits must be an integer from 2 to 8"):
        symmetric_int(bad)
