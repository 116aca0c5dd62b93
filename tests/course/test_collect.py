"""labkit collect: zips built the way Canvas, Moodle and a plain `studentid_notebook.ipynb` export
name their files, collected through nbgrader's zip_collect into submitted/<id>/hw4/ with the
expected notebook names, late markers kept as timestamps, and a zip that matches nothing refused
with the reason. No kernel runs (seconds)."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from labkit.course.collect import RAW_PATTERNS, CollectError, collect, recognise
from labkit.course.folder import find_course
from labkit.course.release import ASSIGNMENT

from .small_course import small_course

EXPECTED = {"01_absmax.ipynb", "02_zero_point.ipynb"}
DUE = datetime(2026, 12, 1, 23, 59)


def nb(tag: str) -> str:
    return json.dumps({"cells": [], "metadata": {"tag": tag}, "nbformat": 4, "nbformat_minor": 5})


def make_zip(path: Path, entries: dict[str, tuple[str, datetime]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, (text, when) in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=when.timetuple()[:6]), text)
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return small_course(tmp_path_factory.mktemp("collect") / "course")


@pytest.fixture
def course(base, tmp_path):
    import shutil

    root = tmp_path / "course"
    shutil.copytree(base, root)
    return root


def stored(root: Path) -> dict[str, dict[str, str]]:
    """{student: {file name: the tag inside the notebook (or the timestamp text)}}."""
    out = {}
    for folder in sorted((root / "submitted").glob(f"*/{ASSIGNMENT}")):
        files = {}
        for f in sorted(folder.iterdir()):
            files[f.name] = f.read_text().strip() if f.suffix == ".txt" else json.loads(f.read_text())["metadata"]["tag"]
        out[folder.parent.name] = files
    return out


def test_canvas_zip_with_a_reupload_a_late_marker_and_junk(course, tmp_path):
    z = make_zip(tmp_path / "submissions.zip", {
        "lovelaceada_48213_901233_01_absmax.ipynb": (nb("ada-first"), datetime(2026, 11, 30, 10, 0)),
        "lovelaceada_48213_901234_01_absmax-1.ipynb": (nb("ada-reupload"), datetime(2026, 12, 2, 9, 0)),
        "lovelaceada_48213_901235_02_zero_point.ipynb": (nb("ada-02"), datetime(2026, 11, 30, 10, 5)),
        "hoppergrace_LATE_55120_901300_01_absmax.ipynb": (nb("grace"), datetime(2026, 12, 1, 12, 0)),
        "turingalan_61234_901400_notes.txt": ("hi", datetime(2026, 11, 30, 8, 0)),
        "turingalan_61234_901401_homework.ipynb": (nb("alan"), datetime(2026, 11, 30, 8, 0)),
    })
    got = collect(ASSIGNMENT, z, course, due=DUE)
    assert got.lms == {"canvas"} and got.late == ["55120"]
    assert sorted(got.skipped) == ["turingalan_61234_901400_notes.txt", "turingalan_61234_901401_homework.ipynb"]
    files = stored(course)
    assert set(files) == {"48213", "55120"}
    # the re-upload (newer) wins and is stored under the expected name; Canvas said "on time",
    # so its timestamp is held at the due date; the late one is after it
    assert files["48213"] == {"01_absmax.ipynb": "ada-reupload", "02_zero_point.ipynb": "ada-02",
                              "timestamp.txt": "2026-12-01 23:59:00"}
    assert files["55120"] == {"01_absmax.ipynb": "grace", "timestamp.txt": "2026-12-01 23:59:01"}
    assert (course / "downloaded" / ASSIGNMENT / "archive" / "submissions.zip").exists()


def test_moodle_zip_in_folders_and_flat_names_with_student_names(course, tmp_path):
    z = make_zip(tmp_path / "moodle.zip", {
        "Ada Lovelace_1234567_assignsubmission_file_/01_absmax.ipynb": (nb("ada"), datetime(2026, 11, 30, 9, 0)),
        "Ada Lovelace_1234567_assignsubmission_onlinetext_/onlinetext.html": ("<p>hi</p>", datetime(2026, 11, 30, 9, 0)),
        "Grace B Hopper_7654321_assignsubmission_file_02_zero_point.ipynb": (nb("grace"), datetime(2026, 11, 29, 9, 0)),
    })
    got = collect(ASSIGNMENT, z, course)
    assert got.lms == {"moodle"} and got.skipped == ["Ada Lovelace_1234567_assignsubmission_onlinetext_/onlinetext.html"]
    files = stored(course)
    assert files["1234567"]["01_absmax.ipynb"] == "ada" and files["7654321"]["02_zero_point.ipynb"] == "grace"
    with find_course(course).gradebook() as gb:
        ada, grace = gb.find_student("1234567"), gb.find_student("7654321")
        assert (ada.first_name, ada.last_name) == ("Ada", "Lovelace")
        assert (grace.first_name, grace.last_name) == ("Grace B", "Hopper")


def test_plain_studentid_notebook_zip(course, tmp_path):
    z = make_zip(tmp_path / "plain.zip", {
        "s1234567_01_absmax.ipynb": (nb("a"), datetime(2026, 11, 30, 9, 0)),
        "s_12_02_zero_point.ipynb": (nb("b"), datetime(2026, 11, 30, 9, 0)),  # an id with an underscore
        "readme.txt": ("x", datetime(2026, 11, 30, 9, 0)),
    })
    got = collect(ASSIGNMENT, z, course)
    assert got.lms == {"plain"} and got.skipped == ["readme.txt"]
    files = stored(course)
    assert files["s1234567"]["01_absmax.ipynb"] == "a" and files["s_12"]["02_zero_point.ipynb"] == "b"
    with find_course(course).gradebook() as gb:  # only ids known: the formgrader shows the id, not "None, None"
        row = gb.find_student("s1234567")
        assert (row.first_name, row.last_name) == ("", "s1234567")


def test_a_zip_that_matches_nothing_is_refused_with_the_reason(course, tmp_path):
    z = make_zip(tmp_path / "odd.zip", {"homework.ipynb": (nb("x"), datetime(2026, 11, 30, 9, 0))})
    with pytest.raises(CollectError, match=r"nothing in odd.zip matched .*01_absmax.ipynb.*first files: homework.ipynb"):
        collect(ASSIGNMENT, z, course)
    assert not (course / "submitted").exists() or not any((course / "submitted").iterdir())


def test_the_cli_exits_nonzero_with_one_line(course, tmp_path):
    import subprocess
    import sys

    z = make_zip(tmp_path / "odd.zip", {"homework.ipynb": (nb("x"), datetime(2026, 11, 30, 9, 0))})
    proc = subprocess.run([sys.executable, "-m", "labkit.cli", "collect", ASSIGNMENT, str(z)], cwd=course,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "nothing in odd.zip matched" in proc.stderr, proc.stderr


@pytest.mark.parametrize("name, expected", [
    ("lovelaceada_late_48213_901233_01_absmax-1.ipynb", ("canvas", "48213", "01_absmax.ipynb", True)),
    ("Ada Lovelace_1234567_assignsubmission_file_/02_zero_point.ipynb", ("moodle", "1234567", "02_zero_point.ipynb", False)),
    ("s1_01_absmax.ipynb", ("plain", "s1", "01_absmax.ipynb", False)),
    ("s1_01_absmax (2).ipynb", None),
])
def test_recognise(name, expected):
    got = recognise(name, EXPECTED)
    assert (got and (got.lms, got.student_id, got.notebook, got.late)) == expected


@pytest.mark.parametrize("lms, name, student, file_id", [
    ("plain", "s1234567_01_absmax.ipynb", "s1234567", "01_absmax.ipynb"),
    ("canvas", "lovelaceada_LATE_48213_901233_01_absmax.ipynb", "48213", "01_absmax.ipynb"),
    ("moodle", "Ada Lovelace_1234567_assignsubmission_file_/01_absmax.ipynb", "1234567", "01_absmax.ipynb"),
])
def test_raw_nbgrader_patterns_match_absolute_paths_and_are_documented(lms, name, student, file_id):
    """The patterns INSTRUCTORS.md gives for plain `nbgrader zip_collect` work on the absolute
    path nbgrader hands its collector plugin."""
    from nbgrader.plugins import FileNameCollectorPlugin

    plugin = FileNameCollectorPlugin(named_regexp=RAW_PATTERNS[lms])
    info = plugin.collect(f"/home/ta/course/downloaded/hw4/extracted/submissions/{name}")
    assert info and (info["student_id"], info["file_id"]) == (student, file_id)
    doc = (Path(__file__).resolve().parents[2] / "autograde" / "INSTRUCTORS.md").read_text()
    assert RAW_PATTERNS[lms] in doc, f"INSTRUCTORS.md does not show the {lms} pattern"
