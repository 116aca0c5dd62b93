"""``labkit grade hw4 --jobs N``: autograde a class in N processes, safely, then merge.

nbgrader's gradebook is one sqlite file and sqlite does not take concurrent writers, so running
``nbgrader autograde`` N times at once on one course corrupts or locks it. Instead:

1. **Shard.** Students (folders of ``submitted/``) are dealt round-robin into N shards.
2. **Copy.** Each shard gets a scratch course: the course's ``source/`` and ``release/``, a copy
   of ``gradebook.db`` (assignment, notebooks, cells, existing students) and only its students'
   submissions. Submissions are *cleaned on the copy* (the instructor's ``submitted/`` is never
   changed): a notebook that is not valid JSON is set aside, so it scores 0 while the student's
   other notebooks are still graded (plain nbgrader drops the whole assignment of that student);
   a renamed copy (``01_absmax-Copy1.ipynb``, ``01_absmax (2).ipynb``) of a missing notebook is
   graded under the expected name.
3. **Grade.** Each shard runs nbgrader's own ``Autograde`` (through ``NbGraderAPI``, with the
   course's ``nbgrader_config.py``) student by student in its own process and sqlite file.
4. **Merge**, in this process only, one writer: each graded student's ``autograded/`` folder is
   copied into the course, and the autograder's fields (auto score, auto comment, timestamp) are
   written into the course gradebook with nbgrader's ``Gradebook`` API. Manual scores already
   given in the formgrader are kept; a cell is flagged for manual grading exactly as nbgrader's
   ``SaveAutoGrades`` would.

``--jobs 1`` runs the same pipeline with one shard. A student whose grading fails keeps their
previous results and is listed in the returned ``GradeRun.failed`` (exit code 1).

    labkit grade hw4 --jobs 2                 # from the repository root (course: autograde/)
    labkit grade hw4 --jobs 4 --student alice --student bob
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .release import ASSIGNMENT, COURSE, REPO

CONFIG = REPO / "nbgrader_config.py"


@dataclass
class GradeRun:
    """What one ``grade`` call did: graded students, failures with their reason, notes, seconds."""

    graded: list[str]
    failed: dict[str, str]
    notes: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    jobs: int = 1


def find_students(root: Path | str, assignment: str = ASSIGNMENT) -> list[str]:
    """Student ids with a ``submitted/<id>/<assignment>/`` folder, sorted."""
    sub = Path(root) / "submitted"
    return sorted(p.parent.name for p in sub.glob(f"*/{assignment}") if p.is_dir())


def clean_submission(folder: Path, expected: list[str]) -> list[str]:
    """Fix a *copied* submission folder in place; returns one note per change.

    ``expected``: notebook stems of the assignment. Invalid JSON → renamed ``*.ipynb.invalid``
    (nbgrader then counts the notebook as missing: 0 points). A missing notebook with exactly
    one renamed copy (same stem followed by ``-Copy1``, `` (2)``, ``_v2``…) → renamed back.
    """
    notes = []
    for nb in sorted(folder.glob("*.ipynb")):
        try:
            data = json.loads(nb.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or "cells" not in data:
                raise ValueError("not a notebook (no 'cells')")
        except (ValueError, UnicodeDecodeError) as exc:
            nb.rename(nb.with_name(nb.name + ".invalid"))
            notes.append(f"{nb.name} is not a valid notebook ({str(exc)[:80]}): graded as missing (0 points)")
    present = {p.stem for p in folder.glob("*.ipynb")}
    for stem in expected:
        if stem in present:
            continue
        copies = [p for p in folder.glob("*.ipynb")
                  if p.stem not in expected and re.fullmatch(re.escape(stem) + r"[\s_\-.(]*(copy)?[\s_\-.]*\d*\)?", p.stem, re.I)]
        if len(copies) == 1:
            copies[0].rename(folder / f"{stem}.ipynb")
            notes.append(f"{copies[0].name} graded as {stem}.ipynb (renamed copy, original missing)")
    return notes


def _expected_notebooks(root: Path, assignment: str) -> list[str]:
    return sorted(p.stem for p in (root / "source" / assignment).glob("*.ipynb"))


def _make_shard(root: Path, dst: Path, assignment: str, students: list[str]) -> dict[str, list[str]]:
    for name in ("source", "release"):
        if (root / name).exists():
            shutil.copytree(root / name, dst / name)
    shutil.copy2(root / "gradebook.db", dst / "gradebook.db")
    expected = _expected_notebooks(root, assignment)
    notes = {}
    for student in students:
        src = root / "submitted" / student / assignment
        shutil.copytree(src, dst / "submitted" / student / assignment)
        notes[student] = clean_submission(dst / "submitted" / student / assignment, expected)
    return notes


def _worker(spec_path: str) -> int:
    """Grade the students of one shard (run in its own process); writes a JSON result file."""
    from .release import api_for, load_config

    spec = json.loads(Path(spec_path).read_text())
    config = load_config(spec["root"], spec["config"])
    for key, value in spec.get("overrides", {}).items():
        section, trait = key.split(".")
        setattr(getattr(config, section), trait, value)
    api = api_for(spec["root"], config)
    results = {}
    for student in spec["students"]:
        out = api.autograde(spec["assignment"], student, force=True, create=True)
        results[student] = {"success": bool(out.get("success")),
                            "error": (out.get("error") or "")[-3000:] + (out.get("log") or "")[-3000:]}
    Path(spec["result"]).write_text(json.dumps(results))
    return 0


def _merge(root: Path, shard: Path, assignment: str, student: str, course_id: str) -> None:
    from nbgrader.api import Gradebook

    src_dir = shard / "autograded" / student / assignment
    dst_dir = root / "autograded" / student / assignment
    if dst_dir.exists():
        shutil.rmtree(dst_dir)
    shutil.copytree(src_dir, dst_dir)
    with Gradebook(f"sqlite:///{shard / 'gradebook.db'}", course_id) as sgb, \
            Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        s_student = sgb.find_student(student)
        gb.update_or_create_student(student, first_name=s_student.first_name, last_name=s_student.last_name,
                                    email=s_student.email, lms_user_id=s_student.lms_user_id)
        s_sub = sgb.find_submission(assignment, student)
        gb.update_or_create_submission(assignment, student, timestamp=s_sub.timestamp)
        for s_nb in s_sub.notebooks:
            for s_grade in s_nb.grades:
                grade = gb.find_grade(s_grade.name, s_nb.name, assignment, student)
                grade.auto_score = s_grade.auto_score
                grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            for s_comment in s_nb.comments:
                gb.find_comment(s_comment.name, s_nb.name, assignment, student).auto_comment = s_comment.auto_comment
            nb = gb.find_submission_notebook(s_nb.name, assignment, student)
            nb.flagged = nb.flagged or s_nb.flagged
        gb.db.commit()


def grade(assignment: str = ASSIGNMENT, root: Path | str = COURSE, jobs: int = 2, students: list[str] | None = None,
          config_file: Path | str = CONFIG, overrides: dict | None = None) -> GradeRun:
    """Autograde ``students`` (default: every submitted folder) of ``assignment`` in ``jobs``
    processes and merge the results into the course at ``root`` (see the module docstring).
    ``overrides``: config values for the workers, e.g. ``{"Execute.timeout": 10}``."""
    from .release import _venv_on_path, load_config

    t0 = time.perf_counter()
    root = Path(root).resolve()
    _venv_on_path()
    if not (root / "gradebook.db").exists():
        raise FileNotFoundError(f"{root}/gradebook.db not found: run `nbgrader generate_assignment {assignment}` first")
    students = list(students) if students else find_students(root, assignment)
    missing = [s for s in students if not (root / "submitted" / s / assignment).is_dir()]
    if missing:
        raise FileNotFoundError(f"no submission folder for {missing} under {root / 'submitted'}/<student>/{assignment}")
    course_id = load_config(root, config_file).CourseDirectory.course_id
    jobs = max(1, min(int(jobs), len(students) or 1))
    shards = [students[i::jobs] for i in range(jobs)]
    run = GradeRun(graded=[], failed={}, jobs=jobs)
    with tempfile.TemporaryDirectory(prefix="labkit-grade-") as tmp:
        procs = []
        for k, shard_students in enumerate(shards):
            shard = Path(tmp) / f"shard{k}"
            run.notes.update({s: n for s, n in _make_shard(root, shard, assignment, shard_students).items() if n})
            spec = {"root": str(shard), "config": str(config_file), "assignment": assignment,
                    "students": shard_students, "result": str(shard / "result.json"), "overrides": overrides or {}}
            (shard / "spec.json").write_text(json.dumps(spec))
            log = open(shard / "worker.log", "w")
            procs.append((shard, shard_students, log, subprocess.Popen(
                [sys.executable, "-m", "labkit.course.parallel", "--worker", str(shard / "spec.json")],
                stdout=log, stderr=subprocess.STDOUT, cwd=str(shard))))
        for shard, shard_students, log, proc in procs:
            proc.wait()
            log.close()
            result_file = shard / "result.json"
            results = json.loads(result_file.read_text()) if result_file.exists() else {}
            for student in shard_students:
                r = results.get(student)
                if r is None or not r["success"] or not (shard / "autograded" / student / assignment).is_dir():
                    why = r["error"] if r else (shard / "worker.log").read_text()[-3000:]
                    run.failed[student] = why
                    continue
                _merge(root, shard, assignment, student, course_id)
                run.graded.append(student)
    run.seconds = time.perf_counter() - t0
    return run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", nargs="?", default=ASSIGNMENT, help="assignment id (default hw4)")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="grading processes (default 2)")
    parser.add_argument("--student", action="append", help="grade only this student (repeatable)")
    parser.add_argument("--course", default=str(COURSE), help="course root (default: autograde/)")
    parser.add_argument("--timeout", type=int, default=None, help="override the per-cell timeout (seconds)")
    parser.add_argument("--config", default=str(CONFIG), help="nbgrader config file (default: the repository's)")


def run(args: argparse.Namespace) -> int:
    overrides = {"Execute.timeout": args.timeout} if args.timeout else None
    result = grade(args.assignment, args.course, jobs=args.jobs, students=args.student, config_file=args.config,
                   overrides=overrides)
    for student, notes in result.notes.items():
        for note in notes:
            print(f"note  {student}: {note}")
    for student, why in result.failed.items():
        print(f"FAILED {student}:\n{why}\n")
    print(f"graded {len(result.graded)} students with {result.jobs} jobs in {result.seconds:.1f} s"
          + (f"; {len(result.failed)} failed: {', '.join(result.failed)}" if result.failed else ""))
    return 1 if result.failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return _worker(argv[1])
    parser = argparse.ArgumentParser(prog="python -m labkit.course.parallel", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
