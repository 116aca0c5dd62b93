"""One autograde run of the whole hw4 course on a temporary copy, shared by the course tests.

The repository's autograde/ is only read. In a temporary folder we copy the source, run
``generate_assignment`` once, then give every simulated student a copy of that course (its own
gradebook, since nbgrader's sqlite must not have concurrent writers) and autograde + generate
feedback for all students in parallel subprocesses (``grade_worker.py``).

Students:
  solutions  every fill-in and written answer from the source solutions (all notebooks)
  untouched  the released notebooks as they are (all notebooks)
  one_wrong  04_gptq with a wrong quantize_column, everything else right
  partial    01_absmax with truncated codes in absmax_quantize (right scale: partial credit)
  loop       05_smoothquant with an infinite loop in apply_smoothing
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from labkit.course.release import ASSIGNMENT, COURSE, api_for, copy_course

HERE = Path(__file__).parent
SOURCE = COURSE / "source" / ASSIGNMENT
COURSE_TIMEOUT = 60  # seconds per cell, as in nbgrader_config.py
LOOP_TIMEOUT = 15  # the infinite-loop student's run uses a short one to stay cheap

WRONG = {  # (notebook, grade_id) -> replacement source of that fill-in cell
    ("04_gptq", "quantize_column"): (
        "def quantize_column(col, n_bits=8):\n"
        "    return np.round(col * 10) / 10   # wrong: a fixed grid, no absmax scale\n"),
    ("01_absmax", "absmax_quantize"): (
        "def absmax_quantize(x):\n"
        "    scale = np.max(np.abs(x)) / 127\n"
        "    return (x / scale).astype(np.int8), scale   # right scale, truncated codes\n"),
    ("05_smoothquant", "apply_smoothing"): (
        "def apply_smoothing(X, W, s):\n"
        "    while True:   # an infinite loop\n"
        "        pass\n"),
}
STUDENTS = {
    "solutions": {"notebooks": None, "edits": {}},
    "untouched": {"notebooks": None, "edits": None},
    "one_wrong": {"notebooks": ["04_gptq"], "edits": {k: v for k, v in WRONG.items() if k[0] == "04_gptq"}},
    "partial": {"notebooks": ["01_absmax"], "edits": {k: v for k, v in WRONG.items() if k[0] == "01_absmax"}},
    "loop": {"notebooks": ["05_smoothquant"], "edits": {k: v for k, v in WRONG.items() if k[0] == "05_smoothquant"},
             "timeout": LOOP_TIMEOUT},
}


def strip_delimiters(source: str) -> str:
    """A student's answer: the solution without nbgrader's delimiter lines."""
    return "\n".join(line for line in source.split("\n") if not re.search(r"### (BEGIN|END) SOLUTION", line))


def source_notebooks() -> dict[str, nbformat.NotebookNode]:
    return {p.stem: nbformat.read(p, as_version=4) for p in sorted(SOURCE.glob("*.ipynb"))}


def solution_cells(nb) -> dict[str, str]:
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def make_submission(release_nb, source_nb, stem: str, edits) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    if edits is None:
        return nb
    sols = solution_cells(source_nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            gid = meta["grade_id"]
            cell.source = edits.get((stem, gid), strip_delimiters(sols[gid]))
    return nb


@pytest.fixture(scope="session")
def course_run(tmp_path_factory):
    """Generate, submit, autograde and generate feedback; returns paths, timings and scores."""
    t0 = time.time()
    base = tmp_path_factory.mktemp("hw4course")
    root = copy_course(base / "course")
    gen = api_for(root).generate_assignment(ASSIGNMENT, force=True, create=True)
    assert gen["success"], gen.get("error", "") + gen.get("log", "")
    release = root / "release" / ASSIGNMENT
    sources = source_notebooks()
    t_generate = time.time() - t0

    procs, outs = {}, {}
    for student, spec in STUDENTS.items():
        sroot = base / f"course_{student}"
        shutil.copytree(root, sroot)
        sub = sroot / "submitted" / student / ASSIGNMENT
        sub.mkdir(parents=True)
        for stem in spec["notebooks"] or sources:
            rel = nbformat.read(release / f"{stem}.ipynb", as_version=4)
            nbformat.write(make_submission(rel, sources[stem], stem, spec["edits"]), sub / f"{stem}.ipynb")
        outs[student] = base / f"{student}.json"
        procs[student] = subprocess.Popen(
            [sys.executable, str(HERE / "grade_worker.py"), str(sroot), student, str(outs[student]), str(spec.get("timeout", COURSE_TIMEOUT))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = {}
    for student, proc in procs.items():
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"grading worker for {student} failed:\n{log[-3000:]}"
        results[student] = json.loads(outs[student].read_text())
        results[student]["root"] = str(base / f"course_{student}")
    return {"root": root, "release": release, "sources": sources, "results": results,
            "seconds_generate": t_generate, "seconds_total": time.time() - t0}
