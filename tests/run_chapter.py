"""Execute one chapter the way the book does and report what a reader would see.

    python tests/run_chapter.py book/03_l1_l2.md [--out DIR]

Prints the execution time, fails on any error or stray stderr (outside cells
tagged ``remove-stderr``), and writes the executed notebook and every figure
as PNG into DIR (default ``_build/chapter_preview/<name>``) for review.
Does not touch the book's execution cache, so several chapters can be checked
at once.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

from regcourse.environment import apply as apply_course_environment  # noqa: E402

apply_course_environment()  # the kernel sees what the book's kernels see

import jupytext  # noqa: E402
import nbformat  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from regression import VOLATILE_STDERR_TAG, execute  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or Path("_build/chapter_preview") / args.chapter.stem
    out.mkdir(parents=True, exist_ok=True)

    nb = jupytext.read(args.chapter)
    start = time.perf_counter()
    executed = execute(nb, cwd=args.chapter.resolve().parent)
    seconds = time.perf_counter() - start
    nbformat.write(executed, str(out / f"{args.chapter.stem}.ipynb"))

    problems, figures = [], 0
    for index, cell in enumerate(executed.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr" and VOLATILE_STDERR_TAG not in tags:
                problems.append(f"cell {index} wrote to stderr: {output['text'][:300]!r}")
            if output.get("output_type") == "error":
                problems.append(f"cell {index} raised {output['ename']}")
            png = output.get("data", {}).get("image/png")
            if png:
                figures += 1
                (out / f"figure_{figures:02d}_cell{index}.png").write_bytes(base64.b64decode(png))
    print(f"{args.chapter}: executed in {seconds:.1f} s, {figures} figures -> {out}")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
