"""The chapters executed ahead of the build land where the build looks them up, and failures are left to it."""

from __future__ import annotations


import yaml
from jupyter_cache import get_cache
from myst_nb.core.read import read_myst_markdown_notebook

from regcourse import book_execution
from regression import ROOT

HEADER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def _chapter(path, code):
    path.write_text(HEADER + "\n# A chapter\n\n```{code-cell} ipython3\n" + code + "\n```\n")
    return path


def _book(root, files, execute="cache"):
    (root / "book").mkdir()
    (root / "_toc.yml").write_text(yaml.safe_dump(
        {"format": "jb-book", "root": "book/index", "chapters": [{"file": f"book/{name}"} for name in files]}))
    (root / "_config.yml").write_text(yaml.safe_dump({"execute": {"execute_notebooks": execute, "timeout": 60}}))
    (root / "book" / "index.md").write_text("# Index\n")  # plain Markdown: not a notebook, never executed


def test_chapters_run_ahead_are_found_by_the_builds_own_lookup_and_failures_are_left_to_the_build(tmp_path):
    _book(tmp_path, ["good", "broken"])
    good = _chapter(tmp_path / "book" / "good.md", "print(6 * 7)")
    broken = _chapter(tmp_path / "book" / "broken.md", "raise RuntimeError('a chapter that fails')")

    assert book_execution.chapters(tmp_path) == [good.resolve(), broken.resolve()]
    result = book_execution.execute(tmp_path)
    assert result["succeeded"] == [str(good.resolve())]
    assert result["excepted"] + result["errored"] == [str(broken.resolve())]

    # what MyST-NB does while building: read the Markdown, look the notebook up in the cache
    cache = get_cache(str(tmp_path / book_execution.CACHE))
    record = cache.match_cache_notebook(read_myst_markdown_notebook(good.read_text()))
    _, executed = cache.merge_match_into_notebook(read_myst_markdown_notebook(good.read_text()))
    assert record.data["execution_seconds"] > 0
    assert [o.get("text") for o in executed.cells[-1].outputs] == ["42\n"]
    assert [r.uri for r in cache.list_cache_records()] == [str(good.resolve())]  # the failure is the build's to report

    assert book_execution.execute(tmp_path)["succeeded"] == []  # cached: nothing runs twice


def test_a_book_that_does_not_cache_is_left_to_the_build(tmp_path):
    _book(tmp_path, ["good"], execute="force")
    _chapter(tmp_path / "book" / "good.md", "print(1)")
    assert book_execution.execute(tmp_path) == {"succeeded": [], "excepted": [], "errored": []}
    assert not (tmp_path / book_execution.CACHE).exists()


def test_the_courses_chapters_are_every_notebook_in_the_table_of_contents_last_first():
    names = [path.stem for path in book_execution.chapters(ROOT)]
    assert names[:2] == ["01_why_regularize", "02_bias_variance"] and len(names) == 8, names
    assert [p.stem for p in book_execution.execution_order(book_execution.chapters(ROOT))][0] == "08_choosing_a_technique"
