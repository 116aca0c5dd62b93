"""The instructor's whole path on a temporary course with its own nbgrader_config.py, run the
way the docs say, from the course folder (slow: runs kernels):

zip (plain LMS naming) → labkit collect → labkit grade → a manual score through the formgrader's
REST API → nbgrader generate_feedback → nbgrader export → labkit grade-report, checking each
artifact; plus the one-line errors of the course commands (fast)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from labkit.course.folder import CourseError, find_course
from labkit.course.release import ASSIGNMENT

from .formgrader import formgrader
from .small_course import own_config, small_course, submission

FEEDBACK_CONFIG = ("from labkit.course.feedback import PendingGrades  # noqa: E402\n"
                   "from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402\n"
                   "c.GenerateFeedback.preprocessors = [PendingGrades, CSSHTMLHeaderPreprocessor]\n")


def auto_points(course: Path) -> float:
    """Points of the autograded (code) cells of the course's source notebooks."""
    total = 0.0
    for path in (course / "source" / ASSIGNMENT).glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("grade") and cell["cell_type"] == "code":
                total += meta["points"]
    return total


def labkit(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1800)


def nbgrader(*args, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_zip_collect_grade_formgrader_feedback_export_report(tmp_path):
    course = small_course(tmp_path / "course")
    config = own_config(course)
    config.write_text(config.read_text() + FEEDBACK_CONFIG)
    # s1 hands in a right 01_absmax, s2 one with a wrong dequantize; nobody hands in 02
    z = tmp_path / "hw4-submissions.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("s1_01_absmax.ipynb", json.dumps(submission(course, "solved")["01_absmax.ipynb"]))
        zf.writestr("s2_01_absmax-1.ipynb", json.dumps(submission(course, "wrong")["01_absmax.ipynb"]))

    out = labkit("collect", ASSIGNMENT, str(z), cwd=course)
    assert out.returncode == 0, out.stderr
    assert sorted(p.parent.name for p in course.glob(f"submitted/*/{ASSIGNMENT}")) == ["s1", "s2"]
    assert (course / "submitted" / "s2" / ASSIGNMENT / "01_absmax.ipynb").exists()

    out = labkit("grade", ASSIGNMENT, "--local-workers", "2", "--no-progress", cwd=course)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) <= 6, out.stdout  # header, rule, two students, the totals (+ nothing else)
    auto_max = auto_points(course)  # autograded points of 01 and 02, from the source notebooks
    assert lines[2].split()[:4] == ["s1", "5", "/", f"{auto_max:g}"], out.stdout  # 01: quantize 3 + dequantize 2
    assert lines[3].split()[:4] == ["s2", "3", "/", f"{auto_max:g}"], out.stdout  # dequantize wrong
    assert "graded 2, failed 0" in lines[-1]
    assert "Traceback" not in out.stderr and "checksum" not in out.stderr + out.stdout
    assert out.stderr.count("\n") < 10, out.stderr[-3000:]

    with formgrader(course) as fg:
        s1 = fg.grades(ASSIGNMENT, "01_absmax", "s1")
        assert s1["q_outlier"]["needs_manual_grade"] and s1["q_outlier"]["manual_score"] is None
        fg.set_manual_score(s1["q_outlier"]["id"], 1.5)
        fg.set_manual_score(s1["p_outlier"]["id"], 1.0)
        students = {s["id"]: s for s in fg.call("GET", "/formgrader/api/students")}
    assert all(s["first_name"] is not None and s["last_name"] is not None for s in students.values()), students

    nbgrader("generate_feedback", ASSIGNMENT, cwd=course)
    html1 = (course / "feedback" / "s1" / ASSIGNMENT / "01_absmax.html").read_text()
    html2 = (course / "feedback" / "s2" / ASSIGNMENT / "01_absmax.html").read_text()
    assert "Pending: this answer has not been graded yet" in html2  # s2's answers: nobody graded them
    assert "Pending: this answer has not been graded yet" not in html1  # s1's were graded: 1 and 1.5
    assert "1.5" in html1

    nbgrader("export", "--to", "grades.csv", cwd=course)
    with (course / "grades.csv").open() as fh:
        exported = {r["student_id"]: float(r["score"]) for r in csv.DictReader(fh) if r["assignment"] == ASSIGNMENT}
    assert exported == {"s1": 3 + 2 + 1.0 + 1.5, "s2": 3 + 0}  # s2's written answers still pending: 0 so far

    out = labkit("grade-report", ASSIGNMENT, "--course", "course", "--out", "report", cwd=tmp_path)  # relative path
    assert out.returncode == 0, out.stderr
    rows = {line.split()[1]: line.split() for line in out.stdout.splitlines() if line.startswith("01_absmax")}
    # handed in, mean, full, part, zero, pending, missing
    assert rows["test_absmax_dequantize"][4:] == ["2", "50%", "1", "0", "1", "0", "0"]
    assert rows["q_outlier"][4:] == ["2", "75%", "0", "1", "0", "1", "0"]
    assert "not handed in by anyone (left out above): 02_zero_point" in out.stdout
    assert (tmp_path / "report" / f"grade-report-{ASSIGNMENT}.png").stat().st_size > 5000
    with (tmp_path / "report" / f"grade-report-{ASSIGNMENT}.csv").open() as fh:
        assert {r["task"] for r in csv.DictReader(fh) if r["notebook"] == "01_absmax"} >= {"q_outlier"}


def test_course_folder_is_the_current_one_or_a_relative_path(tmp_path, monkeypatch):
    course = tmp_path / "mycourse"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    own_config(course)
    monkeypatch.chdir(course)
    here = find_course()
    assert (here.root, here.config_file) == (course, course / "nbgrader_config.py")
    assert here.db_url == f"sqlite:///{course / 'gradebook.db'}"
    monkeypatch.chdir(tmp_path)
    assert find_course("mycourse").root == course
    # a copy of the repository's config (root = <its folder>/autograde, which does not exist here)
    (course / "nbgrader_config.py").write_text((Path(__file__).resolve().parents[2] / "nbgrader_config.py").read_text())
    assert find_course("mycourse").root == course


def test_course_command_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (["grade", ASSIGNMENT], ["grade-report", ASSIGNMENT], ["collect", ASSIGNMENT, "nothing.zip"]):
        out = labkit(*args, cwd=tmp_path / "empty")
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
        assert "no source/ folder" in out.stderr or "does not exist" in out.stderr, out.stderr
    course = tmp_path / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    out = labkit("grade", ASSIGNMENT, cwd=course)
    assert out.returncode == 2 and "run `nbgrader generate_assignment hw4`" in out.stderr, out.stderr
    with pytest.raises(CourseError, match="does not exist"):
        find_course(tmp_path / "nowhere")
    assert os.path.isdir(tmp_path)
