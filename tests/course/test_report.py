"""labkit.course.report on a hand-built gradebook (no notebooks run): hand-computed means and
counts, most-missed task first, manual answers not yet graded counted as to-do, CSV and PNG."""

from __future__ import annotations

import csv

import pytest

from labkit.course.release import _venv_on_path
from labkit.course.report import format_table, task_stats, write_report

COURSE_ID = "test-course"


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gradebook")
    from nbgrader.api import Gradebook

    _venv_on_path()  # nbgrader runs `alembic` from PATH when it creates a gradebook
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", COURSE_ID) as gb:
        gb.add_assignment("hw4")
        gb.add_notebook("01_absmax", "hw4")
        gb.add_grade_cell("test_q", "01_absmax", "hw4", max_score=3, cell_type="code")
        gb.add_grade_cell("test_dq", "01_absmax", "hw4", max_score=2, cell_type="code")
        gb.add_grade_cell("q_outlier", "01_absmax", "hw4", max_score=2, cell_type="markdown")
        # scores per student: (test_q auto, test_dq auto, q_outlier manual or None)
        table = {"ann": (3, 2, 2), "bob": (1, 2, None), "cid": (0, 2, 1), "dee": (3, 0, 0)}
        for student, (q, dq, manual) in table.items():
            gb.add_student(student)
            gb.add_submission("hw4", student)
            for name, auto in (("test_q", q), ("test_dq", dq)):
                g = gb.find_grade(name, "01_absmax", "hw4", student)
                g.auto_score, g.needs_manual_grade = auto, False
            g = gb.find_grade("q_outlier", "01_absmax", "hw4", student)
            g.auto_score, g.manual_score, g.needs_manual_grade = None, manual, manual is None
        gb.db.commit()
    return tmp_path


def test_stats_are_the_hand_computed_ones(gradebook):
    rows = {r.task: r for r in task_stats("hw4", gradebook, course_id=COURSE_ID)}
    q = rows["test_q"]  # 3 + 1 + 0 + 3 = 7 of 12
    assert (q.students, q.full, q.partial, q.zero, q.mean) == (4, 2, 1, 1, round(7 / 12, 4))
    dq = rows["test_dq"]  # 6 of 8
    assert (dq.full, dq.zero, dq.mean) == (3, 1, 0.75)
    man = rows["q_outlier"]  # bob's answer is not graded yet: 3 graded, 3 of 6 points
    assert (man.kind, man.students, man.ungraded, man.mean, man.partial) == ("manual", 3, 1, 0.5, 1)


def test_most_missed_first_and_files_written(gradebook, tmp_path):
    rows = task_stats("hw4", gradebook, course_id=COURSE_ID)
    assert [r.task for r in rows] == ["q_outlier", "test_q", "test_dq"]
    table = format_table(rows)
    assert table.splitlines()[2].split()[1] == "q_outlier" and "58%" in table
    csv_path, png_path = write_report(rows, tmp_path / "out")
    with csv_path.open() as fh:
        assert [r["task"] for r in csv.DictReader(fh)] == ["q_outlier", "test_q", "test_dq"]
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 5000


def test_missing_gradebook_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="generate_assignment"):
        task_stats("hw4", tmp_path, course_id=COURSE_ID)
