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

Exact, on the same kind of processor: a few results depend on the processor
in ways no environment variable reaches (``regcourse.environment``'s
docstring). The results in ``tests/notebook_results/`` were reviewed on
:data:`REFERENCE_CLASS`; those that come out otherwise on another numerics
class were reviewed there too, and are kept under ``by-processor/<class>/``
(only those: a notebook not found there is compared with the reference's).
On a class with no folder, the comparison fails and says how to add it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from pytest_notebook.diffing import diff_notebooks, diff_to_string, filter_diff
from pytest_notebook.execution import execute_notebook
from pytest_notebook.notebook import regex_replace_nb
from pytest_notebook.post_processors import coalesce_streams

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tests" / "notebook_results"
#: The numerics class the results in RESULTS were reviewed on (CI's machines, and AMD's EPYC).
REFERENCE_CLASS = "x86_64-avx2-l1d-32k"
BY_PROCESSOR = RESULTS / "by-processor"
#: In a class's folder: it was reviewed there (the notebooks that matched the reference have no copy).
REVIEWED_MARK = "REVIEWED.md"

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


def _this_class() -> str:
    from regcourse.environment import numerics_class

    return numerics_class()


def reviewed_result(relative: str) -> Path:
    """The reviewed result of ``relative`` (e.g. ``06_batch_normalization.ipynb``) for this processor."""
    numerics = _this_class()
    if numerics == REFERENCE_CLASS:
        return RESULTS / relative
    folder = BY_PROCESSOR / numerics
    if not (folder / REVIEWED_MARK).exists():
        pytest.fail(
            f"no results were reviewed on this kind of processor ({numerics}; the reference is "
            f"{REFERENCE_CLASS}, others in {BY_PROCESSOR}/): run `make regen-results`, "
            "review what it writes there, and commit it"
        )
    override = folder / relative
    return override if override.exists() else RESULTS / relative


def regenerate(executed, relative: str) -> None:
    """Store ``executed`` as the reviewed result of ``relative`` for this processor's class.

    On the reference class it replaces the reference; elsewhere it is kept
    under ``by-processor/<class>/`` only where it differs from the reference.
    Either way, every other class's copy takes its text cells (prose does not
    depend on the processor), so a change of prose is regenerated once."""
    numerics = _this_class()
    for other in BY_PROCESSOR.glob(f"*/{relative}"):
        if other.parent.name != numerics:
            _refresh_prose(other, executed)
    if numerics == REFERENCE_CLASS:
        _store(executed, RESULTS / relative)
        return
    folder = BY_PROCESSOR / numerics
    folder.mkdir(parents=True, exist_ok=True)
    mark = folder / REVIEWED_MARK
    if not mark.exists():
        mark.write_text(
            f"# Results reviewed on {numerics}\n\nFirst reviewed on {_processor_model()}. The notebooks "
            f"here came out otherwise than on {REFERENCE_CLASS} (tests/notebook_results/); every other "
            "notebook matched it exactly.\n"
        )
    override = folder / relative
    reference_path = RESULTS / relative
    reference = _refresh_prose(reference_path, executed) if reference_path.exists() else None
    if reference is not None and not compare(reference, executed):
        override.unlink(missing_ok=True)
    else:
        _store(executed, override)


def _store(executed, path: Path) -> None:
    """Write ``executed`` to ``path`` unless what is there is the same up to the volatile parts (cell ids are
    new on every conversion of a chapter: rewriting an unchanged result would only churn them)."""
    if path.exists() and not compare(nbformat.read(str(path), as_version=4), executed):
        return
    write_reference(executed, path)


def _refresh_prose(path: Path, executed):
    """The stored result at ``path``, its text cells brought up to ``executed``'s where the code is the same."""
    stored = nbformat.read(str(path), as_version=4)
    refreshed = with_prose_of(stored, executed)
    if refreshed is None or refreshed == stored:
        return stored
    nbformat.write(refreshed, str(path))
    return refreshed


def _processor_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return next(line.partition(":")[2].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return "a processor of this class"


def with_prose_of(reference, executed):
    """``reference`` with the text cells of ``executed``, or ``None`` where their code differs.

    Prose does not depend on the processor: regenerated on any class, the
    reference's text is kept current while its outputs stay those reviewed on
    :data:`REFERENCE_CLASS`."""
    if [c.cell_type for c in reference.cells] != [c.cell_type for c in executed.cells]:
        return None
    if sources(reference) != sources(executed):
        return None
    refreshed = copy.deepcopy(reference)
    for cell, new in zip(refreshed.cells, executed.cells):
        if cell.cell_type != "code":
            cell.source = new.source
    return refreshed
