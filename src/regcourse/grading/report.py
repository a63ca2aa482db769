"""After a grading run: the summary, ``grades.csv`` and the plots an instructor reads first.

Everything goes to ``<course>/reports/``:

* ``grades.csv``: stock ``nbgrader export`` (its CSV plugin, run through
  nbgrader's API): one row per student and assignment, columns
  ``assignment, duedate, timestamp, student_id, last_name, first_name, email,
  raw_score, late_submission_penalty, score, max_score``;
* ``<assignment>-outcomes.csv``: this run, one row per submission: status,
  score, seconds, flags for review, the messages the student also sees;
* ``<assignment>-summary.txt``: the summary table printed at the end of the run;
* ``<assignment>-run.json``: how long the run took, per phase (for the benchmark and for planning);
* ``<assignment>-scores.png``: the distribution of total scores;
* ``<assignment>-test-failures.png``: for each graded test cell, the fraction
  of students who did not get full marks on it (which tests most students fail).

The plots are read from the gradebook, not from this run alone, so they cover
every submission of the assignment graded so far.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .course import Course
from .model import Outcome, Status

REPORTS = "reports"
STATUS_TITLES = {
    Status.GRADED: "graded",
    Status.LIMIT_EXCEEDED: "limit exceeded (graded what could run)",
    Status.FAILED_TO_RUN: "failed to run (zero)",
}


@dataclass
class Summary:
    """The end-of-run table: counts, and who is in each row."""

    assignment: str
    rows: list[tuple[str, list[str]]]       # (title, students)
    problems: list[str] = field(default_factory=list)   # from collecting, and from feedback
    flags: dict[str, list[str]] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # about the run itself (e.g. kernel isolation)
    total: int = 0
    seconds: float = 0.0          # the grading phase
    feedback_seconds: float = 0.0  # feedback still to write when grading ended (it is written meanwhile)

    def lines(self, *, max_names: int = 12) -> list[str]:
        """The summary as plain text lines (for the file, and for terminals without colour)."""
        out = [f"{self.assignment}: {self.total} submissions in {self.seconds:.1f} s"]
        width = max(len(title) for title, _ in self.rows)
        for title, students in self.rows:
            out.append(f"  {title:<{width}}  {len(students):>4}  {_names(students, max_names)}")
        for student, flags in sorted(self.flags.items()):
            out += [f"  review {student}: {flag}" for flag in flags]
        if self.late:
            out.append(f"  marked late by the LMS: {_names(self.late, max_names)}")
        out += [f"  {note}" for note in self.notes]
        if self.problems:
            out.append(f"  {len(self.problems)} problems while collecting and reporting:")
            out += [f"    - {p}" for p in self.problems]
        return out


def _names(students: list[str], limit: int) -> str:
    shown = ", ".join(students[:limit])
    return shown + (f", ... ({len(students) - limit} more)" if len(students) > limit else "")


#: The engine's flag for written answers nbgrader leaves to a person: routine work, not a suspicion.
MANUAL_GRADING = "needs manual grading"


def suspicious_flags(outcome: Outcome) -> list[str]:
    """The flags that ask for a review of the submission (tampering, edited tests, ...)."""
    return [flag for flag in outcome.flags if not flag.startswith(MANUAL_GRADING)]


def summarize(assignment: str, outcomes: list[Outcome], problems: list[str] = (), late: list[str] = (),
              seconds: float = 0.0) -> Summary:
    by_status = {status: sorted(o.student for o in outcomes if o.status is status) for status in Status}
    flagged = {o.student: suspicious_flags(o) for o in outcomes if suspicious_flags(o)}
    manual = sorted(o.student for o in outcomes if len(suspicious_flags(o)) < len(o.flags))
    rows = [(STATUS_TITLES[s], by_status[s]) for s in Status]
    rows.append(("flagged for review", sorted(flagged)))
    if manual:
        rows.append(("written answers to grade by hand", manual))
    return Summary(assignment, rows, list(problems), flagged, sorted(late), isolation_notes(outcomes) + kernel_start_notes(outcomes),
                   len(outcomes), seconds)


#: What each key of ``Outcome.isolation`` means when true (checked inside the kernel; see ``sandbox``).
ISOLATION = {"user": "own user and processes", "network": "no network",
             "files": "course files hidden (only its own folder and Python in view, bounded writes)"}


def isolation_notes(outcomes: list[Outcome]) -> list[str]:
    """How the students' kernels were isolated, measured inside each; why not where they were not; and
    the kernels that did not run at all because their isolation could not be set up (fail closed)."""
    ran = [o for o in outcomes if getattr(o, "isolation", None)]
    if not ran:
        return []
    notes = []
    failed = [o for o in ran if o.isolation.get("failed")]
    if failed:
        reasons = Counter(o.isolation.get("reason", "unknown") for o in failed)
        notes.append(f"kernel isolation could not be set up for {len(failed)} of {len(ran)} submissions, so their "
                     f"notebooks did not run (failed to run, zero, flagged: grade them again once this is fixed): "
                     + "; ".join(f"{r} ({n})" for r, n in reasons.most_common()))
        ran = [o for o in ran if o not in failed]
        if not ran:
            return notes
    full = [o for o in ran if all(o.isolation.get(key) for key in ISOLATION)]
    if len(full) == len(ran):
        return notes + [f"kernel isolation ({', '.join(ISOLATION.values())}), checked inside each kernel: "
                        f"all {len(ran)} kernels"]
    reasons = Counter(o.isolation.get("reason", "unknown") for o in ran if o not in full)
    missing = sorted({ISOLATION[k] for o in ran if o not in full for k in ISOLATION if not o.isolation.get(k)})
    return notes + [f"kernel isolation incomplete for {len(ran) - len(full)} of {len(ran)} kernels "
                    f"(missing: {', '.join(missing)}): " + "; ".join(f"{r} ({n})" for r, n in reasons.most_common())]


def kernel_start_notes(outcomes: list[Outcome]) -> list[str]:
    """How many kernels started warm (see ``warm_kernel``), and why the others started cold."""
    started = [o for o in outcomes if getattr(o, "kernel", None)]
    if not started:
        return []
    warm = sum(1 for o in started if o.kernel.get("warm"))
    notes = [f"kernels started warm (forked after TensorFlow's import): {warm} of {len(started)}"]
    reasons = Counter(o.kernel.get("reason", "unknown") for o in started if not o.kernel.get("warm"))
    if reasons:
        notes.append(f"kernels started cold: {len(started) - warm}: "
                     + "; ".join(f"{r} ({n})" for r, n in reasons.most_common()))
    return notes


@dataclass
class Reports:
    grades_csv: Path
    outcomes_csv: Path
    summary_txt: Path
    run_json: Path
    scores_png: Path
    failures_png: Path


def prepare() -> None:
    """Import what the plots need (about 0.5 s), e.g. on an idle thread while grading runs."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import matplotlib.ticker  # noqa: F401


def write_reports(course_root: Path, assignment: str, outcomes: list[Outcome], summary: Summary) -> Reports:
    course = Course.open(course_root)
    folder = course.root / REPORTS
    folder.mkdir(exist_ok=True)
    paths = Reports(
        folder / "grades.csv",
        folder / f"{assignment}-outcomes.csv",
        folder / f"{assignment}-summary.txt",
        folder / f"{assignment}-run.json",
        folder / f"{assignment}-scores.png",
        folder / f"{assignment}-test-failures.png",
    )
    export_grades(course, paths.grades_csv)
    write_outcomes(outcomes, paths.outcomes_csv)
    paths.summary_txt.write_text("\n".join(summary.lines(max_names=10**6)) + "\n", encoding="utf-8")
    paths.run_json.write_text(json.dumps({
        "assignment": assignment, "submissions": summary.total, "grading_seconds": round(summary.seconds, 3),
        "feedback_seconds": round(summary.feedback_seconds, 3),
        "submission_seconds": round(sum(o.seconds for o in outcomes), 3),
        "judge_seconds": round(sum(o.judge_seconds for o in outcomes), 3),
        "per_status": {title: len(students) for title, students in summary.rows},
    }, indent=1) + "\n")
    totals, max_score, failures, graded = gradebook_results(course, assignment)
    plot_scores(totals, max_score, assignment, paths.scores_png)
    plot_failure_rates(failures, graded, assignment, paths.failures_png)
    return paths


def export_grades(course: Course, path: Path) -> None:
    """Stock ``nbgrader export`` to ``path``: the CSV plugin nbgrader's own command runs."""
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin(config=course.config, to=str(path))
    with course.gradebook() as gb:
        plugin.export(gb)


OUTCOME_COLUMNS = ["student", "status", "score", "max_score", "seconds", "flags", "messages"]


def write_outcomes(outcomes: list[Outcome], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(OUTCOME_COLUMNS)
        for o in sorted(outcomes, key=lambda o: o.student):
            writer.writerow([o.student, o.status.value, f"{o.score:g}", f"{o.max_score:g}", f"{o.seconds:.1f}",
                             " | ".join(o.flags), " | ".join(o.messages)])


def gradebook_results(course: Course, assignment: str):
    """Total scores, the max score, and per test cell how many submissions lost points on it.

    Returns ``(totals, max_score, failures: Counter[grade id], submissions)``;
    a test without a score (nbgrader left it for manual grading) counts as failed.
    """
    totals, failures, tests = [], Counter(), []
    with course.gradebook() as gb:
        record = gb.find_assignment(assignment)
        max_score = float(record.max_score)
        for nb in record.notebooks:
            tests += [(nb.name, cell.name) for cell in nb.grade_cells if cell.cell_type == "code"]
        for submission in record.submissions:
            totals.append(float(submission.score or 0.0))
            for nb in submission.notebooks:
                for grade in nb.grades:
                    if grade.cell.cell_type != "code":
                        continue
                    if grade.score is None or grade.score < grade.max_score:
                        failures[_test_label(nb.notebook.name, grade.name, len(record.notebooks))] += 1
    labels = [_test_label(nb, name, len({n for n, _ in tests})) for nb, name in tests]
    return totals, max_score, Counter({label: failures.get(label, 0) for label in labels}), len(totals)


def _test_label(notebook: str, grade_id: str, notebooks: int) -> str:
    return grade_id if notebooks == 1 else f"{notebook}: {grade_id}"


def _figure(height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, height), layout="constrained")
    FigureCanvasAgg(figure)  # Agg, whatever backend pyplot would pick: no display needed
    return figure


def plot_scores(totals: list[float], max_score: float, assignment: str, path: Path) -> None:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    figure = _figure(3.6)
    ax = figure.add_subplot()
    distinct = sorted(set(totals))
    if len(distinct) <= 25 and all(float(t).is_integer() for t in totals) and max_score <= 50:
        # whole-point scores: one bar per possible score, including the empty ones
        values = np.arange(0, int(max_score) + 1)
        ax.bar(values, [totals.count(v) for v in values], width=0.8, color="C0")
        ax.set_xticks(values)
    else:
        ax.hist(totals, bins=np.linspace(0, max_score or 1, 21), color="C0", edgecolor="white")
    ax.set_xlabel(f"total score (out of {max_score:g})")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{assignment}: scores of {len(totals)} submissions")
    ax.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=120)


def plot_failure_rates(failures: Counter, submissions: int, assignment: str, path: Path) -> None:
    ordered = sorted(failures.items(), key=lambda item: (item[1], item[0]))  # most failed at the top
    figure = _figure(1.2 + 0.35 * max(1, len(ordered)))
    ax = figure.add_subplot()
    rates = [count / submissions if submissions else 0.0 for _, count in ordered]
    bars = ax.barh([label for label, _ in ordered], rates, color="C3")
    for bar, rate, (_, count) in zip(bars, rates, ordered):
        ax.text(min(rate, 0.98), bar.get_y() + bar.get_height() / 2, f" {rate:.0%} ({count})",
                va="center", ha="left" if rate < 0.8 else "right", fontsize="small")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"fraction of the {submissions} submissions not getting full marks")
    ax.set_title(f"{assignment}: which tests students fail")
    ax.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=120)
