"""The hw4 course end to end, on a temporary copy (see conftest.py): release, grading, feedback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from labkit.course.release import ASSIGNMENT, NOTEBOOKS, compare_release

from .conftest import STUDENTS, solution_cells

pytestmark = pytest.mark.slow  # every test here uses the course_run fixture: the whole course autograded


def _autograded(scores: dict) -> dict:
    """{notebook: {grade_id: (auto_score, max)}} for autograded (code) cells only."""
    return {nb: {g: (v[0], v[1]) for g, v in cells.items() if v[2] == "code"} for nb, cells in scores.items()}


def test_release_has_no_solutions_and_no_hidden_tests(course_run):
    for stem, src in course_run["sources"].items():
        text = (course_run["release"] / f"{stem}.ipynb").read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, stem
        assert "HIDDEN TESTS" not in text, stem
        assert "_grader.check(" not in text, f"{stem}: a hidden check call leaked into the release"
        released = nbformat.reads(text, as_version=4)
        released_cells = solution_cells(released)
        for gid, source in solution_cells(src).items():
            if "### BEGIN SOLUTION" not in source:
                continue
            body = source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in body.strip().splitlines():
                line = line.strip()
                if len(line) > 12 and not line.startswith("#") and line not in source.split("### BEGIN SOLUTION")[0]:
                    assert line not in released_cells[gid], f"{stem}/{gid}: solution line {line!r} is in the release"
        stubs = [c.source for c in released.cells if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]
        assert all(re.search(r'raise NotImplementedError\("Task \d+\.\d+: ', s) for s in stubs), stem


def test_notebooks_folder_is_up_to_date(course_run, tmp_path):
    """notebooks/ must equal a fresh generate_assignment of autograde/source (run `make notebooks`)."""
    fresh = {p.name: json.loads(p.read_text()) for p in course_run["release"].glob("*.ipynb")}
    stale = compare_release(fresh, NOTEBOOKS)
    assert not stale, f"notebooks/ is out of date with autograde/source/{ASSIGNMENT}: {stale} — run `make notebooks`"
    # and the comparison notices an edit, a missing and an extra notebook
    for p in NOTEBOOKS.glob("*.ipynb"):
        (tmp_path / p.name).write_text(p.read_text())
    first, second = sorted(fresh)[:2]
    edited = json.loads((tmp_path / first).read_text())
    edited["cells"][0]["source"] = "# hand-edited"
    (tmp_path / first).write_text(json.dumps(edited))
    (tmp_path / second).unlink()
    (tmp_path / "99_extra.ipynb").write_text("{}")
    assert compare_release(fresh, tmp_path) == sorted([first, second, "99_extra.ipynb"])


def test_every_student_was_graded(course_run):
    for student, r in course_run["results"].items():
        assert r["autograde_ok"], f"{student}: {r['autograde_log'][-2000:]}"
        assert r["feedback_ok"], f"{student}: {r['feedback_log'][-2000:]}"


def test_solutions_score_full_marks(course_run):
    scores = _autograded(course_run["results"]["solutions"]["scores"])
    assert set(scores) == set(course_run["sources"])
    lost = {(nb, g): s for nb, cells in scores.items() for g, s in cells.items() if s[0] != s[1]}
    assert not lost, f"the source solutions lose points: {lost}"
    assert sum(s[1] for cells in scores.values() for s in cells.values()) >= 25


def test_untouched_release_scores_zero(course_run):
    r = course_run["results"]["untouched"]["scores"]
    got = {(nb, g): v[0] for nb, cells in r.items() for g, v in cells.items()}
    assert got and all(v == 0 for v in got.values()), {k: v for k, v in got.items() if v}


def test_one_wrong_function_loses_exactly_its_points(course_run):
    scores = _autograded(course_run["results"]["one_wrong"]["scores"])["04_gptq"]
    full = _autograded(course_run["results"]["solutions"]["scores"])["04_gptq"]
    assert scores["test_quantize_column"][0] == 0
    for gid, (score, max_score) in scores.items():
        if gid != "test_quantize_column":
            assert score == max_score, f"{gid} lost points because quantize_column is wrong: {score}/{max_score}"
    assert sum(s for s, _ in scores.values()) == sum(s for s, _ in full.values()) - full["test_quantize_column"][1]


def test_partial_credit_reaches_the_gradebook(course_run):
    scores = _autograded(course_run["results"]["partial"]["scores"])["01_absmax"]
    assert scores["test_absmax_quantize"] == (1.0, 3.0)  # the scale's share of 3 points
    assert scores["test_absmax_dequantize"] == (2.0, 2.0)


def test_infinite_loop_costs_only_its_part(course_run):
    r = course_run["results"]["loop"]
    scores = _autograded(r["scores"])["05_smoothquant"]
    assert scores["test_apply_smoothing"][0] == 0
    assert scores["test_compute_smooth_factor"][0] == scores["test_compute_smooth_factor"][1]
    executed = nbformat.read(Path(r["root"]) / "autograded" / "loop" / ASSIGNMENT / "05_smoothquant.ipynb", as_version=4)
    errors = [o.ename for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert "CellTimeoutError" in errors or "KeyboardInterrupt" in errors, errors


def test_feedback_html_shows_the_histograms(course_run):
    root = Path(course_run["results"]["solutions"]["root"])
    checked = 0
    for stem in course_run["sources"]:
        html = (root / "feedback" / "solutions" / ASSIGNMENT / f"{stem}.html").read_text()
        src = course_run["sources"][stem]
        # every labkit.grading check (visible + hidden) draws one histogram
        n_checks = 2 * sum(1 for c in src.cells if c.metadata.get("nbgrader", {}).get("grade")
                           and c.cell_type == "code" and "_grader.check(" in c.source)
        assert html.count("data:image/png;base64,") >= n_checks, stem
        checked += n_checks
    assert checked >= 20
    wrong = (Path(course_run["results"]["one_wrong"]["root"]) / "feedback" / "one_wrong" / ASSIGNMENT / "04_gptq.html").read_text()
    assert "quantize_column" in wrong and "data:image/png;base64," in wrong


def test_widgets_are_skipped_under_autograde(course_run):
    root = Path(course_run["results"]["solutions"]["root"]) / "autograded" / "solutions" / ASSIGNMENT
    for stem, needle in (("03_granularity", "group-size slider skipped"), ("05_smoothquant", "alpha slider skipped")):
        text = (root / f"{stem}.ipynb").read_text()
        assert needle in text, stem


def test_report_timings(course_run):
    """Not a speed target: records how long one full grading took (printed with -s / in -ra)."""
    times = {s: round(r["seconds_autograde"], 1) for s, r in course_run["results"].items()}
    print(f"\ngenerate {course_run['seconds_generate']:.1f}s, autograde per student {times}, "
          f"total {course_run['seconds_total']:.1f}s")
    assert set(times) == set(STUDENTS)
