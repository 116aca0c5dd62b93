"""Grading on Dask: the worker's half of ``labkit grade`` and the cluster it runs on.

A Dask worker may be another machine with no file system in common with the instructor, so a
task carries everything it needs as bytes and returns everything as bytes:

- **in**: the course bundle (a ``tar.gz`` of ``source/<assignment>``, ``release/<assignment>``, a
  sqlite gradebook holding the assignment's cells, and the course's ``nbgrader_config.py``; built
  once per run and scattered to every worker) and one student's submission folder
  ({relative path: bytes}, ``timestamp.txt`` included);
- **on the worker**: a temporary course is written, the submission is repaired on that copy
  (``clean_submission``), and nbgrader's own ``Autograde`` runs with the course config — so the
  course's kernel fences and sandbox (``labkit.course.sandbox``) come with it;
- **out** (``grade_student``'s dict): the autograded files, and per notebook the cells' auto scores,
  comments, flags and late penalty read back from the temporary gradebook.

The instructor's process alone writes the real gradebook and ``autograded/``
(``labkit.course.gradebook``). A task has no side effect outside its temporary folder, so the
scheduler may run it again elsewhere when a worker dies mid-task; the instructor merges each
student's result once.

``dask_client(scheduler=None, local_workers=N)`` yields a ``distributed.Client``: on an existing
cluster (``tcp://host:8786``, e.g. one started on Slurm with dask-jobqueue, see INSTRUCTORS.md), or
on a ``LocalCluster`` of N one-thread worker processes on loopback. One thread per worker: a task
sets the process's environment (``LABKIT_UNSAFE_NO_SANDBOX``) and nbgrader keeps per-process state.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

UNSAFE_ENV = "LABKIT_UNSAFE_NO_SANDBOX"
MAX_SUBMISSION_BYTES = 200 * 2**20  # a submission folder larger than this is refused, not shipped


def _tar(root: Path, names: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in names:
            if (root / name).exists():
                tar.add(root / name, arcname=name)
    return buf.getvalue()


def _untar(data: bytes, dst: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dst, filter="data")


def course_bundle(course, assignment: str) -> bytes:
    """The course as the workers need it (module docstring), built from ``course`` (a
    ``labkit.course.folder.Course``): its gradebook rows are regenerated from ``source/`` into a
    fresh sqlite file, so the bundle is the same whether the instructor's gradebook is sqlite or a
    PostgreSQL server."""
    with tempfile.TemporaryDirectory(prefix="labkit-bundle-") as tmp:
        root = Path(tmp)
        shutil.copytree(course.root / "source" / assignment, root / "source" / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        shutil.copy2(course.config_file, root / "nbgrader_config.py")
        cfg = course.config()
        cfg.CourseDirectory.root = str(root)
        cfg.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
        from .release import api_for

        with quiet_gradebook():
            out = api_for(root, cfg).generate_assignment(assignment, force=True, create=True)
        if not out.get("success"):
            raise RuntimeError(f"generate_assignment {assignment} failed on the bundle copy: "
                               f"{_last_line(out.get('error', '') + out.get('log', ''))}")
        return _tar(root, ["source", "release", "gradebook.db", "nbgrader_config.py"])


def read_submission(folder: Path) -> dict[str, bytes]:
    """Every file of one submission folder as {path relative to the folder: bytes}."""
    files, total = {}, 0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".ipynb_checkpoints" not in path.parts:
            files[path.relative_to(folder).as_posix()] = data = path.read_bytes()
            total += len(data)
    if total > MAX_SUBMISSION_BYTES:
        raise ValueError(f"{folder} holds {total / 2**20:.0f} MiB; labkit grade ships at most "
                         f"{MAX_SUBMISSION_BYTES / 2**20:.0f} MiB per submission — remove the extra files")
    return files


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no error message"


def grade_student(bundle: bytes, student: str, files: dict[str, bytes], assignment: str,
                  overrides: dict | None = None, unsafe_no_sandbox: bool = False) -> dict:
    """Autograde one student on this worker (module docstring); never raises for a submission's
    fault — returns ``{"ok": False, "error": one line, "log": tail}`` instead."""
    from nbgrader.api import Gradebook

    from .sanitize import clean_submission
    from .release import api_for, load_config

    t0 = time.perf_counter()
    if unsafe_no_sandbox:
        os.environ[UNSAFE_ENV] = "1"
    else:
        os.environ.pop(UNSAFE_ENV, None)
    result = {"student": student, "ok": False, "host": socket.gethostname(), "pid": os.getpid(),
              "unsafe_no_sandbox": unsafe_no_sandbox}
    with tempfile.TemporaryDirectory(prefix="labkit-task-") as tmp:
        root = Path(tmp) / "course"
        _untar(bundle, root)
        sub = root / "submitted" / student / assignment
        for rel, data in files.items():
            path = (sub / rel).resolve()
            if sub.resolve() not in path.parents:
                continue  # a path that leaves the submission folder is not written
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        sub.mkdir(parents=True, exist_ok=True)
        expected = sorted(p.stem for p in (root / "source" / assignment).glob("*.ipynb"))
        result["notes"] = clean_submission(sub, expected)
        cfg = load_config(root, root / "nbgrader_config.py")
        cfg.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
        for key, value in (overrides or {}).items():
            section, trait = key.split(".")
            setattr(getattr(cfg, section), trait, value)
        with _quiet(root.parent / "stderr.log"):
            out = api_for(root, cfg).autograde(assignment, student, force=True, create=True)
        graded_dir = root / "autograded" / student / assignment
        if not out.get("success") or not graded_dir.is_dir():
            text = (out.get("error") or "") + "\n" + (out.get("log") or "")
            result.update(error=_last_line(out.get("error") or text), log=text[-4000:],
                          seconds=time.perf_counter() - t0)
            return result
        notebooks = {}
        with Gradebook(cfg.CourseDirectory.db_url, load_config(root, root / "nbgrader_config.py").CourseDirectory.course_id) as gb:
            submission = gb.find_submission(assignment, student)
            timestamp = submission.timestamp
            for nb in submission.notebooks:
                notebooks[nb.name] = {
                    "grades": {g.name: {"auto_score": g.auto_score, "needs_manual_grade": g.needs_manual_grade,
                                        "max_score": g.max_score, "cell_type": g.cell_type} for g in nb.grades},
                    "comments": {c.name: c.auto_comment for c in nb.comments},
                    "flagged": nb.flagged, "late_submission_penalty": nb.late_submission_penalty,
                    "submitted": (graded_dir / f"{nb.name}.ipynb").exists()}
        result.update(ok=True, timestamp=timestamp, notebooks=notebooks,
                      autograded=read_submission(graded_dir), seconds=time.perf_counter() - t0)
        return result


@contextmanager
def quiet_gradebook() -> Iterator[None]:
    """Ignore SQLAlchemy's "Object of type <SubmittedAssignment> not in session" autoflush warnings
    raised inside nbgrader's own gradebook code (nbgrader 0.9.6 with SQLAlchemy 2): they concern
    nbgrader's session handling, not the course or a submission, and nothing is lost."""
    import warnings

    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not in session.*", category=SAWarning)
        yield


@contextmanager
def _quiet(log: Path) -> Iterator[None]:
    """Send this process's stderr (file descriptor 2, which the kernels inherit) to ``log`` while a
    student is graded, and ignore SQLAlchemy's autoflush warnings from inside nbgrader's gradebook
    code: neither says anything about the submission, and on a LocalCluster they would reach the
    instructor's terminal as hundreds of lines. Failures keep nbgrader's own log in the result."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "wb") as fh, quiet_gradebook():
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextmanager
def dask_client(scheduler: str | None = None, local_workers: int = 2) -> Iterator:
    """A ``distributed.Client`` on ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``) or on a
    ``LocalCluster`` of ``local_workers`` one-thread processes bound to 127.0.0.1."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    if local_workers < 1:
        raise ValueError(f"--local-workers must be at least 1, got {local_workers}")
    # memory_limit=0: Dask's memory manager counts only the worker process, not the kernels it
    # starts; the course config limits each kernel instead (LimitedKernelManager). Logs at
    # CRITICAL only: a worker shutting down logs heartbeat "errors" that are not; a real task
    # failure reaches us as the task's exception.
    with LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=0, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        yield client
