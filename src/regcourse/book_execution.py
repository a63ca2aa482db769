"""Execute the book's chapters side by side, before Jupyter Book renders them.

    python -m regcourse.book_execution      (``make book`` runs it first)

Why: Jupyter Book 1.x executes one chapter after another while Sphinx reads
them, and a chapter is mostly single-threaded Python and small TensorFlow
ops, so on two cores half the machine waits. This fills MyST-NB's own
execution cache (``_build/.jupyter_cache``, jupyter-cache's store, with the
reader MyST-NB registers for it, so the keys are the ones the build looks
up) with a pool of one process per core. ``jupyter-book build`` then finds
every chapter executed and only renders.

Nothing is trusted that the build would not check: a chapter that fails
here stays out of the cache, so the build executes it again and reports its
error as it always does (the strict build fails). Only chapters whose source
changed since their cached execution run at all.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import yaml

#: The jupyter-cache reader MyST-NB registers for MyST Markdown notebooks (its cache keys hash what it reads).
READER = {"name": "myst_nb_md", "type": "plugin"}
#: Where Jupyter Book keeps MyST-NB's execution cache, relative to the book's root.
CACHE = Path("_build") / ".jupyter_cache"


def chapters(root: Path) -> list[Path]:
    """The book's MyST notebooks (``_toc.yml``'s files that MyST-NB executes), in the table of contents' order."""
    from myst_nb.core.read import is_myst_markdown_notebook

    found = []

    def visit(entry):
        if isinstance(entry, dict):
            if "file" in entry or "root" in entry:
                path = (root / (entry.get("file") or entry["root"])).with_suffix(".md")
                if path.is_file() and is_myst_markdown_notebook(path.read_text("utf8")):
                    found.append(path.resolve())
            for value in entry.values():
                visit(value)
        elif isinstance(entry, list):
            for value in entry:
                visit(value)

    visit(yaml.safe_load((root / "_toc.yml").read_text("utf8")))
    return found


def execution_order(paths: list[Path]) -> list[Path]:
    """Last chapter first: later chapters train more (chapter 8 alone is a third of the book's time).

    A pool takes its tasks in order, so the longest one starting first keeps
    both cores busy to the end instead of leaving one chapter running alone.
    """
    return list(reversed(paths))


def execute(root: Path) -> dict[str, list[str]]:
    """Execute the chapters that are not cached yet; what succeeded and what did not (by path)."""
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    config = yaml.safe_load((root / "_config.yml").read_text("utf8")).get("execute", {})
    if config.get("execute_notebooks", "auto") != "cache":
        return {"succeeded": [], "excepted": [], "errored": []}  # the build executes (or not) by itself
    cache = get_cache(str(root / CACHE))
    paths = chapters(root)
    for path in execution_order(paths):
        cache.add_nb_to_project(str(path), read_data=READER)
    logger = logging.getLogger("regcourse.book_execution")
    logger.setLevel(logging.INFO)  # at INFO the pool reports one line per chapter (below it, every step)
    executor = load_executor("local-parallel", cache, logger=logger)
    result = executor.run_and_cache(filter_uris=[str(p) for p in paths], timeout=int(config.get("timeout", 30)),
                                    allow_errors=bool(config.get("allow_errors", False)))
    return {"succeeded": list(result.succeeded), "excepted": list(result.excepted), "errored": list(result.errored)}


def main() -> int:
    root = Path.cwd()
    if not (root / "_toc.yml").is_file():
        print(f"no _toc.yml in {root}: run this from the book's root", file=sys.stderr)
        return 2
    logging.basicConfig(format="%(message)s")
    from regcourse.environment import apply as apply_course_environment

    apply_course_environment()  # the kernels inherit it: TensorFlow reads it when it loads
    started = time.perf_counter()
    result = execute(root)
    ran = len(result["succeeded"]) + len(result["excepted"]) + len(result["errored"])
    print(f"chapters executed ahead of the build: {len(result['succeeded'])} of {ran} in "
          f"{time.perf_counter() - started:.0f} s (the others were cached)" if ran else "every chapter is cached")
    for path in result["excepted"] + result["errored"]:
        print(f"  failed, left for the build to execute and report: {Path(path).relative_to(root)}")
    return 0  # the build reports failures, with the chapter's own error


if __name__ == "__main__":
    sys.exit(main())
