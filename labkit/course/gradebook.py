"""The instructor's side of a ``labkit grade`` result: one writer for the gradebook and ``autograded/``.

A worker (``labkit.course.cluster.grade_student``) returns a student's autograded files and the
autograder's fields per cell. ``save_result`` writes them the way nbgrader's own ``SaveAutoGrades``
would on this course's database (sqlite or PostgreSQL, through nbgrader's ``Gradebook`` API):

- ``auto_score`` and the auto comment of every cell; the notebook's flag and late penalty;
- ``needs_manual_grade``: nbgrader's rule — a cell needs a look when it has no auto score or a
  grader already gave it a manual score (which is kept, never overwritten);
- a student created by the run gets their id as last name when no name is known, so the
  formgrader lists ``s1234567`` rather than "None, None".

Order matters for ``--resume``: the gradebook is committed first, then the autograded folder is
written next to its final place and renamed into it. ``is_graded`` trusts that folder, so a run
interrupted between the two grades the student again, never skips one.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def is_graded(root: Path, student: str, assignment: str) -> bool:
    """True when ``autograded/<student>/<assignment>/`` holds a notebook and was written after the
    newest file of the submission (a notebook handed in again after grading makes the student due
    again). Renamed or invalid notebooks do not matter: only times are compared."""
    sub, done = root / "submitted" / student / assignment, root / "autograded" / student / assignment
    graded = [p.stat().st_mtime for p in done.glob("*.ipynb")] if done.is_dir() else []
    submitted = [p.stat().st_mtime for p in sub.rglob("*") if p.is_file()]
    return bool(graded) and max(graded) >= max(submitted, default=0.0)


def save_result(course, assignment: str, result: dict) -> None:
    """Write one successful worker result into ``course``'s gradebook and ``autograded/`` folder."""
    from nbgrader.api import MissingEntry

    from .cluster import quiet_gradebook

    student = result["student"]
    with quiet_gradebook(), course.gradebook() as gb:
        try:
            row = gb.find_student(student)
            if row.first_name is None and row.last_name is None:
                row.last_name, row.first_name = student, ""
        except MissingEntry:
            gb.add_student(student, last_name=student, first_name="")
        gb.update_or_create_submission(assignment, student, timestamp=result["timestamp"])
        for nb_name, nb in result["notebooks"].items():
            for name, g in nb["grades"].items():
                grade = gb.find_grade(name, nb_name, assignment, student)
                grade.auto_score = g["auto_score"]
                if nb["submitted"]:
                    grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
                else:
                    grade.needs_manual_grade = g["needs_manual_grade"]
            for name, text in nb["comments"].items():
                gb.find_comment(name, nb_name, assignment, student).auto_comment = text
            snb = gb.find_submission_notebook(nb_name, assignment, student)
            snb.flagged = snb.flagged or nb["flagged"]
            snb.late_submission_penalty = nb["late_submission_penalty"]
        gb.db.commit()
    dst = course.root / "autograded" / student / assignment
    tmp = dst.parent / f".{assignment}.labkit-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    for rel, data in result["autograded"].items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    tmp.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
