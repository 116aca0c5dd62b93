"""Start nbgrader's real formgrader (a Jupyter server with the nbgrader extension) on a course
folder and talk to its REST API the way the formgrader's page does (``/formgrader/api/...``)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Formgrader:
    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read() or b"null")

    def grades(self, assignment: str, notebook: str, student: str) -> dict[str, dict]:
        """{cell name: grade dict} of one student's notebook, as the formgrader lists them."""
        subs = self.call("GET", f"/formgrader/api/submitted_notebooks/{assignment}/{notebook}")
        sub = next(s for s in subs if s["student"] == student)
        return {g["name"]: g for g in self.call("GET", f"/formgrader/api/grades?submission_id={sub['id']}")}

    def set_manual_score(self, grade_id: str, score: float) -> dict:
        return self.call("PUT", f"/formgrader/api/grade/{grade_id}", {"manual_score": score, "extra_credit": None})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def formgrader(course_dir: Path, env: dict | None = None, timeout: float = 900) -> Iterator[Formgrader]:
    """A formgrader serving ``course_dir`` (which holds the nbgrader_config.py it reads). The
    timeout is generous: on an overloaded 2-core machine the server took over 3 minutes to start."""
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course_dir}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(course_dir.parent / f"formgrader-{port}.log", "w")
    proc = subprocess.Popen(cmd, cwd=course_dir, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    client = Formgrader(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if client.call("GET", "/formgrader/api/status").get("status"):
                    break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                raise RuntimeError(f"the formgrader did not start:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.5)
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
