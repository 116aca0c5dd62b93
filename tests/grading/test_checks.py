"""labkit.grading.check: right answers pass, wrong ones fail with a teaching message, partial
credit is the parts' share, cheating and monkeypatching score 0, nothing reaches stderr, and no
wrong or unwritten answer raises (Run All goes on)."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import labkit.quant as Q
import labkit.grading.checks as checks
from labkit.grading import EXERCISES, GradingError, Score, check


def absmax_ok(x):
    scale = np.max(np.abs(x)) / 127
    return np.clip(np.round(x / scale), -127, 127).astype(np.int8), scale


def test_right_answer_gets_all_points_and_prints_a_verdict(capsys):
    score = check("absmax_quantize", absmax_ok, seed=3, points=3, plot=False)
    assert isinstance(score, Score) and score == 3.0 and repr(score) == "3.0"
    out = capsys.readouterr().out
    assert "Task 1.1 absmax_quantize: 3/3 points" in out and "✓ codes q: matches" in out


def test_visible_check_returns_nothing():
    assert check("absmax_quantize", absmax_ok, plot=False) is None


def test_truncation_earns_only_the_scale_share(capsys):
    def truncating(x):
        scale = np.max(np.abs(x)) / 127
        return (x / scale).astype(np.int8), scale

    assert check("absmax_quantize", truncating, seed=1, points=3, plot=False) == 1.0
    out = capsys.readouterr().out
    assert "1/3 points" in out and "✗ codes q" in out and "truncation" in out


@pytest.mark.parametrize("answer, expected_words", [
    (lambda x: (np.round(x / (np.max(np.abs(x)) / 127)), np.max(np.abs(x))), ["dtype int8", "127 (qmax)"]),
    (lambda x: (absmax_ok(x)[0] // 2, np.max(np.abs(x)) / 63.5),
     ["ratio 2", "factor of 2", "codes differ"]),
    (lambda x: absmax_ok(x)[0], ["tuple of 2"]),
])
def test_wrong_answers_fail_with_what_was_expected(answer, expected_words, capsys):
    assert check("absmax_quantize", answer, seed=2, points=3, plot=False) == 0.0
    out = capsys.readouterr().out
    assert "0/3 points" in out and out.count("✗") == 2  # one line per part, also when all fail
    for word in expected_words:
        assert word in out


def test_float_codes_keep_the_scale_share(capsys):
    score = check("absmax_quantize", lambda x: (np.round(x / (np.max(np.abs(x)) / 127)), np.max(np.abs(x)) / 127),
                  points=3, plot=False)
    assert score == 1.0 and "expected dtype int8, got float32" in capsys.readouterr().out


def test_uint8_wraparound_is_explained(capsys):
    def wraps(q, scale, zero_point):
        return (q - np.uint8(zero_point)).astype(np.float32) * scale  # subtraction in uint8

    assert check("zeropoint_dequantize", wraps, seed=4, points=2, plot=False) == 0.0
    assert "differ" in capsys.readouterr().out


def test_torch_tensor_and_nan_get_their_own_messages(capsys):
    torch = pytest.importorskip("torch")
    check("absmax_dequantize", lambda q, scale: torch.tensor(q.astype(np.float32)) * float(scale), plot=False)
    assert "torch tensor" in capsys.readouterr().out
    check("absmax_dequantize", lambda q, scale: q.astype(np.float32) * np.nan, plot=False)
    assert "NaN" in capsys.readouterr().out


def test_not_implemented_is_one_short_line_and_zero_points(capsys):
    def stub(x):
        raise NotImplementedError("Task 1.1: absmax_quantize")

    assert check("absmax_quantize", stub, plot=False) is None
    assert check("absmax_quantize", stub, points=3, plot=False) == 0.0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("✗ Task 1.1 not written yet: replace the raise line") and len(out) == 2
    assert "Traceback" not in "".join(out)


@pytest.mark.parametrize("cheat", [
    Q.absmax_quantize,                                   # the reference itself, assigned
    lambda x: Q.absmax_quantize(x),                      # wrapped
    lambda x: (Q.quantize(x, qp := Q.choose_qparams(x, "int8", Q.PerTensor())), qp.scale),  # primitives
])
def test_calling_labkit_scores_zero(cheat, capsys):
    assert check("absmax_quantize", cheat, seed=5, points=3, plot=False) == 0.0
    assert "calls labkit's reference" in capsys.readouterr().out


def test_switching_off_the_tripwire_is_caught(capsys):
    def sneaky(x):
        sys.setprofile(None)
        return Q.absmax_quantize(x)

    assert check("absmax_quantize", sneaky, points=3, plot=False) == 0.0
    assert "setprofile" in capsys.readouterr().out


@pytest.mark.parametrize("module, name, fake", [
    (np, "allclose", lambda *a, **k: True),
    (np, "round", lambda x, *a, **k: x),
    (np.testing, "assert_allclose", lambda *a, **k: None),
])
def test_monkeypatched_numpy_does_not_pass(monkeypatch, module, name, fake, capsys):
    monkeypatch.setattr(module, name, fake)
    assert check("absmax_quantize", lambda x: (np.zeros(x.shape, np.int8), 1.0), seed=6, points=3, plot=False) == 0.0
    assert re.search(f"replaced .*{name}", capsys.readouterr().out)


def test_a_wrong_dependency_does_not_sink_the_dependent_function():
    ns = {"np": np}
    exec(
        "def quantize_column(col, scales, n_bits=8):\n    return (col * 0).astype(np.int8)\n"
        "def gptq_simplified(W, n_bits=8):\n"
        "    W = np.array(W, dtype=np.float64); qmax = 2 ** (n_bits - 1) - 1; n = W.shape[1]\n"
        "    amax = np.max(np.abs(W), axis=1); s = np.where(amax > 0, amax / qmax, 1.0)\n"
        "    out = np.empty_like(W)\n"
        "    for j in range(n):\n"
        "        out[:, j] = quantize_column(W[:, j], s, n_bits) * s\n"
        "        if j < n - 1:\n"
        "            W[:, j + 1:] += ((W[:, j] - out[:, j]) / (n - j - 1))[:, None]\n"
        "    return out\n", ns)
    assert check("gptq_simplified", ns["gptq_simplified"], points=3, plot=False) == 3.0
    assert ns["quantize_column"].__code__.co_name == "quantize_column"  # restored after the check
    assert check("quantize_column", ns["quantize_column"], points=2, plot=False) == 0.0


def test_stderr_and_warnings_of_the_student_are_swallowed(capfd):
    def noisy(q, scale):
        print("debug", file=sys.stderr)
        np.float32(1.0) / np.float32(0.0)  # RuntimeWarning
        return q.astype(np.float32) * scale

    check("absmax_dequantize", noisy, points=2, plot=False)
    assert capfd.readouterr().err == ""


def test_mutating_the_input_is_noted_but_not_penalised(capsys):
    def mutating(q, scale):
        out = q.astype(np.float32) * scale
        q[...] = 0
        return out

    assert check("absmax_dequantize", mutating, points=2, plot=False) == 2.0
    assert "changed its input in place" in capsys.readouterr().out


def test_plot_is_displayed_in_ipython(monkeypatch):
    shown = []
    monkeypatch.setitem(checks.__dict__, "show_figure", lambda fig: shown.append(fig) or True)
    check("zeropoint_quantize", _zp, points=4)
    titles = [ax.get_title() for ax in shown[0].axes]
    assert titles[0] == "yours − reference" and titles[1].startswith("quantization error x − x̂")
    legend = [t.get_text() for t in shown[0].axes[1].get_legend().get_texts()]
    assert legend[0].startswith("reference (MSE") and legend[1].startswith("yours (MSE")  # right: both MSEs


def test_a_wrong_answer_with_a_lower_error_is_not_shown_as_better(monkeypatch, capsys):
    shown = []
    monkeypatch.setitem(checks.__dict__, "show_figure", lambda fig: shown.append(fig) or True)

    def scale_128(x):  # the 128-instead-of-127 slip: smaller steps, so a smaller MSE for most values
        scale = np.max(np.abs(x)) / 128
        return np.clip(np.round(x / scale), -127, 127).astype(np.int8), scale

    assert check("absmax_quantize", scale_128, points=3) == 0.0
    legend = [t.get_text() for t in shown[0].axes[1].get_legend().get_texts()]
    mine = [t for t in legend if t.startswith("yours")][0]
    assert "MSE" in legend[0] and "does not match" in mine and "MSE 0" not in mine and "(MSE" not in mine
    out = capsys.readouterr().out
    # the most likely cause first: the scale's hint, and the codes point back at the scale, not at rounding
    assert "128" in out and "fix the scale first" in out and "np.round" not in out


def _zp(x):
    lo, hi = np.min(x), np.max(x)
    scale = (hi - lo) / 255
    zp = int(np.round(-lo / scale))
    return np.clip(np.round(x / scale) + zp, 0, 255).astype(np.uint8), scale, zp


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match="absmax_quantize"):
        check("absmax", absmax_ok)
    assert len(EXERCISES) >= 12


def test_the_grader_cannot_be_replaced_from_a_notebook():
    import labkit.grading

    for module, name in ((checks, "check"), (labkit.grading, "check"), (checks, "integrity")):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(module, name, lambda *a, **k: 3.0)
    with pytest.raises(TypeError):
        EXERCISES["absmax_quantize"] = None


def test_patching_labkit_reference_later_changes_nothing(monkeypatch):
    monkeypatch.setattr(Q, "absmax_quantize", lambda x: (np.zeros(x.shape, np.int8), 1.0))
    assert check("absmax_quantize", lambda x: (np.zeros(x.shape, np.int8), 1.0), points=3, plot=False) == 0.0
