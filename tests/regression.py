"""Notebook regression: executed notebooks against reviewed, stored results.

The comparison is pytest-notebook's own (nbdime diff, ignore paths, regex
replacements). Only what is legitimately volatile is ignored:

* image bytes: PNG encoding embeds nothing we review, and antialiasing can
  differ between matplotlib builds; the *presence* of every figure is still
  compared through its ``text/plain`` repr;
* execution counts and notebook/cell metadata: bookkeeping, not content;
* where a cell's printed text is split into several stream outputs: that
  depends on flush timing, so streams are coalesced before comparing;
* wall-clock timings, which chapters print as ``<number> s`` (with any
  padding before them, since right-aligned columns pad shorter numbers);
* the ``text/plain`` twin of an output that also has ``text/html`` (a pandas
  table): its column widths follow the width of the timings; the HTML table
  carries the same cells without padding and is compared instead.

Everything else, every printed metric included, must match exactly: the
chapters seed everything and TensorFlow runs with deterministic ops.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from pytest_notebook.diffing import diff_notebooks, diff_to_string, filter_diff
from pytest_notebook.execution import execute_notebook
from pytest_notebook.notebook import regex_replace_nb
from pytest_notebook.post_processors import coalesce_streams

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tests" / "notebook_results"

DIFF_IGNORE = (
    "/metadata",
    "/cells/*/metadata",
    "/cells/*/id",  # random per conversion of the MyST source
    "/cells/*/execution_count",
    "/cells/*/outputs/*/execution_count",
    "/cells/*/outputs/*/metadata",
    "/cells/*/outputs/*/data/image/png",
)
DIFF_REPLACE = (
    # timings: "3.2 s", "12 s"; chapters print every duration in this form
    ("/cells/*/outputs", r"[ \t]*\b\d+(\.\d+)? s\b", " <seconds> s"),
)
#: Cells whose stderr is TensorFlow's C++ start-up notice (hidden in the book too).
VOLATILE_STDERR_TAG = "remove-stderr"
NOTEBOOK_TIMEOUT_S = 900


def strip_volatile_streams(nb):
    """Drop stderr of cells tagged ``remove-stderr`` (timestamps and PIDs, shown
    nowhere) and the padded plain-text twin of HTML tables."""
    nb, _ = coalesce_streams(nb, {})
    for cell in nb.cells:
        if VOLATILE_STDERR_TAG in cell.get("metadata", {}).get("tags", []):
            cell.outputs = [o for o in cell.get("outputs", []) if o.get("name") != "stderr"]
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data and "text/plain" in data:
                del data["text/plain"]
    return nb


def sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.cell_type == "code"]


def execute(nb, cwd: Path):
    result = execute_notebook(nb, cwd=str(cwd), timeout=NOTEBOOK_TIMEOUT_S)
    if result.exec_error:
        raise result.exec_error
    return result.notebook


def compare(reference, executed) -> str:
    """'' when equal up to the volatile parts, else a readable diff."""
    ref = regex_replace_nb(strip_volatile_streams(reference), list(DIFF_REPLACE))
    new = regex_replace_nb(strip_volatile_streams(executed), list(DIFF_REPLACE))
    diff = filter_diff(diff_notebooks(ref, new), list(DIFF_IGNORE))
    return diff_to_string(ref, diff, use_color=False) if diff else ""


def write_reference(executed, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(strip_volatile_streams(executed), str(path))
