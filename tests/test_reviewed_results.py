"""Reviewed results are kept per kind of processor (tests/regression.py): which one a run is compared with.

The comparison itself is exact; these tests show that a run on the reference
class is compared with ``tests/notebook_results/``, a run on another reviewed
class with its own copy where its outputs differ, and a run on a class no one
reviewed fails with the way to add it, never passes unchecked.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import regression


def _notebook(prose: str, printed: str):
    cell = new_code_cell("print(accuracy)")
    cell.outputs = [new_output("stream", name="stdout", text=printed)]
    return new_notebook(cells=[new_markdown_cell(prose), cell])


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(regression, "RESULTS", tmp_path)
    monkeypatch.setattr(regression, "BY_PROCESSOR", tmp_path / "by-processor")
    regression.write_reference(_notebook("Accuracy is 0.866.", "0.866\n"), tmp_path / "ch.ipynb")
    return tmp_path


def _on(monkeypatch, numerics):
    monkeypatch.setattr(regression, "_this_class", lambda: numerics)


def test_the_reference_class_is_compared_with_the_reference(results, monkeypatch):
    _on(monkeypatch, regression.REFERENCE_CLASS)
    assert regression.reviewed_result("ch.ipynb") == results / "ch.ipynb"


def test_a_class_no_one_reviewed_fails_and_says_how_to_add_it(results, monkeypatch):
    _on(monkeypatch, "x86_64-avx2-l1d-64k")
    with pytest.raises(pytest.fail.Exception, match=r"x86_64-avx2-l1d-64k.*make regen-results"):
        regression.reviewed_result("ch.ipynb")


def test_regenerated_on_another_class_only_what_differs_is_kept_there(results, monkeypatch):
    other = "x86_64-avx2-l1d-48k"
    _on(monkeypatch, other)
    regression.regenerate(_notebook("Accuracy is 0.866.", "0.866\n"), "ch.ipynb")
    assert (results / "by-processor" / other / regression.REVIEWED_MARK).exists()
    assert not (results / "by-processor" / other / "ch.ipynb").exists()
    assert regression.reviewed_result("ch.ipynb") == results / "ch.ipynb"

    regression.regenerate(_notebook("Accuracy is 0.866.", "0.878\n"), "ch.ipynb")
    own = regression.reviewed_result("ch.ipynb")
    assert own == results / "by-processor" / other / "ch.ipynb"
    assert "0.878" in own.read_text()
    kept = nbformat.read(results / "ch.ipynb", as_version=4).cells[1].outputs[0].text
    assert kept == "0.866\n", "the reference's outputs are not touched"

    # outputs the same as the reference's again: the copy goes
    regression.regenerate(_notebook("Accuracy is 0.866.", "0.866\n"), "ch.ipynb")
    assert regression.reviewed_result("ch.ipynb") == results / "ch.ipynb"


def test_prose_regenerated_on_another_class_reaches_the_reference_with_its_outputs_kept(results, monkeypatch):
    _on(monkeypatch, "x86_64-avx2-l1d-48k")
    regression.regenerate(_notebook("Accuracy is 0.866 or 0.878, by processor.", "0.878\n"), "ch.ipynb")
    reference = nbformat.read(results / "ch.ipynb", as_version=4)
    assert reference.cells[0].source == "Accuracy is 0.866 or 0.878, by processor."
    assert reference.cells[1].outputs[0].text == "0.866\n"


def test_changed_code_is_not_grafted_onto_the_reference(results, monkeypatch):
    _on(monkeypatch, "x86_64-avx2-l1d-48k")
    changed = _notebook("New prose.", "0.866\n")
    changed.cells[1].source = "print(round(accuracy, 2))"
    regression.regenerate(changed, "ch.ipynb")
    assert nbformat.read(results / "ch.ipynb", as_version=4).cells[0].source == "Accuracy is 0.866."
    assert (results / "by-processor" / "x86_64-avx2-l1d-48k" / "ch.ipynb").exists()


def test_prose_regenerated_on_the_reference_reaches_every_other_class(results, monkeypatch):
    other = "x86_64-avx2-l1d-48k"
    _on(monkeypatch, other)
    regression.regenerate(_notebook("Accuracy is 0.866.", "0.878\n"), "ch.ipynb")
    _on(monkeypatch, regression.REFERENCE_CLASS)
    regression.regenerate(_notebook("Accuracy: 0.866 here, 0.878 there.", "0.866\n"), "ch.ipynb")
    theirs = nbformat.read(results / "by-processor" / other / "ch.ipynb", as_version=4)
    assert theirs.cells[0].source == "Accuracy: 0.866 here, 0.878 there."
    assert theirs.cells[1].outputs[0].text == "0.878\n", "their outputs are theirs"


def test_regenerating_an_unchanged_result_leaves_the_file_as_it_is(results, monkeypatch):
    """Cell ids are new on every conversion of a chapter: an unchanged result is not rewritten for them."""
    _on(monkeypatch, regression.REFERENCE_CLASS)
    before = (results / "ch.ipynb").read_bytes()
    again = _notebook("Accuracy is 0.866.", "0.866\n")  # nbformat gives its cells new ids
    regression.regenerate(again, "ch.ipynb")
    assert (results / "ch.ipynb").read_bytes() == before
