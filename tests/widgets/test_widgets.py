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
    assert w8a8_output_error(X, W) == pytest.approx(by_hand, rel=1e-4)
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
