"""The notebook-07 checks give full points to right answers (written independently of labkit.bench),
fewer to typical slips, and 0 to answers that call the reference or change their inputs."""

import statistics

import numpy as np
import pytest
import torch

import labkit.bench.matmul_error as me
from labkit.grading import GradingError
from labkit.grading.bench_checks import check_bench
from labkit.quant import PerRow, PerTensor, fake_quantize


def tps_right(phase, batch, prompt_len, gen_len, seconds):
    return batch * (prompt_len if phase == "prefill" else gen_len) / seconds


def tps_forgets_batch(phase, batch, prompt_len, gen_len, seconds):
    return (prompt_len if phase == "prefill" else gen_len) / seconds


def speedup_right(seconds, baseline_seconds):
    return statistics.median(b / q for q, b in zip(seconds, baseline_seconds))


def speedup_mean(seconds, baseline_seconds):
    return sum(b / q for q, b in zip(seconds, baseline_seconds)) / len(seconds)


def rel_error_numpy(a, b, fmt, granularity):
    # a second implementation: numpy float64, per-column scales of B computed by hand for int8
    a64, b64 = a.double().numpy(), b.double().numpy()
    if fmt != "int8":
        g = PerRow() if granularity == "row" else PerTensor()
        bq = fake_quantize(b.T.contiguous(), fmt, g).T.double().numpy()
    else:
        amax = np.abs(b64).max(axis=0, keepdims=True) if granularity == "row" else np.abs(b64).max()
        scale = np.where(amax > 0, amax / 127.0, 1.0)
        bq = np.clip(np.round(b64 / scale), -127, 127) * scale
    c = a64 @ b64
    return float(np.linalg.norm(c - a64 @ bq) / np.linalg.norm(c))


def rel_error_wrong_axis(a, b, fmt, granularity):
    g = PerRow() if granularity == "row" else PerTensor()
    c = a.double() @ b.double()
    return float(torch.linalg.norm(c - a.double() @ fake_quantize(b, fmt, g).double()) / torch.linalg.norm(c))


def test_right_answers_score_full(capsys):
    assert check_bench("tokens_per_second", tps_right, seed=1, points=2) == 2.0
    assert check_bench("paired_speedup", speedup_right, seed=1, points=2) == 2.0
    assert check_bench("matmul_rel_error", rel_error_numpy, seed=1, points=4) == 4.0
    assert "✗" not in capsys.readouterr().out


def test_slips_lose_points_with_a_message(capsys):
    part = check_bench("tokens_per_second", tps_forgets_batch, seed=0, points=2)
    assert 0 < part < 2
    assert "batch·prompt_len" in capsys.readouterr().out
    assert 0 < check_bench("paired_speedup", speedup_mean, seed=0, points=2) < 2
    assert "median" in capsys.readouterr().out
    assert check_bench("matmul_rel_error", rel_error_wrong_axis, seed=0, points=4) < 4
    assert "per-row means per column" in capsys.readouterr().out


def test_stub_calling_the_reference_and_in_place_score_zero(capsys):
    def stub(*args):
        raise NotImplementedError("Task 7.1")

    def calls_reference(a, b, fmt, granularity):
        c = a.double() @ b.double()
        return me.error_metrics(c, me.quantized_product(a, b, fmt, granularity, False))[2]

    def in_place(a, b, fmt, granularity):
        b.mul_(1.0001)
        return rel_error_numpy(a, b, fmt, granularity)

    for name, fn in (("tokens_per_second", stub), ("matmul_rel_error", calls_reference),
                     ("matmul_rel_error", in_place)):
        with pytest.raises(GradingError, match="not right on any"):
            check_bench(name, fn, points=2)
    out = capsys.readouterr().out
    assert "calls labkit's reference" in out and "in place" in out and "not implemented" in out
