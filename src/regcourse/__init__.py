"""Shared code of the regularization course: data, seeding, models, plots, checks.

Modules import TensorFlow lazily, so ``import regcourse`` stays cheap for
tools (graders, tests) that never train. What TensorFlow must find in its
environment when it loads (no C++ start-up notices, the same bits on every
machine) is :mod:`regcourse.environment`, set by the process that starts the
kernel: the book's executor, the tests, the course's ``nbgrader_config.py``.
"""

__version__ = "0.1.0"
