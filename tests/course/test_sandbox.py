"""labkit.course.sandbox with the real bubblewrap, on plain programs (no kernel, seconds each).

Each test runs a small hostile program inside ``sandbox_command`` next to a fake course folder,
and, where the attack would succeed without the sandbox, runs the same program outside it first:
the control shows the test can fail. The kernel path (nbgrader, Unix-socket channels, restarts)
is tested end to end in test_hostile.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.course.sandbox import (SandboxLimits, SandboxUnavailable, check_sandbox, in_cgroup, pids_cgroup,
                                   remove_cgroup, sandbox_command, sandbox_problem, stage_files)

from .hostile import own_address

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox here: {sandbox_problem()}")


@pytest.fixture
def course(tmp_path):
    """A fake course: solutions, a gradebook, another student's submission, this student's folder."""
    root = tmp_path / "course"
    (root / "source" / "hw4").mkdir(parents=True)
    (root / "source" / "hw4" / "01_absmax.ipynb").write_text('{"solution": "secret"}')
    (root / "gradebook.db").write_bytes(b"SQLite format 3\x00")
    (root / "submitted" / "other" / "hw4").mkdir(parents=True)
    (root / "submitted" / "other" / "hw4" / "01_absmax.ipynb").write_text("{}")
    work = root / "autograded" / "me" / "hw4"
    work.mkdir(parents=True)
    (work / "01_absmax.ipynb").write_text('{"hidden": "tests"}')
    (work / "helper.py").write_text("VALUE = 42\n")
    channels = tmp_path / "channels"
    channels.mkdir()
    files = tmp_path / "files"
    files.mkdir()
    stage_files(str(work), str(files))
    return {"root": root, "work": work, "channels": channels, "files": files}


def run(course, code: str, limits: SandboxLimits = SandboxLimits(), sandboxed: bool = True, env=None, timeout=120):
    """Run ``code`` as the kernel manager would: in the sandbox, and as root also in a pids cgroup."""
    cmd = [sys.executable, "-c", code]
    cgroup = None
    if sandboxed:
        cgroup = pids_cgroup(limits.processes)
        cmd = in_cgroup(sandbox_command(cmd, workdir=str(course["work"]), channels=str(course["channels"]),
                                        staging=str(course["files"]), limits=limits, env=env), cgroup)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(course["work"]), env=env)
    finally:
        remove_cgroup(cgroup)


def test_the_students_files_are_there_and_writable_but_not_the_notebooks(course):
    out = run(course, "import os; names = sorted(os.listdir('.')); import helper; print(names, helper.VALUE)\n"
                      "open('scratch.txt', 'w').write('mine')\nprint(open('scratch.txt').read())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["['helper.py'] 42", "mine"]
    assert not (course["work"] / "scratch.txt").exists(), "writes must stay in the sandbox's private copy"


PROBE = """
import os, sys
for path in sys.argv[1:]:
    for mode in ("r", "a"):
        try:
            open(path, mode).close()
            print(path, mode, "OK")
        except OSError as exc:
            print(path, mode, type(exc).__name__)
"""


def test_course_files_are_out_of_reach(course):
    import labkit

    root = course["root"]
    grading_init = Path(labkit.__file__).parent / "grading" / "__init__.py"
    targets = [root / "source" / "hw4" / "01_absmax.ipynb", root / "gradebook.db",
               root / "submitted" / "other" / "hw4" / "01_absmax.ipynb", Path(__file__).resolve().parents[2] / "nbgrader_config.py",
               Path.home() / ".bashrc"]
    before = {p: p.read_bytes() for p in [grading_init, *targets] if p.exists()}
    code = PROBE.replace("sys.argv[1:]", repr([str(t) for t in targets]))
    control = run(course, code, sandboxed=False)
    assert control.stdout.count(" r OK") >= 4, control.stdout  # outside the sandbox they are there
    out = run(course, code + f"\nopen({str(grading_init)!r}, 'a').write('# hacked')\n")
    assert out.returncode != 0 and "Read-only file system" in out.stderr, out.stderr
    for target in targets:
        assert f"{target} r FileNotFoundError" in out.stdout, out.stdout
    # an append either fails or lands in the sandbox's private /tmp (here the course lives under /tmp):
    # the host's files are untouched
    assert {p: p.read_bytes() for p in before} == before


def test_no_network_not_even_loopback(course):
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(8)
    port = server.getsockname()[1]
    addresses = ["127.0.0.1"] + ([own_address()] if own_address() else [])
    code = ("import socket\n"
            f"for addr in {addresses!r}:\n"
            "    s = socket.socket(); s.settimeout(5)\n"
            "    try:\n"
            f"        s.connect((addr, {port})); print(addr, 'connected')\n"
            "    except OSError as exc:\n"
            "        print(addr, type(exc).__name__, exc.errno)\n")
    try:
        control = run(course, code, sandboxed=False)
        assert control.stdout.count("connected") == len(addresses), control.stdout
        server.settimeout(1)
        for _ in addresses:
            server.accept()[0].close()
        out = run(course, code)
        assert "connected" not in out.stdout, out.stdout
        assert "127.0.0.1 ConnectionRefusedError" in out.stdout, out.stdout
        for addr in addresses[1:]:
            assert f"{addr} OSError 101" in out.stdout, out.stdout  # ENETUNREACH: no route out
        server.settimeout(0.5)
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


LATE = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3); open({path!r}, 'w').write('still here')"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("started")
"""


def test_nothing_outlives_the_sandbox(course):
    target = course["channels"] / "late.txt"  # the one folder the sandbox shares with the grader
    control = run(course, LATE.format(path=str(target)), sandboxed=False)
    assert control.stdout.strip() == "started"
    time.sleep(4.5)
    assert target.read_text() == "still here", "control: without the sandbox the process survives"
    target.unlink()
    out = run(course, LATE.format(path=str(target)))
    assert out.stdout.strip() == "started", out.stderr
    time.sleep(4.5)
    assert not target.exists(), "a process started in the sandbox outlived it"


def test_fork_bomb_stops_at_the_process_limit(course):
    code = ("import os, time\nn = 0\n"
            "try:\n"
            "    while True:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(30); os._exit(0)\n"
            "        n += 1\n"
            "except OSError as exc:\n"
            "    print(n, type(exc).__name__, flush=True)\n"
            "    os._exit(0)\n")
    t0 = time.perf_counter()
    out = run(course, code, limits=SandboxLimits(processes=64), timeout=60)
    assert out.returncode == 0, out.stderr
    n, error = out.stdout.split()
    assert error == "BlockingIOError" and 50 <= int(n) < 64, out.stdout
    assert time.perf_counter() - t0 < 25, "the forked sleepers must die with the sandbox, not after 30 s"


def test_disk_filler_hits_the_scratch_size(course):
    code = ("import os\nwritten = 0\n"
            "try:\n"
            "    for i in range(100):\n"
            "        with open(f'fill{i}.bin', 'wb') as f:\n"
            "            for _ in range(8):\n"
            "                f.write(b'x' * 2**20); written += 1\n"
            "except OSError as exc:\n"
            "    print(written, exc.errno)\n")
    out = run(course, code, limits=SandboxLimits(scratch_mb=64, file_mb=4))
    written, errno = out.stdout.split()
    assert errno == "27" and written == "4", out.stdout  # EFBIG: one file stops at 4 MiB
    out = run(course, code.replace("range(8)", "range(4)"), limits=SandboxLimits(scratch_mb=64, file_mb=4))
    written, errno = out.stdout.split()
    assert errno == "28" and 60 <= int(written) <= 64, out.stdout  # ENOSPC: the tmpfs is full at 64 MiB
    assert not list(course["work"].glob("fill*")), "the filler's files must not reach the host"


def test_the_graders_environment_stays_outside(course):
    env = dict(os.environ, LABKIT_GRADEBOOK_URL="postgresql://grader:pw@localhost/hw4", AWS_SECRET_ACCESS_KEY="k",
               LABKIT_PROGRESS="0")
    code = "import os; print(sorted(k for k in os.environ if k in ('LABKIT_GRADEBOOK_URL', 'AWS_SECRET_ACCESS_KEY', 'LABKIT_PROGRESS')))"
    assert run(course, code, env=env, sandboxed=False).stdout.strip() == "['AWS_SECRET_ACCESS_KEY', 'LABKIT_GRADEBOOK_URL', 'LABKIT_PROGRESS']"
    assert run(course, code, env=env).stdout.strip() == "['LABKIT_PROGRESS']"


def test_without_bwrap_grading_refuses_and_says_how_to_fix(tmp_path, monkeypatch):
    """PATH without bwrap: a real missing tool, not a mock."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("LABKIT_UNSAFE_NO_SANDBOX", raising=False)
    sandbox_problem.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable) as err:
            check_sandbox()
        assert "apt-get install bubblewrap" in str(err.value) and "LABKIT_UNSAFE_NO_SANDBOX=1" in str(err.value)
        monkeypatch.setenv("LABKIT_UNSAFE_NO_SANDBOX", "1")
        assert check_sandbox() is False
    finally:
        sandbox_problem.cache_clear()
    assert shutil.which("bwrap") is None
