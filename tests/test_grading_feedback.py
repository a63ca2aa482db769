"""The feedback preprocessors on hand-made notebooks: no kernel, no grading, milliseconds.

The end-to-end tests check real feedback pages; these pin down the cases a
real run rarely produces (a traceback in another IPython format, a student
cell quoting the markers, a hidden line split by colour codes).
"""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_notebook, new_output

from regcourse.grading.feedback import (
    REDACTED,
    GraderNotes,
    RedactHiddenTests,
    ShortenTestTracebacks,
    TolerantClearHiddenTests,
    hidden_regions,
)

TEST_SOURCE = "assert f(1) == 1\n### BEGIN HIDDEN TESTS\nsecret_case = [7, 8, 9]\nassert f(secret_case) == 24, 'f on a list'\n### END HIDDEN TESTS"
GRADE = {"nbgrader": {"grade": True, "grade_id": "test_f", "locked": True, "points": 1, "schema_version": 3,
                      "solution": False, "task": False}}
RED, RESET = "\x1b[31m", "\x1b[0m"


def _error(line: int, evalue="f on a list") -> dict:
    # ipykernel >= 6 names the cell's frame "Cell In[n], line k"; colours split the line
    return new_output("error", ename="AssertionError", evalue=evalue, traceback=[
        f"{RED}AssertionError{RESET}  Traceback (most recent call last)",
        f"Cell {RED}In[4]{RESET}, line {line}\n      3 secret_case = [7, 8, 9]\n----> {line} assert f({RED}secret_case{RESET}) == 24, 'f on a list'",
        f"{RED}AssertionError{RESET}: {evalue}",
    ])


def _notebook(outputs, student_source="print('hi')"):
    nb = new_notebook()
    nb.cells = [new_code_cell(student_source), new_code_cell(TEST_SOURCE, metadata=GRADE, outputs=outputs)]
    return nb


def _run(preprocessor, nb, student="s1"):
    return preprocessor.preprocess(nb, {"nbgrader": {"student": student}})[0]


def test_hidden_regions_are_found_with_their_markers():
    assert hidden_regions(TEST_SOURCE) == [(2, 5)]
    assert hidden_regions("x = 1") == []


def test_a_hidden_failure_is_named_but_not_shown():
    nb = _run(ShortenTestTracebacks(), _notebook([_error(4)]))
    assert nb.cells[1].outputs[0].traceback == ["AssertionError: f on a list\n(raised by a hidden test)"]


def test_a_visible_failure_says_so():
    nb = _run(ShortenTestTracebacks(), _notebook([_error(1, evalue="")]))
    assert nb.cells[1].outputs[0].traceback == ["AssertionError\n(raised by a visible test)"]


def test_a_traceback_without_a_cell_frame_still_hides_the_line():
    output = new_output("error", ename="ValueError", evalue="bad", traceback=["something else entirely"])
    nb = _run(ShortenTestTracebacks(), _notebook([output]))
    assert nb.cells[1].outputs[0].traceback == ["ValueError: bad\n(raised by a test in this cell)"]


def test_student_cells_keep_their_own_traceback():
    nb = _notebook([])
    nb.cells[0].outputs = [_error(2)]
    before = list(nb.cells[0].outputs[0].traceback)
    assert _run(ShortenTestTracebacks(), nb).cells[0].outputs[0].traceback == before


def test_hidden_lines_are_redacted_from_every_output_even_coloured_or_as_json():
    nb = _notebook([_error(4)])
    nb.cells[0].outputs = [
        new_output("stream", name="stdout", text='leak: "secret_case = [7, 8, 9]\\n",\n'),  # a printed .ipynb
        new_output("stream", name="stdout", text="return sum(x) * 2\n"),  # a line of the solution
    ]
    nb = _run(RedactHiddenTests(secret_lines=["return sum(x) * 2"]), nb)
    assert nb.cells[0].outputs[0].text == f'leak: "{REDACTED}\\n",\n'
    assert nb.cells[0].outputs[1].text == f"{REDACTED}\n"
    assert "assert f(secret_case) == 24" not in "".join(nb.cells[1].outputs[0].traceback)  # split by colours
    assert nb.cells[1].source == TEST_SOURCE  # the source itself is ClearHiddenTests' job


def test_clear_hidden_tests_ignores_a_student_cell_quoting_the_marker():
    nb = _notebook([], student_source="print('### BEGIN HIDDEN TESTS')  # no end marker")
    nb = _run(TolerantClearHiddenTests(enforce_metadata=False), nb)
    assert nb.cells[0].source == "print('### BEGIN HIDDEN TESTS')  # no end marker"
    assert nb.cells[1].source == "assert f(1) == 1"


def test_grader_notes_go_on_top_for_that_student_only():
    notes = GraderNotes(notes={"s1": ["Cell 'f' was interrupted after the 5 s limit per cell."]})
    nb = _run(notes, _notebook([]))
    assert nb.cells[0].cell_type == "markdown" and "5 s limit" in nb.cells[0].source
    assert _run(notes, _notebook([]), student="s2").cells[0].cell_type == "code"
