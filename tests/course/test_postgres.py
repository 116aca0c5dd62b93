"""A PostgreSQL gradebook end to end (slow: runs kernels; skipped without Debian's postgresql).

A real server (initdb + pg_ctl in a temporary folder, listening only on a unix socket; as root it
runs as the unprivileged user ``nobody``) holds the gradebook named by ``LABKIT_GRADEBOOK_URL``:
generate → labkit grade on 2 local Dask workers → two formgraders (two TAs) saving manual scores
at the same time through the formgrader's REST API → nbgrader export, and the grades checked."""

from __future__ import annotations

import csv
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from labkit.course.parallel import grade
from labkit.course.release import ASSIGNMENT

from .formgrader import formgrader
from .small_course import hand_in, own_config, scores, small_course

pytestmark = pytest.mark.slow


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres():
    """The URL of an empty database on a private PostgreSQL server."""
    psycopg2 = pytest.importorskip("psycopg2")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb); `make test` installs "
                    "Debian's postgresql as root")
    as_user: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="labkit-pg-", dir="/tmp"))  # short: a unix socket path has ~100 bytes
    if os.geteuid() == 0:  # postgres refuses to run as root
        import pwd

        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        nobody = pwd.getpwnam("nobody")
        os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
        as_user = [runuser, "-u", "nobody", "--"]
    data, log = tmp / "data", tmp / "server.log"

    def run(*cmd):
        out = subprocess.run([*as_user, *map(str, cmd)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{cmd[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"

    run(bindir / "initdb", "-D", data, "-U", "grader", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "120",
        "-o", f"-k {tmp} -c listen_addresses='' -c fsync=off", "start")
    try:
        con = psycopg2.connect(host=str(tmp), user="grader", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE gradebook")
        con.close()
        yield f"postgresql+psycopg2://grader@/gradebook?host={tmp}"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def test_generate_grade_two_tas_and_export_on_postgres(postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_GRADEBOOK_URL", postgres)
    root = small_course(tmp_path / "course")  # generate_assignment writes into PostgreSQL
    own_config(root)
    assert not (root / "gradebook.db").exists(), "the gradebook went to sqlite, not to the server"
    students = {"ann": "solved", "bob": "wrong", "cid": "untouched"}
    for student, kind in students.items():
        hand_in(root, student, kind)

    run = grade(ASSIGNMENT, root, local_workers=2)
    assert not run.failed and sorted(run.graded) == sorted(students), run.failed
    auto = scores(root, db_url=postgres)
    assert auto[("ann", "01_absmax", "test_absmax_quantize")] == (3.0, False)
    assert auto[("ann", "01_absmax", "test_absmax_dequantize")] == (2.0, False)
    assert auto[("bob", "01_absmax", "test_absmax_quantize")] == (3.0, False)
    assert auto[("bob", "01_absmax", "test_absmax_dequantize")][0] == 0.0
    assert all(v[0] in (0.0, None) for k, v in auto.items() if k[0] == "cid")
    assert auto[("ann", "01_absmax", "q_outlier")] == (None, True)  # a written answer waits for a TA

    # two TAs, each with their own formgrader on the same database, save scores at the same time
    manual = {"ann": 2.0, "bob": 1.5, "cid": 0.5}
    with formgrader(root) as ta1, formgrader(root) as ta2:
        ids = {s: ta1.grades(ASSIGNMENT, "01_absmax", s)["q_outlier"]["id"] for s in students}
        start = threading.Barrier(2)
        errors = []

        def work(ta, mine):
            start.wait()
            try:
                for _ in range(5):  # each TA revisits their students' answers a few times
                    for s in mine:
                        ta.set_manual_score(ids[s], manual[s])
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(ta1, ["ann", "cid"])),
                   threading.Thread(target=work, args=(ta2, ["bob"]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not errors, errors
        seen = {s: ta2.grades(ASSIGNMENT, "01_absmax", s)["q_outlier"]["manual_score"] for s in students}
    assert seen == manual

    out = subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", "grades.csv"], cwd=root,
                         capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert out.returncode == 0, out.stderr[-2000:]
    with (root / "grades.csv").open() as fh:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(fh) if row["assignment"] == ASSIGNMENT}
    # 01_absmax: quantize 3 + dequantize 2 autograded, q_outlier by hand; 02 not handed in (0)
    assert exported == {"ann": 3 + 2 + 2.0, "bob": 3 + 0 + 1.5, "cid": 0 + 0 + 0.5}
