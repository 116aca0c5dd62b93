"""Autograde one student on one course copy and dump the scores (run as a subprocess by the tests,
so several students are graded in parallel, each with its own gradebook).

    python tests/course/grade_worker.py COURSE_ROOT STUDENT OUT_JSON
"""

import json
import sys
import time
from pathlib import Path

from labkit.course.release import ASSIGNMENT, api_for, load_config


def main(root: str, student: str, out: str) -> None:
    config = load_config(root)
    if len(sys.argv) > 4:  # a test may shorten the course's cell timeout
        config.Execute.timeout = int(sys.argv[4])
    api = api_for(root, config)
    t0 = time.time()
    auto = api.autograde(ASSIGNMENT, student, force=True, create=True)
    t1 = time.time()
    feedback = api.generate_feedback(ASSIGNMENT, student, force=True)
    t2 = time.time()
    from nbgrader.api import Gradebook

    from nbgrader.api import MissingEntry

    scores = {}
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        try:
            submission = gb.find_submission(ASSIGNMENT, student)
        except MissingEntry:  # grading refused before the submission was recorded
            submission = None
        for nb in submission.notebooks if submission else []:
            scores[nb.name] = {g.name: [g.auto_score, g.max_score, g.cell_type] for g in nb.grades}
    Path(out).write_text(json.dumps({
        "autograde_ok": auto["success"], "autograde_log": auto.get("log", "") + auto.get("error", ""),
        "feedback_ok": feedback["success"], "feedback_log": feedback.get("log", "") + feedback.get("error", ""),
        "seconds_autograde": t1 - t0, "seconds_feedback": t2 - t1, "scores": scores,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:4])
