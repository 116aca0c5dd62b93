"""Grade twice: once in the student's kernel, once more in the grader's own process.

Everything in the kernel — numpy, labkit, the check itself — runs next to the student's code and
can be patched by it (``np.allclose = lambda *a, **k: True``, ``check = lambda *a, **k: 3``, a
grader module's ``__dict__`` edited). So the grade a test cell prints is only a *claim*. The
trusted half works like this:

1. In the kernel, every graded check of the case engine (``labkit.grading.cases``: numpy ``check``,
   ``check_torch``, ``check_bench`` and any check registered later) under autograde also displays an
   **answer record**: the raw outputs of the student's function on each seeded case, as ``.npy``
   bytes (``answer_record``), in an output of type ``application/vnd.labkit.answers+json``.
2. After the notebook ran, the ``VerifyChecks`` preprocessor (in the grader's process, which no
   notebook code touches) reads the graded calls — any call whose first argument names a registered
   check and that passes ``points=`` — from the test cell's *source* — locked,
   restored from the gradebook by nbgrader before execution — redraws the seeded inputs,
   recomputes labkit's reference and compares the recorded outputs part by part with the same
   rules as the kernel. The cell keeps ``min(claimed, verified)`` points; a missing record (the
   check was replaced, never ran, or the kernel died) is 0. Records are removed afterwards, so
   the feedback page does not carry them.

Worked example: a notebook that sets ``labkit.grading.compare.compare_codes = lambda *a, **k:
None`` and returns truncated codes claims 3/3 in the kernel; the record holds the truncated codes,
the grader finds "codes differ at 41 of 1000 positions" and the cell gets 1 (the scale's share).

Decoding never unpickles (``np.load(allow_pickle=False)``): a record is data, not code; a torch
tensor comes back from its ``.npy`` (bfloat16/float8 from their bits) with its noted dtype. Anything
else decodes as ``Unsupported`` and fails the comparison. The comparison is the registered
``CaseCheck``'s own (``cases.compare_recorded``), run in this fresh process where no notebook
patched numpy, torch or labkit. Limit: a student who forges a record holding the *right* outputs (computed with
labkit's reference) is only stopped by the in-kernel tripwire; forging is no longer "patching a
check", it is copying the answer, and needs code written for it.
"""

from __future__ import annotations

import ast
import copy

import numpy as np
from dataclasses import dataclass

from labkit.grading.records import MIME, Unsupported, answer_record, decode_value, encode_value, show_record

__all__ = ["MIME", "Unsupported", "answer_record", "decode_value", "encode_value", "show_record", "HiddenCheck",
           "hidden_checks", "verified_points", "verify_cell", "VerifyChecks"]


# -- the grader's side ----------------------------------------------------------------------------

@dataclass(frozen=True)
class HiddenCheck:
    """One ``check("name", fn, seed=S, points=P)`` call found in a test cell's source."""

    exercise: str
    seed: int
    points: float


def hidden_checks(source: str) -> list[HiddenCheck]:
    """The graded calls in a test cell's source: ``anything("name", fn, seed=S, points=P)`` whose
    first argument is a literal string (the check's name) and that passes ``points=``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kw = {k.arg: k.value for k in node.keywords}
        if not node.args or "points" not in kw:
            continue
        try:
            name = ast.literal_eval(node.args[0])
            seed = ast.literal_eval(kw["seed"]) if "seed" in kw else 0
            points = ast.literal_eval(kw["points"])
        except ValueError:
            continue
        if isinstance(name, str) and isinstance(points, (int, float)):
            found.append(HiddenCheck(name, int(seed), float(points)))
    return found


def verified_points(check: HiddenCheck, record: dict | None) -> tuple[float, list[str]]:
    """Points the recorded outputs earn, recomputed here from labkit's reference with the check's
    own comparison; and the reasons for every lost part (or case)."""
    from labkit.grading.cases import compare_recorded, spec_for

    if record is None:
        return 0.0, [f"{check.exercise}: no answer record — the graded check did not run to the end"]
    spec = spec_for(check.exercise)
    outputs = []
    for rec in record.get("cases", []):
        outputs.append(None if rec is None else tuple(decode_value(v) for v in rec))
    try:
        with np.errstate(all="ignore"):
            share, failed = compare_recorded(spec, check.seed, outputs)
    except Exception as exc:  # a malformed record must never crash the grader
        share, failed = 0.0, {"record": f"{type(exc).__name__}: {exc}"}
    return round(check.points * share, 4), [f"{k}: {v}" if not v.startswith("[") else v for k, v in failed.items()]


def _claimed(cell) -> float | None:
    """What nbgrader would give the cell now (None: not an autograded code cell)."""
    from nbgrader.utils import determine_grade

    return determine_grade(cell)[0]


def verify_cell(cell) -> tuple[float, float, list[str]] | None:
    """Re-grade one executed test cell in place: returns (claimed, verified, reasons), or None
    when the cell has no hidden ``check`` call to verify. Removes the answer records."""
    from labkit.grading.cases import registry

    known = registry()
    checks = [c for c in hidden_checks(cell.source.split("### BEGIN HIDDEN TESTS")[-1]) if c.exercise in known]
    records = [o for o in cell.get("outputs", []) if o.get("output_type") == "display_data" and MIME in o.get("data", {})]
    cell.outputs = [o for o in cell.get("outputs", []) if o not in records]
    if not checks:
        return None
    by_key = {}
    for o in records:
        rec = o["data"][MIME]
        if isinstance(rec, dict):
            by_key.setdefault((rec.get("exercise"), rec.get("seed")), rec)
    claimed = _claimed(cell) or 0.0
    verified, reasons = 0.0, []
    for chk in checks:
        pts, why = verified_points(chk, by_key.get((chk.exercise, chk.seed)))
        verified += pts
        reasons += why
    if verified < claimed - 1e-9:
        _set_score(cell, verified, reasons)
    return claimed, min(claimed, verified), reasons


def _set_score(cell, points: float, reasons: list[str]) -> None:
    from nbformat import NotebookNode

    note = ("The grader re-checked the recorded answers outside the notebook and found:\n"
            + "\n".join(f"- {r}" for r in reasons))
    outputs = [o for o in cell.outputs if o.get("output_type") != "execute_result"]
    if points <= 0:
        outputs.append(NotebookNode(output_type="error", ename="GradingError", evalue=note,
                                    traceback=[f"\x1b[0;31mGradingError\x1b[0m: {note}"]))
    else:
        outputs.append(NotebookNode(output_type="stream", name="stdout", text=note + "\n"))
        outputs.append(NotebookNode(output_type="execute_result", execution_count=cell.get("execution_count"),
                                    metadata={}, data={"text/plain": repr(float(points))}))
    cell.outputs = outputs


def _preprocessor_class():
    from nbgrader.preprocessors import NbGraderPreprocessor
    from nbgrader.utils import is_grade

    class VerifyChecks(NbGraderPreprocessor):
        """Autograde step after ``Execute``: re-grade every hidden ``check`` from its answer record
        in the grader's process; a cell keeps min(claimed, verified) points."""

        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == "code" and is_grade(cell):
                result = verify_cell(cell)
                if result and result[1] < result[0]:
                    self.log.warning("cell %s: claimed %s points, verified %s: %s", cell.metadata["nbgrader"]["grade_id"],
                                     result[0], result[1], "; ".join(result[2])[:500])
            elif cell.cell_type == "code":
                cell.outputs = [o for o in cell.get("outputs", [])
                                if not (o.get("output_type") == "display_data" and MIME in o.get("data", {}))]
            return cell, resources

    return VerifyChecks


VerifyChecks = _preprocessor_class()
