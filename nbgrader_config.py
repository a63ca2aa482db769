"""nbgrader course configuration: the repository root is the course root.

Stock commands work from here, e.g. ``nbgrader generate_assignment a3_dropout``
(writes exercises/a3_dropout/), ``nbgrader autograde a3_dropout``,
``nbgrader generate_feedback a3_dropout``, ``nbgrader export``.
"""

import os
import sys

from regcourse.environment import apply as apply_course_environment

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

#: nbgrader runs ``alembic`` by name when it creates a gradebook: the programs installed beside the Python
#: that runs nbgrader come first on the search path, so that ``.venv/bin/nbgrader`` (or
#: ``.venv/bin/regcourse``) works from a shell where the virtual environment is not activated.
_programs = os.path.dirname(sys.executable)
os.environ["PATH"] = os.pathsep.join(
    [_programs, *(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != _programs)]
)  # the same PATH however often this file is loaded

#: The environment of every kernel nbgrader starts (regcourse.environment: no
#: TensorFlow start-up lines on stderr, which nbgrader would score as a failed
#: test; the same bits on every grading machine), set here so that a grade never
#: depends on the shell that runs nbgrader. A kernel inherits this process's
#: environment, and TensorFlow reads these variables when it loads, before any
#: notebook code could set them. Values are forced: a caller's
#: ``TF_CPP_MIN_LOG_LEVEL=0`` must not change a grade either.
apply_course_environment()

#: The assignments of the course, in teaching order; `make assignments` and the
#: tests iterate over this list. Each is solutions/<id>/<id>.ipynb.
ASSIGNMENTS = [
    "a1_bias_variance",
    "a2_penalties",
    "a3_dropout",
    "a4_early_stopping",
    "a5_batch_norm",
    "a6_capstone",
]

c.CourseDirectory.course_id = "regularization"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.GenerateAssignment.create_assignment = True

# Per-cell limit while grading. nbgrader's own Execute preprocessor reads this
# (ExecutePreprocessor.timeout is ignored on some of its code paths). The
# slowest graded cell (the capstone's training) needs about 30 s on 2 cores.
c.Execute.timeout = 240
c.Execute.kernel_name = "python3"
# What a native library writes to the process's file descriptors (TensorFlow's
# absl log lines, a BLAS warning) reaches the grader's log, not a test cell's
# stderr, where nbgrader would score it as a failure. Python-level output
# (print, warnings, tracebacks) is captured as before.
c.Execute.extra_arguments = ["--IPKernelApp.capture_fd_output=False"]

# Stock `nbgrader generate_feedback` (and the formgrader's feedback) writes feedback as
# `regcourse grade` does (regcourse.grading.feedback; tests/test_student_kit.py keeps the two
# lists equal): each test's result, never a hidden test's source. The hidden regions are
# cleared from the test cells; a failing test cell's traceback, whose frames would quote the
# hidden test (or the hidden checks it calls), becomes `ExceptionName: message` saying whether
# a visible or a hidden test raised it; a hidden-test line that reached an output is redacted;
# the student's own HTML and scripts are made inert. Named as strings: nbgrader imports them
# only when it writes feedback.
c.GenerateFeedback.preprocessors = [
    "regcourse.grading.feedback.RedactHiddenTests",
    "regcourse.grading.feedback.ShortenTestTracebacks",
    "regcourse.grading.feedback.TolerantClearHiddenTests",
    "regcourse.grading.feedback.InertStudentContent",
    "nbgrader.preprocessors.GetGrades",  # nbgrader's defaults, in its order
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
c.HTMLExporter.skip_svg_encoding = False  # SVG as <img src="data:...">: its scripts never run

c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
