"""Nothing given away (static, no execution): no markdown a student reads above a manually graded
question — the cells above it and the question's own prompt — states the key numbers of its model
answer. Key numbers: the answer's decimals and integers ≥ 10 that are not parameters written in the
notebook's code, the formats' bounds (127, 448…), powers of two, formula denominators (scale²/12) or
hardware names (RTX 4090). A number above counts when it is a key number at its own rounding
(11.2 for 11.206), or, written as an approximation (~, ≈, about), within 10 % of one — so a summary
that says "the MSE grew by ~650" above the question whose answer measured 670× fails here.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from solved_notebooks import SOURCE, is_question, key_numbers, model_answer, numbers, without_solutions

NOTEBOOKS = sorted(SOURCE.glob("*.ipynb"))


def close(x: float, y: float) -> bool:
    """Within 10 % (a summary's "~25" for the answer's "26×")."""
    return abs(x - y) <= 0.1 * max(abs(x), abs(y))


def same_at_rounding(key: str, stated: str) -> bool:
    """``stated`` is ``key`` written at ``stated``'s own rounding (11.21 for 11.206), when ``stated``
    has at least 3 significant digits or is written exactly as in the answer."""
    k, y = float(key), float(stated)
    if key == stated:
        return True
    if len(re.sub(r"^[0.]+", "", stated.lower().split("e")[0].replace(".", "", 0)).replace(".", "")) < 3:
        return False  # "0.01" or "0.88" is too short to tell a result from a worked example
    if "e" in stated.lower():
        digits = len(stated.lower().split("e")[0].split(".")[1]) if "." in stated else 0
        return f"{k:.{digits}e}" == f"{y:.{digits}e}"
    digits = len(stated.split(".")[1]) if "." in stated else 0
    return abs(round(k, digits) - y) < 10 ** -(digits + 3)


def giveaways(nb) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        if not is_question(cell):
            continue
        keys = set(key_numbers(model_answer(cell), nb))
        if not keys:
            continue
        gid = cell.metadata["nbgrader"].get("grade_id", f"cell {i}")
        visible = [(j, without_solutions(c.source)) for j, c in enumerate(nb.cells[:i + 1]) if c.cell_type == "markdown"]
        for j, text in visible:
            stated = set(key_numbers(text, nb))
            approx = {tok for tok in stated if re.search(rf"(~|≈|about |roughly |nearly )\s*{re.escape(tok)}(?![\d.])", text)}
            hits = sorted({k for k in keys for y in stated if same_at_rounding(k, y) or (y in approx and close(float(k), float(y)))},
                          key=float)
            if hits:
                found.append(f"{gid}: markdown cell {j} states {', '.join(hits)} from the model answer: "
                             f"{text.strip()[:100]!r}")
    return found


def test_the_rule_catches_a_summary_above_its_question():
    nb = nbformat.v4.new_notebook()
    q = nbformat.v4.new_markdown_cell("**Q1.** By how much did the MSE grow?\n### BEGIN SOLUTION\n"
                                      "The scale grew 26× and the MSE 670×; 0.41 of the codes are unused.\n"
                                      "### END SOLUTION")
    q.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "q1", "points": 2}
    nb.cells = [nbformat.v4.new_code_cell("x[0] = 100\nprint(mse)"),
                nbformat.v4.new_markdown_cell("## Summary\nOne outlier made the scale ~25× larger.\nThe worked example: 0.0125."), q]
    assert len(giveaways(nb)) == 1 and "26" in giveaways(nb)[0]
    nb.cells[1].source = "## What to look at\nCompare the two MSE lines above."
    assert giveaways(nb) == []
    nb.cells[1].source = "The outlier is 100 and int8 has 127 codes per side."   # parameters and bounds are fine
    assert giveaways(nb) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_markdown_above_a_question_states_its_answer(path):
    nb = nbformat.read(path, as_version=4)
    found = giveaways(nb)
    assert not found, "answers given away above their questions:\n" + "\n".join(found)
