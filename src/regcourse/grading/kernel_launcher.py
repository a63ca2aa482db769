"""The kernel the grader starts: IPython's, inside its container when the grader runs as root.

The engine's private kernelspec runs ``python -P -m regcourse.grading.kernel_launcher
-f {connection_file}``. ``-P`` keeps the notebook's folder off ``sys.path``
while this (possibly root) code and the kernel machinery import, so a
submitted ``regcourse/``, ``zmq.py`` or ``ipykernel/`` cannot take their place
(and fake passing tests); the folder is put back before the first cell, where
IPython itself would put it, so that students' own modules still import.

A warm start (``warm_kernel``) runs :func:`main` in a fork of the grader's
fork server, where these modules are already imported; from there on, the
code is the same.

``REGCOURSE_SANDBOX`` (JSON, from the engine) says whether to isolate. If it
does, ``sandbox.contain`` runs the rest of this program in the kernel's
container, or not at all: isolation that cannot be set up means no kernel
(the report says why), never a kernel without it. If it does not (the grader
is not root), the kernel runs as the grader's user and the report says why.
"""

from __future__ import annotations

import json
import os
import sys


def _report(path: str | None, report: dict) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as stream:
            json.dump(report, stream)


def main() -> None:
    args = sys.argv[1:]
    spec = json.loads(os.environ.pop("REGCOURSE_SANDBOX", "null") or "null")
    contained = bool(spec and spec.get("isolate"))
    if contained:
        from regcourse.grading import sandbox

        args = sandbox.contain(spec, args)  # returns in the contained kernel only; exits on any failure
    elif spec:
        try:
            _report(spec.get("report"), {"user": False, "network": False, "files": False,
                                         "reason": spec.get("reason", "not requested")})
        except OSError:
            pass
    from regcourse.grading import warm_kernel

    warm_kernel.settle()  # a forked (warm) kernel: what a cold start gives each kernel of its own
    from regcourse.grading import kernel_reads  # cached before student code could shadow it
    from ipykernel.kernelapp import IPKernelApp

    sys.argv = [sys.argv[0], *args]
    app = IPKernelApp.instance()
    app.initialize(args)
    if contained:
        sandbox.listening(app)  # its sockets are bound: the socket folder is taken back before any cell
    # Only now, with the kernel's own modules loaded, does the notebook's folder
    # go on sys.path, where IPython puts it (after the standard library; -P made
    # IPython skip it): a submitted zmq.py or ipykernel/ can no longer stand in.
    site = next((i for i, p in enumerate(sys.path) if os.path.basename(p) in ("site-packages", "dist-packages")), 0)
    sys.path.insert(site, "")
    if spec and spec.get("course"):
        from regcourse.grading.sandbox import python_paths

        kernel_reads.watch_reads(spec["course"], os.getcwd(), python_paths())
    app.start()


if __name__ == "__main__":
    main()
