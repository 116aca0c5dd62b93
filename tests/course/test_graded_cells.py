"""Every autograded code cell of hw4 calls a check of labkit's grading engine, and every check the
engine registers is graded by some cell — read from the source notebooks and the registry, no kernel.

Why it matters: the grader re-checks a test cell outside the student's kernel only through the
engine calls in its hidden tests (``labkit.course.verify.VerifyChecks``: a call whose first
argument names a registered check and that passes ``points=``). A graded cell without one keeps
whatever score the kernel claimed, unverified; a registered check no cell calls is dead weight
in the engine (or a cell that lost its test).

A cell passes when its hidden tests (after ``### BEGIN HIDDEN TESTS``) make at least one call
``<module alias>.<function>("check name", fn, seed=S, points=P)`` where the alias is imported
from a ``labkit.grading`` module that has that function, the name is registered (and, for a
module with its own ``NAMES``, one of them), the calls' points add up to the cell's points, and
the grader's own parser (``verify.hidden_checks``) finds the same calls.
"""

from __future__ import annotations

import ast
import copy
import importlib

import pytest

from labkit.course.verify import hidden_checks
from labkit.grading.cases import registry

from .conftest import source_notebooks

HIDDEN = "### BEGIN HIDDEN TESTS"

# Registered checks no graded cell calls, each with the reason it stays registered. A name here
# that a cell grades again (or that is no longer registered) fails the test: keep the list true.
KNOWN_UNGRADED = {
    name: ("notebook 06 grades its per-group weight quantizer as quantize_weight_int8/_fp8 "
           "(labkit.grading.model_checks) now; labkit.grading.torch_checks still registers the older "
           "fake_quant_per_group fill-in, which tests/grading/test_torch_checks_per_group.py and "
           "tests/course/test_verify.py (torch answer records) use — retire it or grade it again")
    for name in ("fake_quant_per_group_int8", "fake_quant_per_group_fp8")
}


def graded_cells() -> list[tuple[str, dict]]:
    """``(notebook:grade_id, cell)`` for every autograded code cell (nbgrader ``grade: true``)."""
    return [(f"{stem}:{cell.metadata['nbgrader']['grade_id']}", cell)
            for stem, nb in source_notebooks().items() for cell in nb.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")]


CELLS = graded_cells()


def engine_calls(source: str) -> tuple[list[tuple[str, float]], list[str]]:
    """The engine calls in a test cell's hidden tests as ``(check name, points)``, and a line for
    each call that looks like a graded check (a literal name, ``points=``) but is not an engine call."""
    if HIDDEN not in source:
        return [], []
    tree = ast.parse(source.split(HIDDEN, 1)[1])
    known = registry()
    where: dict[str, tuple[str, str | None]] = {}       # local name -> (module, attribute or None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            where.update({a.asname or a.name: (a.name, None) for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module:
            where.update({a.asname or a.name: (node.module, a.name) for a in node.names})
    calls, odd = [], []
    for node in ast.walk(tree):
        kw = {k.arg: k.value for k in node.keywords} if isinstance(node, ast.Call) else {}
        if not kw.get("points") or not node.args or not isinstance(node.args[0], ast.Constant):
            continue
        name, text = node.args[0].value, ast.unparse(node)
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in where:
            module, attr = where[func.value.id][0], func.attr
        elif isinstance(func, ast.Name) and func.id in where and where[func.id][1] is not None:
            module, attr = where[func.id]
        else:
            odd.append(f"{text}: the function is not imported in the hidden tests (call it by module, "
                       "`import labkit.grading.<module> as _grader`)")
            continue
        mod = importlib.import_module(module) if module.startswith("labkit.grading") else None
        names = getattr(mod, "NAMES", known)
        if mod is None or not callable(getattr(mod, attr, None)):
            odd.append(f"{text}: {module}.{attr} is not a function of labkit.grading")
        elif name not in known:
            odd.append(f"{text}: no check named {name!r} is registered")
        elif name not in names:
            odd.append(f"{text}: {module}.{attr} grades only {', '.join(names)}")
        else:
            calls.append((name, float(ast.literal_eval(kw["points"]))))
    return calls, odd


def problems(cell) -> list[str]:
    """What is wrong with one graded cell (empty: it is graded by the engine and re-checked)."""
    calls, odd = engine_calls(cell.source)
    if odd:
        return odd
    if not calls:
        return ["its hidden tests call no check registered in labkit.grading — the grader would keep the "
                "cell's claimed points unverified; end it with `_grader.<check>(\"name\", fn, seed=S, points=P)`"]
    out = []
    points = float(cell.metadata["nbgrader"]["points"])
    if abs(sum(p for _, p in calls) - points) > 1e-9:
        out.append(f"the engine calls give {sum(p for _, p in calls)} points, the cell is worth {points}")
    known = registry()
    verified = [(c.exercise, c.points) for c in hidden_checks(cell.source.split(HIDDEN, 1)[1]) if c.exercise in known]
    if sorted(verified) != sorted(calls):
        out.append(f"the grader's re-check reads {verified}, this test read {calls}")
    return out


@pytest.mark.parametrize("cell", [c for _, c in CELLS], ids=[i for i, _ in CELLS])
def test_graded_cell_calls_a_registered_check(cell):
    assert problems(cell) == []


def test_every_registered_check_is_graded_by_some_cell():
    used = {name for _, cell in CELLS for name, _ in engine_calls(cell.source)[0]}
    orphans = set(registry()) - used
    unlisted = sorted(orphans - set(KNOWN_UNGRADED))
    assert not unlisted, (f"registered checks that no graded cell calls: {unlisted}\n  → add a graded test cell "
                          "for each, unregister it, or list it in KNOWN_UNGRADED with the reason")
    stale = sorted(set(KNOWN_UNGRADED) - orphans)
    assert not stale, f"KNOWN_UNGRADED lists {stale}, which a cell grades or nothing registers: remove them"


def _cell(grade_id: str):
    return copy.deepcopy(next(c for i, c in CELLS if i.endswith(":" + grade_id)))


def _with_hidden(cell, hidden: str):
    cell.source = cell.source.split(HIDDEN, 1)[0] + HIDDEN + "\n" + hidden + "\n### END HIDDEN TESTS"
    return cell


@pytest.mark.parametrize("hidden, says", [
    ("score = 3.0\nscore", "call no check"),                                      # computes its own points
    ("import labkit.grading.bench_checks as _grader\n"
     "_grader.check_bench(\"benchmark\", benchmark, seed=7201)", "call no check"),  # no points=: visible only
    ("import mychecks as _grader\n_grader.check_bench(\"benchmark\", benchmark, seed=7201, points=3)",
     "not a function of labkit.grading"),
    ("_grader.check_bench(\"benchmark\", benchmark, seed=7201, points=3)", "not imported"),
    ("import labkit.grading.bench_checks as _grader\n"
     "_grader.check_bench(\"benchmarks\", benchmark, seed=7201, points=3)", "no check named 'benchmarks'"),
    ("import labkit.grading.bench_checks as _grader\n_grader.check_bench(\"absmax_quantize\", benchmark, seed=7201, "
     "points=3)", "grades only"),
    ("import labkit.grading.bench_checks as _grader\n"
     "_grader.check_bench(\"benchmark\", benchmark, seed=7201, points=2)", "worth 3.0"),
])
def test_a_cell_without_a_proper_engine_call_is_caught(hidden, says):
    real = _cell("test_benchmark")
    assert problems(real) == []                                   # the unmodified cell passes
    assert says in " ".join(problems(_with_hidden(real, hidden)))


def test_a_cell_without_hidden_tests_is_caught():
    cell = _cell("test_benchmark")
    cell.source = cell.source.split(HIDDEN, 1)[0]                 # the visible check alone has no points=
    assert "call no check" in " ".join(problems(cell))
