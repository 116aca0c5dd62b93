"""Feedback pages that say "pending" for written answers no grader has scored yet.

nbgrader's ``generate_feedback`` shows every graded cell as ``Score: x / y``. A written answer
still waiting for a grader has no score, so it appears as ``0.0 / 2.0`` — which a student reads
as "wrong", and which is what happens whenever feedback is sent before hand-grading is finished.
``PendingGrades`` is nbgrader's ``GetGrades`` plus one rule: a cell that needs a manual grade and
has none gets, in the comment box under it, "Pending: not graded yet — the 0 shown is a
placeholder", and the cell's metadata says ``pending: true``. Scores are not changed.

Enable it in ``nbgrader_config.py``::

    from labkit.course.feedback import PendingGrades
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    c.GenerateFeedback.preprocessors = [PendingGrades, CSSHTMLHeaderPreprocessor]
"""

from __future__ import annotations

from nbgrader.preprocessors import GetGrades

PENDING = ("Pending: this answer has not been graded yet. The score shown (0) is a placeholder "
           "until a grader scores it; the total above does not include it.")


class PendingGrades(GetGrades):
    """``GetGrades`` that marks unscored manual answers as pending (module docstring)."""

    def _get_score(self, cell, resources) -> None:
        super()._get_score(cell, resources)
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        if grade.manual_score is None and grade.needs_manual_grade:
            cell.metadata.nbgrader["pending"] = True
            comment = cell.metadata.nbgrader.get("comment") or ""
            cell.metadata.nbgrader["comment"] = PENDING + (f"\n\n{comment}" if comment else "")
