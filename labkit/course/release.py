"""The hw4 course as code: release student notebooks and check that notebooks/ is up to date.

``autograde/source/<assignment>/*.ipynb`` is the single source of truth. ``release`` runs
nbgrader's ``generate_assignment`` on a *temporary copy* of the course (so the repository's
gradebook and release folder are never touched) and copies the student versions into
``notebooks/``; ``stale_notebooks`` does the same into a scratch folder and lists every notebook
that differs, is missing or is extra. Every notebook found in the source folder is released —
adding ``06_….ipynb`` needs no change here.

    python -m labkit.course.release release     # what `make notebooks` runs
    python -m labkit.course.release check       # exit 1 and list the stale notebooks
    python -m labkit.course.release time        # seconds per source notebook, solutions in (budget 15 s)

(also as ``labkit course release|check|time``).

The course configuration is the repository's ``nbgrader_config.py``; ``load_config`` reads it and
points ``CourseDirectory.root`` at another folder, which is how tests grade on a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COURSE = REPO / "autograde"
NOTEBOOKS = REPO / "notebooks"
ASSIGNMENT = "hw4"


def load_config(root: Path | str, config_file: Path | str = REPO / "nbgrader_config.py"):
    """The course's nbgrader config (a traitlets ``Config``) with the course root set to ``root``."""
    from traitlets.config.loader import PyFileConfigLoader

    config_file = Path(config_file)
    cfg = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    cfg.CourseDirectory.root = str(Path(root).resolve())
    return cfg


def api_for(root: Path | str, config=None):
    """An ``NbGraderAPI`` on the course at ``root`` (config: ``load_config(root)`` by default)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _venv_on_path()
    config = config if config is not None else load_config(root)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _venv_on_path() -> None:
    """nbgrader runs the ``alembic`` executable (gradebook migrations) through PATH: make sure the
    running interpreter's bin folder, which has it, is there even when PATH has no venv."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def copy_course(dst: Path | str, src: Path | str = COURSE) -> Path:
    """Copy the course *source* (not gradebook, submissions or feedback) to ``dst``; returns ``dst``."""
    dst = Path(dst)
    shutil.copytree(Path(src) / "source", dst / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return dst


def _ok(result: dict, what: str) -> dict:
    if not result.get("success"):
        raise RuntimeError(f"{what} failed:\n{result.get('error', '')}\n{result.get('log', '')}")
    return result


def generate(assignment: str = ASSIGNMENT, course: Path | str = COURSE) -> dict[str, dict]:
    """Student versions of every source notebook of ``assignment``: {file name: notebook JSON}."""
    with tempfile.TemporaryDirectory(prefix="labkit-course-") as tmp:
        root = copy_course(Path(tmp) / "course", course)
        config = load_config(root)
        # no gradebook needed for the student files (the same as `generate_assignment --no-db`)
        config.GenerateAssignment.no_database = True
        config.SaveCells.enabled = False
        _ok(api_for(root, config).generate_assignment(assignment, force=True, create=True), "generate_assignment")
        out = root / "release" / assignment
        return {p.name: json.loads(p.read_text()) for p in sorted(out.glob("*.ipynb"))}


def release(assignment: str = ASSIGNMENT, out_dir: Path | str = NOTEBOOKS, course: Path | str = COURSE) -> list[Path]:
    """Write the student notebooks into ``out_dir`` (and delete released notebooks no longer in the source)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    notebooks = generate(assignment, course)
    written = []
    for name, nb in notebooks.items():
        path = out_dir / name
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        written.append(path)
    for old in out_dir.glob("*.ipynb"):
        if old.name not in notebooks:
            old.unlink()
    return written


def stale_notebooks(assignment: str = ASSIGNMENT, notebooks_dir: Path | str = NOTEBOOKS,
                    course: Path | str = COURSE) -> list[str]:
    """Names of notebooks in ``notebooks_dir`` that differ from a fresh release (or are missing/extra)."""
    return compare_release(generate(assignment, course), notebooks_dir)


def compare_release(fresh: dict[str, dict], notebooks_dir: Path | str) -> list[str]:
    """Names that differ between ``fresh`` ({file name: notebook JSON}) and the ``*.ipynb`` files
    in ``notebooks_dir``: changed, missing or extra."""
    notebooks_dir = Path(notebooks_dir)
    present = {p.name for p in notebooks_dir.glob("*.ipynb")}
    stale = sorted(present - set(fresh))
    for name, nb in fresh.items():
        path = notebooks_dir / name
        if not path.exists() or json.loads(path.read_text()) != nb:
            stale.append(name)
    return sorted(stale)


def time_notebooks(assignment: str = ASSIGNMENT, course: Path | str = COURSE, timeout: int = 120) -> dict[str, float]:
    """Run every *source* notebook (solutions in) top to bottom in a fresh kernel, one after the
    other, as a student's Jupyter would; returns {file name: seconds, kernel start included}."""
    import time

    import nbformat
    from nbclient import NotebookClient

    seconds = {}
    for path in sorted((Path(course) / "source" / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds[path.name] = time.perf_counter() - t0
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["release", "check", "time"],
                        help="release: regenerate the student notebooks; check: exit 1 if they are stale; "
                             "time: run each source notebook and print its wall time")
    parser.add_argument("--assignment", default=ASSIGNMENT)
    parser.add_argument("--out", default=str(NOTEBOOKS), help="student notebooks folder (default: notebooks/)")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per notebook for `time` (default 15)")


def run(args: argparse.Namespace) -> int:
    if args.action == "release":
        for path in release(args.assignment, args.out):
            print(f"wrote {path}")
        return 0
    if args.action == "time":
        seconds = time_notebooks(args.assignment)
        for name, sec in seconds.items():
            print(f"{name:<28} {sec:6.1f} s{'   over budget' if sec > args.budget else ''}")
        return int(any(sec > args.budget for sec in seconds.values()))
    stale = stale_notebooks(args.assignment, args.out)
    if stale:
        print(f"out of date with autograde/source/{args.assignment}: {', '.join(stale)} — run `make notebooks`")
        return 1
    print(f"{args.out} is up to date with autograde/source/{args.assignment}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.course.release", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
