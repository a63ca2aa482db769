"""The values passed between collecting, grading and reporting.

All are plain picklable dataclasses: grading tasks travel to worker processes
and Dask workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    GRADED = "graded"                  # nbgrader autograded it (the student's code may have failed tests)
    LIMIT_EXCEEDED = "limit_exceeded"  # a cell or the notebook hit a time/memory limit, or the kernel died;
                                       # the offending cell was neutralized and the rest graded
    FAILED_TO_RUN = "failed_to_run"    # could not be graded at all (unreadable notebook, ...): zero, with a reason


@dataclass(frozen=True)
class SubmissionRef:
    """One submission already laid out as submitted/<student>/<assignment>/."""

    student: str
    assignment: str


@dataclass(frozen=True)
class Limits:
    """Per-submission limits; a submission over one gets zero on what could not run."""

    cell_timeout_s: int = 120
    notebook_timeout_s: int = 900
    memory_bytes: int = 4 * 1024**3   # memory the kernel holds as its own (USS; not address space: TensorFlow
                                      # reserves lots, nor pages a warm kernel shares with the fork server)
    output_bytes: int = 1024**2       # stored output per cell; the rest is truncated


@dataclass
class Outcome:
    student: str
    assignment: str
    status: Status
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    judge_seconds: float = 0.0  # of ``seconds``, what the judge took (outside the kernel)
    flags: list[str] = field(default_factory=list)     # for the instructor's review (tampering, edited tests, ...)
    messages: list[str] = field(default_factory=list)  # lines that also go into the student's feedback
    test_results: dict[str, tuple[float, float]] = field(default_factory=dict)  # grade id -> (score, max)
    # which protections the kernel had: {"user": bool, "network": bool, "files": bool}, and
    # "reason" when they were unavailable (not root, no namespaces); instructor-facing, never a flag
    isolation: dict = field(default_factory=dict)
    # how its kernel started: {"warm": True} (forked from the grader's fork server, see warm_kernel), or
    # {"warm": False, "reason": why not}; instructor-facing, in the report's notes
    kernel: dict = field(default_factory=dict)
