"""The one case engine, for EVERY registered check (numpy, torch, bench — read from the registry,
so a check added later is covered without touching this file):

(a) a fill-in that returns the reference's answers (computed beforehand, so it calls nothing of
    labkit while graded) scores full marks, in the kernel and in the grader's re-check;
(b) a fill-in that calls labkit's reference scores 0;
(c) a wrong answer graded under autograde with the comparisons patched (``np.allclose``,
    ``torch.allclose`` and labkit's compare helpers made to accept anything) earns nothing when the
    grader re-checks its answer record in another process (a subprocess here, as in nbgrader);
and the engine's own promises: an unwritten stub prints one line and scores 0, a wrong answer never
raises, ``use_or_reference`` falls back to labkit's function and says so once.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import labkit.grading.records as records
from labkit.grading import use_or_reference
from labkit.grading.cases import grade, registry

SEED, POINTS = 777, 4.0
CHECKS = sorted(registry())


def _reference_outputs(spec, seed):
    outs = []
    for _, args in spec.cases(seed):
        with torch.no_grad():
            out = spec.reference(**copy.deepcopy(args)) if isinstance(args, dict) else spec.reference(*args)
        outs.append(out)
    return outs


def _as_outputs(spec, value) -> tuple:
    return tuple(value) if spec.n_outputs > 1 else (value,)


def _replay(outputs):
    """A 'student' function that returns the given answers in order and computes nothing."""
    it = iter(outputs)

    def answer(*args, **kwargs):
        return copy.deepcopy(next(it))
    return answer


def _perturb(value):
    """A clearly wrong answer of the same type, dtype and shape."""
    if isinstance(value, (tuple, list)):
        return type(value)(_perturb(v) for v in value)
    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point:
            return (value.float() * 1.5 + 0.25).to(value.dtype)
        if value.dtype == torch.bool:
            return ~value
        return value + 3
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        if np.asarray(value).dtype.kind == "f":
            return (np.asarray(value) * 1.5 + 0.25).astype(np.asarray(value).dtype)[()] if np.ndim(value) == 0 \
                else (value * 1.5 + 0.25).astype(value.dtype)
        if np.asarray(value).dtype.kind in "iu":
            info = np.iinfo(np.asarray(value).dtype)
            return np.where(np.asarray(value) < info.max - 3, np.asarray(value) + 3, np.asarray(value) - 3).astype(
                np.asarray(value).dtype)[()] if np.ndim(value) == 0 else \
                np.where(value < info.max - 3, value + 3, value - 3).astype(value.dtype)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 3
    if isinstance(value, float):
        return value * 1.5 + 0.25
    raise TypeError(f"cannot build a wrong answer of type {type(value).__name__}: teach _perturb")


_ANSWERS: dict = {}


def answers(name):
    """labkit's answers on the seeded cases, computed once per check for the whole module (the
    model-level checks take seconds per reference run)."""
    if name not in _ANSWERS:
        _ANSWERS[name] = _reference_outputs(registry()[name], SEED)
    return _ANSWERS[name]


@pytest.mark.parametrize("name", CHECKS)
def test_reference_answers_score_full_and_calling_labkit_scores_zero(name, capsys):
    spec = registry()[name]
    right = answers(name)
    assert grade(name, _replay(right), seed=SEED, points=POINTS, plot=False) == POINTS, capsys.readouterr().out

    wrong = [_perturb(a) for a in right]
    calls = []

    def calls_labkit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:          # the first case asks labkit; the others (cheap) are wrong anyway
            return spec.reference(*args, **kwargs)
        return copy.deepcopy(wrong[len(calls) - 1])

    assert grade(name, calls_labkit, seed=SEED, points=POINTS, plot=False) == 0.0
    assert "calls labkit's reference" in capsys.readouterr().out


@pytest.mark.parametrize("name", CHECKS)
def test_an_unwritten_stub_is_one_line_and_zero(name, capsys):
    spec = registry()[name]

    def stub(*args, **kwargs):
        raise NotImplementedError(f"{spec.task}: write it")

    assert grade(name, stub, seed=SEED, points=POINTS, plot=False) == 0.0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"✗ {spec.task} not written yet: replace the raise line")


def _patched_library(monkeypatch):
    """Accept-anything comparisons in numpy and torch: the kernel's snapshot notices these."""
    yes, none = (lambda *a, **k: True), (lambda *a, **k: None)
    monkeypatch.setattr(np, "allclose", yes)
    monkeypatch.setattr(np.testing, "assert_allclose", none)
    monkeypatch.setattr(torch, "allclose", yes)
    monkeypatch.setattr(torch.Tensor, "allclose", yes)
    monkeypatch.setattr(torch.testing, "assert_close", none)


def _patched_helpers(monkeypatch):
    """labkit's compare helpers replaced through the module's __dict__ (past the read-only guard and
    unseen by the snapshot): the kernel's verdict is then a lie, only the re-check can tell."""
    for mod in [m for n, m in sys.modules.items() if n.startswith("labkit.grading") and m is not None]:
        for helper in ("check_array", "check_scalar", "compare_codes", "compare_floats"):
            if helper in mod.__dict__:
                monkeypatch.setitem(mod.__dict__, helper, lambda *a, **k: None)


@pytest.mark.parametrize("name", CHECKS)
def test_patched_numpy_or_torch_scores_zero_in_the_kernel(name, monkeypatch, capsys):
    def never_called(*args, **kwargs):
        raise AssertionError("a tampered notebook must not be graded at all")

    with monkeypatch.context() as m:
        _patched_library(m)
        assert grade(name, never_called, seed=SEED, points=POINTS, plot=False) == 0.0
    assert "replaced" in capsys.readouterr().out


@pytest.mark.slow  # re-runs every check's reference in a fresh interpreter (model-level checks: minutes)
def test_patched_comparisons_cannot_turn_wrong_answers_into_points(monkeypatch, tmp_path, capsys):
    recorded = []
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr(records, "show_record", recorded.append)
    # in the kernel: patched helpers make the engine claim full points for truncated codes...
    def truncating(x):
        scale = np.max(np.abs(x)) / 127
        return (x / scale).astype(np.int8), scale

    with monkeypatch.context() as m:
        _patched_helpers(m)
        claimed = grade("absmax_quantize", truncating, seed=SEED, points=POINTS, plot=False)
    assert claimed == POINTS  # the patch works in the kernel: only the re-check can catch it
    lying = recorded.pop()
    capsys.readouterr()
    # ...and for every check, records of right and of wrong answers (what the engine displays: the
    # answers as answer_record encodes them) go to the grader's process
    rights = {n: records.answer_record(n, SEED, POINTS, [_as_outputs(registry()[n], a) for a in answers(n)])
              for n in CHECKS}
    wrongs = {n: records.answer_record(n, SEED, POINTS, [_as_outputs(registry()[n], _perturb(a)) for a in answers(n)])
              for n in CHECKS}
    wrongs["absmax_quantize (patched kernel)"] = lying
    path = tmp_path / "records.json"
    path.write_text(json.dumps({"right": rights, "wrong": wrongs}))
    # the grader's process: a fresh interpreter that no notebook patched
    script = ("import json, sys\nfrom labkit.course.verify import HiddenCheck, verified_points\n"
              "data = json.load(open(sys.argv[1]))\nout = {}\n"
              "for kind, recs in data.items():\n"
              f"    out[kind] = {{n: verified_points(HiddenCheck(n.split(' ')[0], {SEED}, {POINTS}), r)[0] for n, r in recs.items()}}\n"
              "print(json.dumps(out))\n")
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    verified = json.loads(run.stdout.strip().splitlines()[-1])
    assert verified["right"] == {n: POINTS for n in CHECKS}
    lied = verified["wrong"].pop("absmax_quantize (patched kernel)")
    assert lied == round(POINTS / 3, 4)   # claimed 4: the re-check keeps only the scale's share
    assert verified["wrong"] == {n: 0.0 for n in CHECKS}


def test_use_or_reference_falls_back_once(capsys):
    def wrong(x):
        scale = np.max(np.abs(x)) / 128
        return np.round(x / scale).astype(np.int8), scale

    grade("absmax_quantize", wrong, plot=False)
    capsys.readouterr()
    fn = use_or_reference("absmax_quantize", wrong)
    again = use_or_reference("absmax_quantize", wrong)
    out = capsys.readouterr().out
    assert fn is again and fn is registry()["absmax_quantize"].reference and out.count("↪") == 1
    assert "labkit's reference" in out

    def right(x):
        scale = np.max(np.abs(x)) / 127
        return np.clip(np.round(x / scale), -127, 127).astype(np.int8), scale

    assert use_or_reference("absmax_quantize", right) is right  # checked silently on first use
    assert capsys.readouterr().out == ""
    assert use_or_reference("absmax_dequantize", None) is registry()["absmax_dequantize"].reference
