"""Grader integrity: broken and hostile submissions (tests/course/hostile.py) get exactly their
intended score, in one batch with a control student, and a second run gives the same grades.

One course copy in a temporary folder; the whole class is graded through
``labkit.course.parallel.grade`` with 2 processes, then a sample (``REGRADE``: kernel deaths,
patches, repairs, the control) is re-graded with 1 process: equal grades show the run is
idempotent and that sharding changes nothing. The course's own nbgrader_config.py is used, with a
shorter cell timeout, a 3 GiB kernel memory limit and a 128 MiB scratch so the memory hog and the
disk filler are cheap to catch.

Then plain ``nbgrader autograde`` (tests/course/grade_worker.py, the course config) grades
``PLAIN`` on the whole course folder — every submission and the gradebook beside the kernel's
folder — one student without the sandbox (``LABKIT_UNSAFE_NO_SANDBOX=1``: graded, and says so)
and one where bwrap is not on PATH (refused, with the fix). The sandbox attacks (``SANDBOX_STUDENTS``)
need bubblewrap with user namespaces: skipped with the reason where it cannot start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from labkit.course.release import ASSIGNMENT, api_for, copy_course
from labkit.course.parallel import grade

from labkit.course.sandbox import MARKER, sandbox_problem

from .hostile import (GRADER_INIT_MARK, LATE_MARKER, LISTENER, MESSAGES, PLAIN, REGRADE, STUDENTS, full,
                      write_submission)

OVERRIDES = {"Execute.timeout": 60, "LimitedKernelManager.memory_limit_mb": 3072, "LimitedKernelManager.scratch_mb": 128}
WORKER = Path(__file__).parent / "grade_worker.py"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sandbox_problem() is not None, reason=f"no grading sandbox here: {sandbox_problem()}")]


def _scores(root: Path) -> dict:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "hw4-quantization") as gb:
        for student in [*STUDENTS, *PLAIN]:
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
    for student, spec in PLAIN.items():
        write_submission(root, root / "release" / ASSIGNMENT, student, spec, ASSIGNMENT)
    for student in ("plain_unsafe", "plain_refused"):
        write_submission(root, root / "release" / ASSIGNMENT, student, STUDENTS["control"], ASSIGNMENT)
    t0 = time.perf_counter()
    first = grade(ASSIGNMENT, root, jobs=2, students=sorted(STUDENTS), overrides=OVERRIDES)
    t1 = time.perf_counter()
    scores_first = _scores(root)
    second = grade(ASSIGNMENT, root, jobs=1, students=REGRADE, overrides=OVERRIDES)
    t2 = time.perf_counter()
    plain = {student: _plain_autograde(root, student) for student in PLAIN}
    no_bwrap = root.parent / "no-bwrap-bin"
    no_bwrap.mkdir()
    plain["plain_unsafe"] = _plain_autograde(root, "plain_unsafe", LABKIT_UNSAFE_NO_SANDBOX="1")
    plain["plain_refused"] = _plain_autograde(root, "plain_refused", PATH=str(no_bwrap))
    t3 = time.perf_counter()
    print(f"\nhostile corpus: {len(STUDENTS)} students with 2 jobs {t1 - t0:.0f}s; "
          f"{len(REGRADE)} re-graded with 1 job {t2 - t1:.0f}s; {len(plain)} with plain nbgrader autograde {t3 - t2:.0f}s")
    return {"root": root, "first": first, "second": second, "scores_first": scores_first, "scores": _scores(root),
            "plain": plain}


def _plain_autograde(root: Path, student: str, **env) -> dict:
    """``nbgrader autograde`` + ``generate_feedback`` for one student with the course config, in a
    subprocess whose environment gets ``env`` (tests/course/grade_worker.py)."""
    out = root.parent / f"plain-{student}.json"
    environ = {k: v for k, v in os.environ.items() if k != "LABKIT_UNSAFE_NO_SANDBOX"}
    proc = subprocess.run([sys.executable, str(WORKER), str(root), student, str(out), str(OVERRIDES["Execute.timeout"])],
                          capture_output=True, text=True, timeout=900, env={**environ, **env})
    assert proc.returncode == 0, f"grade_worker for {student} crashed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


def test_the_batch_goes_on_for_every_student(graded):
    for run, expected in ((graded["first"], STUDENTS), (graded["second"], REGRADE)):
        assert not run.failed, {s: why[-1500:] for s, why in run.failed.items()}
        assert sorted(run.graded) == sorted(expected)


@pytest.mark.parametrize("student", sorted([*STUDENTS, *PLAIN]))
def test_each_submission_gets_exactly_its_intended_score(graded, student):
    spec = {**STUDENTS, **PLAIN}[student]
    got = graded["scores"][student]
    for stem, expected in spec.expect.items():
        assert got[stem] == pytest.approx(expected), f"{student} ({spec.why}), {stem}: got {got[stem]}, expected {expected}"


def test_regrading_gives_the_same_grades(graded):
    """--force re-grading (in 1 process instead of 2) changes nobody's grades."""
    assert graded["scores_first"] == {s: v for s, v in graded["scores"].items() if s in STUDENTS}
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


def test_plain_nbgrader_grades_every_plain_student(graded):
    for student in PLAIN:
        r = graded["plain"][student]
        assert r["autograde_ok"], f"{student}: {r['autograde_log'][-2000:]}"


def test_grades_are_written_by_the_grader_only(graded):
    """plain_gradebook ran `UPDATE grade SET manual_score = 0` from its fill-in, next to the real
    gradebook.db: no manual score exists, the control keeps full marks."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['root'] / 'gradebook.db'}", "hw4-quantization") as gb:
        manual = [(g.student.id, g.name) for sub in gb.find_assignment(ASSIGNMENT).submissions
                  for nb in sub.notebooks for g in nb.grades if g.manual_score is not None]
    assert not manual, f"manual scores appeared without a grader: {manual[:5]}"
    assert graded["scores"]["control"]["01_absmax"] == pytest.approx(full("01_absmax"))


def test_no_socket_reached_the_machine(graded):
    LISTENER.settimeout(0.5)
    with pytest.raises(TimeoutError):
        conn, addr = LISTENER.accept()
        conn.close()
        pytest.fail(f"a submission connected to the grader's machine from {addr}")


def test_nothing_the_students_started_outlives_grading(graded):
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            if LATE_MARKER in (proc / "cmdline").read_bytes().decode(errors="replace"):
                alive.append(proc.name)
        except OSError:
            continue
    assert not alive, f"processes started by a submission are still running: {alive}"
    assert not list(graded["root"].rglob("late.txt"))


def test_disk_filler_left_nothing_behind(graded):
    assert not list(graded["root"].rglob("fill*.bin"))


def test_the_graders_own_code_is_untouched(graded):
    import labkit

    assert GRADER_INIT_MARK not in (Path(labkit.__file__).parent / "grading" / "__init__.py").read_text()


def test_inflated_points_do_not_reach_the_gradebook(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['root'] / 'gradebook.db'}", "hw4-quantization") as gb:
        nb = gb.find_submission_notebook("01_absmax", ASSIGNMENT, "metadata")
        max_scores = {g.name: g.max_score for g in nb.grades if g.cell_type == "code"}
    assert max_scores == pytest.approx(full("01_absmax"))


def test_every_autograded_notebook_says_whether_it_was_sandboxed(graded):
    root = graded["root"] / "autograded"
    sandboxed = nbformat.read(root / "control" / ASSIGNMENT / "01_absmax.ipynb", as_version=4)
    assert sandboxed.metadata[MARKER]["isolated"] is True
    unsafe = nbformat.read(root / "plain_unsafe" / ASSIGNMENT / "01_absmax.ipynb", as_version=4)
    assert unsafe.metadata[MARKER]["isolated"] is False and "LABKIT_UNSAFE_NO_SANDBOX" in unsafe.metadata[MARKER]["reason"]
    r = graded["plain"]["plain_unsafe"]
    assert r["autograde_ok"] and r["scores"]["01_absmax"]["test_absmax_quantize"][0] == 3
    page = (graded["root"] / "feedback" / "plain_unsafe" / ASSIGNMENT / "01_absmax.html").read_text()
    assert "Graded without the sandbox" in page


def test_grading_refuses_without_a_sandbox(graded):
    r = graded["plain"]["plain_refused"]
    assert not r["autograde_ok"]
    assert "refusing to grade" in r["autograde_log"] and "apt-get install bubblewrap" in r["autograde_log"], \
        r["autograde_log"][-2000:]
    assert not (graded["root"] / "autograded" / "plain_refused" / ASSIGNMENT / "01_absmax.ipynb").exists()
