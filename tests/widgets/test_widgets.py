"""The sliders' math against a plain computation, and their behaviour with and without autograde."""

import numpy as np
import pytest

from labkit.quant import PerGroup, fake_quantize
from labkit.widgets import (GROUP_SETTINGS, alpha_explorer, granularity_errors, granularity_of,
                            group_size_explorer, smoothing_summary, w8a8_output_error)


@pytest.fixture
def weight():
    rng = np.random.default_rng(1)
    W = (rng.standard_normal((16, 512)) * 0.02).astype(np.float32)
    W[3] *= 100
    return W


def test_granularity_errors_match_fake_quantize_and_shrink_for_int8(weight):
    errs = granularity_errors(weight, 64)
    np.testing.assert_array_equal(errs["int8"], weight - fake_quantize(weight, "int8", PerGroup(64)))
    mse = [float(np.mean(granularity_errors(weight, s)["int8"] ** 2)) for s in ("per-tensor", "per-row", 128, 32)]
    assert mse == sorted(mse, reverse=True) and mse[0] > 10 * mse[-1]
    with pytest.raises(ValueError, match="per-row"):
        granularity_of("rowwise")
    assert set(GROUP_SETTINGS) >= {"per-tensor", "per-row", 32, 512}


def test_w8a8_error_by_hand_and_smoothing_helps():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((64, 16)).astype(np.float32)
    X[:, 2] *= 50
    W = (rng.standard_normal((16, 8)) * 0.1).astype(np.float32)
    sx = np.abs(X).max() / 127
    Xq = np.clip(np.round(X / sx), -127, 127) * sx
    sw = np.abs(W).max(axis=0) / 127
    Wq = np.clip(np.round(W / sw), -127, 127) * sw
    by_hand = np.mean((X.astype(np.float64) @ W - Xq @ Wq) ** 2)
    assert w8a8_output_error(X, W, per_token=False) == pytest.approx(by_hand, rel=1e-4)
    st = np.abs(X).max(axis=1, keepdims=True) / 127
    Xt = np.clip(np.round(X / st), -127, 127) * st
    assert w8a8_output_error(X, W) == pytest.approx(np.mean((X.astype(np.float64) @ W - Xt @ Wq) ** 2), rel=1e-4)
    r = smoothing_summary(X, W, 0.5)
    assert r.error_smoothed < r.error_plain / 3
    assert r.act_range_smoothed.max() < r.act_range.max() / 3


def test_sliders_are_noops_under_autograde(monkeypatch, weight, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert group_size_explorer(weight) is None
    assert alpha_explorer(np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)) is None
    assert "skipped under autograde" in capsys.readouterr().out


def test_slider_move_redraws(monkeypatch, weight, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shown = []
    monkeypatch.setattr("labkit.viz.show_figure", lambda fig: shown.append(fig) or True)
    box = group_size_explorer(weight)
    slider = box.children[0]
    slider.value = 32
    assert len(shown) == 2
    assert shown[0].get_suptitle() != shown[1].get_suptitle()


def test_slider_uses_the_students_functions(weight):
    from labkit.quant import pergroup_dequantize, pergroup_fake_quantize_fp8, pergroup_quantize
    calls = []

    def int8(W, g):
        calls.append(g)
        return pergroup_dequantize(*pergroup_quantize(W, g), g)

    errs = granularity_errors(weight, 64, int8=int8, fp8=pergroup_fake_quantize_fp8)
    ref = granularity_errors(weight, 64)
    np.testing.assert_array_equal(errs["int8"], ref["int8"])
    np.testing.assert_array_equal(errs["fp8_e4m3"], ref["fp8_e4m3"])
    granularity_errors(weight, "per-row", int8=int8)
    assert calls == [64, weight.shape[1]]  # per-row = one group as wide as the row
    wrong = granularity_errors(weight, 64, int8=lambda W, g: W * 0)
    np.testing.assert_array_equal(wrong["int8"], weight)


def test_error_panels_show_the_bulk_side_by_side(weight):
    from labkit.widgets.granularity import error_panels
    errs = granularity_errors(weight, "per-tensor")
    fig = error_panels(errs, "title")
    a1, a2 = fig.axes
    assert a1.get_xlim() == a2.get_xlim()  # one x-range: the formats are compared on the same axis
    e = np.abs(np.concatenate([v.ravel() for v in errs.values()]))
    unit_half = a1.get_xlim()[1]
    assert unit_half > 0 and "INT8" in a1.get_title() and "FP8" in a2.get_title()
    w, h = fig.get_size_inches() * fig.dpi
    assert w >= 800 and h <= 400  # notebook width
    assert fig.get_suptitle() == "title"
    # the range comes from the bulk, not from the worst error: the outlier row's errors lie beyond it
    unit = float(a1.get_xlabel().split("× ")[1].split(";")[0].rstrip(")"))
    assert e.max() > unit_half * unit and "beyond" in a1.get_xlabel() + a2.get_xlabel()
