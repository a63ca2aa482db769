"""One ``nbgrader autograde`` of one student, as the engine runs it in a forked process.

It is stock nbgrader's ``AutogradeApp``: the course's ``nbgrader_config.py``
and command-line options are read as ``nbgrader autograde`` would read them.
Then two stock preprocessors are swapped for subclasses that add the limits
and the reporting (see ``preprocessors``); everything else is untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.autogradeapp import AutogradeApp
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute, OverwriteCells

from regcourse.grading.kernel_client import PromptKernelClient
from regcourse.grading.preprocessors import GuardedExecute, ReportingOverwriteCells, record_event

#: Seconds a grader waits for SQLite's write lock; writes take milliseconds,
#: so only a stuck process could use this up.
SQLITE_BUSY_TIMEOUT_S = 60
#: Modules the tests and the kernel use. A submitted file with one of these
#: names is flagged: the kernel machinery, numpy and the checking helpers are
#: imported before student files could shadow them, but a ``keras.py`` in the
#: notebook's folder shadows Keras for the notebook, as it would in Jupyter.
GRADER_MODULES = ("numpy", "math", "regcourse", "tensorflow", "keras", "ipykernel", "IPython", "nbgrader")
#: Exit status when there is nothing to grade (no submission folder).
NOTHING_TO_GRADE = 3


def _swap(config, trait: str, stock: type, ours: type) -> bool:
    """Replace ``stock`` by ``ours`` in Autograde.<trait>, however the course config names it."""
    current = config.Autograde[trait] if trait in config.Autograde else Autograde.class_traits()[trait].default()
    names = {stock, stock.__name__, f"nbgrader.preprocessors.{stock.__name__}", f"{stock.__module__}.{stock.__name__}"}
    swapped = [ours if (item in names if isinstance(item, (str, type)) else False) else item for item in current]
    config.Autograde[trait] = swapped
    return ours in swapped


def configure(app: AutogradeApp, spec: dict) -> None:
    config = app.config
    if not _swap(config, "sanitize_preprocessors", OverwriteCells, ReportingOverwriteCells):
        app.log.warning("OverwriteCells is not in Autograde.sanitize_preprocessors: edits are not reported")
    if not _swap(config, "autograde_preprocessors", Execute, GuardedExecute):
        app.log.warning("Execute is not in Autograde.autograde_preprocessors: limits are not applied")
    config.ReportingOverwriteCells.events_path = spec["events"]
    config.ReportingOverwriteCells.add_missing_cells = True
    coursedir = app.coursedir
    config.ReportingOverwriteCells.released_path = os.path.join(
        coursedir.format_path(coursedir.release_directory, ".", spec["assignment"]), "{notebook_id}.ipynb"
    )
    guarded = config.GuardedExecute
    guarded.events_path = spec["events"]
    guarded.skip_path = spec["skip"]
    guarded.timeout = spec["cell_timeout"]
    guarded.notebook_timeout = float(spec["notebook_timeout"])
    guarded.output_bytes = spec["output_bytes"]
    guarded.iopub_timeout = spec["iopub_timeout"]
    guarded.kernel_name = spec["kernel_name"]
    guarded.sandbox_uid = spec.get("sandbox_uid", -1)
    guarded.references_path = spec.get("references") or ""
    config.AsyncKernelManager.client_factory = PromptKernelClient
    if spec.get("transport") == "ipc":  # Unix sockets: they reach a kernel without network
        config.KernelManager.transport = "ipc"
        config.KernelManager.connection_file = os.path.join(spec["runtime_dir"], "kernel.json")
        config.KernelManager.ip = os.path.join(spec["runtime_dir"], "k")


def use_busy_timeout(app: AutogradeApp) -> None:
    """Let concurrent graders wait for SQLite's write lock instead of failing ("database is locked").

    ``timeout`` reaches ``sqlite3.connect`` through SQLAlchemy's URL.
    """
    url = app.coursedir.db_url
    if not url.startswith("sqlite:///"):
        return
    if "?" not in url:
        app.coursedir.db_url = f"{url}?timeout={SQLITE_BUSY_TIMEOUT_S}"


def use_wal(db_url: str) -> None:
    """Switch an SQLite gradebook to WAL (persistent): readers go on while one grader writes.

    Done once by the parent before any grader starts: changing the journal
    mode while other connections are open fails at once with "database is
    locked", whatever the busy timeout.
    """
    if not db_url.startswith("sqlite:///"):
        return
    path = db_url[len("sqlite:///"):].split("?")[0]
    if os.path.exists(path):
        with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as db:
            db.execute("PRAGMA journal_mode=WAL")


def read_back(app: AutogradeApp, spec: dict) -> dict:
    """Scores per test cell and notebook lists, read through nbgrader's Gradebook API."""
    coursedir = app.coursedir
    result: dict = {"tests": {}, "notebooks": [], "manual": [], "score": 0.0, "max_score": 0.0}
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        assignment = gb.find_assignment(spec["assignment"])
        result["notebooks"] = [nb.name for nb in assignment.notebooks]
        folder = coursedir.format_path(coursedir.submitted_directory, spec["student"], spec["assignment"])
        found = sorted(name[:-6] for name in os.listdir(folder) if name.endswith(".ipynb")) if os.path.isdir(folder) else []
        result["found"] = found
        result["missing"] = [name for name in result["notebooks"] if name not in found]
        result["max_score"] = float(assignment.max_score)
        try:
            submission = gb.find_submission(spec["assignment"], spec["student"])
        except MissingEntry:
            return result
        result["score"] = float(submission.score)
        several = len(result["notebooks"]) > 1
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                key = f"{notebook.name}:{grade.name}" if several else grade.name
                if grade.cell.cell_type == "code":
                    result["tests"][key] = [float(grade.score), float(grade.max_score)]
                if grade.needs_manual_grade:
                    result["manual"].append(key)
    return result


def prepare_submission(app: AutogradeApp, spec: dict) -> bool:
    """Check the student's folder (in nbgrader's layout); grade a copy without links if it has any.

    nbgrader copies a submission's files with ``shutil.copy``, which follows
    links: a link to the solutions would put them in the kernel's folder.
    Also points the kernel's sandbox at nbgrader's own folder for the run.
    """
    coursedir = app.coursedir
    folder = coursedir.format_path(coursedir.submitted_directory, spec["student"], spec["assignment"])
    if not os.path.isdir(folder):
        record_event(spec["events"], kind="no-folder", folder=os.path.relpath(folder, coursedir.root))
        return False
    links = [
        os.path.join(d, n) for d, dirs, files in os.walk(folder) for n in dirs + files  # never follows links
        if os.path.islink(os.path.join(d, n)) or not os.path.isfile(os.path.join(d, n)) and not os.path.isdir(os.path.join(d, n))
    ]
    if links:
        copy = os.path.join(spec["private_dir"], "submitted")
        shutil.copytree(folder, os.path.join(copy, spec["student"], spec["assignment"]), symlinks=True,
                        ignore=lambda d, names: [n for n in names if os.path.join(d, n) in links])
        coursedir.submitted_directory = copy  # absolute: format_path's join drops the course root
        record_event(spec["events"], kind="links", paths=[os.path.relpath(p, folder) for p in links])
    for name in os.listdir(folder):
        stem = name[:-3] if name.endswith(".py") else name
        if (name.endswith(".py") or os.path.isdir(os.path.join(folder, name))) and stem in GRADER_MODULES:
            record_event(spec["events"], kind="shadow", file=name, module=stem)
    autograded = os.path.abspath(coursedir.format_path(coursedir.autograded_directory, spec["student"], spec["assignment"]))
    record_event(spec["events"], kind="folders", autograded=autograded)
    sandbox = json.loads(os.environ.get("REGCOURSE_SANDBOX") or "{}")
    if sandbox.get("isolate"):  # the kernel inherits this environment
        sandbox["cwd"] = autograded
        os.environ["REGCOURSE_SANDBOX"] = json.dumps(sandbox)
    return True


def warm_up() -> None:
    """Pay, once in the fork server, what every autograde would otherwise pay on first use.

    Measured per submission before this existed: about 0.3 s of CPU, as much as
    the kernel's own start-up, for compiling nbformat's JSON-schema validators,
    importing IPython (jupyter_client's kernelspec lookup does) and configuring
    nbgrader's SQLAlchemy mappers. Nothing here opens a file, a socket or a thread.
    """
    import IPython  # noqa: F401
    import nbconvert.exporters.notebook  # noqa: F401
    import nbformat
    import nbgrader.preprocessors  # noqa: F401
    import psutil  # noqa: F401
    import sqlalchemy.dialects.sqlite  # noqa: F401
    from nbformat.validator import get_validator
    from sqlalchemy.orm import configure_mappers

    for minor in (None, nbformat.current_nbformat_minor):
        for relax in (False, True):
            get_validator(nbformat.current_nbformat, minor, relax_add_props=relax)
    configure_mappers()


def run(spec: dict) -> int:
    """Autograde as ``spec`` says; the exit status nbgrader would give (0: graded)."""
    app = AutogradeApp()
    code = 0
    try:
        app.initialize(spec["argv"])
        if not prepare_submission(app, spec):
            return NOTHING_TO_GRADE
        use_busy_timeout(app)
        configure(app, spec)
        app.start()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    try:
        result = read_back(app, spec)
    except Exception as error:  # the gradebook itself is unreadable: the engine reports it
        result = {"error": f"{type(error).__name__}: {error}"}
    with open(spec["result"], "w", encoding="utf-8") as stream:
        json.dump(result, stream)
    sys.stdout.flush()
    sys.stderr.flush()
    return code
