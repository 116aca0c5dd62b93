"""``labkit collect hw4 ZIP``: an LMS's "download all submissions" zip → ``submitted/<id>/hw4/``.

Built on nbgrader's ``zip_collect`` (``ZipCollectApp``: the zip goes to
``downloaded/hw4/archive/``, is extracted to ``downloaded/hw4/extracted/``, and every file is
handed to a collector plugin that names its student and notebook). Our collector,
``LmsCollector``, recognises three namings by the file's *own* name (and, for Moodle, its folder) —
never by a pattern on the absolute path, which is what nbgrader matches a ``named_regexp``
against and why ``^(?P<student_id>[^_/]+)_…`` patterns collect nothing:

=========  ==========================================================  =====================
LMS        file in the zip                                             student id
=========  ==========================================================  =====================
Canvas     ``lovelaceada_LATE_48213_901233_01_absmax-1.ipynb``          48213 (Canvas user id)
           (lastfirst, ``LATE``/``late`` when late, user id,
           submission id, the uploaded name; ``-1`` added to re-uploads)
Moodle     ``Ada Lovelace_1234567_assignsubmission_file_/01_absmax.ipynb``  1234567 (participant id)
           (one folder per student; without folders the prefix is part
           of the file name: ``Ada Lovelace_1234567_assignsubmission_file_01_absmax.ipynb``)
plain      ``s1234567_01_absmax.ipynb``                                 s1234567
=========  ==========================================================  =====================

Each notebook is stored under its expected name (``01_absmax-1.ipynb`` → ``01_absmax.ipynb``; a
name that is not one of the assignment's notebooks is skipped and listed). Timestamps come from
the zip entries; a Canvas late marker is kept as a timestamp after the due date (the gradebook's
``duedate`` of the assignment, or ``--due``), so nbgrader's late penalties see it. Moodle names
carry the student's name: it goes into the gradebook when the student has none yet.

A zip in which nothing matches exits non-zero with the reason and the first file names it saw.

    labkit collect hw4 ~/Downloads/submissions.zip            # from the course folder
    labkit collect hw4 canvas.zip --due 2026-12-01T23:59 --force
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from nbgrader.plugins import FileNameCollectorPlugin

from .release import ASSIGNMENT

CANVAS = re.compile(r"(?P<name>[a-z0-9]+)_(?P<late>late_)?(?P<user>\d+)_(?P<sub>\d+)_(?P<file>.+)", re.I)
MOODLE_FOLDER = re.compile(r"(?P<full>.+)_(?P<pid>\d+)_assignsubmission_file_?")
MOODLE_FILE = re.compile(r"(?P<full>.+)_(?P<pid>\d+)_assignsubmission_file_(?P<file>.+)")


# The same namings as plain ``nbgrader zip_collect --FileNameCollectorPlugin.named_regexp=...``
# patterns (shown in INSTRUCTORS.md; tested against absolute paths, which is what nbgrader
# matches). They cannot strip a re-upload's ``-1`` from the stored name or keep a late marker.
RAW_PATTERNS = {
    "plain": r".+/(?P<student_id>[^/_]+)_(?P<file_id>\d\d_[^/]+\.ipynb)$",
    "canvas": r".+/[a-z0-9]+_(?:late_|LATE_)?(?P<student_id>\d+)_\d+_(?P<file_id>\d\d_[^/]+\.ipynb)$",
    "moodle": r".+/[^/]+_(?P<student_id>\d+)_assignsubmission_file_/(?P<file_id>\d\d_[^/]+\.ipynb)$",
}


class CollectError(ValueError):
    """Nothing (or not everything asked for) could be collected; the message says why."""


@dataclass(frozen=True)
class Found:
    """What one file in the zip is."""

    lms: str           # "canvas", "moodle" or "plain"
    student_id: str
    notebook: str      # the assignment's notebook name, e.g. 01_absmax.ipynb
    late: bool = False
    first_name: str | None = None
    last_name: str | None = None


def notebook_name(uploaded: str, expected: set[str]) -> str | None:
    """The expected notebook an uploaded file name stands for: itself, or itself without the
    ``-N`` an LMS adds to a re-upload (``01_absmax-1.ipynb``); None when it is neither."""
    if uploaded in expected:
        return uploaded
    stripped = re.sub(r"-\d+(\.ipynb)$", r"\1", uploaded)
    return stripped if stripped in expected else None


def recognise(relpath: str, expected: set[str]) -> Found | None:
    """Recognise one zip entry (a path relative to the zip's root) as a student's notebook."""
    parts = relpath.replace("\\", "/").split("/")
    base, folder = parts[-1], (parts[-2] if len(parts) > 1 else "")
    m = MOODLE_FOLDER.fullmatch(folder)
    if m and (nb := notebook_name(base, expected)):
        return Found("moodle", m["pid"], nb, **_names(m["full"]))
    m = MOODLE_FILE.fullmatch(base)
    if m and (nb := notebook_name(m["file"], expected)):
        return Found("moodle", m["pid"], nb, **_names(m["full"]))
    m = CANVAS.fullmatch(base)
    if m and (nb := notebook_name(m["file"], expected)):
        return Found("canvas", m["user"], nb, late=bool(m["late"]))
    for cut in [i for i, ch in enumerate(base) if ch == "_"]:
        if (nb := notebook_name(base[cut + 1:], expected)) and cut > 0:
            return Found("plain", base[:cut], nb)
    return None


def _names(full: str) -> dict:
    first, _, last = full.strip().rpartition(" ")
    return {"first_name": first or None, "last_name": last or None}


class LmsCollector(FileNameCollectorPlugin):
    """nbgrader collector plugin: ``recognise`` on the path below the extracted folder. The app
    sets ``extracted``, ``expected``, ``times`` (zip entry → datetime) and ``due`` before use."""

    extracted: Path = Path(".")
    expected: set[str] = set()
    times: dict[str, datetime] = {}
    due: datetime | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.found: dict[str, Found] = {}
        self.skipped: list[str] = []

    def collect(self, submitted_file: str) -> dict | None:
        rel = Path(submitted_file).relative_to(self.extracted).as_posix()
        inner = rel.split("/", 1)[1] if "/" in rel else rel  # below extracted/<zip name>/
        info = recognise(inner, self.expected) if submitted_file.endswith(".ipynb") else None
        if info is None:
            self.skipped.append(inner)
            return None
        self.found[inner] = info
        stamp = self.times.get(inner)
        if self.due is not None and stamp is not None:
            if info.late:
                stamp = max(stamp, self.due + timedelta(seconds=1))
            elif info.lms == "canvas":
                stamp = min(stamp, self.due)  # Canvas says it was on time
        return {"student_id": info.student_id, "file_id": info.notebook,
                "timestamp": stamp.isoformat(" ") if stamp else None}


@dataclass
class Collected:
    """What a collection did."""

    students: dict[str, list[str]]              # student id -> notebooks stored
    lms: set[str] = field(default_factory=set)
    late: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    due: datetime | None = None


def collect(assignment: str, zip_path: Path | str, course=None, *, due: datetime | None = None,
            force: bool = False) -> Collected:
    """Collect ``zip_path`` into ``course`` (a ``Course``, a folder or None for the current one)."""
    from nbgrader.apps import ZipCollectApp
    from nbgrader.coursedir import CourseDirectory

    from .folder import Course, find_course

    course = course if isinstance(course, Course) else find_course(course)
    zip_path = Path(zip_path).expanduser().resolve()
    if not zip_path.is_file():
        raise CollectError(f"{zip_path} does not exist")
    if not zipfile.is_zipfile(zip_path):
        raise CollectError(f"{zip_path} is not a zip file")
    release = course.root / "release" / assignment
    expected = {p.name for p in release.glob("*.ipynb")} or {p.name for p in (course.root / "source" / assignment).glob("*.ipynb")}
    if not expected:
        raise CollectError(f"no notebooks for {assignment} in {release} or source/: run `nbgrader generate_assignment {assignment}` first")
    if due is None:
        due = _gradebook_due(course, assignment)
    with zipfile.ZipFile(zip_path) as zf:
        times = {i.filename: datetime(*i.date_time) for i in zf.infolist() if not i.is_dir()}
    downloaded = course.root / "downloaded" / assignment
    for step in ("archive", "extracted"):
        shutil.rmtree(downloaded / step, ignore_errors=True)
    (downloaded / "archive").mkdir(parents=True)
    shutil.copy2(zip_path, downloaded / "archive" / zip_path.name)

    cfg = course.config()
    cfg.CourseDirectory.assignment_id = assignment
    cfg.ZipCollectApp.collector_plugin = LmsCollector
    cfg.ZipCollectApp.force = force
    cfg.ZipCollectApp.strict = True
    LmsCollector.extracted, LmsCollector.expected, LmsCollector.times, LmsCollector.due = (
        downloaded / "extracted", expected, times, due)
    app = ZipCollectApp(config=cfg)
    app.coursedir = CourseDirectory(config=cfg, parent=app)
    errors = _ErrorLog()
    app.log.addHandler(errors)
    app.log.setLevel(logging.ERROR)  # what was skipped is reported by us, once
    try:
        app.init_plugins()
        app.extract_archive_files()
        app.process_extracted_files()
    except SystemExit:
        raise CollectError(errors.last or "nbgrader zip_collect failed") from None
    finally:
        app.log.removeHandler(errors)
    plugin = app.collector_plugin_inst
    result = Collected(students={}, skipped=sorted(plugin.skipped), due=due)
    for info in plugin.found.values():
        result.students.setdefault(info.student_id, []).append(info.notebook)
        result.lms.add(info.lms)
        if info.late and info.student_id not in result.late:
            result.late.append(info.student_id)
    if not result.students:
        sample = ", ".join(result.skipped[:3]) or "no files"
        raise CollectError(f"nothing in {zip_path.name} matched a Canvas, Moodle or `studentid_notebook.ipynb` name "
                           f"of {assignment}'s notebooks ({', '.join(sorted(expected))}); first files: {sample}")
    _store_names(course, plugin.found.values())
    return result


class _ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record):
        self.last = " ".join(record.getMessage().split())


def _gradebook_due(course, assignment: str) -> datetime | None:
    from nbgrader.api import MissingEntry

    try:
        with course.gradebook() as gb:
            return gb.find_assignment(assignment).duedate
    except MissingEntry:
        return None


def _store_names(course, found) -> None:
    """Students into the gradebook: with the names Moodle gave, else with their id as last name
    (the formgrader then lists ``s1234567, `` instead of "None, None"). Names already there stay."""
    from nbgrader.api import MissingEntry

    from .cluster import quiet_gradebook

    students = {}
    for f in found:
        if f.first_name or f.last_name or f.student_id not in students:
            students[f.student_id] = f
    with quiet_gradebook(), course.gradebook() as gb:
        for sid, f in students.items():
            first, last = (f.first_name or "", f.last_name or "") if (f.first_name or f.last_name) else ("", sid)
            try:
                row = gb.find_student(sid)
            except MissingEntry:
                gb.add_student(sid, first_name=first, last_name=last)
                continue
            if not row.first_name and (row.last_name in (None, "", sid)):
                row.first_name, row.last_name = first, last
        gb.db.commit()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help="assignment id, e.g. hw4")
    parser.add_argument("zip", help="the LMS's download of all submissions (Canvas, Moodle or studentid_notebook.ipynb)")
    parser.add_argument("--course", default=None, help="course folder (default: the current directory)")
    parser.add_argument("--config", default=None, help="nbgrader config (default: the course folder's)")
    parser.add_argument("--due", default=None, help="due date (ISO, UTC) for Canvas late markers; default: the gradebook's")
    parser.add_argument("--force", action="store_true", help="replace submissions already in submitted/")


def run(args: argparse.Namespace) -> int:
    from .folder import find_course

    due = None
    if args.due:
        try:
            due = datetime.fromisoformat(args.due)
        except ValueError:
            raise CollectError(f"--due {args.due!r} is not an ISO date such as 2026-12-01T23:59") from None
    course = find_course(args.course, args.config)
    got = collect(args.assignment, args.zip, course, due=due, force=args.force)
    for sid, notebooks in sorted(got.students.items()):
        print(f"{sid:<24} {', '.join(sorted(notebooks))}{'   LATE' if sid in got.late else ''}")
    for name in got.skipped:
        print(f"skipped  {name}: not a notebook of {args.assignment} in a recognised naming")
    print(f"collected {sum(map(len, got.students.values()))} notebooks of {len(got.students)} students "
          f"({', '.join(sorted(got.lms))}) into {course.root / 'submitted'}; {len(got.skipped)} files skipped")
    if got.late and got.due is None:
        print(f"note: {len(got.late)} late submissions, but {args.assignment} has no due date: set one "
              f"(nbgrader db assignment add {args.assignment} --duedate=...) or pass --due so the late marker counts")
    return 0
