"""Notebook 06's per-group check: right answers (two ways of writing the scale) score full points, a
hand-computed worked example agrees with the reference, and typical slips lose points with a message."""

import pytest
import torch

from labkit.grading.torch_checks import check_torch

QMAX = {"int8": 127.0, "fp8_e4m3": 448.0}
EXERCISES = ("fake_quant_per_group_int8", "fake_quant_per_group_fp8")


def _round(x, fmt):
    q = QMAX[fmt]
    if fmt == "int8":
        return torch.clamp(torch.round(x), -q, q)
    return torch.clamp(x, -q, q).to(torch.float8_e4m3fn).float()


def per_group(w, group_size, fmt, *, multiply=False, pad=True, compute_dtype=torch.float32):
    rows, k = w.shape
    g = group_size if pad else k
    x = torch.nn.functional.pad(w.to(compute_dtype), (0, -k % g)).reshape(rows, -1, g)
    amax = x.abs().amax(dim=-1, keepdim=True)
    if multiply:  # x * (qmax / amax): rounds differently from x / (amax / qmax) now and then
        inv = QMAX[fmt] / amax.clamp_min(1e-30)
        out = _round(x * inv, fmt) / inv
    else:
        s = torch.where(amax > 0, amax / QMAX[fmt], torch.ones_like(amax))
        out = _round(x / s, fmt).to(compute_dtype) * s
    return out.reshape(rows, -1)[:, :k].to(w.dtype)


def test_worked_example_by_hand():
    w = torch.tensor([[1.27, -0.5, 0.004, 0.3, 0.02, -0.013], [0.0, 0.0, 0.0, 0.0, 3.0, -1.0]])
    got = per_group(w, 4, "int8")
    want = torch.tensor([[1.27, -0.5, 0.0, 0.3, 0.02, -83 * 0.02 / 127], [0.0, 0.0, 0.0, 0.0, 3.0, -42 * 3 / 127]])
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", EXERCISES)
@pytest.mark.parametrize("seed", [0, 6101, 6201])
def test_right_answers_score_full(name, seed, capsys):
    assert check_torch(name, per_group, seed=seed, points=3) == 3.0
    assert check_torch(name, lambda w, g, f: per_group(w, g, f, multiply=True), seed=seed, points=2) == 2.0
    assert "✗" not in capsys.readouterr().out


def test_slips_lose_points_with_a_message(capsys):
    # one scale per row instead of per group: right only where g ≥ K
    assert check_torch(EXERCISES[0], lambda w, g, f: per_group(w, g, f, pad=False), points=5) == pytest.approx(1.0)
    # bfloat16 arithmetic: wrong only on the bfloat16 case
    bf16 = check_torch(EXERCISES[1], lambda w, g, f: per_group(w, g, f, compute_dtype=w.dtype), points=5)
    assert bf16 == pytest.approx(4.0)
    capsys.readouterr()
    # nothing right: 0 points and one ✗ line per case, never an exception (the cell goes on)
    assert check_torch(EXERCISES[1], lambda w, g, f: per_group(w, g, "int8"), points=2) == 0  # INT8 grid for FP8
    assert "0/2 points" in capsys.readouterr().out
    assert check_torch(EXERCISES[0], lambda w, g, f: per_group(w, g, f).float().numpy(), points=3) == 0
    assert "expected a torch tensor" in capsys.readouterr().out


def test_in_place_and_calling_labkit_score_zero(capsys):
    def in_place(w, g, f):
        out = per_group(w, g, f)
        w.zero_()
        return out

    def calls_labkit(w, g, f):
        from labkit.quant.granularity import PerGroup
        from labkit.quant.primitives import fake_quantize

        return fake_quantize(w, f, PerGroup(g))

    for fn, message in ((in_place, "changed its input"), (calls_labkit, "calls labkit's reference")):
        assert check_torch(EXERCISES[0], fn, points=3) == 0
        assert message in capsys.readouterr().out


def test_wrong_dtype_is_named(capsys):
    assert check_torch(EXERCISES[0], lambda w, g, f: per_group(w.float(), g, f).double(), points=3) == 0
    assert "expected the input's dtype" in capsys.readouterr().out
