"""How long stock `nbgrader autograde` takes for each instructor notebook.

    .venv/bin/python benchmarks/autograde_times.py [assignment ...]

Each assignment is graded in a fresh course directory, one submission (the
instructor notebook), sequentially. The baseline, measured in the same run, is
autograding a notebook that only imports TensorFlow: the floor that kernel
start-up and the import put under every submission. Targets (issue 3): at
most 60 s per notebook and 240 s for all six on 2 CPU cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from grading_harness import Submission, assignments, build_submission, make_course, nbgrader  # noqa: E402

PER_NOTEBOOK_LIMIT_S = 60
ALL_LIMIT_S = 240


def time_autograde(course: Path, assignment: str) -> float:
    start = time.perf_counter()
    nbgrader(course, "autograde", assignment)
    return time.perf_counter() - start


def baseline(root: Path) -> float:
    """Autograde a one-cell notebook that imports TensorFlow and passes one test."""
    course = root / "baseline"
    source = course / "solutions" / "floor"
    source.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        nbformat.v4.new_code_cell("import tensorflow as tf", metadata={"nbgrader": {"grade": False, "grade_id": "setup", "locked": True, "schema_version": 3, "solution": False, "task": False}}),
        nbformat.v4.new_code_cell("assert tf.constant(1) == 1", metadata={"nbgrader": {"grade": True, "grade_id": "t", "locked": True, "points": 1, "schema_version": 3, "solution": False, "task": False}}),
    ]
    nbformat.write(nb, source / "floor.ipynb")
    from grading_harness import ROOT
    import shutil

    shutil.copy(ROOT / "nbgrader_config.py", course)
    nbgrader(course, "generate_assignment", "floor", "--force")
    target = course / "submitted" / "student" / "floor"
    target.mkdir(parents=True)
    shutil.copy(source / "floor.ipynb", target)
    return time_autograde(course, "floor")


def main(selected: list[str]) -> int:
    names = selected or assignments()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        floor = baseline(root)
        print(f"baseline (kernel + TensorFlow import): {floor:.1f} s")
        total, slow = 0.0, []
        for name in names:
            course = root / name
            course.mkdir()
            make_course(course, [name])
            build_submission(course, Submission("student", name))
            seconds = time_autograde(course, name)
            total += seconds
            flag = "" if seconds <= PER_NOTEBOOK_LIMIT_S else f"  OVER {PER_NOTEBOOK_LIMIT_S} s"
            slow += [name] if flag else []
            print(f"{name:<20} {seconds:6.1f} s  {seconds / floor:5.1f}x baseline{flag}")
        print(f"{'all':<20} {total:6.1f} s  (limit {ALL_LIMIT_S} s)")
    return 1 if slow or total > ALL_LIMIT_S else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
