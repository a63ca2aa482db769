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


# -- student content made inert (issue 10) ----------------------------------------------------------

def _hostile_notebook():
    from nbformat.v4 import new_markdown_cell, new_raw_cell

    outputs = [
        new_output("display_data", data={"text/html": "<b>kept</b><script>alert(1)</script><img src=x onerror=alert(2)>"
                                                      "<a href='javascript:alert(3)'>link</a><style>*{}</style>"
                                                      "<img src='https://tracker.example/p.png'>"
                                                      "<img src='data:image/png;base64,iVBORw0KGgo='>",
                                         "text/plain": "<HTML>"}),
        new_output("display_data", data={"application/javascript": "alert(4)"}),
        new_output("display_data", data={"text/markdown": "**md** <script>alert(5)</script>"}),
        new_output("display_data", data={"image/png": 'x" onerror="alert(6)'}),
        new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "fig"},
                   metadata={"image/png": {"width": '1" onload="alert(7)', "height": 20}}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "m"}}),
        new_output("execute_result", data={"text/plain": "3"}, execution_count=3),
        new_output("stream", name='stdout" onclick="alert(8)', text="printed"),
    ]
    nb = _notebook(outputs)
    nb.cells[0].outputs = outputs
    nb.cells[0].metadata = {"tags": ['x" onmouseover="alert(9)'], "alt": "<script>"}
    nb.cells[1].metadata["nbgrader"]["grade_id"] = 'test_f"><script>alert(10)</script>'
    nb.cells.append(new_markdown_cell("Answer <script>alert(11)</script> **bold**\n\n```\na\n\nb\n```"))
    nb.cells.append(new_raw_cell("<script>alert(12)</script>", metadata={"raw_mimetype": "text/html"}))
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["title"] = "<script>alert(13)</script>"
    return nb


def test_student_html_markdown_and_scripts_are_made_inert():
    from regcourse.grading.feedback import InertStudentContent

    nb = _run(InertStudentContent(), _hostile_notebook())
    # the forged image (not base64) and the widget view have nothing left to show: dropped
    html_out, js, md, png, result, stream = nb.cells[0].outputs
    assert html_out.data["text/html"].startswith("<b>kept</b>")
    for needle in ("<script", "onerror", "javascript:", "<style", "tracker.example"):
        assert needle not in html_out.data["text/html"], needle
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html_out.data["text/html"]
    assert js.data == {"text/plain": "alert(4)"}  # shown as text
    assert "<strong>md</strong>" in md.data["text/html"] and "<script" not in md.data["text/html"]
    assert "text/markdown" not in md.data
    assert png.data["image/png"] == "iVBORw0KGgo=" and png.metadata == {"image/png": {"height": 20}}
    assert result.execution_count == 3 and stream.name == "stdout"
    assert "tags" not in nb.cells[0].metadata and "alt" not in nb.cells[0].metadata
    assert nb.cells[1].metadata["nbgrader"]["grade_id"] == "cell-1"
    markdown = nb.cells[2].source
    assert "<script" not in markdown and "<strong>bold</strong>" in markdown and "\n" not in markdown
    assert nb.cells[3].source == "" and not nb.cells[3].metadata
    assert set(nb.metadata) <= {"kernelspec", "language_info"}


def test_outputs_of_unknown_types_are_dropped():
    from regcourse.grading.feedback import InertStudentContent

    nb = _notebook([])
    nb.cells[0].outputs = [new_output("display_data", data={"application/x-custom": "x"}),
                           {"output_type": "made_up", "data": {"text/html": "<script>x</script>"}}]
    assert _run(InertStudentContent(), nb).cells[0].outputs == []


def test_sanitized_markdown_survives_nbconverts_own_markdown_pass():
    """The feedback template renders markdown cells again: the sanitized HTML must pass through as it is."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from regcourse.grading.feedback import InertStudentContent

    nb = _notebook([])
    nb.cells[0] = __import__("nbformat").v4.new_markdown_cell(
        "Text\n\n```\n[x](javascript:alert(1))\n\n<img src=x onerror=alert(2)>\n```\n\n$a < b$")
    source = _run(InertStudentContent(), nb).cells[0].source
    rendered = markdown2html_mistune(source)
    assert rendered.strip() == source  # one HTML block: passed through, not parsed as markdown again
    assert _active(rendered) == []  # the link and the image stay text in the code block
    assert "[x](javascript:alert(1))" in rendered and "$a &lt; b$" in rendered


def _active(page: str) -> list:
    """What in an HTML fragment could run or fetch: script-like elements, event handlers, script URLs."""
    from html.parser import HTMLParser

    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "iframe", "object", "embed", "style", "img", "svg", "link", "meta", "base"):
                found.append(tag)
            for name, value in attrs:
                if name.startswith("on") or "javascript:" in (value or "").lower():
                    found.append((tag, name, value))

    Parser().feed(page)
    return found
