"""The judged hidden tests (``regcourse.grading.checks``), checked in-process, in seconds.

For every assignment whose hidden tests are judged: the reference record
passes its own judge; every correct variant of ``tests/assignment_variants``
passes every check; every wrong variant fails exactly the checks it names;
every check's contract lines appear in the released notebook. The variants'
namespaces are built like the reference's (``judge.reference_namespace``):
set-up cells, then the definitions of the solution cells with the variant's
code in place; for an assignment whose checks grade what a solution cell
computes at top level (a trained model: ``NEEDS_WHOLE_CELLS`` in its checks
module), the notebook's cells run whole instead, as in the student's kernel.
``tests/test_assignments.py`` grades the same variants end to
end with nbgrader.

Also the record format: what the kernel sends is validated on arrival.
"""

from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grading_harness import ROOT, assignments, course_sources, variant_module
from regcourse.grading import judge

JUDGED = [a for a in assignments() if (ROOT / "src/regcourse/grading/checks" / f"{a}.py").is_file()]


def _source(assignment: str) -> Path:
    return ROOT / "solutions" / assignment / f"{assignment}.ipynb"


@pytest.fixture(scope="module")
def references():
    return {}


def _namespace(assignment: str, replacements: dict[str, str] | None = None) -> dict:
    checks = importlib.import_module(f"{judge.CHECKS_PACKAGE}.{assignment}")
    if not getattr(checks, "NEEDS_WHOLE_CELLS", False):
        return judge.reference_namespace(_source(assignment), replacements)
    # Every code cell but the test cells (the probes stand in for them), whole and in order.
    ns: dict = {"__name__": "__main__"}
    for cell in nbformat.read(_source(assignment), 4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade") and not meta.get("solution"):
            continue
        code = (replacements or {}).get(meta.get("grade_id"), cell.source)
        try:
            exec(compile(code, f"<{assignment} {meta.get('grade_id')}>", "exec"), ns)
        except Exception:  # noqa: BLE001 (nbgrader goes on after a failing cell; the probes see what is left)
            pass
    return ns


def _reference(references, assignment):
    if assignment not in references:
        ns = _namespace(assignment)
        references[assignment] = {cell: judge.probe(assignment, cell, ns, reference=True) for cell in judge.checks_for(assignment)}
    return references[assignment]


def _lost(assignment, reference, replacements) -> dict[str, list[str]]:
    ns = _namespace(assignment, replacements)
    failures = {cell: judge.judge(assignment, cell, judge.probe(assignment, cell, ns), reference[cell]) for cell in reference}
    return {cell: f for cell, f in failures.items() if f}


def _variants(kind):
    params = []
    for a in JUDGED:
        module = variant_module(a)
        for name, entry in getattr(module, kind).items():
            params.append(pytest.param(a, name, entry, id=f"{a}-{name}"))
    return params


@pytest.mark.parametrize("assignment", JUDGED)
def test_every_test_cell_is_judged_and_the_reference_passes(references, assignment):
    nb = nbformat.read(_source(assignment), 4)
    test_cells = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                  if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    assert set(judge.checks_for(assignment)) == test_cells
    reference = _reference(references, assignment)
    for cell, record in reference.items():
        assert record, f"{cell}: the probe recorded nothing"
        missing = set(judge.checks_for(assignment)[cell].visible) - set(record)
        assert not missing, f"{cell}: visible keys {missing} are not recorded"
        raised = {k: v for k, v in judge.from_plain(record).items() if isinstance(v, judge.Raised)}
        assert judge.judge(assignment, cell, record, record) == [], cell
        # a reference that raised where it should not would make every student "right" to raise too
        assert all(r.type in ("ValueError", "TypeError") for r in raised.values()), (cell, raised)


@pytest.mark.parametrize("assignment", JUDGED)
def test_every_hidden_test_cell_calls_its_check_and_holds_nothing_else(assignment):
    nb = nbformat.read(_source(assignment), 4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            hidden = cell.source.split("### BEGIN HIDDEN TESTS\n")[1].split("### END HIDDEN TESTS")[0]
            lines = [line for line in hidden.splitlines() if line.strip() and not line.startswith("#")]
            assert lines == [
                "from regcourse.grading.judge import hidden_check",
                f'hidden_check("{assignment}", "{meta["grade_id"]}", globals())',
            ], meta["grade_id"]


@pytest.mark.parametrize("assignment", JUDGED)
def test_every_check_names_contract_lines_that_the_released_notebook_states(assignment):
    released = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", 4)
    text = "\n".join(c.source for c in released.cells)
    for cell, check in judge.checks_for(assignment).items():
        assert check.contract, f"{cell} names no contract line"
        missing = [line for line in check.contract if line not in text]
        assert missing == [], f"{cell}: contract lines not in the notebook: {missing}"


@pytest.mark.parametrize("assignment", JUDGED)
def test_the_released_notebook_states_the_implementation_policy_the_judge_enforces(assignment):
    released = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", 4)
    policy = [p for c in released.cells if c.cell_type == "markdown" for p in c.source.split("\n\n")
              if p.startswith("**Implementation policy.**")]
    assert len(policy) == 1, "the notebook states its implementation policy in one paragraph"
    for name in judge.off_limits_for(assignment):
        assert f"`{name}`" in policy[0], f"the implementation policy does not name {name}, which the judge forbids"


def test_the_a4_reference_behaves_as_keras_early_stopping_on_every_scripted_run(references):
    """Most a4 cells judge the student against the student's own rule; this pins the reference to Keras' rule."""
    from regcourse.grading.checks import a4_early_stopping as a4

    reference = _reference(references, "a4_early_stopping")
    compared = 0
    for cell, record in reference.items():
        decoded = judge.from_plain(record)
        for key, keras_run in decoded.items():
            if key.endswith("|keras") and isinstance(keras_run, dict) and set(keras_run) == set(a4.FIELDS):
                mine = decoded[key.removesuffix("|keras")]
                assert a4._differences(mine, keras_run, exact=False) == [], (cell, key)
                compared += 1
    assert compared > 500, compared


@pytest.mark.judge_variants
@pytest.mark.parametrize("assignment, name, replacements", _variants("CORRECT"))
def test_a_correct_variant_passes_every_check(references, assignment, name, replacements):
    assert _lost(assignment, _reference(references, assignment), replacements) == {}


@pytest.mark.judge_variants
@pytest.mark.parametrize("assignment, name, entry", _variants("WRONG"))
def test_a_wrong_variant_fails_exactly_the_checks_it_names(references, assignment, name, entry):
    """The judge's share of what a graded variant loses: cells that fail only because Keras warns on stderr
    (nbgrader fails a test cell with any stderr) are the kernel's, listed in the module's STDERR_LOSSES."""
    replacements, loses = entry
    through_stderr = getattr(variant_module(assignment), "STDERR_LOSSES", {}).get(name, [])
    lost = _lost(assignment, _reference(references, assignment), replacements)
    assert sorted(lost) == sorted(set(loses) - set(through_stderr)), lost


# -- the record format ---------------------------------------------------------------------

def test_stock_grading_probes_the_reference_in_a_fresh_process_never_in_the_graded_kernel(tmp_path, monkeypatch):
    """Under stock nbgrader the first student graded after a change of the solution triggers the reference.

    Computed in that student's kernel, it would run after their code (a patched library shapes every
    later student's reference) and print into their test cell (stderr there is a failed test).
    """
    assignment = "a2_penalties"
    course = course_sources(tmp_path, [assignment])
    student = _namespace(assignment)  # a correct student's kernel

    def in_this_process(*args, **kwargs):
        raise AssertionError("the reference was probed in the graded kernel")

    monkeypatch.setattr(judge, "reference_namespace", in_this_process)
    monkeypatch.delenv(judge.MODE_VARIABLE, raising=False)  # stock: the kernel judges
    monkeypatch.chdir(course)  # the kernel's folder: course_root() finds the course from there
    for cell in judge.checks_for(assignment):
        judge.hidden_check(assignment, cell, student)  # a wrong verdict raises HiddenTestFailure
    assert judge.reference_path(assignment, course).is_file()


def test_a_reference_that_cannot_be_probed_says_so_with_the_solutions_error(tmp_path):
    assignment = "a2_penalties"
    course = course_sources(tmp_path, [assignment])
    source = course / "solutions" / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(source, 4)
    setup = next(c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("locked"))
    setup.source += "\nraise RuntimeError('the set-up is broken on purpose')"
    nbformat.write(nb, source)
    with pytest.raises(judge.ReferenceUnavailable, match="(?s)reference solution of a2_penalties.*broken on purpose"):
        judge.fresh_reference_file(assignment, course)


def test_records_round_trip_plain_values_arrays_and_exceptions():
    rec = judge.Recorder()
    rec.value("float", np.float32(0.5))
    rec.value("nan", float("nan"))
    rec.value("array", np.arange(6, dtype=np.float32).reshape(2, 3))
    rec.value("nested", {"a": [1, True, None, "x"]})
    rec.call("raised", lambda: int("x"))
    decoded = judge.from_plain(json.loads(json.dumps(rec.entries)))
    assert decoded["float"] == 0.5 and np.isnan(decoded["nan"])
    assert decoded["array"].dtype == np.float32 and decoded["array"].shape == (2, 3)
    assert decoded["nested"] == {"a": [1, True, None, "x"]}
    assert decoded["raised"] == judge.Raised("ValueError", "invalid literal for int() with base 10: 'x'")


@pytest.mark.parametrize(
    "bad",
    [
        {"x": {"__array__": base64.b64encode(b"\0" * 7).decode(), "dtype": "float32", "shape": [2]}},
        {"x": {"__array__": "", "dtype": "object", "shape": [0]}},
        {"x": {"__array__": "", "dtype": "float32", "shape": [-1]}},
        {"x": {"__float__": "1e999"}},
        [1, 2, 3],
    ],
    ids=["bytes-shape-mismatch", "object-dtype", "negative-shape", "bad-float", "not-a-mapping"],
)
def test_a_malformed_record_fails_the_cell_with_a_message(bad):
    failures = judge.judge("mini", "test_l2_norm", bad, {"vector": 5.0, "matrix": 22.5})
    assert len(failures) == 1 and "could not read" in failures[0]


def test_a_value_that_is_no_plain_data_is_recorded_as_an_error():
    rec = judge.Recorder()
    rec.call("object", lambda: object())
    assert judge.from_plain(rec.entries)["object"].type == "RecordError"


# -- the implementation policy ---------------------------------------------------------------

def _library_mean(values):
    return sum(values) / len(values)


def test_a_call_into_an_off_limits_function_is_recorded_however_it_was_reached():
    alias = _library_mean  # imported before the watch began

    class Wrapper:
        def __call__(self, values):
            return alias(values)

    rec = judge.Recorder()
    rec.call("direct", lambda: _library_mean([1, 2]), off_limits={"the library mean": _library_mean})
    rec.call("alias", lambda: Wrapper()([1, 2]), off_limits={"the library mean": _library_mean})
    rec.call("own", lambda: sum([1, 2]) / 2, off_limits={"the library mean": _library_mean})
    decoded = judge.from_plain(rec.entries)
    for key in ("direct", "alias"):
        assert decoded[key] == judge.Raised(
            "OffLimits", "it calls the library mean, which this assignment asks you to implement yourself "
                         "(see its implementation policy)")
    assert decoded["own"] == 1.5


def test_a_recorders_policy_watches_every_call_but_those_that_opt_out():
    rec = judge.Recorder(off_limits={"the library mean": _library_mean})
    rec.call("student", lambda: _library_mean([1, 2]))
    rec.call("the probe's own comparison", lambda: _library_mean([1, 2]), off_limits={})
    decoded = judge.from_plain(rec.entries)
    assert decoded["student"].type == judge.OFF_LIMITS
    assert decoded["the probe's own comparison"] == 1.5
    verdict = judge.Verdict(decoded, {})
    assert verdict.off_limits_keys == {"student"}


def test_a_library_run_is_recorded_for_the_reference_and_skipped_in_a_students_kernel():
    """The library's own runs (no student code) are the same in every kernel: the judges read the reference's."""
    runs = []
    records = {}
    for reference in (False, True):
        rec = judge.Recorder(off_limits={"the library mean": _library_mean}, reference=reference)
        rec.library("library", lambda: runs.append(reference) or _library_mean([1, 2]))
        rec.call("student", lambda: 3.0)
        records[reference] = judge.from_plain(rec.entries)
    assert runs == [True]
    assert records[False] == {"student": 3.0}
    assert records[True] == {"library": 1.5, "student": 3.0}  # not watched: the library may use itself


def test_switching_the_watch_off_is_recorded_as_off_limits():
    own_code = _library_mean.__code__  # kept by the student's code before the probe

    def evade():
        _library_mean.__code__ = own_code
        return _library_mean([1, 2])

    rec = judge.Recorder()
    rec.call("evades", evade, off_limits={"mean": _library_mean})
    assert judge.from_plain(rec.entries)["evades"].type == "OffLimits"
    assert _library_mean.__code__ is own_code and _library_mean([1, 3]) == 2


def test_a_watched_call_fails_is_counted_even_when_caught_and_the_function_is_whole_again_after():
    import threading

    class Library:
        def __init__(self, values):  # super() gives the method a closure cell: its stand-in must keep one
            super().__init__()
            self.mean = _library_mean(values)

    def caught():
        try:
            return Library([1, 2]).mean
        except Exception as error:  # noqa: BLE001 (the student's code swallows the failure)
            return f"own mean instead ({type(error).__name__})"

    def in_a_thread():
        results = []
        thread = threading.Thread(target=lambda: results.append(caught()))
        thread.start()
        thread.join()
        return results[0]

    policy = {"Library": Library.__init__}
    rec = judge.Recorder()
    rec.call("caught", caught, off_limits=policy)
    rec.call("thread", in_a_thread, off_limits=policy)
    decoded = judge.from_plain(rec.entries)
    assert decoded["caught"].type == decoded["thread"].type == judge.OFF_LIMITS
    assert "calls Library" in decoded["caught"].message
    assert caught() == 1.5 and not judge._ACTIVE  # outside the watch: the library's own code again
