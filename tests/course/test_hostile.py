"""Grader integrity: broken and hostile submissions (tests/course/hostile.py) get exactly their
intended score, in one batch with a control student, and a second run gives the same grades.

One course copy in a temporary folder; the whole class is graded through
``labkit.course.parallel.grade`` with 2 processes, then a sample (``REGRADE``: kernel deaths,
patches, repairs, the control) is re-graded with 1 process: equal grades show the run is
idempotent and that sharding changes nothing. The course's own nbgrader_config.py is used, with a shorter cell timeout and a 3 GiB
kernel memory limit so the memory hog is cheap to catch.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from labkit.course.release import ASSIGNMENT, api_for, copy_course
from labkit.course.parallel import grade

from .hostile import MESSAGES, REGRADE, STUDENTS, write_submission

OVERRIDES = {"Execute.timeout": 20, "LimitedKernelManager.memory_limit_mb": 3072}

pytestmark = pytest.mark.slow


def _scores(root: Path) -> dict:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "hw4-quantization") as gb:
        for student in STUDENTS:
            try:
                sub = gb.find_submission(ASSIGNMENT, student)
            except Exception:
                continue
            out[student] = {nb.name: {g.name: g.auto_score for g in nb.grades if g.cell_type == "code"}
                            for nb in sub.notebooks}
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("hostile") / "course")
    gen = api_for(root).generate_assignment(ASSIGNMENT, force=True, create=True)
    assert gen["success"], gen.get("error", "") + gen.get("log", "")
    for student, spec in STUDENTS.items():
        write_submission(root, root / "release" / ASSIGNMENT, student, spec, ASSIGNMENT)
    t0 = time.perf_counter()
    first = grade(ASSIGNMENT, root, jobs=2, overrides=OVERRIDES)
    t1 = time.perf_counter()
    scores_first = _scores(root)
    second = grade(ASSIGNMENT, root, jobs=1, students=REGRADE, overrides=OVERRIDES)
    t2 = time.perf_counter()
    print(f"\nhostile corpus: {len(STUDENTS)} students with 2 jobs {t1 - t0:.0f}s; "
          f"{len(REGRADE)} re-graded with 1 job {t2 - t1:.0f}s")
    return {"root": root, "first": first, "second": second, "scores_first": scores_first, "scores": _scores(root)}


def test_the_batch_goes_on_for_every_student(graded):
    for run, expected in ((graded["first"], STUDENTS), (graded["second"], REGRADE)):
        assert not run.failed, {s: why[-1500:] for s, why in run.failed.items()}
        assert sorted(run.graded) == sorted(expected)


@pytest.mark.parametrize("student", sorted(STUDENTS))
def test_each_submission_gets_exactly_its_intended_score(graded, student):
    spec = STUDENTS[student]
    got = graded["scores"][student]
    for stem, expected in spec.expect.items():
        assert got[stem] == pytest.approx(expected), f"{student} ({spec.why}), {stem}: got {got[stem]}, expected {expected}"


def test_regrading_gives_the_same_grades(graded):
    """--force re-grading (in 1 process instead of 2) changes nobody's grades."""
    assert graded["scores_first"] == graded["scores"]
    assert set(REGRADE) <= set(graded["scores"])


def test_students_read_what_went_wrong(graded):
    for student, needles in MESSAGES.items():
        for stem, needle in needles:
            path = graded["root"] / "autograded" / student / ASSIGNMENT / f"{stem}.ipynb"
            text = path.read_text()
            assert needle in text, f"{student}/{stem}: the autograded notebook does not say {needle!r}"


def test_notes_explain_the_repaired_files(graded):
    notes = graded["first"].notes
    assert any("not a valid notebook" in n for n in notes.get("bad_json", [])), notes
    assert any("01_absmax-Copy1.ipynb graded as 01_absmax.ipynb" in n for n in notes.get("renamed", [])), notes


def test_stderr_outside_test_cells_stays_in_the_notebook(graded):
    nb = nbformat.read(graded["root"] / "autograded" / "stderr" / ASSIGNMENT / "01_absmax.ipynb", as_version=4)
    streams = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"]
    assert streams, "the student's own stderr output should still be shown (outside the test cells)"
