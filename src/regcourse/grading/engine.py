"""Grade submissions with stock ``nbgrader autograde``, one isolated process each, many at a time.

:func:`grade_one` grades one student's submission: a child forked from a warm
process (``forkserver``) runs nbgrader's ``AutogradeApp`` for that student
only, while this process watches it: the kernel's resident memory (summed
over the kernel and everything it starts) and the notebook's wall clock.
When the kernel dies or is killed, or a cell hangs beyond interruption, the
cell that was running is known (the ``GuardedExecute`` preprocessor records
each cell before it runs), and the submission is graded again with that cell
stopped: it scores zero, the rest is graded as usual. At most
``MAX_ATTEMPTS`` runs; a submission nbgrader cannot grade at all (not a
notebook, ...) is reported, never raised, so a batch always finishes.

:func:`grade_many` runs :func:`grade_one` for many students, on local threads
(each only waits on its child: the work is in the child processes) or on a
Dask cluster, where each worker process keeps its own warm fork server.

Concurrency and the gradebook: every child writes only its own student's
rows, through nbgrader's ``Gradebook``. SQLite serialises writers; each child
waits up to ``autograde_job.SQLITE_BUSY_TIMEOUT_S`` for the lock (``?timeout=``
in the database URL, which SQLAlchemy hands to ``sqlite3.connect``) and the
database is switched to WAL, so readers never wait. Both need the database on
a local disk. For graders on several machines use PostgreSQL: put
``c.CourseDirectory.db_url = "postgresql://user@host/course"`` in
``nbgrader_config.py`` and install ``regcourse[postgres]`` (psycopg 3);
nothing else changes.

Isolation of student code (a container per kernel: own user and processes,
no network, only its own folder and the Python environment in view, bounded
writes) is in ``sandbox``; it needs root on Linux. It fails closed: a kernel
whose container cannot be set up does not run, and the submission is failed
and flagged. What was in force, measured inside each kernel, is recorded in
``Outcome.isolation``. Each attempt gets fresh folders (the kernel's socket
folder, its container's file systems); after it, every process and container
of the kernel's uid is ended before anything else runs under that uid.
"""

from __future__ import annotations

import json
import random
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from regcourse.grading import forkserver, holdout, judge, sandbox, warm_kernel
from regcourse.grading.course import CourseError
from regcourse.grading.model import Limits, Outcome, Status, SubmissionRef

#: Runs per submission: the first, and one more for each cell that had to be stopped.
MAX_ATTEMPTS = 3
#: How often the watchdog looks at the kernel's memory, in seconds. A kernel
#: can allocate ~1 GB in this time: set the memory cap below RAM by that much.
POLL_S = 0.1
#: Beyond the notebook's own limit (enforced cell by cell inside nbgrader),
#: how long the whole autograde may take before it is killed: kernel start,
#: an interrupt that is ignored (IOPUB_TIMEOUT_S), writing the results.
WALL_GRACE_S = 40.0
#: Seconds nbclient waits for a cell's last output after its reply. nbgrader's
#: 4 s fails ordinary cells on a busy machine; a kernel that ignores the
#: interrupt after a cell timeout is given up on after this long (and retried).
IOPUB_TIMEOUT_S = 10
#: The kernelspec the children use (see ``kernel_launcher``).
KERNEL_NAME = "regcourse-kernel"
#: Characters nbgrader would read as a glob pattern or a path in a student or assignment id.
_UNSAFE_ID = re.compile(r"[*?\[\]/\\]|^\.\.?$")


def _read_umask() -> int:
    """This process's umask, read without changing it (os.umask sets it, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # at import, before any grading thread exists
    os.umask(mask)
    return mask


_PROCESS_UMASK = _read_umask()


# -- kernelspec -----------------------------------------------------------------------------

def _write_kernelspec(root: Path, warm: bool) -> Path:
    """The grader's kernelspec under ``root`` (the job's folder), for JUPYTER_PATH; see ``kernel_launcher``.

    ``warm``: started by ``warm_kernel``'s provisioner (a fork of the grader's fork server), else cold.
    """
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    metadata: dict = {"debugger": False}
    if warm:
        metadata["kernel_provisioner"] = {"provisioner_name": warm_kernel.PROVISIONER_NAME, "config": {}}
    spec = {
        "argv": [sys.executable, "-P", "-m", "regcourse.grading.kernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (grader)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": metadata,
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return root


# -- one attempt ----------------------------------------------------------------------------

#: Set when a local batch is interrupted (Ctrl-C): every watchdog kills its run.
_cancel = threading.Event()


@dataclass
class _Attempt:
    status: int
    events: list[dict]
    result: dict
    killed: str | None  # why the watchdog stopped it: "memory", "wall" or "cancelled"
    isolation: dict
    log: str


@dataclass
class _Job:
    """Everything private to one submission's grading; removed afterwards."""

    root: Path
    uid: int = -1
    run: Path | None = None  # this attempt's socket folder (fresh for each attempt)
    attempts: int = 0
    withheld: list[str] | None = None  # files of the source folder the kernel must not see (not released)
    references: Path | None = None  # the judge's reference records; None: the hidden tests run in the kernel

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"


def _kill(procs: Iterable) -> None:
    import psutil

    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass


def _private_memory(procs: list, limit: int) -> int:
    """The memory the kernel's processes hold as their own (USS), or a bound under ``limit`` for it.

    A warm kernel (``warm_kernel``) shares TensorFlow's pages with the fork
    server until it writes to them: they are not the submission's, and its
    resident size (RSS) counts them all. RSS bounds USS from above and costs a
    read of ``statm``, while USS costs a walk of the memory map (about 5 ms
    for a TensorFlow process): USS is read only when RSS is over the limit.
    """
    import psutil

    def total(read) -> int:
        found = 0
        for proc in procs:
            try:
                found += read(proc)
            except psutil.Error:  # gone meanwhile
                pass
        return found

    rss = total(lambda proc: proc.memory_info().rss)
    return rss if rss <= limit else total(lambda proc: proc.memory_full_info().uss)


def _watch(job_pid: int, limits: Limits, deadline: float, done: threading.Event) -> tuple[str | None, list]:
    """Until the child exits: kill the kernel over the memory cap, everything past the deadline."""
    import psutil

    seen: dict[int, psutil.Process] = {}
    try:
        child = psutil.Process(job_pid)
    except psutil.NoSuchProcess:
        return None, []
    killed = None
    while not done.wait(POLL_S):
        if _cancel.is_set():
            deadline = 0.0  # the batch was interrupted: kill this run now
        try:
            kernels = child.children(recursive=True)
        except psutil.Error:
            continue
        for proc in kernels:
            seen.setdefault(proc.pid, proc)
        if killed is None and _private_memory(kernels, limits.memory_bytes) > limits.memory_bytes:
            killed = "memory"
            _kill(kernels)  # nbgrader sees a dead kernel and stops; the cell is stopped next attempt
        if time.monotonic() > deadline:
            killed = killed or ("cancelled" if _cancel.is_set() else "wall")
            try:
                os.killpg(job_pid, signal.SIGKILL)
            except OSError:
                pass
            _kill(kernels)
    return killed, list(seen.values())


def _spec(course_root: Path, ref: SubmissionRef, limits: Limits, job: _Job, isolate: bool) -> dict:
    env = dict(os.environ)
    warm = warm_kernel.wanted()
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(_write_kernelspec(job.root, warm)), env.get("JUPYTER_PATH")]))
    env["JUPYTER_RUNTIME_DIR"] = str(job.run)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.pop(judge.MODE_VARIABLE, None)
    env.pop(holdout.INPUTS_VARIABLE, None)
    read_only: list[str] = []
    if job.references is not None:  # the kernel's hidden tests publish records; the grader judges them
        env[judge.MODE_VARIABLE] = "record"
        if judge.uses_holdout(ref.assignment):  # its inputs only: the labels stay with the judge
            inputs = holdout.export_inputs(job.root / "holdout_inputs.npy", course_root)
            inputs.chmod(0o444)
            env[holdout.INPUTS_VARIABLE] = str(inputs)
            read_only.append(str(inputs))
    sandbox_spec = {"isolate": isolate, "report": str(job.root / "isolation.json"), "course": str(course_root)}
    if isolate:
        sandbox_spec.update(
            uid=job.uid,
            run=str(job.run),
            view=str(job.root / "view"),  # mount points, used only inside the container's mount namespace
            scratch=str(job.root / "scratch"),
            limits=sandbox.kernel_limits(),
            checkout=sandbox.grader_checkout(),
            withheld=job.withheld or [],
            read_only=read_only,
            keep_env=sandbox.kernel_environment_names(),
        )
    else:
        sandbox_spec["reason"] = sandbox.unavailable_reason()
    env["REGCOURSE_SANDBOX"] = json.dumps(sandbox_spec)
    return {
        "argv": [ref.assignment, "--student", ref.student, "--force"],
        "private_dir": str(job.root),
        "cwd": str(course_root),
        "env": env,
        # 077: the notebook nbgrader writes (hidden tests restored) before running it stays root's
        "umask": 0o077 if isolate else _PROCESS_UMASK,
        "log": str(job.root / "log.txt"),
        "events": str(job.events),
        "skip": str(job.root / "skip.json"),
        "result": str(job.root / "result.json"),
        "assignment": ref.assignment,
        "student": ref.student,
        "cell_timeout": int(limits.cell_timeout_s),
        "notebook_timeout": float(limits.notebook_timeout_s),
        "output_bytes": int(limits.output_bytes),
        "iopub_timeout": IOPUB_TIMEOUT_S,
        "kernel_name": KERNEL_NAME,
        "sandbox_uid": job.uid if isolate else -1,
        "transport": "ipc" if isolate else None,
        "runtime_dir": env["JUPYTER_RUNTIME_DIR"],
        "references": str(job.references) if job.references is not None else "",
        "warm": warm,
    }


def _read_json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def _attempt(course_root: Path, ref: SubmissionRef, limits: Limits, job: _Job, isolate: bool) -> _Attempt:
    for name in ("events.jsonl", "result.json", "isolation.json", "log.txt"):
        (job.root / name).unlink(missing_ok=True)
    job.attempts += 1
    job.run = job.root / f"run-{job.attempts}"  # fresh: nothing of an earlier attempt is reused
    job.run.mkdir(mode=0o700)
    spec = _spec(course_root, ref, limits, job, isolate)
    deadline = time.monotonic() + limits.notebook_timeout_s + WALL_GRACE_S
    child = forkserver.server().submit(spec)
    killed, kernels = _watch(child.pid, limits, deadline, child.done)
    child.done.wait()
    _kill(p for p in kernels if p.is_running())
    events = _read_json_lines(job.events)
    if isolate:  # every container of this uid ends before anything else runs under it
        sandbox.kill_user(job.uid)
        for event in events:
            if event["kind"] == "folders":
                sandbox.reclaim(Path(event["autograded"]), job.uid)
    shutil.rmtree(job.run, ignore_errors=True)
    result_path = job.root / "result.json"
    isolation_path = job.root / "isolation.json"
    return _Attempt(
        status=child.status,
        events=events,
        result=json.loads(result_path.read_text()) if result_path.exists() else {},
        killed=killed,
        isolation=json.loads(isolation_path.read_text()) if isolation_path.exists() else {},
        log=(job.root / "log.txt").read_text(errors="replace") if (job.root / "log.txt").exists() else "",
    )


# -- reading an attempt -------------------------------------------------------------------

def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _cell_name(event: dict) -> str:
    return f"cell '{event['cell']}'" if event.get("cell") else f"cell {event['index'] + 1}"


def _culprit(attempt: _Attempt, limits: Limits) -> tuple[int, str] | None:
    """The cell that was running when this attempt failed, and why (None: no cell to blame)."""
    running = [e for e in attempt.events if e["kind"] == "cell"]
    if not running:
        return None
    index = running[-1]["index"]
    if attempt.killed == "memory":
        return index, f"it used more than {_size(limits.memory_bytes)} of memory"
    if attempt.killed == "wall":
        return index, f"the notebook ran past its {limits.notebook_timeout_s:g} s limit"
    kinds = {e["kind"] for e in attempt.events if e.get("index") == index}
    if "unresponsive" in kinds:
        return index, f"it ran past the {limits.cell_timeout_s:g} s limit and did not stop when interrupted"
    if "died" in kinds:
        return index, "the kernel died while it ran (the process exited or crashed)"
    return None


def _failure_reason(attempt: _Attempt) -> str:
    """The last error nbgrader logged, for a person: what went wrong with this submission."""
    if attempt.status == forkserver.LOST:
        return "the grading process was lost (the fork server died)"
    lines = [line.strip() for line in attempt.log.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b.*:", line)]
    if errors:
        return errors[-1][:300]
    logged = [line for line in lines if "| ERROR]" in line]
    if logged:
        return logged[-1].split("]", 1)[1].strip()[:300]
    last = f"; its log ends: {lines[-1][:300]}" if lines else "; its log is empty"
    return f"nbgrader exited with status {attempt.status}{last}"


def _interpret(outcome: Outcome, events: list[dict], limits: Limits) -> bool:
    """Turn an attempt's events into flags (instructor) and messages (feedback); True: a limit was hit."""
    limit_hit = False
    for event in events:
        kind, name = event["kind"], None
        if "index" in event:
            name = _cell_name(event)
        if kind == "stopped":
            limit_hit = True
            outcome.messages.append(f"The grader stopped {name}: {event['reason']}. It scores zero; the rest was graded.")
        elif kind == "deadline":
            limit_hit = True
            if event.get("skipped"):
                outcome.messages.append(f"{name.capitalize()} did not run: {event['reason']}. It scores zero.")
            else:
                outcome.messages.append(
                    f"{name.capitalize()} was interrupted: the notebook reached its {limits.notebook_timeout_s:g} s limit."
                )
        elif kind == "timeout":
            limit_hit = True
            outcome.messages.append(f"{name.capitalize()} was interrupted after the {limits.cell_timeout_s:g} s limit per cell.")
        elif kind == "truncated":
            limit_hit = True
            outcome.messages.append(
                f"{name.capitalize()} printed more than {_size(limits.output_bytes)}; the rest of its output was dropped."
            )
        elif kind == "reads":
            for path in event["paths"]:
                outcome.flags.append(f"tried to read {path}: course files are not for student code")
        elif kind == "judged":
            outcome.judge_seconds += event.get("seconds", 0.0)
        elif kind == "judge-error":
            outcome.flags.append(f"the judge failed on {name} ({event['error']}); scored zero: review it")
        elif kind == "forged-record":
            outcome.flags.append(f"tampering: the hidden tests' record in {name} was forged or duplicated (scored zero)")
        elif kind == "injected-output":
            outcome.flags.append(f"tampering: output was injected into test {name} (ignored)")
        elif kind == "silenced":
            outcome.flags.append(f"tampering? the hidden tests of {name} vanished without an error (scored zero)")
        elif kind == "visible-subverted":
            outcome.flags.append(
                f"tampering: the visible tests of {name} passed in the kernel, but the judge finds those cases wrong"
            )
        elif kind == "record-too-large":
            outcome.messages.append(f"The tests of {name} recorded more than the grader accepts; the cell scores zero.")
        elif kind == "errors-suppressed":
            outcome.flags.append(f"tampering: the kernel kept the error messages of {name} from being sent (it still failed)")
        elif kind == "reads-unknown":
            outcome.flags.append(f"the kernel did not say which course files its code tried to read (after {name})")
        elif kind == "edited":
            outcome.flags.append(f"edited test cell '{event['cell']}' (nbgrader restored the original)")
            outcome.messages.append(f"Test cell '{event['cell']}' had been changed; the original was graded.")
        elif kind == "deleted":
            what = "test cell" if event.get("test", True) else "locked cell"
            outcome.flags.append(f"deleted {what} '{event['cell']}' (the grader put it back)")
            outcome.messages.append(f"{what.capitalize()} '{event['cell']}' was missing; the grader put it back.")
        elif kind == "reordered":
            outcome.flags.append(f"cells moved out of order: {', '.join(event['cells'])} (the grader restored the order)")
            outcome.messages.append("Some of the assignment's cells were out of order; they were graded in the original order.")
        elif kind == "links":
            for path in event["paths"]:
                outcome.flags.append(f"the submission contains a link or special file, ignored: {path}")
        elif kind == "kernel-start":
            outcome.kernel = {"warm": bool(event.get("warm"))}
            if event.get("reason"):
                outcome.kernel["reason"] = str(event["reason"])
        elif kind == "shadow":
            outcome.flags.append(
                f"the submission contains {event['file']}, named like the module {event['module']} the tests use"
            )
        elif kind == "changed":
            outcome.flags.append(f"cell '{event['cell']}': {event['attr']} changed from {event['old']} to {event['new']} (restored)")
    return limit_hit


# -- the judge's reference ------------------------------------------------------------------

#: One lock per (course, assignment): a reference is computed once, and different assignments' side by side.
_references_locks: dict[tuple[Path, str], threading.Lock] = {}
_references_locks_guard = threading.Lock()


def _references_lock(course_root: Path, assignment: str) -> threading.Lock:
    with _references_locks_guard:
        return _references_locks.setdefault((Path(course_root), assignment), threading.Lock())


def reference_records(course_root: Path, assignment: str) -> Path:
    """The file of the judge's reference records for ``assignment``.

    Computed when absent in a fresh process (nothing of the grader's state
    reaches the reference; see ``judge.main``), then cached per instructor
    notebook and checks (``judge.reference_path``) under the course root,
    which the sandbox hides from kernels. Raises ``CourseError`` when the
    reference solution cannot be probed: that is the course's fault, and
    grading every student zero for it would be wrong. Raises it too for an
    assignment without checks: its hidden tests would decide grades inside
    the student's own process, which this grader never lets them do.
    """
    if not judge.is_judged(assignment):
        raise CourseError(
            f"{assignment} has no checks module (regcourse.grading.checks.{assignment}): its hidden tests would run "
            "in the student's kernel, where the student's code can forge them. Port them to a checks module "
            "(see the README's judge section), or grade this assignment with stock nbgrader."
        )
    with _references_lock(course_root, assignment):
        try:
            return judge.fresh_reference_file(assignment, course_root)
        except judge.ReferenceUnavailable as error:
            raise CourseError(str(error)) from None


# -- grade_one --------------------------------------------------------------------------------

def _withheld(course_root: Path, assignment: str) -> list[str]:
    """Files the course keeps beside the assignment's notebooks in its source folder but did not release.

    ``nbgrader autograde`` copies every file of the source folder into the
    kernel's folder; the sandbox leaves these out of the kernel's view (an
    answer key kept next to the notebooks is not for student code).
    """
    from nbgrader.utils import find_all_files

    from .course import Course

    try:
        course = Course.open(course_root)
        ignore = list(course.coursedir.ignore) + ["*.ipynb"]
        folders = [course.folder(step, ".", assignment) for step in ("source_directory", "release_directory")]
    except Exception:  # noqa: BLE001 (not a readable course: nbgrader reports that itself)
        return []
    source, release = (
        {os.path.relpath(f, folder) for f in find_all_files(str(folder), ignore)} if folder.is_dir() else set()
        for folder in folders
    )
    return sorted(source - release)


def _refuse(ref: SubmissionRef, outcome: Outcome) -> bool:
    """Ids nbgrader would misread (``--student 'a*'`` grades every a...): refused before any run."""
    for what, value in (("student", ref.student), ("assignment", ref.assignment)):
        if not value or _UNSAFE_ID.search(value):
            outcome.messages.append(
                f"The {what} id {value!r} cannot be graded: nbgrader reads * ? [ ] and slashes as patterns or folders."
            )
            return True
    return False


#: SQLite can refuse a lock upgrade at once (no busy wait) when two graders
#: collide in a transaction; such an attempt is repeated, up to this often.
GRADEBOOK_BUSY_RETRIES = 5


def grade_one(course_root: Path, ref: SubmissionRef, limits: Limits = Limits()) -> Outcome:
    """Autograde one submission (already under ``submitted/<student>/<assignment>/``); never raises for it.

    Returns the :class:`Outcome`: nbgrader's scores read back from the
    gradebook, what was flagged for review, and the lines for the student's
    feedback. Picklable (a module-level function of picklable arguments), so
    process pools and Dask can run it.
    """
    started = time.monotonic()
    course_root = Path(course_root).resolve()
    outcome = Outcome(ref.student, ref.assignment, Status.FAILED_TO_RUN)
    isolate = sandbox.wanted()
    job = _Job(Path(tempfile.mkdtemp(prefix="regcourse-job-")))
    try:
        if _refuse(ref, outcome):
            return outcome
        job.references = reference_records(course_root, ref.assignment)
        if isolate:
            job.uid = sandbox.kernel_uid()
            job.withheld = _withheld(course_root, ref.assignment)
            for name in ("view", "scratch"):
                (job.root / name).mkdir(mode=0o700)
        skip: dict[int, str] = {}
        busy_retries = GRADEBOOK_BUSY_RETRIES
        attempts = 0
        while attempts < MAX_ATTEMPTS:
            (job.root / "skip.json").write_text(json.dumps(skip))
            attempt = _attempt(course_root, ref, limits, job, isolate)
            if attempt.status == 0 or attempt.killed == "cancelled" or attempt.isolation.get("failed"):
                break
            if busy_retries and "database is locked" in _failure_reason(attempt):
                # the grader's own contention, never the student's fault: grade again
                busy_retries -= 1
                time.sleep(0.2 + random.random())
                continue
            attempts += 1
            culprit = _culprit(attempt, limits)
            if culprit is None or culprit[0] in skip:
                break
            skip[culprit[0]] = culprit[1]
        _finish(outcome, attempt, limits)
        return outcome
    finally:
        outcome.seconds = time.monotonic() - started
        if os.environ.get("REGCOURSE_KEEP_JOBS"):  # for debugging the grader itself
            print(f"grading folder of {ref.student}: {job.root}", file=sys.stderr)
        else:
            shutil.rmtree(job.root, ignore_errors=True)


def _finish(outcome: Outcome, attempt: _Attempt, limits: Limits) -> None:
    """Fill ``outcome`` from the last attempt: scores, status, flags and messages."""
    result = attempt.result
    outcome.isolation = {k: attempt.isolation.get(k, False) for k in ("user", "network", "files")}
    if attempt.isolation.get("reason"):
        outcome.isolation["reason"] = attempt.isolation["reason"]
    outcome.max_score = float(result.get("max_score", 0.0))
    if attempt.isolation.get("failed"):  # fail closed: the notebook did not run, nothing of it is scored
        outcome.isolation["failed"] = True
        outcome.status = Status.FAILED_TO_RUN
        outcome.flags.append(
            f"sandbox: the kernel's isolation could not be set up, so the notebook did not run "
            f"({attempt.isolation.get('reason', 'no reason given')}); grade it again once the grader is fixed"
        )
        outcome.messages.append(
            "The grader could not start your notebook in its sandbox, so it did not run and scores zero "
            "for now. This is a problem on the grader's side; your instructor has been told."
        )
        return
    no_folder = [e for e in attempt.events if e["kind"] == "no-folder"]
    if no_folder:
        outcome.status = Status.FAILED_TO_RUN
        outcome.messages.append(f"No submission folder {no_folder[0]['folder']}.")
        return
    if attempt.status != 0:
        _interpret(outcome, [e for e in attempt.events if e["kind"] in ("links", "shadow")], limits)
        outcome.status = Status.FAILED_TO_RUN
        culprit = _culprit(attempt, limits)
        if culprit is not None:
            outcome.messages.append(
                f"Grading stopped again and again (last: cell {culprit[0] + 1}, {culprit[1]}); it scores zero."
            )
        else:
            outcome.messages.append(f"nbgrader could not grade this submission: {_failure_reason(attempt)}")
            expected, found = result.get("notebooks", []), result.get("found", [])
            if expected and not set(expected) & set(found):
                outcome.messages.append(
                    f"Expected {', '.join(n + '.ipynb' for n in expected)}; found "
                    f"{', '.join(n + '.ipynb' for n in found) or 'no notebook'}."
                )
        return
    outcome.status = Status.GRADED
    outcome.score = float(result.get("score", 0.0))
    outcome.test_results = {k: (float(s), float(m)) for k, (s, m) in result.get("tests", {}).items()}
    for name in result.get("missing", []):
        outcome.messages.append(f"No notebook {name}.ipynb was submitted: it scores zero.")
    if result.get("manual"):
        outcome.flags.append(f"needs manual grading: {', '.join(result['manual'])}")
    if _interpret(outcome, attempt.events, limits):
        outcome.status = Status.LIMIT_EXCEEDED


# -- grade_many -------------------------------------------------------------------------------

def default_workers() -> int:
    """One worker per core this process may use (a container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _prepare_gradebook(course_root: Path) -> None:
    """WAL mode for an SQLite gradebook, set before any grader opens it (see autograde_job.use_wal)."""
    from .autograde_job import use_wal
    from .course import Course

    try:
        db_url = Course.open(course_root).db_url
    except Exception:  # not a readable course: each grading reports that itself
        return
    use_wal(db_url)


def _compute_references(course_root: Path, assignments: list[str], workers: int) -> None:
    """Every assignment's reference records, before anything is graded: a course error stops the batch here.

    Each is its own process, mostly single-threaded; a batch of several
    assignments computes them side by side, ``workers`` at a time.
    """
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(assignments))), thread_name_prefix="reference") as pool:
        for future in [pool.submit(reference_records, course_root, a) for a in assignments]:
            future.result()  # the first course error, in the assignments' order


def grade_many(
    course_root: Path,
    refs: Iterable[SubmissionRef],
    limits: Limits = Limits(),
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_result: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Grade every submission in ``refs``; outcomes in the order of ``refs``.

    ``workers`` local gradings at a time (default: the number of cores), or,
    with ``scheduler`` (a ``dask.distributed`` address such as
    ``tcp://host:8786``), as tasks on that cluster, whose workers must see
    ``course_root`` at the same path. ``on_result`` is called in this thread
    as each outcome arrives (for a progress display).
    """
    refs = list(refs)
    twice = sorted({f"{r.student}/{r.assignment}" for r in refs if refs.count(r) > 1})
    if twice:  # two gradings of one submission at once would race on its folder and rows
        raise ValueError(f"each submission may be graded once per batch; listed more than once: {', '.join(twice)}")
    course_root = Path(course_root).resolve()
    _prepare_gradebook(course_root)
    _compute_references(course_root, sorted({r.assignment for r in refs}), workers or default_workers())
    outcomes: list[Outcome | None] = [None] * len(refs)
    if scheduler:
        from dask.distributed import Client, as_completed as dask_completed

        with Client(scheduler) as client:
            futures = {
                client.submit(grade_one, course_root, ref, limits, key=f"grade-{ref.assignment}-{ref.student}-{i}", pure=False): i
                for i, ref in enumerate(refs)
            }
            try:
                for future in dask_completed(futures):
                    i = futures[future]
                    outcomes[i] = _collect(refs[i], future, on_result)
            except BaseException:
                client.cancel(list(futures))
                raise
        return outcomes  # type: ignore[return-value]
    _cancel.clear()
    pool = ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="grader")
    try:
        futures = {pool.submit(grade_one, course_root, ref, limits): i for i, ref in enumerate(refs)}
        for future in as_completed(futures):
            i = futures[future]
            outcomes[i] = _collect(refs[i], future, on_result)
    except BaseException:  # Ctrl-C: stop what runs (the watchdogs kill it), start nothing new
        _cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return outcomes  # type: ignore[return-value]


def _collect(ref: SubmissionRef, future, on_result: Callable[[Outcome], None] | None) -> Outcome:
    """The future's outcome; a grader error on one submission becomes that submission's outcome."""
    try:
        outcome = future.result()
    except Exception as error:  # the grader failed here (e.g. a Dask worker killed by the OS): report, go on
        outcome = Outcome(ref.student, ref.assignment, Status.FAILED_TO_RUN)
        outcome.flags.append(f"grader error: {type(error).__name__}: {error}")
        outcome.messages.append("The grader itself failed on this submission; it will be graded again.")
    if on_result is not None:
        on_result(outcome)
    return outcome
