"""Every chapter follows the course template: objectives, summary, assignment pointer."""

import re

import pytest

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
