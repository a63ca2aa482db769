"""The kernel the grader starts: IPython's, isolated first when the grader runs as root.

The engine's private kernelspec runs ``python -P -m regcourse.grading.kernel_launcher
-f {connection_file}``. ``-P`` keeps the notebook's folder off ``sys.path``
while this (possibly root) code and the kernel machinery import, so a
submitted ``regcourse/``, ``zmq.py`` or ``ipykernel/`` cannot take their place
(and fake passing tests); the folder is put back before the first cell, where
IPython itself would put it, so that students' own modules still import.

``REGCOURSE_SANDBOX`` (JSON, from the engine) asks for isolation; see
``sandbox.isolate``. If any step fails the kernel starts unisolated and the
report says why: grading goes on either way.
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
    if spec:
        report = {"user": False, "network": False, "files": False}
        if not spec.get("isolate"):
            report["reason"] = spec.get("reason", "not requested")
        elif os.geteuid() != 0:
            report["reason"] = "the kernel does not start as root"
        else:
            try:
                from regcourse.grading.sandbox import isolate

                index = args.index("-f") + 1
                args[index], report = isolate(spec, args[index])  # writes its own report
            except Exception as error:  # a platform without namespaces: grade anyway, say so
                report = {"user": False, "network": False, "files": False}
                report["reason"] = f"{type(error).__name__}: {error}"
                print(f"grader: kernel isolation failed: {report['reason']}", file=sys.stderr)
        if not report["user"]:
            try:
                _report(spec.get("report"), report)
            except OSError:
                pass
    from regcourse.grading import kernel_guard  # cached before student code could shadow it
    from ipykernel.kernelapp import IPKernelApp

    sys.argv = [sys.argv[0], *args]
    app = IPKernelApp.instance()
    app.initialize(args)
    # Only now, with the kernel's own modules loaded, does the notebook's folder
    # go on sys.path, where IPython puts it (after the standard library; -P made
    # IPython skip it): a submitted zmq.py or ipykernel/ can no longer stand in.
    site = next((i for i, p in enumerate(sys.path) if os.path.basename(p) in ("site-packages", "dist-packages")), 0)
    sys.path.insert(site, "")
    if spec and spec.get("course"):
        from regcourse.grading.sandbox import python_paths

        kernel_guard.watch_reads(spec["course"], os.getcwd(), python_paths())
    app.start()


if __name__ == "__main__":
    main()
