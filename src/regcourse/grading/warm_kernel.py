"""Warm kernel starts: TensorFlow is imported once per grading process, every kernel is a fresh fork.

A kernel that imports TensorFlow and Keras spends about 4.75 s of CPU on it,
half of what grading a light submission costs. The fork server
(``forkserver``) imports them once (:func:`prepare`), without running a
single TensorFlow operation. Each autograde it forks then forks a *seed*
(:func:`plant`) before nbgrader starts any thread; when nbgrader starts the
kernel, the engine's kernel provisioner (:class:`WarmProvisioner`) hands the
seed the kernel's command, environment and folder, and the seed becomes the
kernel launcher a cold start would have exec'd (``kernel_launcher``): the
same code from there on, sandbox included. Nothing is shared between
submissions: each seed is a new process, gone with its autograde; its
container, home and seeds are its own.

What the imports leave behind, and why forking after them is safe (checked
on TensorFlow 2.20, Keras 3, NumPy 2):

- *Threads.* TensorFlow starts none at import: its Eigen intra-op and
  inter-op pools (and oneDNN's, which the course turns off with
  ``TF_ENABLE_ONEDNN_OPTS=0``) are made with the eager context, at the first
  operation, and :func:`prepare` checks that no context exists. The two
  threads that do exist are OpenBLAS thread servers (NumPy's, and SciPy's,
  which Keras imports); OpenBLAS stops them in a ``pthread_atfork`` handler
  and starts them again on next use, so a fork never copies a pool mid-task.
- *Random state.* Python's ``random`` reseeds itself in every forked child.
  NumPy's legacy global generator does not: :func:`settle` reseeds it from
  the operating system in each kernel, as a cold import would have seeded
  it. TensorFlow's global generator and Keras' global seed generator are
  made on first use, never in the server. The hash seed is fixed at start-up:
  a warm kernel is used only when ``PYTHONHASHSEED`` is a fixed number (the
  course sets 0), otherwise every kernel would share the server's.
- *Configuration read at import.* TensorFlow sets a few variables (``KMP_*``,
  ``HDF5_PLUGIN_PATH``, ...): :func:`settle` sets them in each kernel. It reads ``TF_*`` variables, Keras
  ``KERAS_*`` and its ``keras.json``, the BLAS libraries their thread
  variables, Python its ``PYTHON*`` and locale variables. A seed refuses a
  kernel whose environment differs from the server's in any of these
  (:func:`mismatch`), and the kernel then starts cold, with a line in the
  report. Keras' home folder is recomputed in the kernel (:func:`settle`)
  from the kernel's own ``HOME`` (the ``keras.json`` a cold import writes
  there is not written: Keras reads it at import only). Keras imports Matplotlib's ``pyplot``: the server
  imports it with the inline backend ipykernel sets in every kernel, and with
  a configuration folder of its own, so that no matplotlibrc of the grader's
  is read (a sandboxed cold kernel has a fresh ``HOME``); a submitted
  ``matplotlibrc`` means a cold start.

A submitted ``keras.py`` (or any module or package named like one the server
imported) would shadow that module in a cold kernel, as in Jupyter: such a
kernel starts cold (:func:`shadowing`). Anything unexpected (an import that
fails, a platform without ``fork``, a seed that died) means a cold start,
never a failed submission.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from jupyter_client.provisioning import LocalProvisioner

#: The provisioner's name in the engine's kernelspec and in the package's entry points.
PROVISIONER_NAME = "regcourse-warm"
#: What the server imports for its kernels (what a graded notebook and the kernel itself import). The
#: course's own modules are among them: ``regcourse.data`` imports scikit-learn's ``model_selection``,
#: 1.6 s of CPU that every notebook loading the digits would otherwise pay again.
IMPORTS = ("numpy", "scipy", "tensorflow", "keras", "IPython", "ipykernel.kernelapp", "ipykernel.ipkernel",
           "regcourse.checking", "regcourse.data", "regcourse.models", "regcourse.seeding", "regcourse.synthetic",
           "regcourse.grading.judge", "regcourse.grading.kernel_launcher", "regcourse.grading.kernel_reads",
           "regcourse.grading.sandbox")
#: Variables read while those modules import: a kernel whose values differ cannot be a fork of the server.
IMPORT_PREFIXES = ("PYTHON", "TF_", "KERAS_", "XLA_", "CUDA_", "OMP_", "MKL_", "OPENBLAS_", "ONEDNN_", "DNNL_", "NPY_",
                   "GOTO_", "NUMEXPR_", "SKLEARN_", "JOBLIB_", "LOKY_", "LC_")
IMPORT_NAMES = ("LANG", "LANGUAGE", "TZ", "MPLBACKEND", "MPLCONFIGDIR", "MATPLOTLIBRC")
#: Recomputed per kernel by :func:`settle` rather than compared.
PER_KERNEL = ("KERAS_HOME",)
#: ipykernel's default Matplotlib backend, set in every kernel before any cell runs (``init_gui_pylab``).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
#: Files in the notebook's folder that a cold kernel's imports would read (Matplotlib reads ./matplotlibrc).
READ_AT_IMPORT = ("matplotlibrc",)
#: Set ``REGCOURSE_COLD_KERNELS=1`` to start every kernel cold (to measure what the warm start saves).
COLD_VARIABLE = "REGCOURSE_COLD_KERNELS"
#: How long a provisioner waits for its seed's answer.
SEED_TIMEOUT_S = 30.0

#: What Python sets at start-up (the rest is the default): ``KeyboardInterrupt`` on SIGINT, SIGPIPE and
#: SIGXFSZ ignored (write errors instead).
STARTUP_SIGNALS = {signal.SIGINT: signal.default_int_handler, signal.SIGPIPE: signal.SIG_IGN,
                   signal.SIGXFSZ: signal.SIG_IGN}

_server: dict = {}  # in the fork server: {"environment": {...}} once prepared, or {"reason": why not}
_seed: dict = {}  # in an autograde: {"pid", "socket", "events"} while its seed waits


def wanted() -> bool:
    return os.environ.get(COLD_VARIABLE, "") in ("", "0") and hasattr(os, "fork") and sys.platform.startswith("linux")


def import_environment(env) -> dict[str, str]:
    """The variables of ``env`` that the imports read (see the module's notes)."""
    return {name: value for name, value in env.items()
            if (name.startswith(IMPORT_PREFIXES) or name in IMPORT_NAMES) and name not in PER_KERNEL}


def mismatch(env: dict[str, str]) -> str | None:
    """Why a kernel with environment ``env`` cannot be a fork of this server (None: it can)."""
    if "environment" not in _server:
        return _server.get("reason", "the fork server did not prepare warm kernels")
    wanted_env, have = import_environment(env), _server["environment"]
    differ = sorted(n for n in set(wanted_env) | set(have) if wanted_env.get(n) != have.get(n))
    if differ:
        return f"the kernel's environment differs from the fork server's in {', '.join(differ)}"
    clash = sorted(k for k, v in _server.get("set_by_imports", {}).items() if env.get(k, v) != v)
    if clash:
        return f"the kernel's environment sets {', '.join(clash)}, which the imports set otherwise"
    if not env.get("PYTHONHASHSEED", "").isdigit():
        return "PYTHONHASHSEED is not a fixed number: a forked kernel would share the server's hash seed"
    return None


def shadowing(folder: str) -> str | None:
    """A submitted module named like one the server imported: a cold kernel would import the student's.

    The notebook's folder comes first on the kernel's path, so a ``keras.py``
    there is what ``import keras`` finds in a cold kernel; a warm one has
    Keras already. Such a kernel starts cold (the grader flags the file too).
    """
    try:
        entries = os.listdir(folder)
    except OSError:
        return None
    loaded = {name.partition(".")[0] for name in list(sys.modules)}
    names = {entry[:-3] if entry.endswith(".py") else entry for entry in entries
             if entry.endswith(".py") or os.path.isdir(os.path.join(folder, entry))}
    found = sorted(names & loaded)
    if found:
        return f"the submission holds {', '.join(found)}, named like modules a warm kernel has already imported"
    read = sorted(set(entries) & set(READ_AT_IMPORT))
    if read:
        return f"the submission holds {', '.join(read)}, which a cold kernel reads when it imports Matplotlib"
    return None


# -- in the fork server --------------------------------------------------------------------------

def prepare(private: str) -> None:
    """Import what kernels import, once, in the fork server; remember the environment they saw.

    ``private`` is the server's own folder (Keras' and Matplotlib's homes while they import), made and
    removed by the client, which outlives a server it kills.
    """
    if not wanted():
        _server["reason"] = f"turned off ({COLD_VARIABLE} is set)" if os.environ.get(COLD_VARIABLE) else \
            "needs fork() on Linux"
        return
    before = dict(os.environ)
    # What a cold kernel in its sandbox imports with: a fresh HOME (so Keras' and Matplotlib's defaults,
    # not the grader's keras.json or matplotlibrc), and the inline Matplotlib backend that ipykernel sets in
    # every kernel before any notebook code (Keras imports pyplot).
    overrides = {"KERAS_HOME": os.path.join(private, "keras")}
    if not os.environ.get("MPLCONFIGDIR"):
        overrides["MPLCONFIGDIR"] = os.path.join(private, "matplotlib")
    if not os.environ.get("MPLBACKEND"):
        overrides["MPLBACKEND"] = INLINE_BACKEND
    # Only what a sandboxed kernel keeps of the grader's environment, so that what the imports set (below)
    # is seen even where the grader's environment has it already (a grader that imported TensorFlow itself).
    from regcourse.grading.sandbox import kept_environment

    imported = import_environment(before)
    start = {**kept_environment(before), **imported, **overrides}
    if "HOME" in before:
        start["HOME"] = before["HOME"]
    os.environ.clear()
    os.environ.update(start)
    try:
        import importlib

        for name in IMPORTS:
            importlib.import_module(name)
        from tensorflow.python.eager import context

        if context.context_safe() is not None:
            raise RuntimeError("an import ran a TensorFlow operation (its thread pools exist)")
        _server["environment"] = imported
        # TensorFlow sets variables of its own at import (KMP_*, HDF5_PLUGIN_PATH, ...): a cold kernel has them
        _server["set_by_imports"] = {k: v for k, v in os.environ.items() if k not in overrides and start.get(k) != v}
    except Exception as error:  # noqa: BLE001 (any failure: cold kernels, with the reason in the report)
        _server.clear()
        _server["reason"] = f"the fork server could not import the kernels' modules: {type(error).__name__}: {error}"
    finally:
        os.environ.clear()
        os.environ.update(before)


# -- in an autograde: the seed ----------------------------------------------------------------------

def plant(events: str = "") -> None:
    """Fork this autograde's seed, while the process has one thread; the seed waits for its kernel."""
    _seed.clear()
    if "environment" not in _server:
        _seed["reason"] = _server.get("reason", "the fork server did not prepare warm kernels")
        _seed["events"] = events
        return
    sys.stdout.flush()
    sys.stderr.flush()
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        _wait_as_seed(theirs)  # never returns
    theirs.close()
    _seed.update(pid=pid, socket=ours, events=events)


def exit_with(body, failed: int = 1) -> None:
    """In a forked process: run ``body`` (its return value is the exit status), print what it raised (status
    ``failed``), flush, and leave without the parent's exit handlers."""
    code = failed
    try:
        code = body()
    except BaseException:  # noqa: BLE001 (whatever it is, the parent sees the exit status)
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _read_line(channel: socket.socket) -> bytes | None:
    """One JSON line of the seed's protocol (a request, or its answer); None when the other side closed first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = channel.recv(1 << 20)
        if not chunk:
            return None
        data += chunk
    return data


def _wait_as_seed(channel: socket.socket) -> None:
    exit_with(lambda: _seed_process(channel))


def _seed_process(channel: socket.socket) -> int:
    """The seed: wait for the kernel's request; decline it, or become its launcher."""
    from regcourse.grading.sandbox import PR_SET_PDEATHSIG, _prctl

    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the autograde is gone: so is its unused seed
    keep = channel.fileno()
    os.closerange(3, keep)  # what the autograde had open is not the kernel's (as close_fds=True)
    os.closerange(keep + 1, 1 << 16)
    data = _read_line(channel)
    if data is None:
        return 0  # no kernel was wanted
    request = json.loads(data)
    reason = mismatch(request["env"]) or shadowing(request["cwd"])
    if reason:
        channel.sendall((json.dumps({"declined": reason}) + "\n").encode())
        return 0
    _become_launcher(request)
    channel.sendall((json.dumps({"pid": os.getpid()}) + "\n").encode())
    channel.close()
    return _run_launcher()


def _become_launcher(request: dict) -> None:
    """What ``Popen(cmd, env=..., cwd=..., start_new_session=True, stdin=PIPE)`` gives a cold launcher."""
    os.setsid()
    for signum in range(1, signal.NSIG):  # the signal dispositions of a new Python process
        try:
            signal.signal(signum, STARTUP_SIGNALS.get(signum, signal.SIG_DFL))
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    read, write = os.pipe()  # stdin: a pipe whose writer is closed, as jupyter_client leaves it
    os.close(write)
    os.dup2(read, 0)
    os.close(read)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    from regcourse.grading import kernel_launcher

    sys.argv = [kernel_launcher.__file__, *request["argv"][4:]]
    _seed["launcher"] = True  # for settle(), in this process and in the sandbox's forks of it


def _run_launcher() -> int:
    atexit._clear()  # the server's and the autograde's exit handlers are not the kernel's
    from regcourse.grading import kernel_launcher

    try:
        kernel_launcher.main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    atexit._run_exitfuncs()
    return code


def settle() -> None:
    """In the kernel process itself (after the sandbox, if any): make a forked kernel what a cold one is."""
    if not _seed.pop("launcher", False):
        return
    os.environ.update(_server.get("set_by_imports", {}))  # after the sandbox chose the kernel's environment
    import numpy as np

    tempfile.tempdir = None  # the server's TMPDIR was cached: look again, in the kernel's environment

    np.random.seed()  # fresh from the operating system, as at a cold import
    from keras.src.backend import config

    home = _keras_home(os.environ)
    # Not written: the keras.json a cold kernel writes there when its notebook imports Keras and the home has
    # none (the course's home, regcourse.environment's, has one). Keras reads that file at import only, so no
    # computation differs; a notebook that lists such a home sees no ~/.keras before it saves something there
    # (and nothing a previous kernel left: it is fresh).
    config._KERAS_DIR = home


def _keras_home(env) -> str:
    """Keras' folder for a process with environment ``env``, found as Keras finds it at import."""
    if "KERAS_HOME" in env:
        return env["KERAS_HOME"]
    base = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


def keras_config_mismatch(env: dict[str, str]) -> str | None:
    """A ``keras.json`` the kernel would read whose settings differ from the defaults the server imported with."""
    path = os.path.join(os.path.expanduser(_keras_home(env)), "keras.json")
    try:
        with open(path) as stream:
            settings = json.load(stream)
    except (OSError, ValueError):
        return None
    from keras.src.backend import config

    defaults = {"floatx": config.floatx(), "epsilon": config.epsilon(), "backend": "tensorflow",
                "image_data_format": config.image_data_format()}
    differ = sorted(k for k, v in defaults.items() if k in settings and settings[k] != v)
    return f"{path} sets {', '.join(differ)}" if differ else None


# -- in an autograde: the provisioner ------------------------------------------------------------------

class _Adopted:
    """The seed, as much of ``subprocess.Popen`` as jupyter_client uses (it is this process's child)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _ask_seed(cmd: list[str], kwargs: dict) -> tuple[_Adopted | None, str]:
    """The seed as this kernel's launcher, or None and why it cannot be."""
    if "pid" not in _seed:
        return None, _seed.get("reason", "no seed was planted for this autograde")
    channel, pid = _seed.pop("socket"), _seed.pop("pid")
    _seed["reason"] = "a kernel restarted within one autograde (its seed became the first kernel)"
    try:
        reason = _refusal(cmd, kwargs)
        if reason:
            return None, reason
        request = {"argv": list(cmd), "env": dict(kwargs.get("env") or os.environ),
                   "cwd": str(kwargs.get("cwd") or os.getcwd())}
        channel.settimeout(SEED_TIMEOUT_S)
        channel.sendall((json.dumps(request) + "\n").encode())
        answer = _read_line(channel)
        if answer is None:
            return None, "the seed exited before it answered"
        reply = json.loads(answer)
        if "declined" in reply:
            return None, str(reply["declined"])
        adopted, pid = _Adopted(pid), None
        return adopted, ""
    except (OSError, ValueError) as error:
        return None, f"the seed could not be reached: {error}"
    finally:
        channel.close()  # an unused seed reads the end of its channel and exits
        if pid is not None:
            _reap_unused(pid)


def _refusal(cmd: list[str], kwargs: dict) -> str | None:
    """Why this kernel must start cold, seen from the autograde (the seed checks the environment)."""
    expected = [sys.executable, "-P", "-m", "regcourse.grading.kernel_launcher"]
    if cmd[:4] != expected:
        return f"the kernel command is not the grader's ({' '.join(cmd[:4])})"
    if any(kwargs.get(name) is not None for name in ("stdin", "stdout", "stderr")):
        return "the kernel's standard streams were redirected"
    env = kwargs.get("env") or os.environ
    if json.loads(env.get("REGCOURSE_SANDBOX") or "{}").get("isolate"):
        return None  # a contained kernel gets a fresh HOME: Keras' defaults, as in the server
    return keras_config_mismatch(env)


def _reap_unused(pid: int) -> None:
    """A seed that did not become the kernel exits on its own; collect it without waiting long."""
    for _ in range(100):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)


class WarmProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, starting the kernel from this autograde's seed when it can."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        from regcourse.grading.preprocessors import record_event

        events = _seed.get("events", "")
        process, reason = _ask_seed(cmd, LocalProvisioner._scrub_kwargs(kwargs))
        if process is None:
            record_event(events, kind="kernel-start", warm=False, reason=reason)
            return await super().launch_kernel(cmd, **kwargs)
        record_event(events, kind="kernel-start", warm=True)
        self.process = process
        self.pid = self.pgid = process.pid  # the seed started its own session, as Popen's would
        self.cwd = kwargs.get("cwd") or os.getcwd()
        return self.connection_info
