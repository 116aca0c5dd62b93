"""Which course a ``labkit`` course command works on: the folder in front of you, like nbgrader.

nbgrader reads ``nbgrader_config.py`` from the current directory, and the course root is that
config's ``CourseDirectory.root`` (the current directory when the config does not set it). labkit's
course commands (``grade``, ``grade-report``, ``collect``) do the same, with ``--course DIR`` (a
path relative to the current directory is fine) standing for "run from DIR":

1. the config file is ``--config`` if given, else ``DIR/nbgrader_config.py``; when DIR has none,
   the repository's course config (``nbgrader_config.py`` at the repository root) is used with the
   course root set to DIR;
2. the course root is the config's ``CourseDirectory.root`` when that folder exists, else DIR
   (an instructor who copied the repository's config, which names ``autograde/``, into the
   course folder itself gets that folder);
3. the gradebook is the config's ``CourseDirectory.db_url``: sqlite in the course root by default,
   a PostgreSQL URL when ``nbgrader_config.py`` sets one (``LABKIT_GRADEBOOK_URL``).

From the repository root, ``labkit grade hw4`` therefore grades ``autograde/``; from a copy of the
course (``cd mycourse``), the copy. Every problem is one line naming the folder or file and what
to run (``CourseError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPO_CONFIG = REPO / "nbgrader_config.py"


class CourseError(FileNotFoundError):
    """The course folder, its config or its gradebook is not where a command needs it (one line)."""


@dataclass(frozen=True)
class Course:
    """A resolved course: where it lives, which config it runs with, where its gradebook is."""

    folder: Path        # the folder the command was run for (cwd or --course)
    config_file: Path
    root: Path          # CourseDirectory.root
    course_id: str
    db_url: str

    def config(self):
        """A fresh traitlets ``Config`` of this course with ``CourseDirectory.root`` set."""
        from .release import load_config

        cfg = load_config(self.root, self.config_file)
        cfg.CourseDirectory.db_url = self.db_url
        return cfg

    def api(self, config=None):
        from .release import api_for

        return api_for(self.root, config if config is not None else self.config())

    def gradebook(self):
        """nbgrader's ``Gradebook`` on this course's database (use as a context manager)."""
        from nbgrader.api import Gradebook

        from .release import _venv_on_path

        _venv_on_path()  # nbgrader runs `alembic` from PATH when it creates a sqlite gradebook
        return Gradebook(self.db_url, self.course_id)

    def require_assignment(self, assignment: str) -> None:
        """Raise ``CourseError`` unless the gradebook knows ``assignment`` (i.e. it was generated)."""
        from nbgrader.api import MissingEntry

        hint = f"run `nbgrader generate_assignment {assignment}` in {self.folder} first"
        if self.db_url.startswith("sqlite:///") and not Path(self.db_url[len("sqlite:///"):]).exists():
            raise CourseError(f"no gradebook at {self.db_url[len('sqlite:///'):]}: {hint}")
        with self.gradebook() as gb:
            try:
                gb.find_assignment(assignment)
            except MissingEntry:
                raise CourseError(f"assignment {assignment!r} is not in the gradebook {_safe_url(self.db_url)}: "
                                  f"{hint}") from None


def _safe_url(url: str) -> str:
    """The database URL without a password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def find_course(course: Path | str | None = None, config: Path | str | None = None) -> Course:
    """Resolve the course for a command run in ``course`` (default: the current directory)."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    folder = Path(course if course is not None else ".").expanduser().resolve()
    if not folder.is_dir():
        raise CourseError(f"course folder {folder} does not exist")
    if config is not None:
        config_file = Path(config).expanduser().resolve()
        if not config_file.is_file():
            raise CourseError(f"config file {config_file} does not exist")
    elif (folder / "nbgrader_config.py").is_file():
        config_file = folder / "nbgrader_config.py"
    else:
        config_file = REPO_CONFIG
    try:
        cfg = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    except ConfigFileNotFound:
        raise CourseError(f"cannot read the nbgrader config {config_file}") from None
    root = folder
    if config_file != REPO_CONFIG or folder == REPO:
        configured = cfg.CourseDirectory.get("root") if "CourseDirectory" in cfg else None
        if configured:
            candidate = (folder / configured).resolve()
            root = candidate if candidate.is_dir() else folder
    if not (root / "source").is_dir():
        raise CourseError(f"{root} is not an nbgrader course (no source/ folder); run the command from the "
                          f"course folder or pass --course")
    cfg.CourseDirectory.root = str(root)
    coursedir = CourseDirectory(config=cfg)
    return Course(folder=folder, config_file=config_file, root=root, course_id=coursedir.course_id,
                  db_url=coursedir.db_url)
