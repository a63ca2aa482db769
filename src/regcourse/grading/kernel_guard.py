"""Kernel-side integrity checks: keep the checking helpers pristine for the tests.

A student's cell can rebind ``numpy.testing.assert_allclose`` (or the course's
own ``regcourse.checking`` helpers, ``math.isclose``, a builtin, IPython's
exception handling, ...) so that every hidden test passes. The grader's
``GuardedExecute`` preprocessor calls into this module through the kernel's
``user_expressions`` channel, which never runs through the student's cells:

- :func:`snapshot` before the first cell, when no student code has run yet:
  imports the protected modules (never from the notebook's folder, so a
  submitted ``numpy.py`` cannot stand in for numpy) and remembers every
  function and class they hold;
- :func:`observe` after each locked cell (the instructor's code): remembers the
  names those cells bound to modules and helpers (``np``, ``relative_error``);
- :func:`check` before each test cell: puts back whatever was replaced and
  returns what it found, so a test always runs with pristine helpers (a fair
  score) and the replacement is flagged for review.

This raises the bar; it is not a proof. Code in the same interpreter can in
principle reach and falsify this module too; the report says so when the
check itself could not run, and the hidden tests' outputs remain for review.

Every function returns a JSON string (``user_expressions`` hands back reprs).
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import sys
import types

#: Modules whose functions and classes tests rely on. Others can be added with
#: the REGCOURSE_GUARD_MODULES environment variable (comma separated).
PROTECTED_MODULES = ("builtins", "math", "numpy", "numpy.testing", "regcourse.checking")
#: Builtins IPython itself adds and removes around every cell.
_IPYTHON_BUILTINS = {"exit", "quit", "get_ipython", "display", "_", "__", "___"}
#: Shell methods whose replacement would let a failing test report success.
_SHELL_METHODS = ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "showtraceback",
                  "_showtraceback", "showsyntaxerror", "user_expressions", "ex", "ev")
#: Modules whose objects, bound to names by the instructor's locked cells, stay bound.
_LOCKED_BINDING_PREFIXES = ("numpy", "math", "regcourse", "tensorflow", "keras")

_state: dict = {}
#: Course files student code tried to open or list (see :func:`watch_reads`), not yet reported.
_reads: list[str] = []
_MAX_READS = 20


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def watch_reads(course_root: str, cwd: str, allowed: list[str]) -> None:
    """Record attempts to open or list the course's files outside the kernel's own folder.

    A Python audit hook (it cannot be removed once added) sees every
    ``open``, ``os.listdir`` and ``os.scandir``. Recorded: paths under the
    course root, except the Python packages there (``allowed``) and the
    kernel's folder, where only notebooks count (the one being graded holds
    the hidden tests). The sandbox makes such reads fail; this makes them
    visible to the instructor.
    """
    root = os.path.realpath(course_root)
    cwd = os.path.realpath(cwd)
    allowed = [os.path.realpath(a) for a in allowed if a and _under(os.path.realpath(a), root)]
    watched = {"open", "os.listdir", "os.scandir"}

    def hook(event, args):
        if event not in watched or not args or isinstance(args[0], int) or len(_reads) >= _MAX_READS:
            return
        try:
            path = os.path.abspath(os.fsdecode(args[0]))
        except Exception:  # noqa: BLE001 (an odd argument: not a path we watch)
            return
        if not _under(path, root) or any(_under(path, a) for a in allowed):
            return
        if _under(path, cwd) and not path.endswith(".ipynb"):
            return
        shown = os.path.relpath(path, root)
        if shown not in _reads:
            _reads.append(shown)

    sys.addaudithook(hook)


def _take_reads() -> list[str]:
    """The course files student code tried to read since the last report; forgotten once reported."""
    found = list(_reads)
    del _reads[:]
    return found


def reads() -> str:
    """The course files student code tried to read since the last call."""
    return json.dumps({"reads": _take_reads()})


def _protected_names() -> list[str]:
    extra = [m.strip() for m in os.environ.get("REGCOURSE_GUARD_MODULES", "").split(",") if m.strip()]
    return list(PROTECTED_MODULES) + extra


def _import_outside_cwd(name: str):
    """Import ``name`` with the notebook's folder off ``sys.path`` (no shadowing by submitted files)."""
    saved = list(sys.path)
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", ".", cwd)]
    try:
        return importlib.import_module(name)
    finally:
        sys.path[:] = saved


def _interesting(value) -> bool:
    return callable(value) or isinstance(value, (types.ModuleType, type))


def _shell():
    """The kernel's IPython shell (``get_ipython`` is a builtin only while a cell runs)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def snapshot() -> str:
    modules, missing = {}, []
    for name in _protected_names():
        try:
            modules[name] = _import_outside_cwd(name)
        except Exception:  # an optional module (e.g. numpy) that is not installed
            missing.append(name)
    _state["modules"] = modules
    _state["attrs"] = {
        name: {k: v for k, v in vars(module).items() if _interesting(v)} for name, module in modules.items()
    }
    _state["builtins"] = dict(vars(builtins))
    _state["sys"] = {"excepthook": sys.excepthook, "trace": sys.gettrace(), "profile": sys.getprofile()}
    shell = _shell()
    if shell is not None:
        classes = type(shell).__mro__
        _state["shell_class"] = {
            (cls, m): cls.__dict__[m] for cls in classes for m in _SHELL_METHODS if m in cls.__dict__
        }
        _state["shell_lists"] = {
            "ast_transformers": list(shell.ast_transformers),
            "input_transformers_post": list(shell.input_transformers_post),
            "input_transformers_cleanup": list(getattr(shell, "input_transformers_cleanup", [])),
        }
        _state["shell_instance"] = {m: vars(shell)[m] for m in _SHELL_METHODS if m in vars(shell)}
        _state["custom_exceptions"] = shell.custom_exceptions
        _state["events"] = {k: list(v) for k, v in shell.events.callbacks.items()}
    _state["bindings"] = {}
    return json.dumps({"protected": sorted(modules), "missing": missing})


def observe() -> str:
    """Remember the module/helper bindings the instructor's locked cell just made."""
    shell = _shell()
    if shell is None or "modules" not in _state:
        return json.dumps({"ok": False})
    for name, value in list(shell.user_ns.items()):
        if name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType):
            root = value.__name__.split(".")[0]
        elif callable(value):
            root = (getattr(value, "__module__", None) or "").split(".")[0]
        else:
            continue
        if root in _LOCKED_BINDING_PREFIXES:
            _state["bindings"][name] = value
    return json.dumps({"ok": True})


def check() -> str:
    """Restore everything replaced since :func:`snapshot`; return what was replaced."""
    if "modules" not in _state:
        return json.dumps({"replaced": [], "error": "no snapshot"})
    replaced: list[str] = []
    for name, module in _state["modules"].items():
        if sys.modules.get(name) is not module:
            replaced.append(f"sys.modules[{name!r}]")
            sys.modules[name] = module
        current = vars(module)
        for attr, value in _state["attrs"][name].items():
            if current.get(attr, _MISSING) is not value:
                replaced.append(f"{name}.{attr}")
                setattr(module, attr, value)
        if "." in name:  # numpy.testing is also reachable as numpy.testing attribute
            parent_name, child = name.rsplit(".", 1)
            parent = _state["modules"].get(parent_name) or sys.modules.get(parent_name)
            if parent is not None and getattr(parent, child, module) is not module:
                replaced.append(f"{parent_name}.{child}")
                setattr(parent, child, module)
    current = vars(builtins)
    for attr, value in _state["builtins"].items():
        if attr in _IPYTHON_BUILTINS:
            continue
        if current.get(attr, _MISSING) is not value:
            replaced.append(f"builtins.{attr}")
            current[attr] = value
    saved = _state["sys"]
    if sys.excepthook is not saved["excepthook"]:
        replaced.append("sys.excepthook")
        sys.excepthook = saved["excepthook"]
    if sys.gettrace() is not saved["trace"]:
        replaced.append("sys.settrace")
        sys.settrace(saved["trace"])
    if sys.getprofile() is not saved["profile"]:
        replaced.append("sys.setprofile")
        sys.setprofile(saved["profile"])
    shell = _shell()
    if shell is not None and "shell_class" in _state:
        replaced += _restore_shell(shell)
    return json.dumps({"replaced": replaced, "reads": _take_reads()})


def _restore_shell(shell) -> list[str]:
    replaced = []
    for (cls, method), value in _state["shell_class"].items():
        if cls.__dict__.get(method, _MISSING) is not value:
            replaced.append(f"IPython {cls.__name__}.{method}")
            setattr(cls, method, value)
    saved = _state["shell_instance"]  # ipykernel itself sets some as instance attributes
    for method in _SHELL_METHODS:
        current = vars(shell).get(method, _MISSING)
        if current is not saved.get(method, _MISSING):  # an instance attribute hides the method
            replaced.append(f"IPython shell.{method}")
            if method in saved:
                setattr(shell, method, saved[method])
            else:
                delattr(shell, method)
    for attr, value in _state["shell_lists"].items():
        if list(getattr(shell, attr, [])) != value:
            replaced.append(f"IPython shell.{attr}")
            setattr(shell, attr, list(value))
    if shell.custom_exceptions != _state["custom_exceptions"]:
        replaced.append("IPython shell.set_custom_exc")
        shell.custom_exceptions = _state["custom_exceptions"]
    for event, callbacks in _state["events"].items():
        # Libraries add callbacks (matplotlib's inline backend does); removing ours is tampering.
        current = shell.events.callbacks.setdefault(event, [])
        lost = [cb for cb in callbacks if cb not in current]
        if lost:
            replaced.append(f"IPython events[{event!r}]")
            current[:0] = lost
    for name, value in _state["bindings"].items():
        if shell.user_ns.get(name, _MISSING) is not value:
            replaced.append(f"the notebook's name {name!r} (bound by a locked cell)")
            shell.user_ns[name] = value
    return replaced


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
