"""End to end: the whole hostile corpus graded in one parallel batch, then every outcome checked.

The corpus (tests/grading_corpus) is graded by ``grade_assignment``, the
Python entry of ``regcourse grade``, with two workers; then again with one
worker, which must give identical scores; a few submissions go through the
``regcourse`` command itself, as a Canvas zip, to a Dask ``LocalCluster``.
Limits are small so the hostile cases cost seconds: 10 s per cell, 60 s per
notebook, 768 MiB of kernel memory. The memory bomb asks for 1.5 GiB; printing
100 MiB peaks at about 450 MiB in the kernel (output buffers), which must stay
under the cap; and on a small VM memory is faulted in at 150-250 MB/s, so the
bomb needs a few seconds to reach the cap, within the cell limit. The kernels'
sandbox gets small limits too (``sandbox_cases.CORPUS_SANDBOX_LIMITS``), which
the corpus' fork bomb and disk filler reach in a second.
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
from grading_corpus.sandbox_cases import (
    OUTSIDE_TARGET_MODE,
    PTH_PROBE,
    WRITTEN_MARKER,
    corpus_sandbox_limits,
    heir_findings,
    outside_target,
    printed,
)
from grading_harness import COURSE_ID
from regcourse.grading.cli import EXIT_CANNOT_START, EXIT_GRADER_FAILED, EXIT_OK, grade_assignment, main
from regcourse.grading.model import Limits, Status

LIMITS = Limits(cell_timeout_s=10, notebook_timeout_s=60, memory_bytes=768 * 2**20, output_bytes=2**20)
BY_STUDENT = {case.student: case for case in CASES}
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def _grade(template: Path, folder: Path, workers: int):
    course = shutil.copytree(template, folder)
    build_corpus(course)
    with corpus_sandbox_limits():
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


# -- the sandbox and the feedback under attack (issue 10; the cases are in grading_corpus/sandbox_cases.py) --

SANDBOX_CASES = [c.student for c in CASES if c.student[:3] in ("aa_", "ab_", "ac_", "ad_", "ae_", "zz_")]


@pytest.mark.parametrize("student", [c.student for c in CASES])
def test_feedback_is_built_from_the_graded_notebook_alone(parallel, student):
    """No file the kernel (or the student) put beside the notebook is copied to feedback/."""
    course, _ = parallel
    folder = course / "feedback" / student / ASSIGNMENT
    assert sorted(p.name for p in folder.iterdir()) == [f"{ASSIGNMENT}.html"]
    assert WRITTEN_MARKER not in (folder / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")


class _Elements:
    """Every element of an HTML page, with its attributes, and the text of its script and style elements."""

    def __init__(self, page: str):
        from html.parser import HTMLParser

        self.elements: list[tuple[str, dict]] = []
        self.code: list[str] = []
        elements, code = self.elements, self.code

        class Parser(HTMLParser):
            def handle_starttag(self, tag, attrs):
                elements.append((tag, {k: v or "" for k, v in attrs}))

            def handle_data(self, data):
                if elements and elements[-1][0] in ("script", "style"):
                    code.append(data)

        Parser(convert_charrefs=True).feed(page)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.elements if t == tag)


def test_student_html_and_scripts_are_inert_in_feedback(parallel):
    """Stored XSS: nothing the student's notebook displayed can run where its feedback is opened."""
    course, _ = parallel
    page = (course / "feedback" / "ad_feedback_xss" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
    plain = (course / "feedback" / "correct" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
    hostile, template = _Elements(page), _Elements(plain)
    for tag in ("script", "style", "link", "meta", "base"):  # only the template's own
        assert hostile.count(tag) == template.count(tag), tag
    assert sorted(hostile.code) == sorted(template.code)
    for tag, attrs in hostile.elements:
        assert tag not in ("iframe", "object", "embed", "form", "svg", "math"), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            assert "javascript:" not in value.replace(" ", "").lower(), (tag, attrs)
            if name == "src":
                assert value.startswith("data:") or (tag == "script" and value in {a.get("src") for t, a in template.elements}), (tag, attrs)
    text = _feedback_text(course, "ad_feedback_xss")
    # the harmless parts are shown (once in the cell's source, once rendered), a script's output as text
    for shown in ("bold-from-student", "link-from-student", "repr-from-student", "md-output-from-student"):
        assert text.count(shown) >= 2, shown
    assert "md-cell-from-student" in text and "<IPython.core.display.Javascript object>" in text
    assert "widget-state" not in page and "owned'" not in page.replace("&#x27;", "'").split("<body", 1)[0]


def test_a_submission_cannot_reach_outside_its_container(parallel):
    """Root only: the lurker was refused more processes, the filler more bytes and files, the heir found
    nothing anyone left and nothing of the course or the checkout, and every process is gone."""
    from regcourse.grading import sandbox

    if not sandbox.wanted():
        pytest.skip("the kernel sandbox needs root on Linux")
    course, _ = parallel
    lurker = printed(course, "aa_lurker")
    started = int(re.search(r"fork bomb started (\d+) processes", lurker).group(1))
    assert "refused" in lurker and started < 200, lurker
    filler = printed(course, "ab_disk_filler")
    assert "small files stopped" in filler and "large files stopped" in filler, filler
    assert int(re.search(r"and (\d+) MiB", filler).group(1)) <= 48, filler
    assert heir_findings(course) == {"bait": [], "shared memory": [], "System V": [], "other processes": [],
                                     "checkout": [], "course": [], "network": [], "home": []}
    for student in SANDBOX_CASES:  # nothing they wrote is in nbgrader's folder: their writes stayed in the container
        folder = course / "autograded" / student / ASSIGNMENT
        assert sorted(p.name for p in folder.iterdir()) == [NOTEBOOK], student
    uid = int(next(line for line in lurker.splitlines() if line.startswith("kernel uid")).split()[-1])
    import psutil

    assert [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid] == []
    for place in ("/tmp", "/dev/shm"):
        assert not (Path(place) / "lurker-bait.txt").exists()


def test_root_follows_no_link_a_student_planted(parallel, outcomes):
    """The planter's links (to a file outside, to a .pth file) and the squatter's folders changed nothing
    outside, and the attempt after them was isolated afresh (never run unisolated)."""
    from regcourse.grading import sandbox

    course, _ = parallel
    target = outside_target(course)
    assert target.read_text() == "not for students\n"
    assert target.stat().st_mode & 0o777 == OUTSIDE_TARGET_MODE and target.stat().st_uid == 0
    created = PTH_PROBE.exists()
    PTH_PROBE.unlink(missing_ok=True)  # never leave it in the environment
    assert not created, f"{PTH_PROBE} was created through a planted link"
    if sandbox.wanted():
        for student in ("ac_planter", "ae_squatter"):
            assert outcomes[student].isolation == {"user": True, "network": True, "files": True}, student


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


def test_one_worker_and_cold_kernels_give_identical_outcomes(mini_course_template, tmp_path, monkeypatch, parallel,
                                                             outcomes):
    """The same batch, one submission at a time, every kernel started cold (the engine alone: feedback is
    not in question here). Every hostile case must end the same way as in the parallel batch, where every
    kernel was a fork of the warm fork server: scores, flags and messages."""
    from regcourse.grading.collect import collect
    from regcourse.grading.engine import grade_many
    from regcourse.grading.warm_kernel import COLD_VARIABLE

    course = shutil.copytree(mini_course_template, tmp_path / "course")
    build_corpus(course)
    monkeypatch.setenv(COLD_VARIABLE, "1")
    with corpus_sandbox_limits():
        sequential = grade_many(course, collect(course, ASSIGNMENT).refs, LIMITS, workers=1)

    def key(o, folder):
        def text(lines):  # each batch has its own course folder
            return sorted(line.replace(str(folder), "<course>") for line in lines)

        return o.status, o.score, dict(sorted(o.test_results.items())), text(o.flags), text(o.messages)

    warm_course, _ = parallel
    assert {o.student: key(o, course) for o in sequential} == {s: key(o, warm_course) for s, o in outcomes.items()}
    assert all(not o.kernel for o in sequential)  # cold by choice
    started = [o.kernel for o in outcomes.values() if o.kernel]
    assert started and all(k == {"warm": True} for k in started), started


def test_command_grades_a_canvas_zip_on_a_dask_cluster(mini_course_template, tmp_path):
    """`regcourse grade` as an instructor types it: an LMS zip in, a Dask LocalCluster doing the work."""
    import dask
    from dask.distributed import LocalCluster

    course = shutil.copytree(mini_course_template, tmp_path / "course")
    export = canvas_export(course)
    archive = export.write_zip(tmp_path / "canvas.zip")
    # Workers as threads of this process (spawning worker processes costs seconds; the engine forks its
    # own grading processes either way), reached over TCP like a real cluster; their scratch space here,
    # not in the machine's temporary folder.
    with dask.config.set({"temporary-directory": str(tmp_path)}), LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", dashboard_address=None) as cluster:
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
