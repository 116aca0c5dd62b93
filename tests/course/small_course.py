"""A small hw4 course for the grading tests: notebooks 01–02 only, generated once, plus students.

``small_course(dst)`` copies ``autograde/source/hw4`` keeping ``01_absmax`` and ``02_zero_point``
(every hw4 check and nbgrader feature these tests need, seconds per student instead of minutes)
and runs ``generate_assignment``. ``hand_in(root, student, kind)`` writes a submission:

  solved    01_absmax with every fill-in from the source solution, written answers included
  wrong     01_absmax solved except a dequantize that forgets the scale
  untouched 01_absmax as released
  only02    02_zero_point solved, 01_absmax not handed in
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from labkit.course.bench_grade import _solved_submission
from labkit.course.release import ASSIGNMENT, api_for, copy_course

KEEP = ("01_absmax", "02_zero_point")


def small_course(dst: Path) -> Path:
    root = copy_course(dst)
    for nb in (root / "source" / ASSIGNMENT).glob("*.ipynb"):
        if nb.stem not in KEEP:
            nb.unlink()
    out = api_for(root).generate_assignment(ASSIGNMENT, force=True, create=True)
    assert out["success"], out.get("error", "") + out.get("log", "")
    return root


def solved(root: Path, stem: str) -> dict:
    release = json.loads((root / "release" / ASSIGNMENT / f"{stem}.ipynb").read_text())
    source = json.loads((root / "source" / ASSIGNMENT / f"{stem}.ipynb").read_text())
    return _solved_submission(release, source)


def submission(root: Path, kind: str) -> dict[str, dict]:
    """{file name: notebook JSON} handed in by a student of this ``kind`` (module docstring)."""
    if kind == "solved":
        return {"01_absmax.ipynb": solved(root, "01_absmax")}
    if kind == "wrong":
        nb = solved(root, "01_absmax")
        for cell in nb["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("grade_id") == "absmax_dequantize":
                cell["source"] = "def absmax_dequantize(q, scale):\n    return q * 1.0\n"
        return {"01_absmax.ipynb": nb}
    if kind == "untouched":
        return {"01_absmax.ipynb": json.loads((root / "release" / ASSIGNMENT / "01_absmax.ipynb").read_text())}
    if kind == "only02":
        return {"02_zero_point.ipynb": solved(root, "02_zero_point")}
    raise ValueError(f"unknown submission kind {kind!r}")


def hand_in(root: Path, student: str, kind: str) -> Path:
    folder = root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in submission(root, kind).items():
        nbformat.write(nbformat.from_dict(nb), folder / name)
    return folder


def scores(root: Path, course_id: str = "hw4-quantization", db_url: str | None = None) -> dict:
    """{(student, notebook, cell): (auto_score, needs_manual_grade)} of every submission."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url or f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        return {(s.student.id, nb.name, g.name): (g.auto_score, g.needs_manual_grade)
                for s in gb.find_assignment(ASSIGNMENT).submissions for nb in s.notebooks for g in nb.grades}


def own_config(root: Path) -> Path:
    """Give the course folder its own ``nbgrader_config.py``, as an instructor's copy has: the
    repository's course config with the course root set to this folder."""
    from labkit.course.folder import REPO_CONFIG

    path = root / "nbgrader_config.py"
    path.write_text("import os\n"
                    "c = get_config()  # noqa: F821\n"
                    f"load_subconfig({str(REPO_CONFIG)!r})  # noqa: F821  the course config\n"
                    "c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))\n")
    return path
