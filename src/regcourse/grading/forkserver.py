"""A warm process that forks one fresh ``nbgrader autograde`` per submission.

Importing nbgrader (nbconvert, nbformat's schema validation, SQLAlchemy, ...)
costs about 2.5 s of CPU, more than grading a small notebook. Stock nbgrader
pays it once per run because it grades everyone in one process, where one
dead kernel or hung cell can take the whole run down. Here the imports are
paid once per grading process: this server imports them, does once the
first-use work every autograde would repeat (``autograde_job.warm_up``),
freezes what it holds out of the garbage collector's reach, then ``fork()`` s a
child per submission that runs stock nbgrader from a clean state, in its own
session (so the engine can kill it and everything it started) and with its
own environment, working folder and umask. The server also imports
TensorFlow and Keras for the kernels: each autograde plants a seed that
becomes its kernel (``warm_kernel``).

The server is started with ``subprocess`` rather than ``multiprocessing`` so
that it also works inside daemonic processes such as Dask workers. Protocol:
JSON lines; the client sends a job, the server answers ``{"id", "pid"}`` at
once and ``{"id", "status"}`` when the child exits (the child's exit code,
or minus the signal that killed it).
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

from regcourse.grading import warm_kernel

#: The server's poll interval for finished children, in seconds (latency of an exit report).
_REAP_INTERVAL_S = 0.02
#: Reported when the server died before it could report a job's exit.
LOST = -1000


# -- server side --------------------------------------------------------------------------

def _send(message: dict) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _child(spec: dict) -> None:
    warm_kernel.exit_with(lambda: _autograde(spec), failed=70)  # leaves without running atexit handlers


def _autograde(spec: dict) -> int:
    os.setsid()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.umask(spec["umask"])
    os.chdir(spec["cwd"])
    os.environ.clear()
    os.environ.update(spec["env"])
    from regcourse.grading import autograde_job

    if spec.get("warm"):
        warm_kernel.plant(spec["events"])  # now, while this process has a single thread
    return autograde_job.run(spec)


def serve(private: str) -> None:
    import gc

    from regcourse.grading import autograde_job

    autograde_job.warm_up()
    warm_kernel.prepare(private)  # TensorFlow and Keras, for the kernels (see warm_kernel)
    # Objects that exist now live as long as the server: leave them out of the
    # children's collections, which would otherwise write to (and so copy)
    # every page they share with the server.
    gc.freeze()
    if threading.active_count() != 1:  # fork() from a threaded process can deadlock the child
        print("forkserver: imports started threads; forking anyway", file=sys.stderr)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client's Ctrl-C is for the client
    _send({"ready": os.getpid()})
    jobs: dict[int, object] = {}
    buffer = b""
    while True:
        readable, _, _ = select.select([0], [], [], _REAP_INTERVAL_S)
        if readable:
            data = os.read(0, 1 << 16)
            if not data:
                break
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                spec = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(spec)
                jobs[pid] = spec["id"]
                _send({"id": spec["id"], "pid": pid})
        while jobs:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            _send({"id": jobs.pop(pid), "status": os.waitstatus_to_exitcode(status)})


# -- client side --------------------------------------------------------------------------

class Job:
    """A forked autograde: its pid at once, its exit status when done."""

    def __init__(self, job_id: int):
        self.id = job_id
        self.pid: int | None = None
        self.status: int | None = None
        self.started = threading.Event()
        self.done = threading.Event()


class ForkServer:
    """Client of one warm server process; safe to share between threads."""

    def __init__(self) -> None:
        env = dict(os.environ)
        self.environment = warm_kernel.import_environment(env)  # what its warm kernels were imported with
        # The server's own folder: made and removed here, since an idle server is killed, not asked to exit.
        self.folder = tempfile.mkdtemp(prefix="regcourse-warm-")
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "regcourse.grading.forkserver", self.folder],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/", env=env,
        )
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            shutil.rmtree(self.folder, ignore_errors=True)
            raise RuntimeError(
                "the grading fork server did not start: run "
                f"`{sys.executable} -P -m regcourse.grading.forkserver` to see its error"
            )
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._reader = threading.Thread(target=self._read, name="forkserver-reader", daemon=True)
        self._reader.start()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def submit(self, spec: dict) -> Job:
        """Start one autograde; returns once the child is forked (its pid known)."""
        with self._lock:
            job = Job(next(self._ids))
            self._jobs[job.id] = job
            self._proc.stdin.write((json.dumps({**spec, "id": job.id}) + "\n").encode())
            self._proc.stdin.flush()
        job.started.wait()
        return job

    def _read(self) -> None:
        for line in self._proc.stdout:
            message = json.loads(line)
            job = self._jobs.get(message.get("id"))
            if job is None:
                continue
            if "pid" in message:
                job.pid = message["pid"]
                job.started.set()
            else:
                job.status = message["status"]
                self._jobs.pop(job.id, None)
                job.done.set()
        for job in list(self._jobs.values()):  # the server died: nobody will report these
            job.status = LOST
            job.started.set()
            job.done.set()

    def close(self) -> None:
        """Stop the server (at exit): at once when idle; running children finish on their own."""
        if self._proc.poll() is None:
            self._proc.stdin.close()
            if not self._jobs:  # an idle server only holds imports: no need to wait for its teardown
                self._proc.kill()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_server: ForkServer | None = None
_server_lock = threading.Lock()


def server() -> ForkServer:
    """This process's fork server, started on first use (and again if it died)."""
    global _server
    with _server_lock:
        if _server is not None and _server.environment != warm_kernel.import_environment(os.environ):
            _server.close()  # its warm kernels would not match this environment: a new server for it
            _server = None
        if _server is None or not _server.alive():
            _server = ForkServer()
            atexit.register(_server.close)
        return _server


if __name__ == "__main__":
    # The folder its client made (run by hand, without one: a new one). Its client removes it; so does the
    # server when it leaves on its own (its client gone).
    folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="regcourse-warm-")
    atexit.register(shutil.rmtree, folder, True)
    serve(folder)
