"""Isolation of the student's kernel: a container of its own, or no kernel at all.

Used when the grader runs as root on Linux (a grading VM, or a container
allowed to create namespaces); otherwise the kernel runs as the grader's user
and the outcome records why (``unavailable_reason``). When isolation is wanted
it *fails closed*: a kernel whose container cannot be set up, or whose
container does not pass the checks made from inside it, never runs; the
submission scores zero on what could not run, is flagged, and the report
says so (see the engine).

What a kernel gets (see :func:`contain`, called by ``kernel_launcher``, as
root, before IPython starts):

- *its own processes*: a new PID namespace whose first process (pid 1, root)
  only starts the kernel, reaps orphans and exits with it; the kernel is
  killed with its parent. When pid 1 exits the Linux kernel kills every
  process left in the namespace, double-forked or not: one submission, one
  container, gone as a whole (:func:`kill_user` ends stragglers' containers
  too). A fresh ``/proc`` (``hidepid=2``) shows the kernel only its own
  processes, never other command lines;
- *a minimal view of the files*: a new root (``pivot_root``) holding the
  system folders (``/usr``, ``/etc``, ... read-only), the Python installation
  and the folders it imports from (read-only; of a folder outside the
  installation, such as an editable install's ``src/``, only its packages),
  the kernel's working folder, the files the grader hands it (``read_only``
  in the spec: e.g. the capstone's holdout inputs), and nothing else: not the
  course, not the checkout the grader runs from, not ``/home``, ``/tmp``,
  ``/run`` or ``/var``;
- *a private, bounded place to write*: one ``tmpfs`` per kernel, limited in
  bytes and in files (:data:`KERNEL_MAX_DISK_BYTES`, :data:`KERNEL_MAX_FILES`),
  holding its ``HOME``, ``/tmp``, ``/dev/shm`` and the changes to its working
  folder (an overlay on nbgrader's folder, so nothing the kernel writes ever
  reaches the course folder, nor the feedback). It disappears with the kernel:
  nothing a submission leaves reaches a later one;
- *no network*: a network namespace with only the loopback interface; the
  kernel talks to nbgrader over Unix sockets (ZeroMQ ``ipc``); new IPC and UTS
  namespaces too (no shared System V memory or message queues);
- *its own user*: an unprivileged uid, unique to the grading thread, with no
  groups, ``no_new_privs``, a cleaned environment and limits on processes
  (:data:`KERNEL_MAX_PROCESSES`), file size and core dumps.

Root never acts on what student code could have touched: everything above is
set up in fresh file systems before the kernel's uid exists in them; on the
host the kernel's uid owns nothing (its socket folder is writable only while
the kernel binds its sockets, before any student code runs, then taken
back). What was actually in force is measured by the kernel process itself,
inside its namespaces, before IPython starts, and handed to the launcher's
first process (outside, still root), which writes the report.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import signal
import socket
import stat
import sys
import threading
import time
from pathlib import Path

#: Kernel uids are KERNEL_UID_BASE + the grading thread's native id (unique among live threads).
KERNEL_UID_BASE = 0x70000000
#: Fallback when the high range is not mapped (user namespaces with a short uid map).
NOBODY = 65534
#: Processes and threads of one kernel (RLIMIT_NPROC): TensorFlow starts a few hundred threads on big machines.
KERNEL_MAX_PROCESSES = 4096
#: All the kernel may write, in bytes and in files (one tmpfs: HOME, /tmp, /dev/shm and its folder's changes).
#: It is memory (tmpfs), not counted by the memory watchdog, and gone when the kernel stops.
KERNEL_MAX_DISK_BYTES = 1024**3
KERNEL_MAX_FILES = 20_000
#: What the kernel process itself writes to its stdout and stderr (native libraries' messages): kept for the
#: grader's log up to this many bytes, the rest dropped.
KERNEL_MAX_LOG_BYTES = 1024**2
#: The kernel's HOME inside its view.
KERNEL_HOME = "/home/kernel"
#: Variables of the grader's environment the kernel keeps (by name or prefix); others (credentials, the
#: grader's paths) are dropped. REGCOURSE_KERNEL_ENV (comma separated names) adds more.
KERNEL_ENV_NAMES = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8",
                    "PYTHONWARNINGS", "PYDEVD_DISABLE_FILE_VALIDATION", "REGCOURSE_JUDGE",
                    "REGCOURSE_HOLDOUT_INPUTS")
KERNEL_ENV_PREFIXES = ("LC_", "TF_", "KERAS_", "OMP_", "MKL_", "OPENBLAS_", "ONEDNN_", "DNNL_", "NPY_", "NUMEXPR_",
                       "XLA_", "CUDA_")
#: Folders of the host the kernel sees read-only (when they exist); links among them are kept as links.
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
#: Device nodes the kernel gets in its /dev.
DEVICES = ("null", "zero", "full", "random", "urandom")
#: Seconds the kernel may take to bind its sockets once IPython has started.
BIND_TIMEOUT_S = 10.0

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC = 1024, 2048, 4096, 8192, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
#: pivot_root has no libc wrapper: its system call number, per architecture (others fall back to chroot).
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "loongarch64": 41, "ppc64le": 203, "ppc64": 203,
                  "s390x": 217, "i686": 217, "i386": 217, "armv7l": 218, "armv6l": 218}
#: Signals the launcher passes on to the kernel (SIGINT: nbclient's interrupt).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def wanted() -> bool:
    """Isolation is attempted only as root on Linux (namespaces and setuid need it).

    ``REGCOURSE_NO_SANDBOX=1`` turns it off (to measure its cost, or where
    student code is trusted).
    """
    if os.environ.get("REGCOURSE_NO_SANDBOX", "") not in ("", "0"):
        return False
    return sys.platform.startswith("linux") and os.geteuid() == 0


def unavailable_reason() -> str:
    """Why :func:`wanted` is false, for the report."""
    if os.environ.get("REGCOURSE_NO_SANDBOX", "") not in ("", "0"):
        return "turned off (REGCOURSE_NO_SANDBOX is set)"
    if not sys.platform.startswith("linux"):
        return f"not available on {sys.platform} (needs Linux namespaces)"
    return "the grader does not run as root (namespaces and a separate user need root)"


def _mapped(uid: int) -> bool:
    try:
        lines = Path("/proc/self/uid_map").read_text().split("\n")
    except OSError:
        return uid == NOBODY
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and int(parts[0]) <= uid < int(parts[0]) + int(parts[2]):
            return True
    return False


def kernel_uid() -> int:
    """A uid no other live grading thread uses (falls back to nobody)."""
    uid = KERNEL_UID_BASE + threading.get_native_id()
    return uid if _mapped(uid) else NOBODY


def kernel_limits() -> dict:
    """The limits each kernel gets, for the engine's sandbox spec (read when each kernel is set up)."""
    return {"processes": int(KERNEL_MAX_PROCESSES), "disk_bytes": int(KERNEL_MAX_DISK_BYTES),
            "files": int(KERNEL_MAX_FILES), "log_bytes": int(KERNEL_MAX_LOG_BYTES)}


def kernel_environment_names() -> list[str]:
    """Names of grader variables the kernel keeps beyond the built-in ones (REGCOURSE_KERNEL_ENV)."""
    return [n.strip() for n in os.environ.get("REGCOURSE_KERNEL_ENV", "").split(",") if n.strip()]


def grader_checkout() -> str | None:
    """The source checkout of an editable install of ``regcourse`` (hidden from kernels), or None."""
    import regcourse

    package = Path(regcourse.__file__).resolve().parent
    if {"site-packages", "dist-packages"} & set(package.parts):
        return None
    return str(package.parent.parent)


def python_paths() -> list[str]:
    """Folders this interpreter imports from (for kernel_reads: reads there are not the student's snooping)."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    paths += [p for p in sys.path if p and os.path.isabs(p)]
    for name in ("regcourse",):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            paths.append(os.path.dirname(os.path.dirname(os.path.realpath(module.__file__))))
    return paths


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _is_package(path: str) -> bool:
    name = os.path.basename(path)
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "__init__.py")) or name.endswith((".dist-info", ".egg-info"))
    return name.endswith((".py", ".pth")) or ".cpython-" in name or name.endswith((".so", ".abi3.so"))


def view_python_paths() -> list[str]:
    """What of the Python installation the kernel sees (read-only): whole prefixes, and of any other folder
    on ``sys.path`` (an editable install's ``src/``, a ``PYTHONPATH`` entry) only its packages and modules."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    prefixes.add(os.path.dirname(os.path.realpath(sys.executable)))
    paths = set(prefixes)
    for entry in sys.path:
        if not entry or not os.path.isabs(entry) or not os.path.exists(entry):
            continue
        real = os.path.realpath(entry)
        if any(_under(real, p) for p in prefixes):
            continue
        if os.path.isdir(real):
            paths.update(os.path.realpath(os.path.join(real, n)) for n in os.listdir(real)
                         if _is_package(os.path.join(real, n)))
        else:
            paths.add(real)
    module = sys.modules.get("regcourse")
    if module is not None and getattr(module, "__file__", None):
        paths.add(os.path.dirname(os.path.realpath(module.__file__)))
    ordered = sorted(paths, key=len)
    return [p for i, p in enumerate(ordered) if not any(_under(p, q) for q in ordered[:i])]


# -- after a kernel: its containers, and its folder --------------------------------------------

def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def kill_user(uid: int, timeout_s: float = 10.0) -> int:
    """SIGKILL every process of the kernel uid ``uid`` and every container (PID namespace) one of them is
    in, root's first process included (which takes all the rest with it); repeated until none is left.
    Returns how many processes were killed.

    Never sweeps root's or the shared ``nobody``'s processes (where uids are not unique the containers
    still end with their launcher: pid 1 is killed when the launcher dies).
    """
    import psutil

    if uid <= 0 or uid == NOBODY:
        return 0
    host = _pid_namespace(os.getpid())
    deadline = time.monotonic() + timeout_s
    killed = 0
    while True:
        everyone = list(psutil.process_iter(["uids"]))
        found, namespaces = [], set()
        for proc in everyone:
            uids = proc.info.get("uids")
            if uids and uids.real == uid:
                found.append(proc)
                namespace = _pid_namespace(proc.pid)
                if namespace and namespace != host:
                    namespaces.add(namespace)
        if namespaces:
            found += [p for p in everyone if p not in found and _pid_namespace(p.pid) in namespaces]
        alive = []
        for proc in found:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    proc.kill()
                    alive.append(proc)
            except psutil.Error:
                pass
        killed += len(alive)
        if not alive or time.monotonic() > deadline:
            return killed
        time.sleep(0.01)


def reclaim(path: Path, uid: int = -1) -> None:
    """After a kernel stops, before nbgrader (root) writes into ``path``, the kernel's folder on the host:
    with a kernel ``uid``, first end every process and container of that uid; then give ``path`` back to
    its parent's owner and remove any link or special file in it.

    With the container the kernel never writes there (its changes go to its own tmpfs), so this finds
    nothing to do; it stays as a second line, and for kernels run without isolation.
    """
    if not path.is_dir() or path.is_symlink():
        return
    owner = os.stat(path.parent)
    if uid > 0:
        kill_user(uid)
        os.lchown(path, owner.st_uid, owner.st_gid)
        os.chmod(path, 0o700)  # revoke first, so nothing can be added while we walk
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            info = entry.lstat()
            if stat.S_ISLNK(info.st_mode) or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                entry.unlink()
                if name in dirnames:
                    dirnames.remove(name)
            elif uid > 0:
                os.lchown(entry, owner.st_uid, owner.st_gid)


# -- system calls ---------------------------------------------------------------------------------

_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _libc


def _call(name: str, *args) -> int:
    result = getattr(_lib(), name)(*args)
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}{args!r}: {os.strerror(errno)}")
    return result


def _enc(value):
    return None if value is None else str(value).encode()


def _mount(source, target, fstype, flags, data=None) -> None:
    _call("mount", _enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags), _enc(data))


def _prctl(option: int, value: int) -> None:
    _call("prctl", option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _loopback_up() -> None:
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP


def _bind(source: str, target: str, *, readonly: bool) -> None:
    _mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        # a remount may add flags, never clear one the mount already has (locked in a container)
        present = os.statvfs(target).f_flag
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
        for have, need in ((os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
                           (os.ST_NODIRATIME, MS_NODIRATIME), (getattr(os, "ST_RELATIME", 4096), MS_RELATIME)):
            if present & have:
                flags |= need
        _mount(None, target, None, flags)


def _pivot(root: str) -> None:
    """Make ``root`` this process's ``/`` and detach the old root entirely (chroot where pivot_root is unknown)."""
    os.chdir(root)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is not None and _lib().syscall(ctypes.c_long(number), b".", b".") == 0:
        _call("umount2", b".", ctypes.c_int(MNT_DETACH))  # the old root, stacked on the new one
    else:
        _mount(root, "/", None, MS_MOVE)
        os.chroot(".")
    os.chdir("/")


# -- the container: set up by the launcher (root) -------------------------------------------------

class IsolationFailed(Exception):
    """The container could not be set up, or did not pass the checks made from inside it."""


def _send(channel: socket.socket, message: dict) -> None:
    channel.sendall((json.dumps(message) + "\n").encode())


def _write_report(path: str | None, report: dict) -> None:
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        json.dump(report, stream)


def failure_report(reason: str) -> dict:
    return {"user": False, "network": False, "files": False, "failed": True, "reason": reason}


def contain(spec: dict, args: list[str]) -> list[str]:
    """Run the rest of this (root) launcher as a contained kernel; returns its arguments, in the kernel only.

    Three processes: this one stays outside, as root (it forwards signals, writes the report, takes back
    the socket folder, exits with the kernel and kills it if its own parent dies); pid 1 of the new PID
    namespace sets up the container and waits; the kernel (pid 2) drops to the kernel uid, checks what is
    in force and reports it, and returns here. Any failure: no kernel, a report saying why, exit status 1.
    """
    try:
        if os.geteuid() != 0:
            raise IsolationFailed("the kernel launcher does not run as root")
        index = args.index("-f") + 1
        connection_file = args[index]
        outside, inside = socket.socketpair()
        _call("unshare", CLONE_NEWPID)
        first = os.fork()
    except Exception as error:  # noqa: BLE001 (whatever it is: no kernel)
        _fail(spec, error)
    if first:
        inside.close()
        _supervise(spec, first, outside)  # never returns
    outside.close()
    return _first_process(spec, args, index, connection_file, inside)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _fail(spec: dict, error: BaseException) -> None:
    reason = _reason(error)
    print(f"grader: kernel isolation failed, the kernel does not run: {reason}", file=sys.stderr)
    try:
        _write_report(spec.get("report"), failure_report(reason))
    finally:
        os._exit(1)


def _supervise(spec: dict, first: int, channel: socket.socket) -> None:
    """Outside the container, as root: until the container's first process exits."""
    parent = os.getppid()

    def forward(signum, _frame):
        try:
            os.kill(first, signum)
        except OSError:
            pass

    def orphaned(_signum, _frame):  # nbgrader's process died without stopping the kernel: stop it
        if os.getppid() != parent:
            try:
                os.kill(first, signal.SIGKILL)
            finally:
                os._exit(1)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.signal(signal.SIGALRM, orphaned)
    signal.setitimer(signal.ITIMER_REAL, 0.5, 0.5)
    reported, buffer = False, b""
    try:
        while len(buffer) < 1 << 20:
            data = channel.recv(1 << 16)
            if not data:
                break
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                if "failed" in message:
                    _write_report(spec.get("report"), failure_report(str(message["failed"])))
                    reported = True
                elif "report" in message:
                    _write_report(spec.get("report"), dict(message["report"]))
                    reported = True
                elif "bound" in message:  # the kernel's sockets exist: nothing more may be created there
                    fd = os.open(spec["run"], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                    try:
                        os.fchmod(fd, 0o700)
                    finally:
                        os.close(fd)
                    _send(channel, {"go": True})
        if not reported:
            _write_report(spec.get("report"), failure_report("the container stopped before the kernel reported"))
    except Exception as error:  # noqa: BLE001
        try:
            os.kill(first, signal.SIGKILL)
        finally:
            _fail(spec, error)
    channel.close()
    while True:
        try:
            _, status = os.waitpid(first, 0)
            break
        except ChildProcessError:
            status = 0
            break
    os._exit(min(255, abs(os.waitstatus_to_exitcode(status))))


def _first_process(spec: dict, args: list[str], index: int, connection_file: str, channel: socket.socket):
    """Pid 1 of the container (root): build it, start the kernel in it, reap, exit with the kernel."""
    try:
        os.setsid()  # out of the launcher's process group: signals come through the launcher only
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        channel.setblocking(False)
        try:
            if channel.recv(1) == b"":  # the launcher died before the line above: nobody to report to
                os._exit(1)
        except BlockingIOError:
            pass
        channel.setblocking(True)
        kept = _build(spec, connection_file)
        output_read, output_write = os.pipe()
        kernel = os.fork()
    except Exception as error:  # noqa: BLE001
        _send_failure(channel, error)
        os._exit(1)
    if kernel == 0:
        os.close(output_read)
        os.dup2(output_write, 1)
        os.dup2(output_write, 2)
        os.close(output_write)
        return _kernel_process(spec, args, index, channel, kept)
    channel.close()
    os.close(output_write)

    def forward(signum, _frame):
        try:
            os.kill(kernel, signum)
        except OSError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    threading.Thread(target=_pass_output, args=(output_read, int(spec["limits"]["log_bytes"])), daemon=True).start()
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        if pid == kernel:  # every process left in the namespace is killed as this one exits
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def _pass_output(fd: int, budget: int) -> None:
    """The kernel's own stdout and stderr, to the launcher's stderr (nbgrader's log), up to ``budget`` bytes."""
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            return
        if budget > 0:
            kept = data[:budget]
            budget -= len(kept)
            os.write(2, kept)
            if budget <= 0:
                os.write(2, b"\n[grader: the kernel's further output to its stdout and stderr is dropped]\n")


def _send_failure(channel: socket.socket, error: BaseException) -> None:
    try:
        _send(channel, {"failed": _reason(error)})
    except OSError:
        pass


def _makedirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _target(view: str, path: str, *, directory: bool = True) -> str:
    target = view + path
    if directory:
        _makedirs(target)
    else:
        _makedirs(os.path.dirname(target))
        if not os.path.lexists(target):
            open(target, "a").close()
    return target


def _build(spec: dict, connection_file: str) -> list[str]:
    """The container's namespaces and view (in pid 1, as root); returns the host paths the kernel sees."""
    uid, cwd, run = int(spec["uid"]), os.path.realpath(spec["cwd"]), os.path.realpath(spec["run"])
    view, scratch, limits = spec["view"], spec["scratch"], spec["limits"]
    course = os.path.realpath(spec["course"])
    os.umask(0o022)  # nbgrader's 077 would make the folders leading to the kept ones untraversable
    _call("unshare", CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _loopback_up()
    socket.sethostname("grader")
    with open(connection_file, encoding="utf-8") as stream:
        connection = stream.read()

    # All the kernel can write: one tmpfs, limited in bytes and files, gone with the mount namespace.
    _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={int(limits['disk_bytes'])},nr_inodes={int(limits['files'])},mode=700")
    places = {"home": (0o700, uid), "tmp": (0o1777, 0), "shm": (0o1777, 0), "upper": (0o755, 0), "work": (0o700, 0)}
    for name, (mode, owner) in places.items():
        os.mkdir(os.path.join(scratch, name))
        os.chmod(os.path.join(scratch, name), mode)
        os.lchown(os.path.join(scratch, name), owner, owner)
    home = os.path.join(scratch, "home")
    fd = os.open(os.path.join(home, "kernel.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        os.fchown(stream.fileno(), uid, uid)
        stream.write(connection)
    fonts = os.path.join(os.path.expanduser("~"), ".cache", "matplotlib")  # the grader's: saves a font scan
    if os.path.isdir(fonts):
        import shutil

        shutil.copytree(fonts, os.path.join(home, "mpl"), symlinks=True)
        for dirpath, dirnames, filenames in os.walk(os.path.join(home, "mpl")):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, uid, uid)

    # The new root: only what is listed here.
    _mount("tmpfs", view, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    python = view_python_paths()
    shared = [os.path.realpath(p) for p in spec.get("read_only", []) if os.path.exists(p)]  # files the grader gives
    for path in python + shared:
        if _under(course, path):
            raise IsolationFailed(f"{path}, to be shown to the kernel, holds the course folder {course}")
    mounts: list[tuple[str, str, str]] = []  # (path in the view, kind, source)
    for path in SYSTEM_FOLDERS:
        if os.path.islink(path):
            os.symlink(os.readlink(path), view + path)
        elif os.path.isdir(path):
            mounts.append((path, "ro", path))
    mounts += [(p, "ro", p) for p in python if not any(_under(p, s) for s in SYSTEM_FOLDERS if os.path.isdir(s))]
    mounts += [(p, "ro", p) for p in shared]
    mounts += [("/tmp", "rw", os.path.join(scratch, "tmp")), (KERNEL_HOME, "rw", home), (run, "rw", run),
               (cwd, "cwd", cwd)]
    for path, _, _ in mounts:
        if path != KERNEL_HOME and _under(path, KERNEL_HOME):
            raise IsolationFailed(f"{path} lies where the kernel's home goes ({KERNEL_HOME})")
    for path, kind, source in sorted(mounts, key=lambda m: (m[0].count("/"), m[0])):
        target = _target(view, path, directory=os.path.isdir(source))
        if kind == "cwd":
            _mount_folder(spec, source, target, scratch, uid)
        else:
            _bind(source, target, readonly=kind == "ro")
    os.chmod(run, 0o1733)  # the kernel binds its sockets here; the launcher takes it back once they exist

    _makedirs(view + "/dev")
    _mount("tmpfs", view + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for name in DEVICES:
        _bind(f"/dev/{name}", _target(view, f"/dev/{name}", directory=False), readonly=False)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                       ("stderr", "/proc/self/fd/2")):
        os.symlink(link, f"{view}/dev/{name}")
    _bind(os.path.join(scratch, "shm"), _target(view, "/dev/shm"), readonly=False)
    _makedirs(view + "/proc")
    try:  # this process is pid 1 of the new namespace: the new /proc shows its processes only
        _mount("proc", view + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    except OSError:
        _mount("proc", view + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _pivot(view)
    return [cwd, run, *python, *shared]


def _mount_folder(spec: dict, source: str, target: str, scratch: str, uid: int) -> None:
    """The kernel's working folder: nbgrader's, under an overlay whose changes go to the tmpfs (a copy
    where overlayfs is missing); the files the course keeps in its source folder but did not release
    are left out."""
    upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
    escaped = source.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")
    try:
        _mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, f"lowerdir={escaped},upperdir={upper},workdir={work}")
    except OSError:
        import shutil

        copy = os.path.join(scratch, "folder")
        shutil.copytree(source, copy, symlinks=True,
                        ignore=lambda d, names: [n for n in names if not _plain(os.path.join(d, n))])
        _bind(copy, target, readonly=False)
    for relative in spec.get("withheld", []):
        parts = Path(relative).parts
        if not parts or os.path.isabs(relative) or ".." in parts:
            continue
        path = os.path.join(target, relative)
        if os.path.lexists(path) and not os.path.isdir(path):
            os.unlink(path)  # in the overlay: hidden from the kernel, still in nbgrader's folder
    os.lchown(target, uid, uid)


def _plain(path: str) -> bool:
    mode = os.lstat(path).st_mode
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


# -- the kernel process (pid 2): drop privileges, check, report --------------------------------------

_channel: socket.socket | None = None


def kept_environment(env, extra_names=()) -> dict[str, str]:
    """The variables of ``env`` a kernel keeps (:data:`KERNEL_ENV_NAMES`, :data:`KERNEL_ENV_PREFIXES`, ``extra_names``)."""
    names = set(KERNEL_ENV_NAMES) | set(extra_names)
    return {k: v for k, v in env.items() if k in names or k.startswith(KERNEL_ENV_PREFIXES)}


def _kernel_environment(spec: dict) -> dict[str, str]:
    env = kept_environment(os.environ, spec.get("keep_env", []))
    env.update(HOME=KERNEL_HOME, MPLCONFIGDIR=f"{KERNEL_HOME}/mpl", IPYTHONDIR=f"{KERNEL_HOME}/.ipython",
               XDG_CACHE_HOME=f"{KERNEL_HOME}/.cache", TMPDIR="/tmp", USER="kernel", LOGNAME="kernel")
    return env


def _kernel_process(spec: dict, args: list[str], index: int, channel: socket.socket, kept: list[str]) -> list[str]:
    global _channel
    import resource

    try:
        uid, limits = int(spec["uid"]), spec["limits"]
        if uid <= 0:
            raise IsolationFailed(f"refusing to run a kernel as uid {uid}")
        for signum in FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        for limit, value in ((resource.RLIMIT_NPROC, limits["processes"]), (resource.RLIMIT_FSIZE, limits["disk_bytes"]),
                             (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(limit, (int(value), int(value)))
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by setuid: set again
        os.chdir(spec["cwd"])
        environment = _kernel_environment(spec)
        os.environ.clear()
        os.environ.update(environment)
        report = measure(spec, kept)
        missing = [what for what in ("user", "processes", "network", "files") if not report[what]]
        if missing:
            raise IsolationFailed(f"checked from inside the kernel, not in force: {', '.join(missing)} "
                                  f"({report['detail']})")
        _send(channel, {"report": report})
    except Exception as error:  # noqa: BLE001
        _send_failure(channel, error)
        os._exit(1)
    _channel = channel
    args = list(args)
    args[index] = f"{KERNEL_HOME}/kernel.json"
    return args


def _sees_only(root: str, kept: list[str]) -> bool:
    """Whether, under ``root``, nothing is visible but the folders leading to ``kept`` paths."""
    kept = [k for k in kept if _under(k, root)]
    if any(k == root for k in kept):
        return True
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    allowed = {k[len(root.rstrip("/")) + 1:].split("/")[0] for k in kept}
    return set(names) <= allowed and all(_sees_only(os.path.join(root, n), kept) for n in names)


def measure(spec: dict, kept: list[str]) -> dict:
    """What isolation is in force, seen from inside (the kernel process, before any student code)."""
    uid, limits = int(spec["uid"]), spec["limits"]
    detail = {}
    with open("/proc/self/status", encoding="ascii") as stream:
        status = dict(line.split(":", 1) for line in stream.read().splitlines() if ":" in line)
    user = (os.getuid() == os.geteuid() == os.getgid() == uid and uid > 0 and os.getgroups() == []
            and status.get("NoNewPrivs", "").strip() == "1")
    detail["uid"] = os.getuid()
    pids = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
    processes = os.getpid() == 2 and set(pids) <= {1, 2}
    detail["pids"] = pids[:5]
    interfaces = sorted(name for _, name in socket.if_nameindex())
    network = interfaces == ["lo"]
    detail["interfaces"] = interfaces[:5]
    hidden = [p for p in (spec.get("course"), spec.get("checkout")) if p]
    files = all(_sees_only(os.path.realpath(p), kept) for p in hidden)
    for place in ("/tmp", "/dev/shm", KERNEL_HOME):  # the bounded tmpfs, not the host's
        info = os.statvfs(place)
        size, files_max = info.f_blocks * info.f_frsize, info.f_files  # 0: a tmpfs without a limit
        bounded = 0 < size <= int(limits["disk_bytes"]) and 0 < files_max <= int(limits["files"])
        files = files and bounded
    files = files and os.listdir("/dev/shm") == []
    detail["root"] = sorted(os.listdir("/"))
    return {"user": user, "processes": processes, "network": network, "files": files, "uid": uid,
            "limits": dict(limits), "detail": detail}


def listening(app) -> None:
    """In the contained kernel, once IPython has initialized: wait until its sockets exist, have the
    launcher take the socket folder back, then go on (no student code has run yet)."""
    global _channel
    channel, _channel = _channel, None
    if channel is None:
        return
    try:
        if getattr(app, "transport", "") == "ipc":
            ports = [app.shell_port, app.iopub_port, app.stdin_port, app.control_port, app.hb_port]
            deadline = time.monotonic() + BIND_TIMEOUT_S
            while not all(os.path.exists(f"{app.ip}-{port}") for port in ports) and time.monotonic() < deadline:
                time.sleep(0.002)
        _send(channel, {"bound": True})
        channel.settimeout(BIND_TIMEOUT_S)
        if b"go" not in channel.recv(64):
            raise IsolationFailed("the launcher did not take back the socket folder")
    except Exception as error:  # noqa: BLE001
        print(f"grader: kernel start-up failed: {_reason(error)}", file=sys.stderr)
        os._exit(1)
    finally:
        channel.close()
