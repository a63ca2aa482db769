"""nbgrader course configuration: the repository root is the course root.

Stock commands work from here, e.g. ``nbgrader generate_assignment a3_dropout``
(writes exercises/a3_dropout/), ``nbgrader autograde a3_dropout``,
``nbgrader generate_feedback a3_dropout``, ``nbgrader export``.
"""

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

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

c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
