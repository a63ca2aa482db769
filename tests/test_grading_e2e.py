"""End to end: the whole hostile corpus graded in one parallel batch, then every outcome checked.

The corpus (tests/grading_corpus) is graded by ``grade_assignment``, the
Python entry of ``regcourse grade``, with two workers; then again with one
worker, which must give identical scores; a few submissions go through the
``regcourse`` command itself, as a Canvas zip, to a Dask ``LocalCluster``.
Limits are small so the hostile cases cost seconds: 10 s per cell, 60 s per
notebook, 768 MiB of kernel memory. The memory bomb asks for 1.5 GiB; printing
100 MiB peaks at about 450 MiB in the kernel (output buffers), which must stay
under the cap; and on a small VM memory is faulted in at 150-250 MB/s, so the
bomb needs a few seconds to reach the cap, within the cell limit.
"""

from __future__ import annotations

import csv
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grading_corpus import ASSIGNMENT, CASES, HIDDEN_MARKERS, MAX_SCORE, NOTEBOOK, build_corpus, canvas_export
from grading_harness import COURSE_ID
from regcourse.grading.cli import EXIT_CANNOT_START, EXIT_GRADER_FAILED, EXIT_OK, grade_assignment, main
from regcourse.grading.model import Limits, Status

LIMITS = Limits(cell_timeout_s=10, notebook_timeout_s=60, memory_bytes=768 * 2**20, output_bytes=2**20)
BY_STUDENT = {case.student: case for case in CASES}
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def _grade(template: Path, folder: Path, workers: int):
    course = shutil.copytree(template, folder)
    build_corpus(course)
    run = grade_assignment(course, ASSIGNMENT, workers=workers, limits=LIMITS, live=False)
    return course, run


@pytest.fixture(scope="module")
def parallel(mini_course_template, tmp_path_factory):
    return _grade(mini_course_template, tmp_path_factory.mktemp("parallel") / "course", workers=2)


@pytest.fixture(scope="module")
def outcomes(parallel):
    _, run = parallel
    return {o.student: o for o in run.outcomes}


def test_every_submission_gets_exactly_one_outcome(outcomes):
    assert sorted(outcomes) == sorted(BY_STUDENT)


@pytest.mark.parametrize("case", CASES, ids=[c.student for c in CASES])
def test_case_gets_the_fair_outcome(outcomes, case):
    outcome, expect = outcomes[case.student], case.expect
    context = f"{case.student} ({case.what}): {outcome}"
    assert outcome.status is expect.status, context
    assert outcome.score == pytest.approx(expect.score), context
    if expect.status is not Status.FAILED_TO_RUN:
        assert outcome.max_score == pytest.approx(MAX_SCORE), context
    for grade_id, score in (expect.tests or {}).items():
        assert outcome.test_results[grade_id][0] == pytest.approx(score), context
    if expect.flagged:
        flags = " ".join(outcome.flags).lower()
        assert outcome.flags and all(word.lower() in flags for word in expect.flag_words), context
    else:
        assert outcome.flags == [], f"false alarm: {context}"
    messages = " ".join(outcome.messages).lower()
    assert all(word.lower() in messages for word in expect.message_words), context


def test_gradebook_holds_each_score_once_and_agrees_with_the_outcomes(parallel, outcomes):
    from nbgrader.api import Gradebook

    course, _ = parallel
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        submissions = gb.find_assignment(ASSIGNMENT).submissions
        students = [s.student_id for s in submissions]
        assert len(students) == len(set(students)), "a submission was recorded twice"
        recorded = {s.student_id: s.score for s in submissions}
    for student, outcome in outcomes.items():
        if outcome.status is not Status.FAILED_TO_RUN:
            assert recorded[student] == pytest.approx(outcome.score), student


def _hidden_lines(course: Path) -> list[str]:
    source = (course / "solutions" / ASSIGNMENT / NOTEBOOK).read_text()
    import nbformat

    lines = []
    for cell in nbformat.reads(source, 4).cells:
        for block in HIDDEN_BLOCK.findall(cell.source):
            lines += [line.strip() for line in block.splitlines() if len(line.strip()) > 8]
    return lines


def _feedback_text(course: Path, student: str) -> str:
    """The feedback page as a student reads it: no tags, scripts or styles, one space per blank."""
    path = course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert path.is_file(), f"no feedback for {student}"
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", page[page.find("<body"):], flags=re.S)
    return re.sub(r"\s*\n\s*", "\n", html.unescape(re.sub(r"<[^>]+>", "", page)))


@pytest.mark.parametrize("case", CASES, ids=[c.student for c in CASES])
def test_feedback_shows_results_but_never_a_hidden_test(parallel, outcomes, case):
    course, _ = parallel
    text = _feedback_text(course, case.student)
    raw = (course / "feedback" / case.student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
    for secret in [*HIDDEN_MARKERS, *_hidden_lines(course)]:
        assert secret not in text and secret not in raw, f"{case.student}'s feedback shows {secret!r}"
    outcome = outcomes[case.student]
    for message in outcome.messages:
        assert message in text, f"{case.student}'s feedback lacks the grader's note {message!r}"
    if case.expect.has_feedback_notebook:
        # nbgrader's own scores: the total, and each test's (the cells' results stay visible)
        assert f"{ASSIGNMENT} (Score: {outcome.score:.1f} / {MAX_SCORE:.1f})" in text
        for grade_id, (score, points) in outcome.test_results.items():
            assert f"Grade cell: {grade_id}\nScore: {score:.1f} / {points:.1f}" in text, grade_id
    else:
        assert f"Score: {outcome.score:g}" in text


def test_a_failing_hidden_test_shows_its_message_and_no_source(parallel):
    course, _ = parallel
    text = _feedback_text(course, "hidden_only_fails")
    assert "HiddenTestFailure: l1_penalty on a grid" in text
    assert "(raised by a hidden test)" in text
    assert "hidden_grid" not in text
    wrong = _feedback_text(course, "wrong")  # its visible test fails: the student may see which
    assert "(raised by a visible test)" in wrong


def test_student_code_cannot_read_the_hidden_tests_or_solutions(parallel):
    """The reads_hidden case printed every file it could find: none held a test or a solution.

    (Its feedback is clean either way, redacted; this checks the sandbox itself.)
    """
    import nbformat

    from regcourse.grading import sandbox

    if not sandbox.wanted():
        pytest.skip("the kernel sandbox needs root on Linux; elsewhere only the feedback is redacted")
    course, _ = parallel
    graded = nbformat.read(course / "autograded" / "reads_hidden" / ASSIGNMENT / NOTEBOOK, 4)
    printed = "".join(o.get("text", "") for c in graded.cells for o in c.get("outputs", []))
    assert "working folder" in printed, "the case did not run"
    for secret in [*HIDDEN_MARKERS, "np.sqrt(np.sum(np.square(w)))", "BEGIN HIDDEN TESTS", "BEGIN SOLUTION"]:
        assert secret not in printed, f"student code read {secret!r}"


def test_reports_list_every_student(parallel, outcomes):
    course, run = parallel
    reports = run.reports
    with reports.grades_csv.open() as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f) if row["assignment"] == ASSIGNMENT}
    for student, outcome in outcomes.items():
        if outcome.status is not Status.FAILED_TO_RUN:
            assert float(rows[student]["score"]) == pytest.approx(outcome.score)
    with reports.outcomes_csv.open() as f:
        assert {row["student"]: row["status"] for row in csv.DictReader(f)} == {
            s: o.status.value for s, o in outcomes.items()
        }
    for png in (reports.scores_png, reports.failures_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = reports.summary_txt.read_text()
    for student, outcome in outcomes.items():
        if outcome.status is not Status.GRADED or outcome.flags:
            assert student in summary, f"{student} missing from the summary"
    # nothing collect noticed is dropped: the corrupt and the renamed notebook are listed
    assert any("corrupt_json" in p for p in run.summary.problems)
    assert any("renamed_notebook" in p for p in run.summary.problems)


def test_one_worker_gives_identical_scores(mini_course_template, tmp_path, outcomes):
    """The same batch, one submission at a time (the engine alone: feedback is not in question here)."""
    from regcourse.grading.collect import collect
    from regcourse.grading.engine import grade_many

    course = shutil.copytree(mini_course_template, tmp_path / "course")
    build_corpus(course)
    sequential = grade_many(course, collect(course, ASSIGNMENT).refs, LIMITS, workers=1)

    def key(o):
        return o.status, o.score, dict(sorted(o.test_results.items()))

    assert {o.student: key(o) for o in sequential} == {s: key(o) for s, o in outcomes.items()}


def test_command_grades_a_canvas_zip_on_a_dask_cluster(mini_course_template, tmp_path):
    """`regcourse grade` as an instructor types it: an LMS zip in, a Dask LocalCluster doing the work."""
    from dask.distributed import LocalCluster

    course = shutil.copytree(mini_course_template, tmp_path / "course")
    export = canvas_export(course)
    archive = export.write_zip(tmp_path / "canvas.zip")
    # Workers as threads of this process (spawning worker processes costs seconds; the engine forks its
    # own grading processes either way), reached over TCP like a real cluster.
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "regcourse"), "grade", ASSIGNMENT, "--course", str(course),
             "--submissions", str(archive), "--scheduler", cluster.scheduler_address, "--plain",
             "--cell-timeout", "20"],
            capture_output=True, text=True, timeout=300,
        )
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    with (course / "reports" / f"{ASSIGNMENT}-outcomes.csv").open() as f:
        scores = {row["student"]: float(row["score"]) for row in csv.DictReader(f)}
    assert scores == {"1001": 3.0, "1002": 2.0, "1003": 3.0, "1004": 3.0}
    assert "mini-with-no-student.ipynb" in result.stdout  # the unparsed name is in the final summary
    assert (course / "feedback" / "1002" / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()


@pytest.mark.parametrize(
    "args, words",
    [
        (["grade", "no_such_assignment"], ["unknown assignment", "no_such_assignment", "mini"]),
        (["grade", ASSIGNMENT, "--submissions", "/nonexistent/export.zip"], ["no such file"]),
    ],
    ids=["unknown-assignment", "missing-export"],
)
def test_command_fails_only_when_the_grader_cannot_run(mini_course, capsys, args, words):
    # in this process (the command's main()): the console script itself runs in the Dask test above
    assert main([*args, "--course", str(mini_course)]) == EXIT_CANNOT_START
    error = capsys.readouterr().err
    assert all(word in error for word in words), error


def test_command_outside_a_course_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["grade", ASSIGNMENT]) == EXIT_CANNOT_START
    assert "nbgrader_config.py" in capsys.readouterr().err


def test_command_says_the_grader_failed_when_the_cluster_is_unreachable(mini_course, capsys):
    import dask

    build_corpus(mini_course, [BY_STUDENT["correct"]])
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        status = main(["grade", ASSIGNMENT, "--course", str(mini_course), "--scheduler", "tcp://127.0.0.1:9"])
    assert status == EXIT_GRADER_FAILED
    assert "the grader failed" in capsys.readouterr().err
