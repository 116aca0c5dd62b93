"""labkit.grading.compare: hand-made cases for each rule (exact codes with the tie allowance,
float tolerances, the order type → dtype → shape → values)."""

import numpy as np
import pytest

from labkit.grading.compare import GradingError, check_array, check_scalar, compare_codes, compare_floats


def test_codes_must_match_exactly_beyond_rare_ties():
    expected = np.arange(-127, 128, dtype=np.int8).repeat(4)  # 1020 codes
    compare_codes("q", expected.copy(), expected)
    one_tie = expected.copy()
    one_tie[10] += 1
    compare_codes("q", one_tie, expected)  # 1 of 1020 off by one: a rounding tie, accepted
    many = expected.copy()
    many[:10] += 1
    with pytest.raises(GradingError, match="differ at 10 of 1020"):
        compare_codes("q", many, expected)
    jump = expected.copy()
    jump[5] += 2
    with pytest.raises(GradingError, match="first at index \\(5,\\): expected -126, got -124"):
        compare_codes("q", jump, expected)


def test_order_is_type_then_dtype_then_shape():
    e = np.zeros((2, 3), np.int8)
    with pytest.raises(GradingError, match="numpy array, got list"):
        compare_codes("q", [[0, 0, 0]], e)
    with pytest.raises(GradingError, match="dtype int8, got int64"):
        compare_codes("q", np.zeros((3, 2), np.int64), e)
    with pytest.raises(GradingError, match=r"shape \(2, 3\), got \(3, 2\)"):
        compare_codes("q", np.zeros((3, 2), np.int8), e)


def test_floats_use_rtol_atol_and_optional_one_step_slack():
    e = np.linspace(-1, 1, 1001)
    compare_floats("x", e * (1 + 1e-7), e)
    with pytest.raises(GradingError, match="values differ"):
        compare_floats("x", e * 1.001, e)
    stepped = e.copy()
    stepped[3] += 0.01
    with pytest.raises(GradingError):
        compare_floats("x", stepped, e)
    compare_floats("x", stepped, e, step=0.01)  # one element one step away: a rounding tie
    with pytest.raises(GradingError, match="a floating-point dtype"):
        compare_floats("x", e.astype(np.int64), e)


def test_scalars():
    check_scalar("scale", np.float32(0.01), 0.01)
    with pytest.raises(GradingError, match="factor of 127"):
        check_scalar("scale", 1.27, 0.01)
    with pytest.raises(GradingError, match="single number"):
        check_scalar("scale", np.ones(3), 0.01)
    check_scalar("zero_point", 50, 50, integer=True)
    with pytest.raises(GradingError, match="expected an integer"):
        check_scalar("zero_point", 50.0, 50, integer=True)
    with pytest.raises(GradingError, match="finite"):
        check_scalar("scale", float("inf"), 1.0)


def test_check_array_kinds():
    check_array("x", np.zeros(3, np.float16), kind="f", shape=(3,))
    with pytest.raises(GradingError, match="torch tensor"):
        torch = pytest.importorskip("torch")
        check_array("x", torch.zeros(3))
