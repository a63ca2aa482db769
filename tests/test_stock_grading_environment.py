"""Stock ``nbgrader autograde`` grades correctly whatever shell runs it.

The course's ``nbgrader_config.py`` sets the kernels' environment and keeps
native libraries' log lines (TensorFlow's ``failed call to cuInit`` on a
machine without a GPU) out of test cells, where nbgrader would score them as
failures. These tests grade the tiny ``mini`` assignment with a test cell that
writes to file descriptor 2 the way a C++ library does and that reads the
kernel's environment, from a plain environment and from one whose variables
contradict the course's.
"""

from __future__ import annotations

import nbformat
import pytest

from grading_corpus import ASSIGNMENT, MAX_SCORE, NOTEBOOK, student_notebook
from grading_harness import nbgrader, plain_environment
from regcourse.environment import ENVIRONMENT, OWNED_PREFIXES, UNSET

COURSE_ID = "regularization"

#: What the kernel sets for itself among the variables the course removes: ipykernel's inline backend.
KERNEL_SETS = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}

#: A correct ``l2_norm`` that, when the test cell calls it, writes to file descriptor 2 as
#: TensorFlow's C++ start-up does on a machine without a GPU, and checks the kernel's environment.
L2_NORM_WITH_NATIVE_STDERR = f"""import os


def l2_norm(w):
    os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\\n")
    wrong = {{name: os.environ.get(name) for name, value in {ENVIRONMENT!r}.items() if os.environ.get(name) != value}}
    wrong.update({{name: value for name, value in os.environ.items()
                  if (name in {UNSET!r} or name.startswith({OWNED_PREFIXES!r}) and name not in {tuple(ENVIRONMENT)!r})
                  and value != {KERNEL_SETS!r}.get(name)}})
    assert not wrong, wrong
    return float(np.sqrt(np.sum(np.square(w))))
"""


def _submit(course, student: str) -> None:
    target = course / "submitted" / student / ASSIGNMENT
    target.mkdir(parents=True)
    nbformat.write(student_notebook(course, l2_norm=L2_NORM_WITH_NATIVE_STDERR), target / NOTEBOOK)


def _total(course, student: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        return gb.find_submission(ASSIGNMENT, student).score


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param({}, id="plain-shell"),
        pytest.param({"TF_CPP_MIN_LOG_LEVEL": "0", "TF_ENABLE_ONEDNN_OPTS": "1", "TF_NUM_INTRAOP_THREADS": "8",
                      "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "PYTHONHASHSEED": "random",
                      "NPY_DISABLE_CPU_FEATURES": "", "NPY_ENABLE_CPU_FEATURES": "SSE2", "KERAS_BACKEND": "jax",
                      "KERAS_MAX_EPOCHS": "1", "TF_XLA_FLAGS": "--tf_xla_auto_jit=2", "MPLBACKEND": "Agg"},
                 id="contradicting-shell"),
    ],
)
def test_a_correct_submission_gets_full_marks_whatever_the_callers_environment(mini_course, caller):
    _submit(mini_course, "student")
    nbgrader(mini_course, "autograde", ASSIGNMENT, env=plain_environment() | caller)
    assert _total(mini_course, "student") == MAX_SCORE
    graded = nbformat.read(mini_course / "autograded" / "student" / ASSIGNMENT / NOTEBOOK, 4)
    stderr = [o.text for c in graded.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert stderr == [], stderr
