"""Grade many submissions of the course's assignments with stock nbgrader.

A temporary course directory gets the real ``nbgrader_config.py`` and
``solutions/``; ``nbgrader generate_assignment`` releases every assignment
(this also records the hidden tests in the gradebook, which ``autograde``
restores into each submission); submissions are written under
``submitted/<student>/<assignment>/``; one ``nbgrader autograde`` run per
assignment grades them all; scores are read back through nbgrader's
``Gradebook`` API.

Submissions are built as students hand them in: the released exercise with
its answer cells filled in, by the instructor's solution or, in the cells a
variant names, by the variant's code. nbgrader restores the hidden tests into
the test cells when it grades.
Variant submissions skip the ungraded ``experiment`` cell (a few seconds of
training each, and no test reads it): the instructor notebook, graded by both
graders, still runs it, so the experiment is covered.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = Path(__file__).resolve().parent / "assignment_variants"
COURSE_ID = "regularization"
EXPERIMENT_CELL = "experiment"


def assignments() -> list[str]:
    namespace: dict = {"get_config": lambda: _AnyConfig()}
    exec((ROOT / "nbgrader_config.py").read_text(), namespace)
    return namespace["ASSIGNMENTS"]


class _AnyConfig:
    """Stands in for traitlets' config so the course config can be read as plain Python."""

    def __getattr__(self, name):
        return self

    def __setattr__(self, name, value):
        pass


@dataclass
class Submission:
    student: str
    assignment: str
    replacements: dict[str, str] = field(default_factory=dict)
    must_lose: list[str] = field(default_factory=list)  # empty: must get full marks
    release: bool = False  # submit the released exercise untouched
    skip_experiment: bool = False  # replace the ungraded "experiment" cell by a comment


def variant_module(assignment: str):
    sys.path.insert(0, str(VARIANTS.parent))
    try:
        return importlib.import_module(f"assignment_variants.{assignment}")
    finally:
        sys.path.pop(0)


def submissions_for(assignment: str) -> list[Submission]:
    module = variant_module(assignment)
    subs = [
        Submission("solution", assignment),
        Submission("release", assignment, release=True),
    ]
    subs += [
        Submission(f"correct-{name}", assignment, cells, skip_experiment=True)
        for name, cells in module.CORRECT.items()
    ]
    subs += [
        Submission(f"wrong-{name}", assignment, cells, list(loses), skip_experiment=True)
        for name, (cells, loses) in module.WRONG.items()
    ]
    return subs


def grade_ids(nb) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def build_submission(course: Path, sub: Submission) -> None:
    """Write ``sub`` as a student would hand it in: the released exercise, its answer cells filled in.

    Answer cells get the instructor's solution, or the variant's code where it
    replaces one; test cells stay as released (nbgrader restores the hidden
    tests when it grades).
    """
    nb = nbformat.read(course / "exercises" / sub.assignment / f"{sub.assignment}.ipynb", 4)
    if not sub.release:
        solution = grade_ids(nbformat.read(course / "solutions" / sub.assignment / f"{sub.assignment}.ipynb", 4))
        cells = grade_ids(nb)
        for grade_id, source in sub.replacements.items():
            if grade_id not in cells or not cells[grade_id].metadata["nbgrader"].get("solution"):
                raise KeyError(f"{sub.student}: {grade_id!r} is not a solution cell of {sub.assignment}")
        for grade_id, cell in cells.items():
            if cell.metadata["nbgrader"].get("solution"):
                cell.source = sub.replacements.get(grade_id, solution[grade_id].source).strip("\n")
        if sub.skip_experiment and EXPERIMENT_CELL in cells:
            cells[EXPERIMENT_CELL].source = "# experiment not run: this submission exercises the graded cells only"
    target = course / "submitted" / sub.student / sub.assignment
    target.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target / f"{sub.assignment}.ipynb")


def plain_environment() -> dict[str, str]:
    """What an instructor's plain shell gives nbgrader: the system's PATH, a HOME, nothing else.

    None of the variables that ``make test`` exports (``TF_CPP_MIN_LOG_LEVEL``,
    ...) reaches the grader, and the virtual environment is not activated (its
    programs are not on PATH): the course's own ``nbgrader_config.py`` must make
    grading correct by itself.
    """
    return {"PATH": os.pathsep.join(["/usr/bin", "/bin"]), "HOME": os.environ.get("HOME", "/root")}


def nbgrader(course: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Stock nbgrader in ``course``, from a plain environment unless ``env`` is given."""
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=plain_environment() if env is None else env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def course_sources(course: Path, names: list[str]) -> Path:
    """``course`` with the course's ``nbgrader_config.py`` and the instructor notebooks of ``names``."""
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for name in names:
        shutil.copytree(ROOT / "solutions" / name, course / "solutions" / name)
    return course


def make_course(course: Path, names: list[str]) -> None:
    course_sources(course, names)
    for name in names:
        nbgrader(course, "generate_assignment", name, "--force")


def scores(course: Path, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    """grade id -> (autograded score, max score) for every autograded test cell."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        return {
            g.name: (g.auto_score, g.max_score)
            for g in nb.grades
            if g.cell.cell_type == "code"
        }
