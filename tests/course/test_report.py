"""labkit.course.report on a hand-built gradebook (no notebooks run): hand-computed means and
counts, most-missed task first, written answers not graded yet counted as pending (and drawn grey,
not red), a notebook a student did not hand in counted apart from a wrong one, CSV and PNG."""

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
    rows = {r.task: r for r in task_stats("hw4", gradebook, COURSE_ID)}
    q = rows["test_q"]  # 3 + 1 + 0 + 3 = 7 of 12
    assert (q.submitted, q.graded, q.full, q.partial, q.zero, q.mean) == (4, 4, 2, 1, 1, round(7 / 12, 4))
    dq = rows["test_dq"]  # 6 of 8
    assert (dq.full, dq.zero, dq.mean) == (3, 1, 0.75)
    man = rows["q_outlier"]  # bob's answer is not graded yet: 4 handed in, 3 graded, 3 of 6 points
    assert (man.kind, man.submitted, man.graded, man.pending, man.mean, man.partial) == ("manual", 4, 3, 1, 0.5, 1)
    assert all(r.not_submitted == 0 for r in rows.values())  # no autograded/ folders: all handed in


def test_most_missed_first_and_files_written(gradebook, tmp_path):
    rows = task_stats("hw4", gradebook, COURSE_ID)
    assert [r.task for r in rows] == ["q_outlier", "test_q", "test_dq"]
    table = format_table(rows)
    assert table.splitlines()[2].split()[1] == "q_outlier" and "58%" in table and "pending" in table
    csv_path, png_path = write_report(rows, tmp_path / "out")
    with csv_path.open() as fh:
        assert [r["task"] for r in csv.DictReader(fh)] == ["q_outlier", "test_q", "test_dq"]
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 5000


def test_missing_gradebook_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="generate_assignment hw4"):
        task_stats("hw4", tmp_path, COURSE_ID)


def test_a_notebook_not_handed_in_is_missing_not_wrong(gradebook, tmp_path):
    """dee's autograded folder has no 01_absmax.ipynb: her zeros there are 'missing', out of the mean."""
    import shutil

    root = tmp_path / "course"
    shutil.copytree(gradebook, root)
    for student in ("ann", "bob", "cid"):
        (root / "autograded" / student / "hw4").mkdir(parents=True)
        (root / "autograded" / student / "hw4" / "01_absmax.ipynb").write_text("{}")
    (root / "autograded" / "dee" / "hw4").mkdir(parents=True)  # graded, but handed in nothing of 01
    rows = {r.task: r for r in task_stats("hw4", root, COURSE_ID)}
    q = rows["test_q"]  # ann 3, bob 1, cid 0 of 3 each; dee (3) not handed in
    assert (q.submitted, q.not_submitted, q.zero, q.mean) == (3, 1, 1, round(4 / 9, 4))
    dq = rows["test_dq"]  # dee's 0 was "missing", not "wrong": everyone who handed in is right
    assert (dq.zero, dq.full, dq.mean) == (0, 3, 1.0)


def test_a_partly_graded_question_is_mostly_grey_not_red(tmp_path):
    """One of four answers graded (0 points), three pending: the red part is a quarter of the bar."""
    from labkit.course.report import TaskStats, report_figure

    row = TaskStats("01_absmax", "q_outlier", "manual", 2, submitted=4, graded=1, mean=0.0, full=0, partial=0,
                    zero=1, pending=3, not_submitted=0)
    fig = report_figure([row])
    ax = fig.axes[0]
    widths = {p.get_facecolor()[:3]: p.get_width() for p in ax.patches if p.get_width() > 0}
    from matplotlib.colors import to_rgb

    assert widths == {to_rgb("tab:red"): 0.25, to_rgb("0.75"): 0.75}
    legend = ax.get_legend()
    fig.canvas.draw()
    box, axes_box = legend.get_window_extent(), ax.get_window_extent()
    assert box.y0 >= axes_box.y1 - 1, "the legend must sit above the bars, not on them"
