"""A corpus of broken and hostile hw4 submissions, generated from the source notebooks.

Each entry is one simulated student: which notebooks they hand in, how each is mangled, and the
exact autograded score every test cell must get. Built programmatically so that it follows the
source notebooks (a new notebook or a renamed function shows up here as a failing build, not as a
stale fixture). Used by tests/course/test_hostile.py on a temporary copy of the course.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from .conftest import make_submission, solution_cells, source_notebooks, strip_delimiters

SOURCES = source_notebooks()


def _def(name: str, args: str, body: str) -> str:
    return f"def {name}({args}):\n" + "\n".join("    " + line for line in body.strip("\n").split("\n")) + "\n"


def solved(stem: str) -> dict[str, str]:
    """{grade_id: the source solution without delimiters} for every fill-in of ``stem``."""
    return {gid: strip_delimiters(src) for gid, src in solution_cells(SOURCES[stem]).items()}


def sol(stem: str, gid: str) -> str:
    return solved(stem)[gid]


TRUNCATING = _def("absmax_quantize", "x", """
scale = np.max(np.abs(x)) / 127
return (x / scale).astype(np.int8), scale   # truncation: no rounding""")


@dataclass
class Student:
    """One simulated submission. ``edits``: {(stem, grade_id): new source of that fill-in};
    ``transform``: {stem: f(notebook) -> notebook or raw text}; ``extra_files``: written next to
    the notebooks; ``rename``: {stem: file name handed in}. ``expect``: {stem: {test grade_id:
    points}} for every autograded test cell of the notebooks handed in."""

    notebooks: list[str]
    expect: dict[str, dict[str, float]]
    edits: dict = field(default_factory=dict)
    transform: dict[str, Callable] = field(default_factory=dict)
    extra_files: dict[str, str] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)
    why: str = ""


def full(stem: str) -> dict[str, float]:
    nb = SOURCES[stem]
    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def zero(stem: str) -> dict[str, float]:
    return {k: 0.0 for k in full(stem)}


def but(stem: str, **scores: float) -> dict[str, float]:
    out = full(stem)
    for k, v in scores.items():
        assert k in out, f"{stem} has no test cell {k}"
        out[k] = v
    return out


def _cell_index(nb, gid: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _edit_test_cells(nb):
    nb.cells[_cell_index(nb, "test_absmax_quantize")].source = "3   # I give myself full marks"
    del nb.cells[_cell_index(nb, "test_absmax_dequantize")]
    return nb


def _move_and_split(nb):
    # the test cell of absmax_quantize dragged above its fill-in; the fill-in split in two cells
    # (JupyterLab copies the metadata to both halves)
    i_test, i_fill = _cell_index(nb, "test_absmax_quantize"), _cell_index(nb, "absmax_quantize")
    test = nb.cells.pop(i_test)
    nb.cells.insert(i_fill, test)
    i_fill = _cell_index(nb, "absmax_quantize")
    first = json.loads(json.dumps(nb.cells[i_fill]))
    first["source"] = "def _absmax_scale(x):\n    return np.max(np.abs(x)) / 127\n"
    nb.cells[i_fill].source = _def("absmax_quantize", "x", """
scale = _absmax_scale(x)
return np.clip(np.round(x / scale), -127, 127).astype(np.int8), scale""")
    nb.cells.insert(i_fill, nbformat.from_dict(first))
    return nb


def _empty(nb):
    nb.cells = []
    return nb


STUDENTS: dict[str, Student] = {
    "control": Student(["01_absmax"], {"01_absmax": full("01_absmax")},
                       why="all right: graded in the same batch as the hostile ones, must keep full marks"),
    "os_exit": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_dequantize=0)},
                       edits={("01_absmax", "absmax_dequantize"): _def("absmax_dequantize", "q, scale", """
import os
os._exit(3)""")}, why="kills the kernel when called"),
    "segfault": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=0)},
                        edits={("01_absmax", "absmax_quantize"): _def("absmax_quantize", "x", """
import ctypes
ctypes.string_at(0)   # reads address 0: SIGSEGV""")}, why="segfaults the kernel"),
    "sys_exit": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=0)},
                        edits={("01_absmax", "absmax_quantize"): "import sys\n" + _def("absmax_quantize", "x", "sys.exit(1)")},
                        why="raises SystemExit inside the function"),
    "memory": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=0)},
                      edits={("01_absmax", "absmax_quantize"): _def("absmax_quantize", "x", """
waste = np.ones(2**29)   # 4 GiB, over the test's 3 GiB kernel limit
scale = np.max(np.abs(x)) / 127
return np.clip(np.round(x / scale), -127, 127).astype(np.int8), scale""")},
                      why="allocates past the kernel's memory limit (right answer otherwise)"),
    "patch_numpy": Student(["01_absmax"], {"01_absmax": zero("01_absmax")},
                           edits={("01_absmax", "absmax_quantize"): "np.allclose = lambda *a, **k: True\n"
                                  "np.testing.assert_allclose = lambda *a, **k: None\n"
                                  "np.array_equal = lambda *a, **k: True\n" + TRUNCATING},
                           why="patches numpy's comparisons: every check of the notebook refuses (0)"),
    "patch_torch": Student(["01_absmax"], {"01_absmax": zero("01_absmax")},
                           edits={("01_absmax", "absmax_quantize"): "import torch, torch.testing\n"
                                  "torch.allclose = lambda *a, **k: True\n"
                                  "torch.testing.assert_close = lambda *a, **k: None\n" + TRUNCATING},
                           why="patches torch's comparisons: every check of the notebook refuses (0)"),
    "patch_labkit": Student(["01_absmax"], {"01_absmax": {"test_absmax_quantize": 1, "test_absmax_dequantize": 0}},
                            edits={("01_absmax", "absmax_quantize"): (
                                "import labkit.grading.checks as _k, labkit.grading.compare as _c, labkit.grading.exercises as _e\n"
                                "for _m in (_c, _e):   # vars() goes past the read-only modules\n"
                                "    vars(_m)['compare_codes'] = lambda *a, **k: None\n"
                                "_real = _k.check\n"
                                "vars(_k)['check'] = lambda name, fn, **kw: kw['points'] if name == 'absmax_dequantize' "
                                "and 'points' in kw else _real(name, fn, **kw)\n"
                                "check = lambda *a, **k: None\n" + TRUNCATING),
                                ("01_absmax", "absmax_dequantize"): _def("absmax_dequantize", "q, scale",
                                                                          "return q.astype(np.float32)   # forgot the scale")},
                            why="patches labkit's comparison helpers and check itself through the modules' dicts"),
    "reference": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=0)},
                         edits={("01_absmax", "absmax_quantize"): "from labkit.quant import absmax_quantize as _ref\n"
                                + _def("absmax_quantize", "x", "return _ref(x)")},
                         why="calls labkit's reference instead of computing"),
    "import_file": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=0)},
                           edits={("01_absmax", "absmax_quantize"): "from my_answers import absmax_quantize"},
                           extra_files={"my_answers.py": "import numpy as np\n\n" + sol("01_absmax", "absmax_quantize")},
                           why="imports the answer from another file handed in next to the notebook"),
    "edited_tests": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=0)},
                            edits={("01_absmax", "absmax_quantize"): _def("absmax_quantize", "x",
                                                                          "return np.zeros(x.shape, np.int8), 1.0")},
                            transform={"01_absmax": _edit_test_cells},
                            why="wrong answer, its test cell replaced by `3`, the other test cell deleted"),
    "moved_split": Student(["01_absmax"], {"01_absmax": full("01_absmax")}, transform={"01_absmax": _move_and_split},
                           why="test cell dragged above its fill-in, fill-in split in two cells: still right"),
    "renamed": Student(["01_absmax"], {"01_absmax": full("01_absmax")},
                       rename={"01_absmax": "01_absmax-Copy1.ipynb"}, why="hands in 01 under JupyterLab's copy name"),
    "empty": Student(["01_absmax"], {"01_absmax": zero("01_absmax")}, transform={"01_absmax": _empty},
                     why="a notebook with no cells"),
    "bad_json": Student(["01_absmax", "02_zero_point"], {"01_absmax": zero("01_absmax"), "02_zero_point": full("02_zero_point")},
                        transform={"01_absmax": lambda nb: '{"cells": [ this is not json'},
                        why="one notebook is not valid JSON; the other must still be graded"),
    "stderr": Student(["01_absmax"], {"01_absmax": full("01_absmax")},
                      edits={("01_absmax", "absmax_quantize"): (
                          "import sys, warnings\nprint('debug: defining absmax', file=sys.stderr)\n"
                          "warnings.warn('my own warning outside the test cells')\n" + _def("absmax_quantize", "x", """
print('inside: computing the scale', file=sys.stderr)
warnings.warn('a warning inside the function')
scale = np.max(np.abs(x)) / 127
return np.clip(np.round(x / scale), -127, 127).astype(np.int8), scale"""))},
                      why="right answers, with prints to stderr and warnings in the student's own code"),
    "bad_outputs": Student(["01_absmax", "03_granularity"], {
        "01_absmax": {"test_absmax_quantize": 0, "test_absmax_dequantize": 0},
        "03_granularity": but("03_granularity", test_pertensor_absmax_quantize=1, test_perchannel_absmax_quantize=2)},
        edits={("01_absmax", "absmax_quantize"): "import torch\n" + _def("absmax_quantize", "x", """
t = torch.as_tensor(x)
scale = t.abs().max() / 127
return torch.clamp(torch.round(t / scale), -127, 127).to(torch.int8), scale"""),
               ("01_absmax", "absmax_dequantize"): _def("absmax_dequantize", "q, scale",
                                                        "return q.astype(np.float32) * scale * np.nan"),
               ("03_granularity", "pertensor_absmax_quantize"): _def("pertensor_absmax_quantize", "W", """
scale = np.max(np.abs(W)) / 127
return np.clip(np.round(W / scale), -127, 127), scale   # float codes: wrong dtype"""),
               ("03_granularity", "perchannel_absmax_quantize"): _def("perchannel_absmax_quantize", "W", """
amax = np.max(np.abs(W), axis=1, keepdims=True)        # (out, 1): wrong shape for scales
scales = np.where(amax > 0, amax / 127, 1.0).astype(W.dtype)
return np.clip(np.round(W / scales), -127, 127).astype(np.int8), scales""")},
        why="torch tensor where numpy was asked, NaN output, wrong dtype, wrong shape"),
}


# --- Sandbox attacks (labkit.course.sandbox) ---------------------------------------------------
# A loopback listener the attacks try to reach (the test checks that nobody connected), and this
# machine's own non-loopback address (a UDP connect picks a route and sends nothing).
LISTENER = socket.socket()
LISTENER.bind(("0.0.0.0", 0))
LISTENER.listen(8)
LISTEN_PORT = LISTENER.getsockname()[1]


def own_address() -> str | None:
    """This machine's own non-loopback address (a UDP connect picks a route and sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


ADDRESSES = [("127.0.0.1", LISTEN_PORT)] + ([(own_address(), LISTEN_PORT)] if own_address() else [])
LATE_MARKER = "labkit-hostile-outlives-grading"
GRADER_INIT_MARK = "# a hostile submission wrote this line"

# walks up from the notebook's folder to a course file, as the attacks did
FIND = """import os
def _find(*parts):
    d = os.getcwd()
    while True:
        if os.path.exists(os.path.join(d, *parts)):
            return os.path.join(d, *parts)
        if os.path.dirname(d) == d:
            raise FileNotFoundError(f"{os.path.join(*parts)} not found above {os.getcwd()}")
        d = os.path.dirname(d)
"""
EXEC_SOLUTION = """import json
for _c in json.load(open(_find({path})))["cells"]:
    if _c["cell_type"] == "code" and "def absmax_quantize" in "".join(_c["source"]):
        exec("".join(_c["source"]))
"""
RIGHT_DEQUANTIZE = sol("01_absmax", "absmax_dequantize")


def _duplicate_test_cell(nb):
    fake = json.loads(json.dumps(nb.cells[_cell_index(nb, "test_absmax_quantize")]))
    fake["source"] = "print('all tests pass')"
    nb.cells.insert(0, nbformat.from_dict(fake))
    return nb


EXEC_OTHER = """import json
for _c in json.load(open(_find("submitted", "control", "hw4", "01_absmax.ipynb")))["cells"]:
    if _c["cell_type"] == "code" and "def absmax_dequantize" in "".join(_c["source"]):
        exec("".join(_c["source"]))
"""
GRADEBOOK_ATTACK = """import sqlite3
_db = sqlite3.connect(_find("gradebook.db"))
_db.execute("UPDATE grade SET manual_score = 0")
_db.commit()
"""


def _metadata_games(nb):
    for cell in nb.cells:  # every test cell claims 1000 points
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 1000
    nb.metadata["kernelspec"] = {"name": "conda-env-hw4-py", "display_name": "Python [conda env:hw4]",
                                 "language": "python"}
    return nb


# One attack per fill-in of 01_absmax (two per student keeps the corpus lean); every attack fails
# inside its own cell, the other cell is graded as usual.
SANDBOX_STUDENTS: dict[str, Student] = {
    "read_files": Student(["01_absmax"], {"01_absmax": zero("01_absmax")},
                          edits={("01_absmax", "absmax_quantize"): FIND + EXEC_SOLUTION.format(
                                     path='"source", "hw4", "01_absmax.ipynb"'),
                                 ("01_absmax", "absmax_dequantize"): FIND + EXEC_OTHER},
                          why="execs the instructor's solution from source/, and another student's submission"),
    "write_course": Student(["01_absmax"], {"01_absmax": zero("01_absmax")},
                            edits={("01_absmax", "absmax_quantize"): "import os, labkit\n"
                                   "open(os.path.join(os.path.dirname(labkit.__file__), 'grading', '__init__.py'), 'a')"
                                   f".write('\\n{GRADER_INIT_MARK}\\n')\n" + TRUNCATING,
                                   ("01_absmax", "absmax_dequantize"): FIND + GRADEBOOK_ATTACK + RIGHT_DEQUANTIZE},
                            why="appends to labkit/grading/__init__.py (installed editable); "
                                "sets every manual score in gradebook.db to 0"),
    "network": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=0)},
                       edits={("01_absmax", "absmax_quantize"): "import socket\n_errors = []\n"
                              f"for _addr in {ADDRESSES!r}:\n"
                              "    try:\n"
                              "        socket.create_connection(tuple(_addr), timeout=5).close()\n"
                              "    except OSError as exc:\n"
                              "        _errors.append(f'{_addr}: {exc!r}')\n"
                              f"if len(_errors) == {len(ADDRESSES)}:\n"
                              "    raise ConnectionError('; '.join(_errors))\n" + sol("01_absmax", "absmax_quantize")},
                       why="opens sockets to 127.0.0.1 and to this machine's own address"),
    "leftovers": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_dequantize=0)},
                         edits={("01_absmax", "absmax_quantize"): "import subprocess, sys\n"
                                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600); "
                                f"open(\"late.txt\", \"w\")', '{LATE_MARKER}'], start_new_session=True,\n"
                                "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                                + sol("01_absmax", "absmax_quantize"),
                                ("01_absmax", "absmax_dequantize"): "for _i in range(10**6):\n"
                                "    with open(f'fill{_i}.bin', 'wb') as _f:\n"
                                "        _f.write(b'x' * 2**25)\n" + RIGHT_DEQUANTIZE},
                         why="a detached process that would write a file after grading (right answer); "
                             "a disk filler (32 MiB files until the disk is full)"),
    "fork_bomb": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_dequantize=0)},
                         edits={("01_absmax", "absmax_dequantize"): "import subprocess, sys\n"
                                "subprocess.run([sys.executable, '-c', 'import os, time\\nwhile True:\\n    try:\\n"
                                "        os.fork()\\n    except OSError:\\n        time.sleep(60)'], timeout=3)\n"
                                + RIGHT_DEQUANTIZE},
                         why="a fork bomb in the last fill-in"),
    "sigint_loop": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=0)},
                           # inside the function: ipykernel re-installs its SIGINT handler before each cell
                           edits={("01_absmax", "absmax_quantize"): "import signal\n" + _def(
                               "absmax_quantize", "x", "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")},
                           why="an infinite loop that ignores SIGINT (the timeout's interrupt)"),
    "dup_id": Student(["01_absmax"], {"01_absmax": but("01_absmax", test_absmax_quantize=1)},
                      edits={("01_absmax", "absmax_quantize"): TRUNCATING}, transform={"01_absmax": _duplicate_test_cell},
                      why="truncated codes, and a copy of the test cell (same grade_id) printing 'all tests pass' on top"),
    "metadata": Student(["01_absmax"], {"01_absmax": full("01_absmax")}, transform={"01_absmax": _metadata_games},
                        why="right answers; every test cell claims 1000 points; saved under a conda kernel "
                            "(conda-env-hw4-py) that the grader does not have"),
}
STUDENTS.update(SANDBOX_STUDENTS)

# Graded with plain `nbgrader autograde` on the whole course folder (every submission and the
# gradebook beside the notebooks), not through labkit grade's per-student copies.
PLAIN: dict[str, Student] = {
    "plain_attacks": Student(["01_absmax"], {"01_absmax": zero("01_absmax")},
                             edits={("01_absmax", "absmax_quantize"): FIND + GRADEBOOK_ATTACK + TRUNCATING,
                                    ("01_absmax", "absmax_dequantize"): FIND + EXEC_OTHER},
                             why="gradebook.db and another student's submission, next to the notebook"),
    "plain_bad_json": Student(["01_absmax", "02_zero_point"], {"01_absmax": zero("01_absmax"),
                                                               "02_zero_point": full("02_zero_point")},
                              transform={"01_absmax": lambda nb: '{"cells": [ this is not json'},
                              why="one notebook is not valid JSON, under plain nbgrader autograde"),
}

# Re-graded a second time (1 process instead of 2): kernel deaths, patches, repairs, the control.
REGRADE = ["control", "os_exit", "patch_labkit", "bad_json", "dup_id"]

# The message a student must read in the autograded notebook: {student: [(stem, needle), ...]}
MESSAGES = {
    "bad_outputs": [("01_absmax", "expected a numpy array, got a torch tensor"), ("01_absmax", "are NaN"),
                    ("03_granularity", "expected dtype int8, got float"), ("03_granularity", "expected shape (")],
    "reference": [("01_absmax", "calls labkit's reference")],
    "os_exit": [("01_absmax", "KernelDied")],
    "segfault": [("01_absmax", "KernelDied")],
    "memory": [("01_absmax", "MemoryError")],
    "import_file": [("01_absmax", "comes from my_answers.py, not from this notebook")],
    "patch_labkit": [("01_absmax", "re-checked the recorded answers outside the notebook")],
    "read_files": [("01_absmax", "FileNotFoundError")],
    "write_course": [("01_absmax", "Read-only file system"), ("01_absmax", "gradebook.db not found")],
    "network": [("01_absmax", "ConnectionRefusedError")],
    "fork_bomb": [("01_absmax", "TimeoutExpired")],
    "leftovers": [("01_absmax", "No space left on device")],
    "sigint_loop": [("01_absmax", "KernelHung")],
}


def write_submission(course: Path, release: Path, student: str, spec: Student, assignment: str) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for stem in spec.notebooks:
        nb = make_submission(nbformat.read(release / f"{stem}.ipynb", as_version=4), SOURCES[stem], stem, spec.edits)
        out = spec.transform.get(stem, lambda n: n)(nb)
        target = folder / spec.rename.get(stem, f"{stem}.ipynb")
        target.write_text(out if isinstance(out, str) else nbformat.writes(out))
    for name, text in spec.extra_files.items():
        (folder / name).write_text(text)
