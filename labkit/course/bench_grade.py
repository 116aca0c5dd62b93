"""``labkit bench-grade``: students per minute of ``labkit grade`` with 1, 2, … local Dask workers.

Builds a throw-away course (a temporary copy of ``autograde/source``), releases it, hands in the
same solved notebook(s) for ``--students`` simulated students, then grades the whole class once
per ``--local-workers`` value on fresh copies and reports wall time (cluster start and the course
bundle included, as an instructor would wait), students per minute and the speed-up against the
first value measured in the same run. Grades must agree across runs (a benchmark that changed
grades would be measuring a bug); a disagreement is an error.

    labkit bench-grade --students 8 --local-workers 1 2 --notebooks 01_absmax

The work is CPU-bound (kernel start-up imports numpy, torch and matplotlib, then runs the
notebook), so the speed-up is capped by the number of free cores; on a shared machine it also
depends on what else runs — the load average is printed with the result.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .release import ASSIGNMENT, COURSE, api_for, copy_course


@dataclass(frozen=True)
class BenchResult:
    workers: int
    students: int
    seconds: float
    speedup: float  # against the first workers value of the run
    points: float = 0.0           # autograded points of the whole class (0 would mean nothing ran right)
    max_points: float = 0.0

    @property
    def per_minute(self) -> float:
        return 60.0 * self.students / self.seconds


def _solved_submission(release_nb: dict, source_nb: dict) -> dict:
    import re

    solutions = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in source_nb["cells"]
                 if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    nb = json.loads(json.dumps(release_nb))
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and gid in solutions:
            cell["source"] = "\n".join(l for l in solutions[gid].split("\n") if not re.search(r"### (BEGIN|END) SOLUTION", l))
    return nb


def _scores(root: Path) -> dict:
    from nbgrader.api import Gradebook

    from .release import load_config

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", load_config(root).CourseDirectory.course_id) as gb:
        return {(s.student.id, nb.name, g.name): g.auto_score
                for s in gb.find_assignment(ASSIGNMENT).submissions for nb in s.notebooks for g in nb.grades}


def bench(students: int = 8, workers: tuple[int, ...] = (1, 2), notebooks: tuple[str, ...] = ("01_absmax",),
          course: Path | str = COURSE) -> list[BenchResult]:
    """Grade ``students`` solved submissions of ``notebooks`` once per ``workers`` value; wall times."""
    from .parallel import grade

    results = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-grade-") as tmp:
        base = copy_course(Path(tmp) / "base", course)
        gen = api_for(base).generate_assignment(ASSIGNMENT, force=True, create=True)
        if not gen.get("success"):
            raise RuntimeError(gen.get("error", "") + gen.get("log", ""))
        for k in range(students):
            folder = base / "submitted" / f"student{k:03d}" / ASSIGNMENT
            folder.mkdir(parents=True)
            for stem in notebooks:
                release = json.loads((base / "release" / ASSIGNMENT / f"{stem}.ipynb").read_text())
                source = json.loads((base / "source" / ASSIGNMENT / f"{stem}.ipynb").read_text())
                (folder / f"{stem}.ipynb").write_text(json.dumps(_solved_submission(release, source)))
        reference = None
        for n in workers:
            root = Path(tmp) / f"workers{n}"
            shutil.copytree(base, root)
            t0 = time.perf_counter()
            run = grade(ASSIGNMENT, root, local_workers=n)
            seconds = time.perf_counter() - t0
            if run.failed:
                raise RuntimeError(f"grading failed for {sorted(run.failed)} with --local-workers {n}: "
                                   f"{next(iter(run.failed.values()))}")
            scores = _scores(root)
            if reference is None:
                reference = scores
            elif scores != reference:
                raise RuntimeError(f"--local-workers {n} gave different grades from --local-workers {workers[0]}")
            base_seconds = results[0].seconds if results else seconds
            results.append(BenchResult(n, students, round(seconds, 1), round(base_seconds / seconds, 2),
                                       sum(r.points for r in run.rows), sum(r.max_points for r in run.rows)))
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--local-workers", "--jobs", dest="workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to compare (default 1 2)")
    parser.add_argument("--notebooks", nargs="+", default=["01_absmax"], help="notebook stems each student hands in")


def run(args: argparse.Namespace) -> int:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.students} students x {', '.join(args.notebooks)}; {os.cpu_count()} cores, load average {load:.1f}")
    for r in bench(args.students, tuple(args.workers), tuple(args.notebooks)):
        print(f"--local-workers {r.workers}: {r.seconds:7.1f} s  {r.per_minute:5.2f} students/min  "
              f"({r.seconds / r.students:5.1f} s/student)  speed-up x{r.speedup:.2f}  "
              f"autograded points {r.points:g} / {r.max_points:g}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end {load:.1f}")
    return 0
