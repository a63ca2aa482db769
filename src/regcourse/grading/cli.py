"""``regcourse grade``: collect, grade in parallel with live progress, then feedback and reports.

    regcourse grade a2_penalties                       # submitted/ as it is, one worker per core
    regcourse grade a2_penalties --submissions canvas.zip --workers 8
    regcourse grade a2_penalties --scheduler tcp://10.0.0.5:8786   # a Dask cluster

The exit status is 0 whenever the grader did its job, however badly the
students' code behaved (a crash, a timeout, a corrupt notebook is a row of
the summary, not an error). It is 2 when the grader cannot start (no course
folder, unknown or unreleased assignment, unreadable submissions) and 1 when
it fails while running (a bug, an unreachable scheduler): then no grade of
this run should be trusted.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from .collect import Collected, collect
from .course import Course, CourseError
from .model import Limits, Outcome, Status
from .report import Reports, Summary, summarize, suspicious_flags, write_reports
from .report import prepare as prepare_reports

if TYPE_CHECKING:  # nbconvert takes seconds to import: only once grading is under way
    from .feedback import Feedback

EXIT_OK, EXIT_GRADER_FAILED, EXIT_CANNOT_START = 0, 1, 2


@dataclass
class GradingRun:
    collected: Collected
    outcomes: list[Outcome]
    feedback: Feedback
    summary: Summary
    reports: Reports


class ProgressReporter:
    """Counts outcomes as they arrive and shows them: a rich progress bar on a terminal, lines otherwise.

    ``on_result`` may be called from the engine's threads; a lock keeps the counts right.
    """

    def __init__(self, total: int, assignment: str, *, console=None, live: bool | None = None):
        from rich.console import Console

        self.console = console or Console(stderr=True, soft_wrap=True)
        self.total, self.assignment = total, assignment
        self.done = 0
        self.counts = {Status.FAILED_TO_RUN: 0, Status.LIMIT_EXCEEDED: 0}
        self.flagged = 0
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self.live = self.console.is_terminal if live is None else live
        self._progress = None

    def __enter__(self):
        if self.live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(
                TextColumn("grading [bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]} failed to run[/] · [yellow]{task.fields[limit]} over a "
                           "limit[/] · [magenta]{task.fields[flagged]} flagged[/]"),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                console=self.console,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.assignment, total=self.total, failed=0, limit=0, flagged=0)
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def on_result(self, outcome: Outcome) -> None:
        with self._lock:
            self.done += 1
            if outcome.status in self.counts:
                self.counts[outcome.status] += 1
            self.flagged += bool(suspicious_flags(outcome))
            if self._progress is not None:
                self._progress.update(self._task, advance=1, failed=self.counts[Status.FAILED_TO_RUN],
                                      limit=self.counts[Status.LIMIT_EXCEEDED], flagged=self.flagged)
            else:
                elapsed = time.monotonic() - self.start
                left = elapsed / self.done * (self.total - self.done)
                flag = "  FLAGGED" if suspicious_flags(outcome) else ""
                self.console.print(
                    f"[{self.done}/{self.total}] {outcome.student}: {outcome.status.value} "
                    f"{outcome.score:g}/{outcome.max_score:g} in {outcome.seconds:.1f} s{flag} "
                    f"(failed {self.counts[Status.FAILED_TO_RUN]}, over a limit "
                    f"{self.counts[Status.LIMIT_EXCEEDED]}, about {left:.0f} s left)",
                    highlight=False, markup=False, soft_wrap=True,
                )


def grade_assignment(course_root: Path, assignment: str, *, submissions: Path | None = None,
                     workers: int | None = None, scheduler: str | None = None, limits: Limits = Limits(),
                     console=None, live: bool | None = None) -> GradingRun:
    """The whole run, as ``regcourse grade`` does it; raises CourseError when it cannot start."""
    from regcourse.environment import apply as apply_course_environment

    from . import forkserver

    # What the course's nbgrader_config.py sets for its kernels, before the fork server below
    # imports TensorFlow for them: else, started from a plain shell, it would import it with
    # another environment than its kernels', and be replaced once the config is loaded.
    apply_course_environment()
    if scheduler is None:
        # The local fork server imports nbgrader (seconds of CPU) once: first thing, on the
        # other core, while this process checks the course and collects the submissions.
        threading.Thread(target=forkserver.server, name="forkserver-start", daemon=True).start()
    from rich.console import Console

    from .engine import grade_many  # the engine brings the sandbox and the process pool: load it only to grade
    from .feedback import BackgroundFeedback  # nbconvert and nbgrader: seconds

    console = console or Console(stderr=True, soft_wrap=True)
    course = Course.open(course_root)
    collected = collect(course.root, assignment, submissions)  # first checks the assignment: a CourseError now
    console.print(f"{assignment}: {len(collected.refs)} submissions to grade"
                  + (f", {len(collected.problems)} problems listed at the end" if collected.problems else ""),
                  highlight=False)
    start = time.monotonic()
    # each student's feedback as soon as they are graded; then the report's imports
    feedback_writer = BackgroundFeedback(course.root, assignment, meanwhile=prepare_reports)

    def on_result(outcome: Outcome) -> None:
        progress.on_result(outcome)
        feedback_writer.submit(outcome)

    with ProgressReporter(len(collected.refs), assignment, console=console, live=live) as progress:
        outcomes = grade_many(course.root, collected.refs, limits, workers=workers,
                              scheduler=scheduler, on_result=on_result) if collected.refs else []
    seconds = time.monotonic() - start
    feedback = feedback_writer.finish()
    summary = summarize(assignment, outcomes, collected.problems + feedback.problems, collected.late, seconds)
    summary.feedback_seconds = time.monotonic() - start - seconds  # what was left of it when grading ended
    reports = write_reports(course.root, assignment, outcomes, summary)
    return GradingRun(collected, outcomes, feedback, summary, reports)


def print_summary(run: GradingRun, console) -> None:
    from rich.table import Table

    summary = run.summary
    table = Table(title=f"{summary.assignment}: {summary.total} submissions graded in {summary.seconds:.1f} s")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_column("students")
    for title, students in summary.rows:
        table.add_row(title, str(len(students)), ", ".join(students[:20]) + (" ..." if len(students) > 20 else ""))
    console.print(table)
    for student, flags in sorted(summary.flags.items()):
        for flag in flags:
            console.print(f"review {student}: {flag}", highlight=False, markup=False, soft_wrap=True)
    if summary.late:
        console.print(f"marked late by the LMS: {', '.join(summary.late)}", highlight=False, markup=False)
    for note in summary.notes:
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    if summary.problems:
        console.print(f"{len(summary.problems)} problems (nothing was dropped silently):", style="bold")
        for problem in summary.problems:
            console.print(f"  - {problem}", highlight=False, markup=False, soft_wrap=True)
    reports = run.reports
    root = reports.grades_csv.parent.parent
    console.print(
        f"feedback: {root / 'feedback'}/<student>/{summary.assignment}/\n"
        f"grades: {reports.grades_csv}\nthis run: {reports.outcomes_csv} and {reports.summary_txt.name}\n"
        f"plots: {reports.scores_png.name}, {reports.failures_png.name}",
        highlight=False, markup=False,
    )


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    from .engine import default_workers

    defaults = Limits()
    top = argparse.ArgumentParser(prog="regcourse", description="Tools of the regularization course.")
    commands = top.add_subparsers(dest="command", required=True)
    grade = commands.add_parser(
        "grade", help="grade every submission of an assignment with nbgrader, in parallel",
        description="Collect, autograde (stock nbgrader, one limited process per submission), "
                    "write feedback, grades.csv and plots under the course folder.",
    )
    grade.add_argument("assignment", help="assignment id, e.g. a2_penalties (a folder of the source directory)")
    grade.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: current folder)")
    grade.add_argument("--submissions", type=Path, metavar="PATH",
                       help="an LMS export (folder or .zip; Canvas or Moodle names) or a folder in nbgrader's "
                            "layout; default: the course's submitted/ as it is")
    grade.add_argument("--workers", type=_positive(int), metavar="N",
                       help=f"local grading processes (default: the number of cores, {default_workers()} here)")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="a Dask distributed scheduler (tcp://host:8786): grade on its workers instead")
    grade.add_argument("--cell-timeout", type=_positive(int), default=defaults.cell_timeout_s, metavar="S",
                       help=f"seconds one cell may run (default {defaults.cell_timeout_s})")
    grade.add_argument("--notebook-timeout", type=_positive(int), default=defaults.notebook_timeout_s, metavar="S",
                       help=f"seconds one whole submission may take (default {defaults.notebook_timeout_s})")
    grade.add_argument("--memory", type=_positive(int), default=defaults.memory_bytes // 2**20, metavar="MB",
                       help=f"memory a student's kernel holds as its own (USS) (default {defaults.memory_bytes // 2**20})")
    grade.add_argument("--plain", action="store_true", help="one line per submission instead of a progress bar")
    return top


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    args = parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    limits = Limits(cell_timeout_s=args.cell_timeout, notebook_timeout_s=args.notebook_timeout,
                    memory_bytes=args.memory * 2**20)
    try:
        run = grade_assignment(args.course, args.assignment, submissions=args.submissions, workers=args.workers,
                               scheduler=args.scheduler, limits=limits, console=console,
                               live=False if args.plain else None)
    except CourseError as error:
        console.print(f"regcourse grade: {error}", style="bold red", highlight=False, markup=False)
        return EXIT_CANNOT_START
    except KeyboardInterrupt:
        console.print("regcourse grade: interrupted; grades of this run are incomplete", style="bold red")
        return 130
    except Exception as error:  # the grader's own failure: say so plainly, keep the traceback for a bug report
        console.print_exception()
        console.print(f"regcourse grade: the grader failed ({type(error).__name__}: {error}); "
                      "no grade of this run should be trusted", style="bold red", highlight=False, markup=False)
        return EXIT_GRADER_FAILED
    print_summary(run, Console())
    # Everything left is freed by the exit anyway: spare the interpreter's last
    # collection of the whole heap (nbgrader, nbconvert, matplotlib: ~0.8 s).
    gc.freeze()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
