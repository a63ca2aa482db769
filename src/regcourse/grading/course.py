"""The nbgrader course a grading run works in: its configuration, folders and gradebook.

Everything is read the way stock nbgrader reads it (the user's and the
system's ``nbgrader_config.py`` first, then the course root's, which wins), so
``regcourse grade`` and ``nbgrader autograde`` always agree on where the
submissions, the gradebook (``db_url``: SQLite by default, PostgreSQL for
several machines) and the feedback are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "nbgrader_config.py"


class CourseError(Exception):
    """The grader itself cannot run (bad course folder, unknown assignment): says how to fix it."""


def load_config(root: Path):
    """The traitlets config nbgrader would load when run from ``root``."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    config = Config()
    # nbgrader gives the first entry of jupyter_config_path() priority, and the
    # course root's file priority over all: merge lowest priority first.
    for folder in [*reversed(jupyter_config_path()), str(root)]:
        try:
            loaded = PyFileConfigLoader(CONFIG_FILE, path=folder).load_config()
        except ConfigFileNotFound:
            continue
        except Exception as error:  # a syntax error in a config file: the grader cannot run
            raise CourseError(f"{Path(folder) / CONFIG_FILE} could not be loaded: {error}") from error
        config.merge(loaded)
    return config


@dataclass
class Course:
    """An nbgrader course folder, with its configuration loaded."""

    root: Path
    config: object

    @classmethod
    def open(cls, root: Path | str) -> Course:
        root = Path(root).resolve()
        if not root.is_dir():
            raise CourseError(f"course folder {root} does not exist: pass --course DIR, the folder holding {CONFIG_FILE}")
        if not (root / CONFIG_FILE).is_file():
            raise CourseError(
                f"{root} has no {CONFIG_FILE}: run the command from the course folder or pass --course DIR"
            )
        if not os.access(root, os.R_OK | os.W_OK | os.X_OK):
            raise CourseError(f"course folder {root} is not readable and writable by this user")
        return cls(root, load_config(root))

    @property
    def coursedir(self):
        from nbgrader.coursedir import CourseDirectory

        return CourseDirectory(config=self.config, root=str(self.root))

    @property
    def db_url(self) -> str:
        return self.coursedir.db_url

    @property
    def course_id(self) -> str:
        return self.coursedir.course_id

    def folder(self, step: str, student: str, assignment: str) -> Path:
        """nbgrader's folder for one step (``submitted_directory``, ...), one student and assignment."""
        cd = self.coursedir
        return Path(cd.format_path(getattr(cd, step), student, assignment))

    @property
    def submitted(self) -> Path:
        return self.root / self.coursedir.submitted_directory

    def source_notebooks(self, assignment: str) -> list[str]:
        """Names (without .ipynb) of the assignment's notebooks, from the instructor's source folder."""
        source = self.folder("source_directory", ".", assignment)
        return sorted(p.stem for p in source.glob("*.ipynb"))

    def gradebook(self):
        from nbgrader.api import Gradebook

        return Gradebook(self.db_url, self.course_id)

    def check_assignment(self, assignment: str) -> list[str]:
        """The assignment's notebook names; a CourseError if it cannot be graded yet."""
        from nbgrader.api import MissingEntry

        cd = self.coursedir
        source = self.folder("source_directory", ".", assignment)
        known = sorted(p.name for p in (self.root / cd.source_directory).glob("*") if p.is_dir())
        if not source.is_dir():
            raise CourseError(
                f"unknown assignment {assignment!r}: there is no {source.relative_to(self.root)}/ "
                f"(assignments in {cd.source_directory}/: {', '.join(known) or 'none'})"
            )
        notebooks = self.source_notebooks(assignment)
        if not notebooks:
            raise CourseError(f"{source.relative_to(self.root)}/ holds no notebook to grade")
        try:
            with self.gradebook() as gb:
                try:
                    released = {nb.name for nb in gb.find_assignment(assignment).notebooks}
                except MissingEntry:
                    released = set()
        except CourseError:
            raise
        except Exception as error:  # unreachable PostgreSQL, unreadable SQLite file, ...
            raise CourseError(f"cannot open the gradebook {self.db_url}: {error}") from error
        if not set(notebooks) <= released:
            raise CourseError(
                f"assignment {assignment!r} is not in the gradebook yet: run "
                f"`nbgrader generate_assignment {assignment}` in {self.root} first"
            )
        return notebooks
