"""The source notebooks, without a kernel: solutions agree with labkit's references, the cell
metadata is consistent (points in the hidden call = the cell's points), no outputs are committed."""

from __future__ import annotations

import re

import numpy as np
import pytest

import labkit.quant as Q
from labkit.grading import EXERCISES, check

from .conftest import solution_cells, source_notebooks, strip_delimiters

SOURCES = source_notebooks()


def _namespace(stem: str) -> dict:
    """The notebook's graded numpy fill-ins (solution cells named after an exercise), executed."""
    ns = {"np": np}
    for gid, source in solution_cells(SOURCES[stem]).items():
        if gid in EXERCISES:
            exec(compile(strip_delimiters(source), f"<{stem}>", "exec"), ns)
    return ns


def _solution_functions():
    for stem in SOURCES:
        ns = _namespace(stem)
        for name in EXERCISES:
            if name in ns:
                yield stem, name, ns[name]


def test_every_exercise_has_a_solution_in_some_notebook():
    found = {name for _, name, _ in _solution_functions()}
    assert found == set(EXERCISES)


@pytest.mark.parametrize("seed", [0, 11, 12345])
def test_source_solutions_agree_with_labkit(seed, capsys):
    for stem, name, fn in _solution_functions():
        assert check(name, fn, seed=seed, points=1, plot=False) == 1.0, f"{stem}: {name}"


def test_gptq_solution_chain_agrees_without_injection():
    """The checks swap in labkit's quantize_column; here the solution's own one is used."""
    ns = _namespace("04_gptq")
    rng = np.random.default_rng(7)
    for bits in (3, 4, 8):
        W = rng.standard_normal((12, 20))
        np.testing.assert_allclose(ns["naive_quantize"](W, bits), Q.naive_quantize(W, bits), rtol=1e-12)
        np.testing.assert_allclose(ns["gptq_simplified"](W, bits), Q.gptq_simplified(W, bits), rtol=1e-9)


def test_test_cells_are_consistent():
    for stem, nb in SOURCES.items():
        total = 0
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            assert not cell.get("outputs") and not cell.get("execution_count"), f"{stem}: committed output"
            if meta.get("grade") and cell.cell_type == "code" and "### BEGIN HIDDEN TESTS" in cell.source:
                hidden = re.findall(r"points=(\d+(?:\.\d+)?)", cell.source.split("### BEGIN HIDDEN TESTS")[1])
                assert hidden == [str(meta["points"])], f"{stem}/{meta['grade_id']}: points= {hidden} vs {meta['points']}"
                assert "### END HIDDEN TESTS" in cell.source and meta["locked"]
            if meta.get("grade"):
                total += meta["points"]
        intro = "\n".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown")
        assert f"**total** | **{total}**" in intro, f"{stem}: the points table does not add up to {total}"


def test_hidden_tests_ignore_a_check_redefined_in_the_notebook():
    """A student cell `check = lambda *a, **k: 3.0` must not turn a wrong answer into points: the hidden
    test calls labkit's check by module, whose result (0 for all-zero codes) is the cell's score."""
    nb = SOURCES["01_absmax"]
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_absmax_quantize")
    hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
    ns = {"np": np, "check": lambda *a, **k: 3.0,
          "absmax_quantize": lambda x: (np.zeros(x.shape, np.int8), 1.0)}
    last = hidden.strip().splitlines()[-1]  # the hidden call whose value nbgrader scores
    body = hidden.strip().splitlines()[:-1]
    exec(compile("\n".join(body) + "\n__score = " + last.strip(), "<hidden tests>", "exec"), ns)
    assert ns["__score"] == 0
