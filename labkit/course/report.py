"""``labkit grade-report hw4``: which blanks does the class miss most? Read from the gradebook.

For every graded cell of the assignment (autograded tests and manually graded answers) it
collects each submitted student's score (the manual score where a grader gave one, else the
autograder's) and reports, per task:

* ``mean`` — the class average as a fraction of the cell's points;
* ``full`` / ``partial`` / ``zero`` — how many students got all, some or none of the points;
* ``ungraded`` — answers still waiting for manual grading (not counted in the mean).

Rows are sorted by ``mean``, lowest first: the top of the table is where the next lecture should
start. ``report_figure`` draws the same as stacked horizontal bars (share of the class with full,
partial and zero marks per task). Worked example: 40 students, ``test_absmax_quantize`` (3 points),
28 right, 8 with the scale only (1 point), 4 with nothing: mean (28·3 + 8·1) / (40·3) = 77 %,
full 28, partial 8, zero 4.

    labkit grade-report hw4                    # table on stdout
    labkit grade-report hw4 --out artifacts/   # + grade-report-hw4.csv and .png
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from .release import ASSIGNMENT, COURSE


@dataclass(frozen=True)
class TaskStats:
    """Class statistics of one graded cell."""

    notebook: str
    task: str          # the cell's grade_id
    kind: str          # "autograded" or "manual"
    max_points: float
    students: int      # submissions with a score for this cell
    mean: float        # class average / max_points (0..1)
    full: int
    partial: int
    zero: int
    ungraded: int


def task_stats(assignment: str = ASSIGNMENT, root: Path | str = COURSE, course_id: str | None = None) -> list[TaskStats]:
    """Per-task statistics over all submissions of ``assignment``, lowest mean first."""
    from nbgrader.api import Gradebook

    from .release import _venv_on_path

    _venv_on_path()
    db = Path(root) / "gradebook.db"
    if not db.exists():
        raise FileNotFoundError(f"{db} not found: run `nbgrader generate_assignment {assignment}` and autograde first")
    if course_id is None:
        from .release import load_config

        course_id = load_config(root).CourseDirectory.course_id
    scores: dict[tuple[str, str], list] = {}
    meta: dict[tuple[str, str], tuple[str, float]] = {}
    with Gradebook(f"sqlite:///{db}", course_id) as gb:
        assignment_row = gb.find_assignment(assignment)
        for nb in assignment_row.notebooks:
            for cell in nb.grade_cells:
                key = (nb.name, cell.name)
                meta[key] = ("autograded" if cell.cell_type == "code" else "manual", float(cell.max_score))
                scores[key] = []
        for sub in assignment_row.submissions:
            for snb in sub.notebooks:
                for g in snb.grades:
                    key = (snb.name, g.name)
                    if key in scores:
                        scores[key].append(None if g.needs_manual_grade and g.manual_score is None else g.score)
    rows = []
    for (nb, task), values in scores.items():
        kind, max_points = meta[(nb, task)]
        got = [float(v) for v in values if v is not None]
        mean = sum(got) / (len(got) * max_points) if got and max_points else 0.0
        rows.append(TaskStats(nb, task, kind, max_points, len(got), round(mean, 4),
                              full=sum(v >= max_points - 1e-9 for v in got),
                              partial=sum(0 < v < max_points - 1e-9 for v in got),
                              zero=sum(v <= 0 for v in got), ungraded=len(values) - len(got)))
    return sorted(rows, key=lambda r: (r.students == 0, r.mean, r.notebook, r.task))


def format_table(rows: list[TaskStats]) -> str:
    """A fixed-width text table, one line per task."""
    head = f"{'notebook':<18} {'task':<34} {'kind':<10} {'pts':>4} {'n':>4} {'mean':>6} {'full':>5} {'part':>5} {'zero':>5} {'todo':>5}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.notebook:<18} {r.task:<34} {r.kind:<10} {r.max_points:>4g} {r.students:>4} {r.mean:>6.0%} "
                     f"{r.full:>5} {r.partial:>5} {r.zero:>5} {r.ungraded:>5}")
    return "\n".join(lines)


def report_figure(rows: list[TaskStats], title: str = "Which blanks the class misses most"):
    """Stacked bars (full / partial / zero share of the class) per task, most missed on top."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if r.students]
    fig = Figure(figsize=(8, 0.38 * max(len(rows), 3) + 1.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    labels = [f"{r.notebook} · {r.task}" for r in rows][::-1]
    left = [0.0] * len(rows)
    for field_name, color, label in (("full", "tab:green", "full marks"), ("partial", "tab:orange", "partial"),
                                     ("zero", "tab:red", "zero")):
        share = [getattr(r, field_name) / r.students for r in rows][::-1]
        ax.barh(labels, share, left=left, color=color, label=label)
        left = [a + b for a, b in zip(left, share)]
    for i, r in enumerate(rows[::-1]):
        ax.text(1.01, i, f"{r.mean:.0%}", va="center", fontsize=8)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("share of students (class mean on the right)")
    ax.set_title(title + f" (n = {max(r.students for r in rows) if rows else 0})")
    ax.legend(loc="lower right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    fig.subplots_adjust(left=0.42, right=0.95, top=0.9, bottom=0.12)
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
    parser.add_argument("--course", default=str(COURSE), help="course root (default: autograde/)")
    parser.add_argument("--out", default=None, help="folder for the CSV and PNG (default: print only)")


def run(args: argparse.Namespace) -> int:
    rows = task_stats(args.assignment, args.course)
    print(format_table(rows))
    if args.out:
        for path in write_report(rows, args.out, args.assignment):
            print(f"wrote {path}")
    return 0
