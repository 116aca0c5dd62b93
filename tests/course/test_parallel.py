"""labkit.course.parallel: submissions are repaired on a copy (unit, no kernel), and a class graded
with --jobs 2 gets exactly the grades plain serial `nbgrader autograde` gives (slow: runs kernels)."""

from __future__ import annotations

import json
import shutil

import pytest

from labkit.course.release import ASSIGNMENT, api_for, copy_course
from labkit.course.parallel import clean_submission, find_students, grade

NB = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_invalid_json_is_set_aside_and_a_lone_renamed_copy_renamed_back(tmp_path):
    (tmp_path / "01_absmax.ipynb").write_text('{"cells": [ oops')
    (tmp_path / "02_zero_point-Copy1.ipynb").write_text(json.dumps(NB))
    (tmp_path / "03_granularity (1).ipynb").write_text(json.dumps(NB))
    (tmp_path / "03_granularity-Copy2.ipynb").write_text(json.dumps(NB))  # two copies: ambiguous, left alone
    (tmp_path / "04_gptq.ipynb").write_text(json.dumps(NB))
    notes = clean_submission(tmp_path, ["01_absmax", "02_zero_point", "03_granularity", "04_gptq"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["01_absmax.ipynb.invalid", "02_zero_point.ipynb", "03_granularity (1).ipynb",
                     "03_granularity-Copy2.ipynb", "04_gptq.ipynb"]
    assert len(notes) == 2 and "not a valid notebook" in notes[0] and "graded as 02_zero_point.ipynb" in notes[1]


def test_a_json_file_that_is_not_a_notebook_is_invalid(tmp_path):
    (tmp_path / "01_absmax.ipynb").write_text("[1, 2, 3]")
    assert clean_submission(tmp_path, ["01_absmax"]) and not (tmp_path / "01_absmax.ipynb").exists()


@pytest.mark.slow
def test_parallel_grades_equal_serial_nbgrader(tmp_path):
    import nbformat
    from nbgrader.api import Gradebook

    from labkit.course.bench_grade import _solved_submission

    base = copy_course(tmp_path / "base")
    assert api_for(base).generate_assignment(ASSIGNMENT, force=True, create=True)["success"]
    release = json.loads((base / "release" / ASSIGNMENT / "01_absmax.ipynb").read_text())
    solved = _solved_submission(release, json.loads((base / "source" / ASSIGNMENT / "01_absmax.ipynb").read_text()))
    wrong = json.loads(json.dumps(solved))
    for cell in wrong["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "absmax_dequantize":
            cell["source"] = "def absmax_dequantize(q, scale):\n    return q * 1.0\n"
    for student, nb in (("ann", solved), ("bob", wrong), ("cid", release)):
        folder = base / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nbformat.from_dict(nb), folder / "01_absmax.ipynb")
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    shutil.copytree(base, serial)
    shutil.copytree(base, parallel)
    api = api_for(serial)
    for student in find_students(serial):
        assert api.autograde(ASSIGNMENT, student, force=True, create=True)["success"]
    run = grade(ASSIGNMENT, parallel, jobs=2)
    assert not run.failed and sorted(run.graded) == ["ann", "bob", "cid"]

    def scores(root):
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "hw4-quantization") as gb:
            return {(s.student.id, nb.name, g.name): (g.auto_score, g.needs_manual_grade)
                    for s in gb.find_assignment(ASSIGNMENT).submissions for nb in s.notebooks for g in nb.grades}

    got, expected = scores(parallel), scores(serial)
    assert got == expected
    assert got[("ann", "01_absmax", "test_absmax_dequantize")] == (2.0, False)
    assert got[("bob", "01_absmax", "test_absmax_dequantize")][0] == 0.0
    for student in ("ann", "bob", "cid"):
        assert (parallel / "autograded" / student / ASSIGNMENT / "01_absmax.ipynb").exists()
