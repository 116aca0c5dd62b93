"""The torch checks of notebook 08 give full points to right answers and fewer to typical slips."""

import pytest
import torch

from labkit.grading import GradingError
from labkit.grading.torch_checks import check_torch


def absmax_right(x):
    return x.abs().reshape(-1, x.shape[-1]).amax(dim=0).float()


def factors_right(act, w, alpha=0.5):
    s = act.clamp_min(1e-30) ** alpha / w.clamp_min(1e-30) ** (1 - alpha)
    return torch.where((act > 0) & (w > 0), s, torch.ones_like(s))


def factors_no_zero_guard(act, w, alpha=0.5):
    return act**alpha / w ** (1 - alpha)


def factors_alpha_swapped(act, w, alpha=0.5):
    ok = (act > 0) & (w > 0)
    return torch.where(ok, act.clamp_min(1e-30) ** (1 - alpha) / w.clamp_min(1e-30) ** alpha, torch.ones_like(act))


def test_right_answers_score_full(capsys):
    assert check_torch("activation_absmax", absmax_right, seed=3, points=2) == 2.0
    assert check_torch("smoothing_factors", factors_right, seed=3, points=3) == 3.0
    assert "✓" in capsys.readouterr().out


def test_slips_lose_points_with_a_message(capsys):
    part = check_torch("smoothing_factors", factors_alpha_swapped, seed=0, points=3)
    assert part == pytest.approx(3 * 2 / 5)  # right only in the two α = 0.5 cases
    assert "✗ α = 0.8" in capsys.readouterr().out
    with pytest.raises(GradingError, match="not right on any"):
        check_torch("smoothing_factors", factors_no_zero_guard, points=3)  # every case has a zero channel
    with pytest.raises(GradingError, match="not right on any"):
        check_torch("activation_absmax", lambda x: x.abs().amax(dim=-1), seed=0, points=2)  # wrong axis
    assert "expected shape" in capsys.readouterr().out
    with pytest.raises(GradingError):
        check_torch("activation_absmax", lambda x: absmax_right(x).numpy(), points=2)  # numpy, not torch
    with pytest.raises(KeyError, match="known"):
        check_torch("nope", absmax_right)
