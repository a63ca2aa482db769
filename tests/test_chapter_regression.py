"""Every chapter, executed, matches its reviewed result in tests/notebook_results/.

`make test` builds the book first; when the book's execution cache holds a
current run of a chapter (same code cells, newer than the shared package) it
is compared directly, so CI executes each chapter once. Otherwise the chapter is executed
here through pytest-notebook. Refresh the stored results with
`make regen-results` and review `git diff tests/notebook_results`.
"""

from __future__ import annotations

import copy
from datetime import timezone
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from jupyter_cache import get_cache

from regcourse.book_execution import chapters
from regression import ROOT, compare, execute, regenerate, reviewed_result, sources

CACHE = ROOT / "_build" / ".jupyter_cache"
PACKAGE = ROOT / "src" / "regcourse"


def toc_chapters() -> list[str]:
    """The chapters with code: the table of contents' MyST notebooks, as ``book/<name>``."""
    return [str(path.relative_to(ROOT).with_suffix("")) for path in chapters(ROOT) if "{code-cell}" in path.read_text()]


def executed_copy(chapter: str, source_nb) -> nbformat.NotebookNode:
    """The chapter's outputs from the book's execution cache when they are current, else a fresh run.

    The cache (jupyter-cache, keyed on the code cells) holds the notebook as
    the kernel produced it; the copies under _build/jupyter_execute are not
    used, since myst-nb merges their streams in place while rendering.
    """
    if CACHE.exists():
        cache = get_cache(str(CACHE))
        try:
            pk, merged = cache.merge_match_into_notebook(copy.deepcopy(source_nb))
        except KeyError:
            pass  # this source was never executed by the book build
        else:
            # the modules chapters import (the grading subpackage is not among them), as in the Makefile
            newest_package_change = max(p.stat().st_mtime for p in PACKAGE.glob("*.py"))
            if cache.get_cache_record(pk).created.replace(tzinfo=timezone.utc).timestamp() > newest_package_change:
                return merged
    return execute(source_nb, cwd=(ROOT / chapter).parent)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", toc_chapters())
def test_chapter_matches_reviewed_result(chapter, request):
    source_nb = jupytext.read(ROOT / f"{chapter}.md")
    executed = executed_copy(chapter, source_nb)
    if request.config.getoption("--regen-results"):
        regenerate(executed, f"{Path(chapter).name}.ipynb")
        return
    reference_path = reviewed_result(f"{Path(chapter).name}.ipynb")
    assert reference_path.exists(), (
        f"no reviewed result for {chapter}: run `make regen-results`, review it, commit it"
    )
    reference = nbformat.read(str(reference_path), as_version=4)
    assert sources(reference) == sources(source_nb), (
        f"{chapter}.md changed since its result was reviewed: run `make regen-results` "
        "and review `git diff tests/notebook_results`"
    )
    diff = compare(reference, executed)
    assert not diff, f"{chapter} output differs from its reviewed result:\n{diff}"
