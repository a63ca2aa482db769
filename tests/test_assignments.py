"""The tests of the assignments are right: graded by stock nbgrader, end to end.

For every assignment: the instructor notebook submitted as a student gets full
marks (twice, identically); the released exercise gets zero without crashing
the grader; every alternative correct implementation in
tests/assignment_variants/ gets full marks; every plausible wrong one loses
points on the test cells it names. The released exercises are exactly what
``nbgrader generate_assignment`` makes and leak no solution or hidden test.
"""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

from grading_harness import (
    ROOT,
    assignments,
    build_submission,
    grade_ids,
    make_course,
    nbgrader,
    scores,
    submissions_for,
    variant_module,
)
from regression import RESULTS, compare, write_reference

#: ``REGCOURSE_TEST_ONLY=a2_penalties,a3_dropout`` grades only those (while working on one).
ONLY = [a for a in os.environ.get("REGCOURSE_TEST_ONLY", "").split(",") if a]
ASSIGNMENTS = [a for a in assignments() if not ONLY or a in ONLY]
SUBMISSIONS = {a: submissions_for(a) for a in ASSIGNMENTS}
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def _grade(root, assignment):
    """The assignment's submissions graded twice: by stock nbgrader, and by ``regcourse grade``'s engine.

    Both start from the same released course and submissions, in two folders.
    """
    from regcourse.grading.engine import grade_many
    from regcourse.grading.model import SubmissionRef

    course = root / assignment
    course.mkdir()
    make_course(course, [assignment])
    for sub in SUBMISSIONS[assignment]:
        build_submission(course, sub)
    engine_course = shutil.copytree(course, root / f"{assignment}-engine")
    nbgrader(course, "autograde", assignment)
    refs = [SubmissionRef(sub.student, assignment) for sub in SUBMISSIONS[assignment]]
    # one worker: the assignments are already graded side by side, one per core
    outcomes = grade_many(engine_course, refs, workers=1)
    return course, engine_course, outcomes


@pytest.fixture(scope="session")
def graded_twice(tmp_path_factory):
    """Every submission of every assignment autograded by stock nbgrader and by the engine.

    Each assignment is its own course directory (and SQLite gradebook), so the
    assignments are graded side by side, one process per core.
    """
    root = tmp_path_factory.mktemp("courses")
    workers = max(1, min(len(ASSIGNMENTS), os.cpu_count() or 1))
    # costliest first, so that no long assignment is left running alone at the end
    order = sorted(ASSIGNMENTS, key=lambda a: -len(SUBMISSIONS[a]) * getattr(variant_module(a), "COST_WEIGHT", 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        graded = list(pool.map(lambda a: _grade(root, a), order))
    return dict(zip(order, graded))


@pytest.fixture(scope="session")
def courses(graded_twice):
    """assignment -> the course folder graded by stock nbgrader."""
    return {a: course for a, (course, _, _) in graded_twice.items()}


def _cases(kind):
    return [
        pytest.param(a, s, id=f"{a}-{s.student}")
        for a in ASSIGNMENTS
        for s in SUBMISSIONS[a]
        if s.student.startswith(kind)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_instructor_solution_gets_full_marks_and_the_same_score_twice(courses, assignment):
    first = scores(courses[assignment], assignment, "solution")
    assert first, "no autograded test cells"
    assert {k: s for k, (s, m) in first.items() if s != m} == {}, first
    assert scores(courses[assignment], assignment, "solution-again") == first


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_exercise_gets_zero_autograded_points(courses, assignment):
    assert all(score == 0 for score, _ in scores(courses[assignment], assignment, "release").values())


@pytest.mark.slow
@pytest.mark.parametrize("assignment, sub", _cases("correct-"))
def test_correct_alternative_gets_full_marks(courses, assignment, sub):
    result = scores(courses[assignment], assignment, sub.student)
    assert {k: v for k, v in result.items() if v[0] != v[1]} == {}


@pytest.mark.slow
@pytest.mark.parametrize("assignment, sub", _cases("wrong-"))
def test_plausible_mistake_loses_exactly_its_own_cells(courses, assignment, sub):
    """One mistake, one charge: the cells it names lose points, and no other cell does."""
    result = scores(courses[assignment], assignment, sub.student)
    lost = sorted(cell for cell, (score, points) in result.items() if score < points)
    assert lost == sorted(sub.must_lose), f"{sub.student} lost {lost}, expected {sorted(sub.must_lose)}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_stock_nbgrader_and_regcourse_grade_give_identical_scores(graded_twice, assignment):
    """On every (honest) variant submission: the judge outside the kernel agrees with stock nbgrader."""
    course, engine_course, outcomes = graded_twice[assignment]
    for outcome in outcomes:
        assert outcome.status.value == "graded", (outcome.student, outcome.status, outcome.messages)
        assert [f for f in outcome.flags if not f.startswith("needs manual grading")] == [], (outcome.student, outcome.flags)
        stock = scores(course, assignment, outcome.student)
        assert scores(engine_course, assignment, outcome.student) == stock, outcome.student


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_object_has_two_correct_and_three_wrong_variants(assignment):
    module = variant_module(assignment)
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", 4)
    cells = grade_ids(nb)
    assert set(module.GRADED) <= set(cells)
    for solution_cell, test_cell in module.GRADED.items():
        assert cells[test_cell].metadata["nbgrader"]["grade"], f"{test_cell} is not a graded test cell"
        correct = [n for n, c in module.CORRECT.items() if solution_cell in c]
        wrong = [n for n, (c, loses) in module.WRONG.items() if solution_cell in c and test_cell in loses]
        assert len(correct) >= 2, f"{solution_cell}: only {correct} correct alternatives"
        assert len(wrong) >= 3, f"{solution_cell}: only {wrong} wrong variants"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_exercise_is_exactly_a_fresh_generate_assignment(courses, assignment):
    fresh = nbformat.read(courses[assignment] / "exercises" / assignment / f"{assignment}.ipynb", 4)
    committed_path = ROOT / "exercises" / assignment / f"{assignment}.ipynb"
    assert committed_path.exists(), "run `make assignments` and commit exercises/"
    committed = nbformat.read(committed_path, 4)
    assert committed == fresh, f"exercises/{assignment} is stale: run `make assignments`"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_leaks_no_solution_and_no_hidden_test(assignment):
    source = (ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text()
    release = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", 4)
    released_text = "\n".join(c.source for c in release.cells)
    src_nb = nbformat.reads(source, 4)
    for cell in src_nb.cells:
        for block in HIDDEN.findall(cell.source) + SOLUTION.findall(cell.source):
            for line in block.splitlines():
                line = line.strip()
                if len(line) > 25:  # long enough to be specific, not `return x`
                    assert line not in released_text, f"leaked into the exercise: {line!r}"
    assert "BEGIN HIDDEN TESTS" not in released_text and "BEGIN SOLUTION" not in released_text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_instructor_notebook_has_no_outputs_and_visible_tests(assignment):
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", 4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "strip outputs from solutions/"
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            visible = HIDDEN.sub("", cell.source)
            assert "assert" in visible, f"{meta['grade_id']} has no visible test for students"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_matches_reviewed_result(courses, assignment, request):
    """Notebook regression of the instructor notebooks, reusing the autograder's execution."""
    executed = nbformat.read(courses[assignment] / "autograded" / "solution" / assignment / f"{assignment}.ipynb", 4)
    reference_path = RESULTS / "solutions" / f"{assignment}.ipynb"
    if request.config.getoption("--regen-results"):
        write_reference(executed, reference_path)
        return
    assert reference_path.exists(), f"no reviewed result for {assignment}: run `make regen-results`"
    diff = compare(nbformat.read(reference_path, 4), executed)
    assert not diff, f"{assignment} output differs from its reviewed result:\n{diff}"

