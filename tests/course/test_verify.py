"""labkit.course.verify: the grader's out-of-kernel re-check of hidden checks, without a kernel.

A record of right outputs keeps the claimed points; a record of wrong outputs (what a notebook
that patched the comparisons would produce) is cut to the parts that are really right; no record
is 0; a record never executes anything (no pickle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nbformat import NotebookNode

import labkit.quant as Q
from labkit.grading.exercises import EXERCISES
from labkit.course.verify import (MIME, HiddenCheck, Unsupported, answer_record, decode_value, encode_value,
                                   hidden_checks, verified_points, verify_cell)


def _outputs(name: str, seed: int, fn):
    ex = EXERCISES[name]
    outs = []
    for _, inputs in ex.cases(np.random.default_rng(seed)):
        out = fn(**inputs)
        outs.append(out if ex.n_outputs > 1 else (out,))
    return outs


def truncating(x):
    scale = np.max(np.abs(x)) / 127
    return (x / scale).astype(np.int8), scale


def test_values_round_trip_exactly():
    for value in (np.arange(6, dtype=np.int8).reshape(2, 3), np.float32(0.125), 3, 0.5, np.array(2.0)):
        back = decode_value(encode_value(value))
        assert type(back) is type(value) and np.array_equal(back, value) and np.asarray(back).dtype == np.asarray(value).dtype
    for t in (torch.arange(6, dtype=torch.int8).reshape(2, 3), torch.randn(4, 3), torch.randn(5).bfloat16(),
              torch.randn(5).to(torch.float8_e4m3fn), torch.tensor(2.5, dtype=torch.float64)):
        back = decode_value(encode_value(t))  # torch tensors as .npy of their values (or bits), dtype noted
        assert isinstance(back, torch.Tensor) and back.dtype == t.dtype and back.shape == t.shape
        assert torch.equal(back.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else back,
                           t.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else t)
    assert decode_value(encode_value(torch.ones(2, dtype=torch.complex64))).type_name.startswith("torch.Tensor")
    assert decode_value(encode_value([1, 2])) == Unsupported("builtins.list")
    assert decode_value(encode_value(np.array([object()]))) == Unsupported("object array")


def test_hidden_checks_are_read_from_the_cell_source():
    src = ('check("absmax_quantize", absmax_quantize)\n### BEGIN HIDDEN TESTS\n'
           'import labkit.grading.checks as _grader\n_grader.check("absmax_quantize", absmax_quantize, seed=1101, points=3)\n')
    assert hidden_checks(src) == [HiddenCheck("absmax_quantize", 1101, 3.0)]
    assert hidden_checks("check = 1\nprint(") == []


def test_right_outputs_keep_all_points_wrong_ones_only_the_right_parts():
    chk = HiddenCheck("absmax_quantize", 1101, 3.0)
    right = answer_record(chk.exercise, chk.seed, chk.points, _outputs(chk.exercise, chk.seed, Q.absmax_quantize))
    assert verified_points(chk, right) == (3.0, [])
    wrong = answer_record(chk.exercise, chk.seed, chk.points, _outputs(chk.exercise, chk.seed, truncating))
    points, reasons = verified_points(chk, wrong)
    assert points == 1.0 and any("codes differ" in r for r in reasons)  # the scale is right: 1 of 3
    assert verified_points(chk, None)[0] == 0.0
    other_seed = answer_record(chk.exercise, 7, chk.points, _outputs(chk.exercise, 7, Q.absmax_quantize))
    assert verified_points(chk, other_seed)[0] < 3.0  # a record of other inputs is not the answer to these


def _cell(source: str, outputs: list) -> NotebookNode:
    return NotebookNode(cell_type="code", source=source, outputs=outputs, execution_count=3,
                        metadata={"nbgrader": {"grade": True, "grade_id": "test_absmax_quantize", "points": 3,
                                               "solution": False, "locked": True}})


SOURCE = '### BEGIN HIDDEN TESTS\n_grader.check("absmax_quantize", absmax_quantize, seed=1101, points=3)\n'


def _result(value: str) -> NotebookNode:
    return NotebookNode(output_type="execute_result", execution_count=3, metadata={}, data={"text/plain": value})


def _record(fn) -> NotebookNode:
    rec = answer_record("absmax_quantize", 1101, 3, _outputs("absmax_quantize", 1101, fn))
    return NotebookNode(output_type="display_data", metadata={}, data={MIME: rec})


def test_verify_cell_cuts_a_patched_claim_and_removes_the_record():
    from nbgrader.utils import determine_grade

    cell = _cell(SOURCE, [_record(truncating), _result("3.0")])  # patched comparisons claimed 3
    claimed, verified, reasons = verify_cell(cell)
    assert (claimed, verified) == (3.0, 1.0) and determine_grade(cell)[0] == 1.0
    assert not any(MIME in o.get("data", {}) for o in cell.outputs)
    assert "re-checked" in "".join(o.get("text", "") for o in cell.outputs)


def test_verify_cell_keeps_an_honest_score_and_zeroes_a_missing_record():
    from nbgrader.utils import determine_grade

    honest = _cell(SOURCE, [_record(Q.absmax_quantize), _result("3.0")])
    assert verify_cell(honest)[:2] == (3.0, 3.0) and determine_grade(honest)[0] == 3.0
    partial = _cell(SOURCE, [_record(truncating), _result("1.0")])  # the in-kernel check was right
    assert verify_cell(partial)[:2] == (1.0, 1.0) and determine_grade(partial)[0] == 1.0
    replaced = _cell(SOURCE, [_result("3")])  # `check` replaced by a lambda: no record
    assert verify_cell(replaced)[1] == 0.0 and determine_grade(replaced)[0] == 0
    assert verify_cell(_cell("1 + 1", [_result("2")])) is None  # nothing to verify


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_exercise_verifies_its_own_reference(name):
    ex = EXERCISES[name]
    chk = HiddenCheck(name, 4242, 2.0)
    rec = answer_record(name, chk.seed, chk.points, _outputs(name, chk.seed, ex.reference))
    assert verified_points(chk, rec) == (2.0, [])


def test_a_torch_check_cell_is_re_checked_from_its_record(monkeypatch, capsys):
    """check_torch records torch tensors; the grader re-grades them like numpy answers."""
    import labkit.grading.records as records
    from labkit.grading.cases import registry
    from labkit.grading.torch_checks import check_torch
    from nbgrader.utils import determine_grade

    name, seed = "fake_quant_per_group_int8", 6101
    spec = registry()[name]
    answers = [spec.reference(*args) for _, args in spec.cases(seed)]
    shown = []
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr(records, "show_record", shown.append)

    def replay(outputs):
        it = iter(outputs)
        return lambda *a: next(it).clone()

    src = ('### BEGIN HIDDEN TESTS\nimport labkit.grading.torch_checks as _grader\n'
           f'_grader.check_torch("{name}", fake_quant_per_group, seed={seed}, points=3)\n')
    wrong = [(a.float() * 1.1).to(a.dtype) for a in answers]   # e.g. a scale 10 % too large
    for outputs, expected in ((answers, 3.0), (wrong, 0.0)):
        check_torch(name, replay(outputs), seed=seed, points=3)
        cell = _cell(src, [NotebookNode(output_type="display_data", metadata={}, data={MIME: shown.pop()}),
                           _result("3.0")])                       # the kernel claims 3 either way
        assert verify_cell(cell)[1] == expected and determine_grade(cell)[0] == expected
