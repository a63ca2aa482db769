"""Every chapter follows the course template: objectives, summary, assignment pointer."""

import re

import jupytext
import pytest
import yaml

from regression import ROOT
from test_chapter_regression import toc_chapters

CHAPTERS = toc_chapters()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_objectives_summary_and_assignment(chapter):
    text = (ROOT / f"{chapter}.md").read_text()
    assert "Learning objectives" in text
    assert re.search(r"^## Summary$", text, re.M), "each chapter ends with a summary"
    assert re.search(r"^## Assignment", text, re.M), "each chapter points to its assignment"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_is_quiet_and_seeded(chapter):
    text = (ROOT / f"{chapter}.md").read_text()
    assert "verbose=1" not in text and "verbose=True" not in text, "no progress bars in the book"
    if ".fit(" in text or "train(" in text:
        assert "set_seed(" in text, "a chapter that trains must seed"


def test_all_eight_chapters_are_in_the_toc():
    assert len(CHAPTERS) == 8


def book_macros() -> dict[str, str]:
    """The TeX macros the book's MathJax defines (_config.yml, sphinx.config.mathjax3_config)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_defines_the_book_macros_for_jupyter(chapter):
    """A chapter downloaded as .md or .ipynb and opened in Jupyter renders \\E and \\Var too.

    Jupyter does not read _config.yml: the chapter's first cell, a markdown cell the
    book removes (tag remove-cell), defines the same macros with \\newcommand, which
    Jupyter's MathJax keeps for every later cell of the notebook.
    """
    first = jupytext.read(ROOT / f"{chapter}.md").cells[0]
    assert first.cell_type == "markdown" and "remove-cell" in first.metadata.get("tags", []), (
        f"{chapter}.md must start with the hidden macro cell (copy it from book/01_why_regularize.md)"
    )
    for name, definition in book_macros().items():
        assert f"\\newcommand{{\\{name}}}{{{definition}}}" in first.source, (
            f"{chapter}.md's macro cell does not define \\{name} as _config.yml does ({definition})"
        )


#: A code cell that draws: the book shows its output as a figure.
DRAWS = ("plt.show()", "plot_curves(")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_figure_is_numbered_captioned_described_and_referred_to(chapter):
    """A plot is a figure: a caption that says what to see, alt text for a screen reader, and text that points to it.

    MyST-NB turns the cell's ``mystnb.figure`` (caption, name) and
    ``mystnb.image.alt`` metadata into a numbered figure; ``{numref}`` gives its number.
    """
    nb = jupytext.read(ROOT / f"{chapter}.md")
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for cell in nb.cells:
        if cell.cell_type != "code" or not any(call in cell.source for call in DRAWS):
            continue
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        first_line = cell.source.splitlines()[0]
        assert figure.get("name", "").startswith("fig-"), f"{chapter}: the figure of `{first_line}` has no fig- name"
        assert len(figure.get("caption", "")) > 40, f"{chapter}: {figure['name']} needs a caption that says what to see"
        assert len(cell.metadata["mystnb"].get("image", {}).get("alt", "")) > 80, f"{chapter}: {figure['name']} needs alt text"
        assert f"{{numref}}`{figure['name']}`" in text, f"{chapter}: the text never refers to {figure['name']} by number"
