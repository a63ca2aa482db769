"""Kernel side: which of the course's files student code tried to read, for the instructor's review.

Nothing here decides a grade: the judge does that outside the kernel, and the
sandbox (where it can be set up) makes the course invisible. An unconfined
kernel (no root, no namespaces) could still open course files; this makes
such attempts visible in the report. ``kernel_launcher`` installs the watch
before IPython starts; ``GuardedExecute`` asks for the list through the
kernel's ``user_expressions`` channel after the last cell.
"""

from __future__ import annotations

import json
import os
import sys

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
