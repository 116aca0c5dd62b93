"""``labkit grade-report hw4``: which blanks does the class miss most? Read from the gradebook.

For every graded cell of the assignment (autograded tests and manually graded answers) it
collects each student's score (the manual score where a grader gave one, else the autograder's)
and reports, per task, three groups that must not be mixed up:

* ``submitted`` — students who handed in the cell's notebook, split into ``full`` / ``partial`` /
  ``zero`` (wrong) and ``pending`` (a written answer no grader has scored yet);
* ``not_submitted`` — students with a submission of the assignment but not of this notebook
  (nbgrader scores those cells 0; here they are neither "wrong" nor in the mean);
* ``mean`` — the class average over the scored answers, as a fraction of the cell's points.

Which notebooks a student handed in is read from ``autograded/<student>/<assignment>/`` (a
student without that folder counts as having handed in everything the gradebook holds).
Rows are sorted by ``mean``, lowest first: the top of the table is where the next lecture should
start; tasks of notebooks nobody handed in are listed apart at the end and left out of the figure.
``report_figure`` draws, per task, the share of the students who handed it in with full, partial,
zero marks and still pending (grey), so a half-graded question is not a red bar.
Worked example: 40 students handed in, ``test_absmax_quantize`` (3 points), 28 right, 8 with the
scale only (1 point), 4 with nothing: mean (28·3 + 8·1) / (40·3) = 77 %, full 28, partial 8, zero 4.

The report also lists notebooks graded without the sandbox (``labkit_sandbox.isolated`` false in
the autograded notebook's metadata, e.g. after ``labkit grade --unsafe-no-sandbox``).

    labkit grade-report hw4                    # table on stdout (from the course folder)
    labkit grade-report hw4 --out artifacts/   # + grade-report-hw4.csv and .png
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from .release import ASSIGNMENT


@dataclass(frozen=True)
class TaskStats:
    """Class statistics of one graded cell."""

    notebook: str
    task: str           # the cell's grade_id
    kind: str           # "autograded" or "manual"
    max_points: float
    submitted: int      # students who handed in this notebook
    graded: int         # of those, answers with a score (in the mean)
    mean: float         # average score of the graded answers / max_points (0..1)
    full: int
    partial: int
    zero: int           # handed in and scored 0 (wrong), not "missing"
    pending: int        # handed in, written answer not graded yet
    not_submitted: int  # students with a submission of the assignment but not of this notebook


def handed_in(root: Path, student: str, assignment: str, notebook: str) -> bool:
    """Did ``student`` hand in ``notebook``? Known from the autograded folder; True when unknown."""
    folder = Path(root) / "autograded" / student / assignment
    return not folder.is_dir() or (folder / f"{notebook}.ipynb").exists()


def task_stats(assignment: str = ASSIGNMENT, root: Path | str | None = None, course_id: str | None = None,
               db_url: str | None = None) -> list[TaskStats]:
    """Per-task statistics over all submissions of ``assignment``, lowest mean first, tasks that
    nobody handed in last. ``root``: the course root (default: the course of the current folder)."""
    from .folder import CourseError, find_course

    if course_id is None:
        course = find_course(root)
        root, course_id, db_url = course.root, course.course_id, db_url or course.db_url
    root = Path(root)
    db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///"):]).exists():
        raise CourseError(f"no gradebook at {db_url[len('sqlite:///'):]}: run `nbgrader generate_assignment "
                          f"{assignment}` and `labkit grade {assignment}` in {root} first")
    from nbgrader.api import Gradebook, MissingEntry

    from .release import _venv_on_path

    _venv_on_path()
    values: dict[tuple[str, str], dict[str, list]] = {}
    meta: dict[tuple[str, str], tuple[str, float]] = {}
    with Gradebook(db_url, course_id) as gb:
        try:
            assignment_row = gb.find_assignment(assignment)
        except MissingEntry:
            raise CourseError(f"assignment {assignment!r} is not in the gradebook: run `nbgrader generate_assignment "
                              f"{assignment}` in {root} first") from None
        for nb in assignment_row.notebooks:
            for cell in nb.grade_cells:
                key = (nb.name, cell.name)
                meta[key] = ("autograded" if cell.cell_type == "code" else "manual", float(cell.max_score))
                values[key] = {"scores": [], "pending": [], "missing": []}
        for sub in assignment_row.submissions:
            for snb in sub.notebooks:
                present = handed_in(root, sub.student.id, assignment, snb.name)
                for g in snb.grades:
                    key = (snb.name, g.name)
                    if key not in values:
                        continue
                    if not present:
                        values[key]["missing"].append(sub.student.id)
                    elif g.manual_score is None and (g.needs_manual_grade or g.auto_score is None):
                        values[key]["pending"].append(sub.student.id)
                    else:
                        values[key]["scores"].append(float(g.score))
    rows = []
    for (nb, task), v in values.items():
        kind, max_points = meta[(nb, task)]
        got = v["scores"]
        mean = sum(got) / (len(got) * max_points) if got and max_points else 0.0
        rows.append(TaskStats(nb, task, kind, max_points, submitted=len(got) + len(v["pending"]), graded=len(got),
                              mean=round(mean, 4), full=sum(x >= max_points - 1e-9 for x in got),
                              partial=sum(0 < x < max_points - 1e-9 for x in got), zero=sum(x <= 0 for x in got),
                              pending=len(v["pending"]), not_submitted=len(v["missing"])))
    return sorted(rows, key=lambda r: (r.submitted == 0, r.graded == 0, r.mean, r.notebook, r.task))


def unsandboxed(root: Path | str, assignment: str = ASSIGNMENT) -> list[tuple[str, str, str]]:
    """(student, notebook, reason) of autograded notebooks whose metadata says the kernel ran
    outside the sandbox (``labkit_sandbox.isolated`` false)."""
    import json

    found = []
    for path in sorted(Path(root).glob(f"autograded/*/{assignment}/*.ipynb")):
        try:
            info = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("labkit_sandbox")
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(info, dict) and info.get("isolated") is False:
            found.append((path.parent.parent.name, path.stem, str(info.get("reason", ""))))
    return found


def format_table(rows: list[TaskStats]) -> str:
    """A fixed-width text table, one line per task; tasks nobody handed in listed apart."""
    head = (f"{'notebook':<18} {'task':<30} {'kind':<10} {'pts':>4} {'handed in':>9} {'mean':>6} {'full':>5} "
            f"{'part':>5} {'zero':>5} {'pending':>7} {'missing':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.submitted:
            mean = f"{r.mean:.0%}" if r.graded else "-"
            lines.append(f"{r.notebook:<18} {r.task:<30} {r.kind:<10} {r.max_points:>4g} {r.submitted:>9} {mean:>6} "
                         f"{r.full:>5} {r.partial:>5} {r.zero:>5} {r.pending:>7} {r.not_submitted:>7}")
    nobody = sorted({r.notebook for r in rows if not r.submitted})
    if nobody:
        lines.append(f"not handed in by anyone (left out above): {', '.join(nobody)}")
    lines.append("mean: over scored answers; zero: handed in and wrong; pending: written answers not graded yet; "
                 "missing: notebook not handed in")
    return "\n".join(lines)


def report_figure(rows: list[TaskStats], title: str = "Which blanks the class misses most"):
    """Stacked bars per task (share of the students who handed it in: full, partial, zero,
    pending), most missed on top; the class mean at the right end; the legend above the bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if r.submitted]
    fig = Figure(figsize=(8.5, 0.38 * max(len(rows), 3) + 1.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    labels = [f"{r.notebook} · {r.task}" for r in rows][::-1]
    left = [0.0] * len(rows)
    for field_name, color, label in (("full", "tab:green", "full marks"), ("partial", "tab:orange", "partial"),
                                     ("zero", "tab:red", "zero (wrong)"), ("pending", "0.75", "not graded yet")):
        share = [getattr(r, field_name) / r.submitted for r in rows][::-1]
        ax.barh(labels, share, left=left, color=color, label=label)
        left = [a + b for a, b in zip(left, share)]
    for i, r in enumerate(rows[::-1]):
        ax.text(1.01, i, f"{r.mean:.0%}" if r.graded else "-", va="center", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("share of the students who handed the notebook in (class mean of scored answers on the right)")
    ax.set_title(title + f" (n = {max(r.submitted for r in rows) if rows else 0} handed in)", pad=26)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=8, frameon=False)
    ax.tick_params(axis="y", labelsize=8)
    fig.subplots_adjust(left=0.42, right=0.95, top=0.86, bottom=0.12)
    return fig


def write_report(rows: list[TaskStats], out_dir: Path | str, assignment: str = ASSIGNMENT) -> tuple[Path, Path]:
    """Write ``grade-report-<assignment>.csv`` and ``.png`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out_dir / f"grade-report-{assignment}.csv", out_dir / f"grade-report-{assignment}.png"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(TaskStats.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    report_figure(rows, f"{assignment}: which blanks the class misses most").savefig(png_path)
    return csv_path, png_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", nargs="?", default=ASSIGNMENT)
    parser.add_argument("--course", default=None, help="course folder (default: the current directory, like nbgrader)")
    parser.add_argument("--config", default=None, help="nbgrader config (default: the course folder's)")
    parser.add_argument("--out", default=None, help="folder for the CSV and PNG (default: print only)")


def run(args: argparse.Namespace) -> int:
    from .folder import find_course

    course = find_course(args.course, args.config)
    rows = task_stats(args.assignment, course.root, course.course_id, course.db_url)
    print(format_table(rows))
    for student, notebook, reason in unsandboxed(course.root, args.assignment):
        print(f"graded WITHOUT the sandbox: {student} {notebook}" + (f" ({reason})" if reason else ""))
    if args.out:
        for path in write_report(rows, args.out, args.assignment):
            print(f"wrote {path}")
    return 0
