"""The run's summary, its progress display and its plots, from hand-made outcomes (no grading)."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console

from regcourse.grading.cli import ProgressReporter
from regcourse.grading.model import Outcome, Status
from regcourse.grading.report import isolation_notes, plot_failure_rates, plot_scores, summarize

ISOLATED = {"user": True, "network": True, "files": True}


def _outcomes():
    return [
        Outcome("ann", "a1", Status.GRADED, 3, 3, isolation=ISOLATED),
        Outcome("bob", "a1", Status.GRADED, 1, 3, isolation=ISOLATED, flags=[
            "tampering: the visible tests of test_l2_norm passed in the kernel, but the judge finds those cases wrong"]),
        Outcome("cid", "a1", Status.LIMIT_EXCEEDED, 1, 3, messages=["Cell 3 was interrupted"], isolation=ISOLATED),
        Outcome("dee", "a1", Status.FAILED_TO_RUN, 0, 3, messages=["not a notebook"]),
    ]


def test_summary_counts_each_outcome_and_names_the_students():
    summary = summarize("a1", _outcomes(), problems=["x.pdf is not a notebook"], late=["bob"], seconds=12.5)
    rows = dict(summary.rows)
    assert rows["graded"] == ["ann", "bob"]
    assert rows["limit exceeded (graded what could run)"] == ["cid"]
    assert rows["failed to run (zero)"] == ["dee"]
    assert rows["flagged for review"] == ["bob"]
    text = "\n".join(summary.lines())
    assert "review bob: tampering: the visible tests of test_l2_norm passed" in text
    assert "marked late by the LMS: bob" in text and "x.pdf is not a notebook" in text
    assert "all 3 kernels" in text  # dee's kernel never started: not counted


def test_written_answers_to_grade_by_hand_are_not_a_suspicion():
    outcomes = [Outcome("ann", "a1", Status.GRADED, flags=["needs manual grading: why_l1_sparse"]),
                Outcome("bob", "a1", Status.GRADED, flags=["needs manual grading: why_l1_sparse",
                                                           "edited test cell 'test_l1' (nbgrader restored the original)"])]
    rows = dict(summarize("a1", outcomes).rows)
    assert rows["flagged for review"] == ["bob"]
    assert rows["written answers to grade by hand"] == ["ann", "bob"]
    out = io.StringIO()
    with ProgressReporter(2, "a1", console=Console(file=out, width=200), live=False) as progress:
        for outcome in outcomes:
            progress.on_result(outcome)
    assert ["FLAGGED" in line for line in out.getvalue().splitlines()] == [False, True]


def test_summary_says_when_kernels_ran_without_isolation():
    outcomes = [Outcome("ann", "a1", Status.GRADED, isolation={"user": False, "network": False, "files": False,
                                                                "reason": "the grader does not run as root"}),
                Outcome("bob", "a1", Status.GRADED, isolation=ISOLATED)]
    (note,) = isolation_notes(outcomes)
    assert "incomplete for 1 of 2" in note and "the grader does not run as root (1)" in note
    assert "course files hidden" in note


def test_plain_progress_counts_failures_live_and_estimates_time_left():
    out = io.StringIO()
    with ProgressReporter(4, "a1", console=Console(file=out, width=200), live=False) as progress:
        for outcome in _outcomes():
            progress.on_result(outcome)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("[1/4] ann: graded 3/3")
    assert "FLAGGED" in lines[1]
    assert "failed 1, over a limit 1" in lines[3] and "s left" in lines[3]


def test_progress_bar_on_a_terminal_shows_counts():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    with ProgressReporter(4, "a1", console=console) as progress:
        for outcome in _outcomes():
            progress.on_result(outcome)
    rendered = out.getvalue()
    assert "4/4" in rendered and "1 failed to run" in rendered and "1 over a" in rendered and "1 flagged" in rendered


def test_plots_are_pngs(tmp_path):
    plot_scores([3.0, 1.0, 1.0, 0.0], 3.0, "a1", tmp_path / "scores.png")
    plot_scores([0.5, 2.25, 17.0], 20.0, "a1", tmp_path / "fractional.png")
    plot_failure_rates(Counter({"test_a": 3, "test_b": 0}), 4, "a1", tmp_path / "failures.png")
    for name in ("scores.png", "fractional.png", "failures.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
