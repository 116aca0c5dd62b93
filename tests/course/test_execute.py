"""labkit.course.execute: the kernel's memory ceiling (checked on a plain subprocess, no kernel).
Recovery from a dead kernel is exercised end to end in tests/course/test_hostile.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labkit.course.execute import limited_command

pytestmark = pytest.mark.skipif(sys.platform.startswith("win"), reason="RLIMIT_AS is POSIX only")

PROBE = "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])"
HOG = "import numpy as np\ntry:\n    np.ones(2**28)\n    print('allocated')\nexcept MemoryError:\n    print('MemoryError')"


def _run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_limit_is_set_before_the_command_runs():
    out = _run(limited_command([sys.executable, "-c", PROBE], 1536))
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == 1536 * 2**20


def test_a_2gib_allocation_fails_under_1_5gib_and_works_without_a_limit():
    limited = _run(limited_command([sys.executable, "-c", HOG], 1536))
    assert limited.stdout.strip() == "MemoryError", limited.stderr
    free = _run(limited_command([sys.executable, "-c", HOG], 0))
    assert free.stdout.strip() == "allocated", free.stderr


def test_zero_means_no_wrapper():
    cmd = [sys.executable, "-c", "pass"]
    assert limited_command(cmd, 0) == cmd


def test_sandboxed_kernel_cuts_a_print_flood_and_keeps_going(tmp_path):
    """A real kernel through ResilientExecute in the sandbox: a 3 MiB print is cut at the output cap,
    a course file is not there, the next cell still runs, and the notebook is marked sandboxed."""
    from nbformat.v4 import new_code_cell, new_notebook

    from labkit.course.execute import ResilientExecute
    from labkit.course.release import REPO
    from labkit.course.sandbox import MARKER, sandbox_problem

    if sandbox_problem():
        pytest.skip(f"no sandbox here: {sandbox_problem()}")
    nb = new_notebook(cells=[new_code_cell("print('x' * 3 * 2**20)"),
                             new_code_cell(f"open({str(REPO / 'nbgrader_config.py')!r}).read()"),
                             new_code_cell("print('still here')")])
    nb, _ = ResilientExecute(timeout=60, max_output_kb=256).preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    flood, course_file, last = nb.cells
    assert sum(len(o.get("text", "")) for o in flood.outputs) < 300 * 1024
    assert "output cut by the grader" in flood.outputs[-1]["text"]
    assert [o.get("ename") for o in course_file.outputs] == ["FileNotFoundError"]
    assert last.outputs[0]["text"] == "still here\n"
    assert nb.metadata[MARKER]["isolated"] is True
