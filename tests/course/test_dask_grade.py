"""labkit grade on Dask (slow: runs kernels). A class of four on notebooks 01–02, graded on a
LocalCluster while one worker is killed mid-task, must get exactly the grades plain serial
`nbgrader autograde` gives, each student merged once; a second run grades only what is missing."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time

import pytest

from labkit.course.gradebook import is_graded
from labkit.course.parallel import format_summary, grade
from labkit.course.release import ASSIGNMENT, api_for

from .small_course import hand_in, scores, small_course

pytestmark = pytest.mark.slow

STUDENTS = {"ann": "solved", "bob": "wrong", "cid": "untouched", "dee": "only02"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = small_course(tmp_path_factory.mktemp("dask") / "base")
    for student, kind in STUDENTS.items():
        hand_in(root, student, kind)
    return root


@pytest.fixture(scope="module")
def serial(base, tmp_path_factory):
    """The reference: nbgrader's own autograde, one student after the other, on a copy."""
    root = tmp_path_factory.mktemp("serial") / "course"
    shutil.copytree(base, root)
    api = api_for(root)
    for student in STUDENTS:
        out = api.autograde(ASSIGNMENT, student, force=True, create=True)
        assert out["success"], out.get("error", "")[-2000:]
    return scores(root)


@pytest.fixture(scope="module")
def killed_run(base, tmp_path_factory):
    """Grade on a 2-worker LocalCluster; kill the process of a worker that has been grading for
    a few seconds. Returns the course, the run and the killed worker's address."""
    from distributed import Client, LocalCluster

    root = tmp_path_factory.mktemp("dask_run") / "course"
    shutil.copytree(base, root)
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      memory_limit=0, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        box: dict = {}
        thread = threading.Thread(target=lambda: box.update(run=grade(ASSIGNMENT, root, scheduler=cluster.scheduler_address)))
        thread.start()
        killed, first_seen, deadline = None, None, time.time() + 900
        while killed is None and thread.is_alive() and time.time() < deadline:
            busy = [w for w, keys in client.processing().items() if any(str(k).startswith("grade-") for k in keys)]
            if busy and first_seen is None:
                first_seen = time.time()
            if busy and time.time() - first_seen > 8:  # well inside a task (one takes ~20-60 s here)
                killed = busy[0]
                pid = client.run(os.getpid, workers=[killed])[killed]
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        thread.join(timeout=1800)
    return root, box.get("run"), killed


def test_a_killed_worker_loses_no_student_and_grades_equal_serial_nbgrader(killed_run, serial):
    root, run, killed = killed_run
    assert killed is not None, "no worker was seen grading: the fault was never injected"
    assert run is not None, "grade() did not return"
    assert not run.failed, run.failed
    assert sorted(run.graded) == sorted(STUDENTS) and len(run.graded) == len(set(run.graded))
    got = scores(root)
    assert got == serial
    assert got[("ann", "01_absmax", "test_absmax_dequantize")] == (2.0, False)
    assert got[("bob", "01_absmax", "test_absmax_dequantize")][0] == 0.0
    for student in STUDENTS:
        assert is_graded(root, student, ASSIGNMENT)
    table = format_summary(run)
    assert "graded 4, failed 0" in table and "median" in table
    row = {r.student: r for r in run.rows}
    assert row["dee"].missing == 1 and row["ann"].missing == 1 and row["ann"].failed_checks == 0
    assert row["bob"].failed_checks >= 1


def test_a_second_run_grades_only_what_is_missing(killed_run, serial):
    root, _, _ = killed_run
    shutil.rmtree(root / "autograded" / "bob")  # as if the run had stopped before bob
    again = grade(ASSIGNMENT, root, local_workers=1)
    assert again.graded == ["bob"] and sorted(again.skipped) == ["ann", "cid", "dee"] and not again.failed
    assert scores(root) == serial


def test_a_notebook_handed_in_again_makes_the_student_due(tmp_path):
    sub, done = tmp_path / "submitted" / "eve" / ASSIGNMENT, tmp_path / "autograded" / "eve" / ASSIGNMENT
    sub.mkdir(parents=True)
    done.mkdir(parents=True)
    (sub / "01_absmax.ipynb").write_text("{}")
    assert not is_graded(tmp_path, "eve", ASSIGNMENT)  # nothing autograded yet
    (done / "01_absmax.ipynb").write_text("{}")
    os.utime(sub / "01_absmax.ipynb", (time.time() - 60, time.time() - 60))
    assert is_graded(tmp_path, "eve", ASSIGNMENT)
    (sub / "01_absmax.ipynb").write_text('{"again": 1}')  # handed in again after grading
    os.utime(sub / "01_absmax.ipynb", (time.time() + 60, time.time() + 60))
    assert not is_graded(tmp_path, "eve", ASSIGNMENT)
