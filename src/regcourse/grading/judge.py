"""Hidden tests split in two: a probe that runs the student's code, a judge that decides.

Why: a test whose expected values, tolerances and assertions run in the
student's interpreter can be read, patched or swallowed by the code it
grades. Here every hidden test of an assignment is a :class:`Check` in
``regcourse.grading.checks.<assignment>``:

- ``probe(ns, rec)`` runs in the student's kernel. It calls the student's
  objects (found in the notebook namespace ``ns``) on the test inputs and
  records what comes back: numbers, arrays, strings, booleans, exception
  types (:class:`Recorder`). It holds no expected value and decides nothing.
- ``judge(v)`` compares the student's record with the *reference* record, the
  same probe run on the instructor's solution in a clean process, using named
  tolerances and property predicates (:class:`Verdict`).

The hidden-test region of a test cell is one line,
``hidden_check("<assignment>", "<test cell>", globals())``. Where it judges
depends on who grades:

- stock ``nbgrader autograde``: the probe and the judge both run in the kernel
  (against a reference record computed from ``solutions/`` in a fresh process,
  never in the graded kernel, and cached beside the gradebook). This trusts
  the student's kernel, as stock nbgrader always does.
- ``regcourse grade`` sets ``REGCOURSE_JUDGE=record`` for the kernel: the probe
  only *publishes* its record as one output of the cell; the grader's
  ``GuardedExecute`` takes it from the cell's outputs, validates it, judges it
  against a reference computed outside the sandbox, and replaces the cell's
  outputs with the verdict. The kernel's own view of success is never read.

Records are JSON (arrays as base64 of their bytes with dtype and shape); a
record over :data:`MAX_RECORD_BYTES`, or one that is not of this form, fails
the cell.
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import importlib
import inspect
import itertools
import json
import math
import os
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The output type under which a probe publishes its record (never shown to anyone).
RECORD_MIME = "application/vnd.regcourse.record+json"
#: Environment variable (set by ``regcourse grade`` for its kernels) that makes probes publish, not judge.
MODE_VARIABLE = "REGCOURSE_JUDGE"
#: A record larger than this is rejected: it would only fill the grader's memory.
MAX_RECORD_BYTES = 8 * 1024**2
#: Where the stock path caches reference records, relative to the course root (never released).
REFERENCE_CACHE = ".regcourse/references"
#: The package that holds one checks module per assignment.
CHECKS_PACKAGE = "regcourse.grading.checks"
#: Array dtypes a record may carry.
_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64"}


#: What a record says a call raised when it used a function of the implementation policy.
OFF_LIMITS = "OffLimits"


class RecordError(ValueError):
    """A record that is not plain data of the agreed form."""


# -- plain data ----------------------------------------------------------------------------

def to_plain(value, depth: int = 0):
    """``value`` as JSON-able plain data; NumPy and TensorFlow arrays become tagged base64."""
    if depth > 8:
        raise RecordError("record nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _float(float(value))
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v, depth + 1) for k, v in value.items()}
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if array.dtype.name not in _DTYPES:
        raise RecordError(f"cannot record a value of type {type(value).__name__} (dtype {array.dtype})")
    return {"__array__": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii"),
            "dtype": array.dtype.name, "shape": list(array.shape)}


def _float(x: float):
    return x if math.isfinite(x) else {"__float__": repr(x)}


def from_plain(value, depth: int = 0):
    """The inverse of :func:`to_plain`, validating as it goes (the input is untrusted)."""
    if depth > 8:
        raise RecordError("record nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [from_plain(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        raise RecordError(f"unexpected {type(value).__name__} in a record")
    if "__array__" in value:
        dtype, shape = value.get("dtype"), value.get("shape")
        if dtype not in _DTYPES or not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise RecordError("malformed array in a record")
        raw = base64.b64decode(value["__array__"], validate=True)
        if len(raw) != np.dtype(dtype).itemsize * math.prod(shape):
            raise RecordError("array bytes do not match its shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if "__float__" in value:
        if value["__float__"] not in ("nan", "inf", "-inf"):
            raise RecordError("malformed float in a record")
        return float(value["__float__"])
    if "__raised__" in value:
        return Raised(str(value["__raised__"]), str(value.get("message", ""))[:500])
    return {str(k): from_plain(v, depth + 1) for k, v in value.items()}


@dataclass(frozen=True)
class Raised:
    """What a call raised instead of returning: the exception's class name and message."""

    type: str
    message: str = ""

    def __str__(self) -> str:
        return f"raised {self.type}: {self.message}" if self.message else f"raised {self.type}"


# -- the probe's side -----------------------------------------------------------------------

class OffLimitsCall(Exception):
    """Raised in place of a call into a function of the implementation policy while it is watched."""


#: The name under which a watched function's stand-in finds :func:`_called` (in the function's module globals).
_WATCH_NAME = "__regcourse_off_limits__"
#: Stand-in key -> (its watch, the policy's name of the function), for the watches now active.
_ACTIVE: dict[int, tuple["OffLimits", str]] = {}
_KEYS = itertools.count()


def _called(key: int) -> None:
    """What a watched function does instead of its own code: note the call, fail it."""
    watch, name = _ACTIVE[key]
    watch.used.add(name)
    raise OffLimitsCall(f"{name} is not available here (the assignment's implementation policy)")


_PLACEHOLDER = -1  # the key in a stand-in template, replaced by each watch's own


@functools.lru_cache(maxsize=None)
def _stand_in_template(free_variables: int):
    """The code of a function that reports its call to the watch, keeping ``free_variables`` closure cells.

    A function's code can only be swapped for code with as many free
    variables as the function has closure cells (``super()`` in a method
    makes one), so the stand-in names that many, unused.
    """
    cells = [f"_cell{i}" for i in range(free_variables)]
    lines = ["def _factory():", *(f"    {cell} = None" for cell in cells),
             "    def off_limits(*args, **kwargs):"]
    if cells:
        lines.append(f"        {', '.join(cells)},")
    lines += [f"        {_WATCH_NAME}({_PLACEHOLDER})", "    return off_limits"]
    scope: dict = {}
    exec("\n".join(lines), scope)  # noqa: S102 (our own text: no input reaches it)
    return scope["_factory"]().__code__


def _stand_in_code(free_variables: int, key: int):
    """A stand-in that reports call ``key`` (a probe makes hundreds of watched calls: no compiling each time)."""
    template = _stand_in_template(free_variables)
    return template.replace(co_consts=tuple(key if type(c) is int and c == _PLACEHOLDER else c
                                            for c in template.co_consts))


class OffLimits:
    """Makes library functions that an assignment asks students to implement themselves unavailable.

    While active (``with``), each named function's code is swapped for a
    stand-in that notes the call and raises :class:`OffLimitsCall`. The
    function object itself is unchanged, so a call is caught however it was
    reached: through its module, an alias imported earlier, a subclass, a
    wrapper, another thread. ``used`` names the ones called (even where the
    student's code caught the exception); ``evaded`` is set when the swap was
    undone meanwhile.

    Why a swap and not a profile hook (``sys.setprofile``): a hook runs on
    every Python call, and Keras' tracing of a model makes hundreds of
    thousands of them; the hook made the probes of a3 and a4 1.4 to 2 times
    slower. A swap costs nothing until a watched function is called. It does
    not catch a copy of the function made from its code beforehand
    (``types.FunctionType(f.__code__, ...)``): that is deliberate evasion, no
    more preventable than copying the library's source. The policy is there
    so that delegating to the library loses the points with a clear message.
    """

    def __init__(self, functions: dict[str, Callable | tuple[Callable, ...]]) -> None:
        self._watched: list[tuple[Callable, str]] = []
        for name, watched in functions.items():
            for function in watched if isinstance(watched, tuple) else (watched,):
                function = inspect.unwrap(getattr(function, "__func__", function))
                if not isinstance(getattr(function, "__code__", None), types.CodeType):
                    raise TypeError(f"{name} has no Python code to watch")
                self._watched.append((function, name))
        self.used: set[str] = set()
        self.evaded = False
        self._swapped: list = []

    def __enter__(self) -> "OffLimits":
        try:
            for function, name in self._watched:
                key = next(_KEYS)
                stand_in = _stand_in_code(len(function.__closure__ or ()), key)
                self._swapped.append((key, function, function.__code__, stand_in))
                _ACTIVE[key] = (self, name)
                function.__globals__[_WATCH_NAME] = _called
                function.__code__ = stand_in
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.evaded = any(function.__code__ is not stand_in or function.__globals__.get(_WATCH_NAME) is not _called
                          for _, function, _, stand_in in self._swapped)
        self._restore()

    def _restore(self) -> None:
        for key, function, code, _ in reversed(self._swapped):
            function.__code__ = code
            _ACTIVE.pop(key, None)
        self._swapped = []


class Recorder:
    """What a probe records: ``key -> value``, where a call that raises records :class:`Raised`.

    ``off_limits`` (name -> library function) is the assignment's
    implementation policy: every :meth:`call` is watched for them unless it
    says otherwise (a probe's own runs of the library, for comparison).
    """

    def __init__(self, off_limits: dict[str, Callable] | None = None, *, reference: bool = False) -> None:
        self.entries: dict[str, object] = {}
        self.off_limits = off_limits or {}
        self.reference = reference

    def value(self, key: str, value) -> None:
        if key in self.entries:
            raise KeyError(f"probe records {key!r} twice")
        self.entries[key] = to_plain(value)

    def library(self, key: str, function: Callable[[], object], convert: Callable[[object], object] | None = None) -> None:
        """Record a run of the library's own implementation, which calls no student code, for comparison.

        Only the reference record holds it (judges read ``v.reference[key]``):
        it is the same in every kernel, so a student's kernel skips it rather
        than pay for it on every submission.
        """
        if self.reference:
            self.call(key, function, convert, off_limits={})

    def call(self, key: str, function: Callable[[], object], convert: Callable[[object], object] | None = None,
             *, off_limits: dict[str, Callable] | None = None):
        """Record ``convert(function())``, or what it raised; return the raw result (None if it raised).

        A call that uses one of the ``off_limits`` functions (name -> library
        function; None: the recorder's, ``{}``: none) is recorded as
        ``Raised("OffLimits", ...)`` instead of its value.
        """
        watched = self.off_limits if off_limits is None else off_limits
        try:
            if watched:
                watch, failure = OffLimits(watched), None
                try:
                    with watch:
                        result = function()
                except Exception as error:  # noqa: BLE001 (judged below, or raised again)
                    failure = error
                if watch.used or watch.evaded:  # whatever the call then raised, or caught
                    what = ", ".join(sorted(watch.used)) or "code that switched off the grader's watch"
                    message = f"it calls {what}, which this assignment asks you to implement yourself " \
                              "(see its implementation policy)"
                    self.value(key, {"__raised__": OFF_LIMITS, "message": message})
                    return None
                if failure is not None:
                    raise failure
            else:
                result = function()
            self.value(key, convert(result) if convert else result)
            return result
        except RecordError as error:
            self.value(key, {"__raised__": "RecordError", "message": str(error)})
        except Exception as error:  # the student's code failed: that is data, not a crash
            self.value(key, {"__raised__": type(error).__name__, "message": str(error)[:500]})
        return None


# -- the judge's side -----------------------------------------------------------------------

@dataclass
class Verdict:
    """A judge's working state: both records, and the failures found so far (each once)."""

    student: dict
    reference: dict
    failures: list[str] = field(default_factory=list)
    failed_keys: set[str] = field(default_factory=set)

    def fail(self, message: str, key: str | None = None) -> None:
        if message not in self.failures:
            self.failures.append(message)
        if key is not None:
            self.failed_keys.add(key)

    def check(self, condition: bool, message: str, key: str | None = None) -> bool:
        if not condition:
            self.fail(message, key)
        return bool(condition)

    def got(self, key: str):
        """The student's value for ``key``; a missing key is a failure (and returns None)."""
        if key not in self.student:
            self.fail(f"{key}: nothing was recorded (the probe stopped early)", key)
            return None
        return self.student[key]

    @property
    def off_limits_keys(self) -> set[str]:
        """Keys whose call used a function the implementation policy forbids (not tampering: a choice)."""
        return {key for key, value in self.student.items() if isinstance(value, Raised) and value.type == OFF_LIMITS}

    def returned(self, key: str, what: str):
        """The student's value, failing with the exception's name when the call raised."""
        value = self.got(key)
        if isinstance(value, Raised):
            self.fail(f"{what}: {value}", key)
            return None
        return value

    def close(self, key: str, what: str, *, rtol: float, atol: float = 0.0) -> bool:
        """The student's value equals the reference's within ``rtol``/``atol`` (same shape)."""
        expected = self.reference[key]
        value = self.returned(key, what)
        if value is None:
            return False
        try:
            got = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return self.check(False, f"{what}: expected a number or an array, got {type(value).__name__}", key)
        want = np.asarray(expected, dtype=np.float64)
        if got.shape != want.shape:
            return self.check(False, f"{what}: shape {got.shape}, expected {want.shape}", key)
        ok = bool(np.all(np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)))
        if not ok:
            worst = int(np.argmax(np.abs(got - want) - atol - rtol * np.abs(want))) if got.size else 0
            shown = f"{got.flat[worst]:.7g} where {want.flat[worst]:.7g} is expected" if got.size > 1 else \
                f"{float(got):.7g}, expected {float(want):.7g}"
            self.fail(f"{what}: {shown} (relative tolerance {rtol:g})", key)
        return ok

    def equal(self, key: str, what: str) -> bool:
        """The student's value is exactly the reference's (for strings, ints, flags, configs)."""
        expected = self.reference[key]
        value = self.got(key)
        if isinstance(expected, np.ndarray) or isinstance(value, np.ndarray):
            same = isinstance(value, np.ndarray) and isinstance(expected, np.ndarray) and \
                value.shape == expected.shape and value.dtype == expected.dtype and np.array_equal(value, expected)
        else:
            same = value == expected
        return self.check(same, f"{what}: got {_short(value)}, expected {_short(expected)}", key)

    def raises(self, key: str, what: str, exception: str) -> bool:
        value = self.got(key)
        if isinstance(value, Raised) and value.type == exception:
            return True
        found = str(value) if isinstance(value, Raised) else "it returned without raising"
        return self.check(False, f"{what} must raise {exception}; {found}", key)


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True)
class Check:
    """One test cell's hidden test.

    ``contract`` names the lines of the notebook's contract it grades;
    ``visible`` the record keys of the cases the cell's visible tests assert
    too. When the judge finds one of those wrong although the kernel raised
    nothing, the kernel's own checking was subverted: the grader flags it.
    Only checks whose outcome the implementation decides may fail under these
    keys: the judge's random draw is not the kernel's, so a statistical check
    of a visible case fails under a key of its own.
    """

    probe: Callable[[dict, Recorder], None]
    judge: Callable[[Verdict], None]
    contract: tuple[str, ...]
    visible: tuple[str, ...] = ()


def checks_for(assignment: str) -> dict[str, Check]:
    """The ``CHECKS`` (test cell grade id -> :class:`Check`) of an assignment's checks module."""
    module = importlib.import_module(f"{CHECKS_PACKAGE}.{assignment}")
    return module.CHECKS


def uses_holdout(assignment: str) -> bool:
    """Whether an assignment's probes read the instructor's holdout inputs (its module sets ``USES_HOLDOUT``)."""
    module = importlib.import_module(f"{CHECKS_PACKAGE}.{assignment}")
    return bool(getattr(module, "USES_HOLDOUT", False))


def off_limits_for(assignment: str) -> dict[str, Callable]:
    """The implementation policy of an assignment: the library functions its students must not call.

    Its checks module's ``off_limits()`` (imported lazily: it names Keras'
    and TensorFlow's functions), or nothing.
    """
    module = importlib.import_module(f"{CHECKS_PACKAGE}.{assignment}")
    return module.off_limits() if hasattr(module, "off_limits") else {}


def probe(assignment: str, cell: str, ns: dict, *, reference: bool = False) -> dict:
    """Run one check's probe on a namespace; the record as plain data (``reference``: the solution's, see
    :meth:`Recorder.library`)."""
    recorder = Recorder(off_limits_for(assignment), reference=reference)
    checks_for(assignment)[cell].probe(ns, recorder)
    return recorder.entries


def judge(assignment: str, cell: str, student: dict, reference: dict) -> list[str]:
    """The failures of a student's record against the reference record ([] means full marks)."""
    return verdict(assignment, cell, student, reference).failures


def verdict(assignment: str, cell: str, student, reference: dict) -> Verdict:
    """The judge's :class:`Verdict` on a student's record; the record, untrusted, is validated here."""
    try:
        decoded = from_plain(student)
        if not isinstance(decoded, dict):
            raise RecordError("a record is a mapping")
    except (RecordError, ValueError, TypeError) as error:
        return Verdict({}, {}, [f"the grader could not read what the tests recorded ({error})"])
    result = Verdict(decoded, from_plain(reference))
    checks_for(assignment)[cell].judge(result)
    used = sorted({result.student[key].message for key in result.off_limits_keys})
    if used:  # the reason first, once, before its many consequences
        result.failures[:0] = [f"not your own implementation: {message}" for message in used]
    return result


# -- the reference ------------------------------------------------------------------------

def course_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working folder) with ``nbgrader_config.py``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file():
            return folder
    raise FileNotFoundError(f"no nbgrader_config.py at or above {here}: the hidden tests need the course folder")


def reference_namespace(source: Path, replacements: dict[str, str] | None = None) -> dict:
    """The instructor notebook's set-up and definitions, executed: what the probes call as "reference".

    Locked set-up cells run whole; of solution cells only the imports,
    functions, classes and constant assignments run, not the experiments that
    train models. ``replacements`` (grade id -> source) stands other code in
    for solution cells: the tests judge variant submissions this way.
    """
    import nbformat

    nb = nbformat.read(source, as_version=4)
    ns: dict = {"__name__": "__reference__"}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade") and not meta.get("solution"):
            continue
        code = (replacements or {}).get(meta.get("grade_id"), cell.source)
        tree = ast.parse(code)
        if meta.get("solution"):
            tree.body = [node for node in tree.body if _is_definition(node)]
        elif not meta.get("locked"):
            continue
        exec(compile(tree, f"<reference {meta.get('grade_id')}>", "exec"), ns)
    return ns


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):  # constants, not results of calls (data, training)
        return node.value is not None and not any(isinstance(n, ast.Call) for n in ast.walk(node.value))
    return False


def fingerprint(assignment: str, source: Path) -> str:
    """Changes whenever the instructor notebook or the checks module changes."""
    module = importlib.import_module(f"{CHECKS_PACKAGE}.{assignment}")
    digest = hashlib.sha256(source.read_bytes())
    digest.update(inspect.getsource(module).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def reference_records(assignment: str, root: Path) -> dict[str, dict]:
    """Every check's record on the reference solution (see :func:`fresh_reference_file`)."""
    return json.loads(fresh_reference_file(assignment, root).read_text())


def reference_file(assignment: str, root: Path) -> Path:
    """The cached reference records of an assignment, computed first if absent or stale.

    Cached under the course root (``REFERENCE_CACHE``), keyed by a
    fingerprint of the instructor notebook and the checks, so each is
    computed once per course; the file is written atomically, so concurrent
    graders never read half of one.
    """
    cache = reference_path(assignment, root)
    if cache.is_file():
        return cache
    ns = reference_namespace(root / _source_directory(root) / assignment / f"{assignment}.ipynb")
    records = {cell: probe(assignment, cell, ns, reference=True) for cell in checks_for(assignment)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=cache.parent, delete=False, suffix=".tmp") as stream:
        json.dump(records, stream)
    os.replace(stream.name, cache)
    return cache


class ReferenceUnavailable(RuntimeError):
    """The reference solution could not be probed: the course's fault, never a student's."""


def fresh_reference_file(assignment: str, root: Path) -> Path:
    """The cached reference records, computed first if absent in a fresh process (:func:`main`).

    Never in the process that asks: a kernel that grades has run a student's
    code, whose state (a patched library, a global policy, a spent random
    generator) would shape the reference every later student is judged
    against, and whatever the reference prints would land in that student's
    test cell, where nbgrader scores any stderr as a failure. ``-P``: a
    submitted module in the working folder is never imported for it.
    """
    import subprocess
    import sys

    path = reference_path(assignment, root)
    if path.is_file():
        return path
    result = subprocess.run([sys.executable, "-P", "-m", "regcourse.grading.judge", str(root), assignment],
                            cwd=root, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0 or not path.is_file():
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ReferenceUnavailable(f"the reference solution of {assignment} could not be probed for the judge:\n{tail}")
    return path


def reference_path(assignment: str, root: Path) -> Path:
    """Where the reference records of the current instructor notebook and checks are cached."""
    source = root / _source_directory(root) / assignment / f"{assignment}.ipynb"
    return root / REFERENCE_CACHE / f"{assignment}-{fingerprint(assignment, source)}.json"


def is_judged(assignment: str) -> bool:
    """Whether the assignment's hidden tests are checks (else they run in the kernel, as stock nbgrader's)."""
    from importlib.util import find_spec

    return find_spec(f"{CHECKS_PACKAGE}.{assignment}") is not None


def _source_directory(root: Path) -> str:
    """``c.CourseDirectory.source_directory`` of the course (nbgrader's default: ``source``)."""
    from traitlets.config.loader import PyFileConfigLoader

    # Loading the course config also sets the kernels' environment (regcourse.environment) in this
    # process, before TensorFlow is imported: the reference runs as the students' kernels do.
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    return config.CourseDirectory.get("source_directory", "source")


# -- the kernel's entry point -----------------------------------------------------------------

class HiddenTestFailure(AssertionError):
    """A hidden test failed: the message lists what, never the test's source."""


def hidden_check(assignment: str, cell: str, ns: dict) -> None:
    """The whole hidden-test region of a test cell: probe, then publish the record or judge it here."""
    record = probe(assignment, cell, ns)
    if os.environ.get(MODE_VARIABLE) == "record":
        from IPython.display import display

        display({RECORD_MIME: {"assignment": assignment, "cell": cell, "record": record}}, raw=True)
        return
    failures = judge(assignment, cell, record, reference_records(assignment, course_root())[cell])
    if failures:
        raise HiddenTestFailure("\n".join(failures[:10]) + (f"\n... and {len(failures) - 10} more" if len(failures) > 10 else ""))


def main(argv: list[str] | None = None) -> None:
    """``python -m regcourse.grading.judge COURSE_ROOT ASSIGNMENT``: compute the reference, print its path.

    The grader runs this in a fresh process, so the reference sees no state of the grader's.
    """
    import sys

    root, assignment = (argv if argv is not None else sys.argv[1:])
    print(reference_file(assignment, Path(root).resolve()))


if __name__ == "__main__":
    main()
