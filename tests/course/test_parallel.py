"""labkit.course.parallel: submissions are repaired on a copy (unit, no kernel). Grading itself
(Dask, a killed worker, resume, equality with serial nbgrader) is tested in test_dask_grade.py."""

from __future__ import annotations

import json

from labkit.course.sanitize import clean_submission

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
