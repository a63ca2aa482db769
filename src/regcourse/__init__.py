"""Shared code of the regularization course: data, seeding, models, plots, checks.

Modules import TensorFlow lazily, so ``import regcourse`` stays cheap for
tools (graders, tests) that never train. TensorFlow's C++ start-up notices are
silenced by ``TF_CPP_MIN_LOG_LEVEL=3`` in the environment of the process that
starts the kernel (the Makefile exports it for the book, the course's
``nbgrader_config.py`` sets it for grading): TensorFlow reads it before any
Python code of ours could set it.
"""

__version__ = "0.1.0"
