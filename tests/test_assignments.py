"""The tests of the assignments are right: graded by stock nbgrader, end to end.

For every assignment: the instructor notebook submitted as a student gets full
marks from both graders, identically, and prints its reviewed result to the
last digit in both (a cold kernel and a warm one: grading is repeatable); the
released exercise gets zero without crashing
the grader; every alternative correct implementation in
tests/assignment_variants/ gets full marks; every plausible wrong one loses
points on the test cells it names. ``regcourse grade``'s engine grades every
submission (warm kernels, two workers); stock ``nbgrader autograde``, from a
plain shell, grades the instructor's notebook, the release, every correct
variant and one wrong one of each assignment, and must give the same scores.
The released exercises are exactly what ``nbgrader generate_assignment`` makes
and leak no solution or hidden test.
"""

from __future__ import annotations

import os
import re
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
from regression import compare, regenerate, reviewed_result

#: ``REGCOURSE_TEST_ONLY=a2_penalties,a3_dropout`` grades only those (while working on one).
ONLY = [a for a in os.environ.get("REGCOURSE_TEST_ONLY", "").split(",") if a]
ASSIGNMENTS = [a for a in assignments() if not ONLY or a in ONLY]
SUBMISSIONS = {a: submissions_for(a) for a in ASSIGNMENTS}
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


#: What stock nbgrader grades of each assignment (from a plain shell, cold kernels, one at a time), beside
#: the engine, which grades everything: the instructor's notebook (full marks), the released exercise
#: (zero, no crash), every correct variant (full marks under both graders, as the assignments' issue asks)
#: and the first wrong one (partial marks). Their scores must be identical under both graders.
#: ``REGCOURSE_STOCK=all`` (``make test-stock``) grades every submission with stock nbgrader too (about 40 min).
STOCK_ALL = os.environ.get("REGCOURSE_STOCK", "") == "all"
#: The engine's submissions, heaviest assignment first, so that no worker is left with a long one at the end
#: (measured seconds per submission on the 2-core machine: a6 20, a3 8, a4 6, a5 5, a2 1.5, a1 0.5).
HEAVIEST_FIRST = ["a6_capstone", "a3_dropout", "a4_early_stopping", "a5_batch_norm", "a2_penalties", "a1_bias_variance"]


def stock_sample(assignment):
    subs = SUBMISSIONS[assignment]
    if STOCK_ALL:
        return subs
    wrong = [s for s in subs if s.student.startswith("wrong-")][:1]
    return [s for s in subs if s.student in ("solution", "release") or s.student.startswith("correct-")] + wrong


def _released(root, assignments, name):
    """A course folder, ``name``, with ``assignments`` released by stock nbgrader."""
    course = root / name
    course.mkdir()
    make_course(course, assignments)
    return course


def _stock(course, assignment):
    """The sample of ``assignment``'s submissions graded by stock ``nbgrader autograde``, in its own course.

    The instructor's notebook is graded first, alone: its kernel is the one that finds no reference
    records yet, and its output is compared with the reviewed result (whoever is graded first must
    print what everyone else would)."""
    for sub in stock_sample(assignment):
        build_submission(course, sub)
    nbgrader(course, "autograde", assignment, "--student", "solution")
    nbgrader(course, "autograde", assignment, "--CourseDirectory.student_id_exclude=solution")
    return course


def _engine(course, order):
    """Every submission of every assignment graded by ``regcourse grade``'s engine in one batch, in the
    assignments' ``order`` (warm kernels, two workers); assignment -> its outcomes."""
    from regcourse.grading.engine import grade_many
    from regcourse.grading.model import SubmissionRef

    subs = [sub for a in order for sub in SUBMISSIONS[a]]
    for sub in subs:
        build_submission(course, sub)
    outcomes = grade_many(course, [SubmissionRef(sub.student, sub.assignment) for sub in subs], workers=2)
    return {a: [o for o in outcomes if o.assignment == a] for a in ASSIGNMENTS}


@pytest.fixture(scope="session")
def graded_twice(tmp_path_factory):
    """Every submission of every assignment graded by the engine, and a sample by stock nbgrader.

    The engine grades every submission of the six assignments as one batch in
    one course (as ``regcourse grade`` would, heaviest first, with as many
    workers as cores). Stock nbgrader grades its samples meanwhile, one
    notebook at a time per assignment and two assignments at a time, each in a
    course (and SQLite gradebook) of its own. Whichever grader finishes first,
    the other still has two streams: the machine never waits on one process.
    """
    root = tmp_path_factory.mktemp("courses")
    heaviest_first = sorted(ASSIGNMENTS, key=lambda a: HEAVIEST_FIRST.index(a) if a in HEAVIEST_FIRST else -1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        released = {a: pool.submit(_released, root, [a], f"{a}-stock") for a in heaviest_first}
        engine_course = _released(root, ASSIGNMENTS, "engine")
        stock = {a: pool.submit(lambda a=a: _stock(released[a].result(), a)) for a in heaviest_first}
        outcomes = _engine(engine_course, heaviest_first)
        stock_courses = {a: future.result() for a, future in stock.items()}
    return {a: (stock_courses[a], engine_course, outcomes[a]) for a in ASSIGNMENTS}


@pytest.fixture(scope="session")
def courses(graded_twice):
    """assignment -> the course folder graded by the engine (every submission)."""
    return {a: course for a, (_, course, _) in graded_twice.items()}


def _cases(kind):
    return [
        pytest.param(a, s, id=f"{a}-{s.student}")
        for a in ASSIGNMENTS
        for s in SUBMISSIONS[a]
        if s.student.startswith(kind)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_instructor_solution_gets_full_marks_and_the_same_score_from_both_graders(graded_twice, assignment):
    """Two gradings of the same notebook, one in a cold kernel, one in a warm one, score it the same
    (and print the same outputs: test_solution_notebook_matches_reviewed_result)."""
    stock_course, engine_course, _ = graded_twice[assignment]
    engine = scores(engine_course, assignment, "solution")
    assert engine, "no autograded test cells"
    assert {k: s for k, (s, m) in engine.items() if s != m} == {}, engine
    assert scores(stock_course, assignment, "solution") == engine


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_exercise_gets_zero_autograded_points(courses, assignment):
    assert all(score == 0 for score, _ in scores(courses[assignment], assignment, "release").values())


@pytest.mark.slow
@pytest.mark.parametrize("grader", ["stock", "engine"])
@pytest.mark.parametrize("assignment, sub", _cases("correct-"))
def test_correct_alternative_gets_full_marks(graded_twice, assignment, sub, grader):
    stock_course, engine_course, _ = graded_twice[assignment]
    result = scores(stock_course if grader == "stock" else engine_course, assignment, sub.student)
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
def test_every_submission_is_graded_warm_without_remarks(graded_twice, assignment):
    """The variants are honest: no flag but the manual grading they leave, and every kernel started warm."""
    _, _, outcomes = graded_twice[assignment]
    for outcome in outcomes:
        assert outcome.status.value == "graded", (outcome.student, outcome.status, outcome.messages)
        assert [f for f in outcome.flags if not f.startswith("needs manual grading")] == [], (outcome.student, outcome.flags)
        assert outcome.kernel == {"warm": True}, (outcome.student, outcome.kernel)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_stock_nbgrader_and_regcourse_grade_give_identical_scores(graded_twice, assignment):
    """On the stock sample: the judge outside a warm kernel agrees with stock nbgrader's cold kernel."""
    stock_course, engine_course, _ = graded_twice[assignment]
    for sub in stock_sample(assignment):
        assert scores(engine_course, assignment, sub.student) == scores(stock_course, assignment, sub.student), sub.student


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_variant_that_loses_several_cells_says_why(assignment):
    """One mistake, one charge: where a wrong variant still loses more than one cell, its module's
    SEVERAL_CELLS gives the reason (a policy, two mistakes, two stated behaviours), and lists nothing else."""
    module = variant_module(assignment)
    several = {name for name, (_, loses) in module.WRONG.items() if len(set(loses)) > 1}
    assert set(module.SEVERAL_CELLS) == several, (
        f"without a reason: {sorted(several - set(module.SEVERAL_CELLS))}; "
        f"listed but losing one cell: {sorted(set(module.SEVERAL_CELLS) - several)}")
    assert all(reason.strip() for reason in module.SEVERAL_CELLS.values())


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
@pytest.mark.parametrize("grader", ["stock-cold", "engine-warm"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_matches_reviewed_result(graded_twice, assignment, grader, request):
    """Notebook regression of the instructor notebooks, reusing the autograders' executions.

    Run by stock nbgrader in a cold kernel and by the engine in a warm one
    (forked after TensorFlow's import): both must print the reviewed result,
    every metric to the last digit.
    """
    stock_course, engine_course, _ = graded_twice[assignment]
    course = stock_course if grader == "stock-cold" else engine_course
    executed = nbformat.read(course / "autograded" / "solution" / assignment / f"{assignment}.ipynb", 4)
    if request.config.getoption("--regen-results"):
        if grader != "stock-cold":
            return  # the reviewed result is stock nbgrader's; the warm run is compared with it
        regenerate(executed, f"solutions/{assignment}.ipynb")
        return
    reference_path = reviewed_result(f"solutions/{assignment}.ipynb")
    assert reference_path.exists(), f"no reviewed result for {assignment}: run `make regen-results`"
    diff = compare(nbformat.read(reference_path, 4), executed)
    assert not diff, f"{assignment} output differs from its reviewed result:\n{diff}"

