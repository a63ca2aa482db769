"""How long a clean book build takes: Jupyter Book alone against chapters executed one per core first.

    .venv/bin/python benchmarks/book_build.py

Both builds start from a copy of the repository's tracked files with no
``_build/`` (nothing cached), one after the other, on the same machine:

- baseline: ``jupyter-book build . -W -n --keep-going``, which executes the
  chapters one after another while Sphinx reads them (what ``make book`` did
  before ``regcourse.book_execution``);
- ``make book``'s way: ``python -m regcourse.book_execution`` (a pool of one
  process per core fills the build's execution cache), then the same
  ``jupyter-book build``, which only renders.

It prints each build's wall-clock time, the chapters' own execution times
(from the execution cache) and the ratio. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: What every build runs with (the Makefile runs it through regcourse.environment).
from regcourse.environment import apply as apply_course_environment  # noqa: E402


def tracked_copy(destination: Path) -> Path:
    """The working tree's tracked files (the book as committed, plus uncommitted edits), without _build/."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            target = destination / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def run(command: list[str], cwd: Path) -> float:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    apply_course_environment(environment)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def chapter_seconds(book: Path) -> dict[str, float]:
    """Each chapter's execution time, as the execution cache recorded it."""
    from jupyter_cache import get_cache

    records = get_cache(str(book / "_build" / ".jupyter_cache")).list_cache_records()
    return {Path(record.uri).stem[:2]: record.data["execution_seconds"] for record in records}


def main() -> int:
    build = [str(BIN / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going"]
    with tempfile.TemporaryDirectory() as scratch:
        results = {}
        for name, steps in (("jupyter-book alone", [build]),
                            ("book_execution, then jupyter-book", [[sys.executable, "-m", "regcourse.book_execution"], build])):
            book = tracked_copy(Path(scratch) / name.split(",")[0].replace(" ", "-"))
            seconds = sum(run(step, book) for step in steps)
            chapters = chapter_seconds(book)
            results[name] = seconds
            print(f"{name}: {seconds:.0f} s; chapters {sum(chapters.values()):.0f} s of execution "
                  f"({', '.join(f'{k}: {v:.0f} s' for k, v in sorted(chapters.items()))})", flush=True)
    baseline, parallel = results.values()
    print(f"\nclean build: {baseline:.0f} s -> {parallel:.0f} s, {baseline / parallel:.2f}x faster "
          f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
