"""``labkit grade hw4``: autograde a class on Dask — a laptop, a lab server or a cluster.

One task per student (``labkit.course.cluster.grade_student``): the course bundle and the student's
submission travel with it as bytes, the worker grades with nbgrader's ``Autograde`` and the course
config on a temporary copy, and sends back the autograded notebooks and the cells' scores. This
process alone writes the gradebook and ``autograded/`` (``labkit.course.gradebook``), one student
at a time, as results arrive — so the gradebook has one writer even when it is sqlite, and a
PostgreSQL gradebook (``LABKIT_GRADEBOOK_URL``) is written while TAs grade in the formgrader.

Where it runs:

    labkit grade hw4                              # 2 local worker processes (LocalCluster on 127.0.0.1)
    labkit grade hw4 --local-workers 4            # (--jobs 4 is the same)
    labkit grade hw4 --scheduler tcp://head:8786  # an existing Dask cluster (e.g. dask-jobqueue on Slurm)

What it guarantees:

- **Submissions are repaired on the copy** (``clean_submission``; ``submitted/`` is never changed): a
  notebook that is not valid JSON scores 0 while the student's other notebooks are graded, and a
  lone renamed copy (``01_absmax-Copy1.ipynb``) of a missing notebook is graded under its name.
- **A worker that dies** mid-task: the scheduler gives its students to another worker (tasks have no
  side effects); each student is merged once. A submission that kills 4 workers is reported failed.
- **Resume**: a student whose ``autograded/`` folder is newer than the submission is skipped, so an
  interrupted run started again grades only what is missing; ``--force`` grades everyone again.
  Students named with ``--student`` are always graded.
- **Same grades as** ``nbgrader autograde hw4`` run serially on the same submissions (tested), manual
  scores already given in the formgrader kept.
- A progress bar with an ETA on stderr, then one table: student, auto points, failed checks,
  notebooks not handed in, answers waiting for a grader, seconds; then graded / failed (with the
  reason) / skipped and seconds per student (median, max). Exit code 1 when a student failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .release import ASSIGNMENT


@dataclass(frozen=True)
class StudentRow:
    """One line of the run's table."""

    student: str
    points: float          # autograded points
    max_points: float      # autograded points available
    failed_checks: int     # autograded cells below full marks in submitted notebooks
    missing: int           # notebooks not handed in
    pending: int           # written answers waiting for a grader
    seconds: float


@dataclass
class GradeRun:
    """What one ``grade`` call did."""

    graded: list[str]
    failed: dict[str, str]                      # student -> one-line reason
    skipped: list[str] = field(default_factory=list)   # already graded (resume)
    notes: dict[str, list[str]] = field(default_factory=dict)
    rows: list[StudentRow] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    unsafe_no_sandbox: bool = False
    unsandboxed: list[str] = field(default_factory=list)  # "student/notebook" graded outside the sandbox

    @property
    def jobs(self) -> int:  # the old name of ``workers``
        return self.workers


def find_students(root: Path | str, assignment: str = ASSIGNMENT) -> list[str]:
    """Student ids with a ``submitted/<id>/<assignment>/`` folder, sorted."""
    sub = Path(root) / "submitted"
    return sorted(p.parent.name for p in sub.glob(f"*/{assignment}") if p.is_dir())


def _row(result: dict) -> StudentRow:
    points = max_points = 0.0
    failed = missing = pending = 0
    for nb in result["notebooks"].values():
        missing += not nb["submitted"]
        for g in nb["grades"].values():
            if g["cell_type"] == "code":
                max_points += g["max_score"] or 0
                points += g["auto_score"] or 0
                failed += bool(nb["submitted"] and (g["auto_score"] or 0) < (g["max_score"] or 0) - 1e-9)
            elif nb["submitted"] and g["auto_score"] is None:
                pending += 1
    return StudentRow(result["student"], points, max_points, failed, missing, pending, round(result["seconds"], 1))


def _unsandboxed(result: dict) -> list[str]:
    """Notebooks whose kernel ran outside the sandbox: ``labkit_sandbox.isolated`` false in the
    autograded notebook's metadata (written by labkit.course.sandbox)."""
    out = []
    for rel, data in result["autograded"].items():
        if rel.endswith(".ipynb"):
            try:
                info = json.loads(data).get("metadata", {}).get("labkit_sandbox")
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(info, dict) and info.get("isolated") is False:
                out.append(rel[:-len(".ipynb")])
    return out


def _reason(exc: BaseException) -> str:
    if type(exc).__name__ == "KilledWorker":
        return "the worker grading this student died several times (a submission that crashes its grader?)"
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def grade(assignment: str = ASSIGNMENT, course=None, *, local_workers: int = 2, scheduler: str | None = None,
          students: list[str] | None = None, force: bool = False, overrides: dict | None = None,
          unsafe_no_sandbox: bool = False, progress: bool = False, jobs: int | None = None) -> GradeRun:
    """Autograde ``students`` (default: every folder in ``submitted/`` not graded yet) of
    ``assignment`` on Dask and write the results into ``course`` (a ``Course``, a folder, or None
    for the current directory; see ``labkit.course.folder``). ``overrides``: config values for the
    workers, e.g. ``{"Execute.timeout": 10}``. ``jobs`` is the old name of ``local_workers``."""
    from distributed import as_completed

    from .cluster import course_bundle, dask_client, grade_student, read_submission
    from .folder import Course, find_course
    from .gradebook import is_graded, save_result

    t0 = time.perf_counter()
    course = course if isinstance(course, Course) else find_course(course)
    course.require_assignment(assignment)
    local_workers = jobs if jobs is not None else local_workers
    named = bool(students)
    students = list(students) if students else find_students(course.root, assignment)
    missing = [s for s in students if not (course.root / "submitted" / s / assignment).is_dir()]
    if missing:
        raise FileNotFoundError(f"no submission folder for {', '.join(missing)} under "
                                f"{course.root / 'submitted'}/<student>/{assignment}")
    if not students:
        raise FileNotFoundError(f"no submissions: {course.root / 'submitted'}/<student>/{assignment}/ is empty "
                                f"(collect them first: labkit collect {assignment} ZIP)")
    todo = students if (force or named) else [s for s in students if not is_graded(course.root, s, assignment)]
    run = GradeRun(graded=[], failed={}, skipped=[s for s in students if s not in todo],
                   unsafe_no_sandbox=unsafe_no_sandbox)
    if not todo:
        run.seconds = time.perf_counter() - t0
        return run
    if not unsafe_no_sandbox:
        from .sandbox import check_sandbox
        check_sandbox()  # refuse once, with the reason and the fix, rather than fail every student
    bundle = course_bundle(course, assignment)
    with dask_client(scheduler, min(local_workers, len(todo))) as client:
        run.workers = len(client.scheduler_info().get("workers", {})) or 1
        bundle_future = client.scatter(bundle, broadcast=True)
        futures = {}
        for student in todo:
            files = read_submission(course.root / "submitted" / student / assignment)
            fut = client.submit(grade_student, bundle_future, student, files, assignment, overrides or {},
                                unsafe_no_sandbox, key=f"grade-{assignment}-{student}-{time.time_ns()}", pure=False)
            futures[fut] = student
        bar = _progress(len(todo), progress)
        for fut in as_completed(futures):
            student = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - any task failure is that student's failure
                run.failed[student] = _reason(exc)
            else:
                if result.get("notes"):
                    run.notes[student] = result["notes"]
                if result["ok"]:
                    save_result(course, assignment, result)
                    run.graded.append(student)
                    run.unsandboxed += [f"{student}/{nb}" for nb in _unsandboxed(result)]
                    run.rows.append(_row(result))
                else:
                    run.failed[student] = result["error"]
            bar.update(1)
            bar.set_postfix_str(f"failed {len(run.failed)}" if run.failed else "")
        bar.close()
    run.rows.sort(key=lambda r: r.student)
    run.seconds = time.perf_counter() - t0
    return run


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="student", desc="grading", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True)


def format_summary(run: GradeRun) -> str:
    """The table a run prints: one line per graded student, then failures, notes and totals."""
    lines = []
    if run.rows:
        head = f"{'student':<20} {'auto points':>13} {'failed checks':>13} {'not handed in':>13} {'to grade':>8} {'seconds':>8}"
        lines += [head, "-" * len(head)]
        for r in run.rows:
            lines.append(f"{r.student:<20} {f'{r.points:g} / {r.max_points:g}':>13} {r.failed_checks:>13} "
                         f"{r.missing:>13} {r.pending:>8} {r.seconds:>8.1f}")
    for student, notes in sorted(run.notes.items()):
        for note in notes:
            lines.append(f"note    {student}: {note}")
    for student, why in sorted(run.failed.items()):
        lines.append(f"FAILED  {student}: {why}")
    per = [r.seconds for r in run.rows]
    timing = f"; seconds per student: median {statistics.median(per):.1f}, max {max(per):.1f}" if per else ""
    lines.append(f"graded {len(run.graded)}, failed {len(run.failed)}, skipped {len(run.skipped)} (already graded; "
                 f"--force to redo) on {run.workers} worker(s) in {run.seconds:.1f} s{timing}")
    if run.unsafe_no_sandbox or run.unsandboxed:
        lines.append(f"graded WITHOUT the sandbox ({'--unsafe-no-sandbox' if run.unsafe_no_sandbox else 'sandbox unavailable'}"
                     f"): {', '.join(run.unsandboxed) or 'every notebook'} — student code ran with your privileges")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", nargs="?", default=ASSIGNMENT, help="assignment id (default hw4)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local-workers", "--jobs", "-j", dest="local_workers", type=int, default=2,
                       help="grading processes on this machine (a Dask LocalCluster; default 2)")
    where.add_argument("--scheduler", default=None,
                       help="address of a running Dask scheduler, e.g. tcp://head:8786 (workers need labkit installed)")
    parser.add_argument("--student", action="append", help="grade only this student, even if graded (repeatable)")
    parser.add_argument("--force", action="store_true", help="grade again students already graded")
    parser.add_argument("--course", default=None,
                        help="course folder (default: the current directory, like nbgrader); relative paths are fine")
    parser.add_argument("--config", default=None, help="nbgrader config (default: the course folder's nbgrader_config.py)")
    parser.add_argument("--timeout", type=int, default=None, help="override the per-cell timeout (seconds)")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run student code without the sandbox (sets LABKIT_UNSAFE_NO_SANDBOX=1 on the workers)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from .folder import find_course

    course = find_course(args.course, args.config)
    overrides = {"Execute.timeout": args.timeout} if args.timeout else None
    result = grade(args.assignment, course, local_workers=args.local_workers, scheduler=args.scheduler,
                   students=args.student, force=args.force, overrides=overrides,
                   unsafe_no_sandbox=args.unsafe_no_sandbox, progress=not args.no_progress)
    print(format_summary(result))
    return 1 if result.failed else 0


def main(argv: list[str] | None = None) -> int:
    from labkit.cli_common import run_command

    parser = argparse.ArgumentParser(prog="python -m labkit.course.parallel", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_command("grade", run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
