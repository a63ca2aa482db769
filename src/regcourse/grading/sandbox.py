"""Isolation of the student's kernel: its own user, no network, no view of the course's secrets.

Used only when the grader runs as root on Linux (a container or a grading
VM); otherwise the kernel runs as the grader's user and the outcome records
that isolation was unavailable. The batch never fails for lack of isolation.

How (see ``kernel_launcher``, which applies it in the kernel process before
IPython starts):

- a private *mount namespace* hides the course root (solutions, hidden tests
  in the gradebook, other students' submissions and results) behind an empty
  ``tmpfs``; only the kernel's own working folder, the Python installation
  and the package folders on ``sys.path`` are bound back in;
- a private *network namespace* with only the loopback interface: the kernel
  talks to nbgrader over Unix sockets (ZeroMQ ``ipc`` transport) instead;
- an unprivileged uid, unique to the grading thread (so two kernels running
  side by side cannot touch each other's files), with ``no_new_privs``,
  limits on processes and file size, and a private ``HOME``/``MPLCONFIGDIR``.

After the kernel exits, :func:`reclaim` kills anything still running under
that uid and takes the working folder back (removing links the student may
have planted there before nbgrader, running as root, writes into it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import stat
import sys
import threading
from pathlib import Path

#: Kernel uids are KERNEL_UID_BASE + the grading thread's native id (unique among live threads).
KERNEL_UID_BASE = 0x70000000
#: Fallback when the high range is not mapped (user namespaces with a short uid map).
NOBODY = 65534
#: Threads and processes of one kernel: TensorFlow starts a few hundred threads on big machines.
KERNEL_MAX_PROCESSES = 4096
#: Largest file the kernel may write (Python then gets OSError EFBIG): a full disk fails everyone.
KERNEL_MAX_FILE_BYTES = 1024**3

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38


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


def make_kernel_home(uid: int) -> Path:
    """A private HOME for the kernel (with the grader's matplotlib font cache, to skip a rebuild)."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="regcourse-kernel-"))
    (home / "run").mkdir(mode=0o700)
    (home / "tmp").mkdir(mode=0o700)
    fonts = Path.home() / ".cache" / "matplotlib"
    if fonts.is_dir():
        shutil.copytree(fonts, home / "mpl", dirs_exist_ok=True)
    for path in [home, *home.rglob("*")]:
        os.lchown(path, uid, uid)
    return home


def reclaim(path: Path, uid: int = -1) -> None:
    """Remove links and special files from the kernel's folder ``path``; with a kernel ``uid``,
    first kill every process of that uid and give ``path`` back to its parent's owner.

    Runs right after the kernel stops and before nbgrader writes the graded
    notebook into ``path`` and chmods the files there: a symlink the student
    planted would otherwise redirect that write or chmod to any file the
    grader can reach (as root: any file on the machine).
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


def kill_user(uid: int) -> int:
    """SIGKILL every process whose real uid is ``uid`` (a kernel's leftovers); returns how many."""
    import psutil

    if uid <= 0 or uid == NOBODY:  # never sweep root's or the shared nobody's processes
        return 0
    killed = 0
    for proc in psutil.process_iter(["uids"]):
        try:
            if proc.info["uids"] and proc.info["uids"].real == uid:
                proc.kill()
                killed += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return killed


# -- inside the kernel process (as root, before the kernel starts) ------------------------

_libc = None


def _call(name: str, *args) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}{args!r}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda v: None if v is None else str(v).encode()  # noqa: E731
    _call("mount", enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def _loopback_up() -> None:
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _blocked_ancestor(path: str) -> str | None:
    """The top-most strict ancestor of ``path`` that other users cannot traverse."""
    parts = Path(path).parts
    for i in range(1, len(parts)):
        ancestor = str(Path(*parts[:i]))
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


def _topmost(paths) -> list[str]:
    ordered = sorted(set(paths), key=len)
    result: list[str] = []
    for p in ordered:
        if not any(_under(p, q) for q in result):
            result.append(p)
    return result


def hide_except(hide: list[str], keep: list[str]) -> None:
    """Mount empty tmpfs over ``hide`` and over folders blocking ``keep``, binding ``keep`` back in.

    Each kept folder is opened (``O_PATH``) before anything is covered and bound
    back from ``/proc/self/fd``, which still names the covered original.
    """
    keep = _topmost(os.path.realpath(k) for k in keep if os.path.exists(k))
    masks = list(hide) + [a for a in map(_blocked_ancestor, keep) if a]
    masks = _topmost(os.path.realpath(m) for m in masks if os.path.exists(m))
    kept = [(k, os.open(k, os.O_PATH)) for k in keep if any(_under(k, m) for m in masks)]
    umask = os.umask(0o022)  # the folders leading to kept ones must be traversable
    try:
        for mask in masks:
            if os.path.isdir(mask):
                inside = any(_under(k, mask) for k, _ in kept)
                _mount("tmpfs", mask, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755" if inside else "mode=000")
            else:
                _mount("/dev/null", mask, None, MS_BIND)
        for k, fd in kept:
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(k, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(k), mode=0o755, exist_ok=True)
                open(k, "a").close()
            _mount(f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC)
    finally:
        os.umask(umask)
        for _, fd in kept:
            os.close(fd)


def python_paths() -> list[str]:
    """Folders this interpreter imports from: they stay visible to the kernel."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    paths += [p for p in sys.path if p and os.path.isabs(p)]
    for name in ("regcourse",):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            paths.append(os.path.dirname(os.path.dirname(os.path.realpath(module.__file__))))
    return paths


#: Where other copies of a course (last year's, a test run's, a colleague's)
#: tend to lie world-readable: covered for the kernel too, not just this course.
SHARED_WRITABLE_PLACES = ("/tmp", "/var/tmp", "/home", "/srv", "/mnt", "/media")


def isolate(spec: dict, connection_file: str) -> tuple[str, dict]:
    """Apply the sandbox to this (root) process; returns the kernel's connection file and a report.

    ``spec``: uid, home, hide (paths), cwd. Raises before dropping privileges
    if a step fails, so that the caller can fall back to an unisolated kernel.
    """
    uid, home, cwd = int(spec["uid"]), spec["home"], spec["cwd"]
    _call("unshare", CLONE_NEWNS | CLONE_NEWNET)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _loopback_up()
    report = {"user": True, "network": True, "files": True, "uid": uid}
    if spec.get("report"):  # written while still root and before the job folder is covered
        with open(spec["report"], "w", encoding="utf-8") as stream:
            json.dump(report, stream)
    keep = [cwd, home, *python_paths()]
    hide_except(list(spec["hide"]) + [p for p in SHARED_WRITABLE_PLACES if os.path.isdir(p)], keep)
    copy = os.path.join(home, "kernel.json")
    with open(connection_file, encoding="utf-8") as source:
        info = json.load(source)
    with open(copy, "w", encoding="utf-8") as target:
        json.dump(info, target)
    os.chmod(copy, 0o600)
    os.chown(copy, uid, uid)
    os.chown(cwd, uid, uid)
    import resource

    resource.setrlimit(resource.RLIMIT_NPROC, (KERNEL_MAX_PROCESSES, KERNEL_MAX_PROCESSES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (KERNEL_MAX_FILE_BYTES, KERNEL_MAX_FILE_BYTES))
    _call("prctl", PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    os.chdir(cwd)
    for var, sub in (("HOME", ""), ("MPLCONFIGDIR", "mpl"), ("IPYTHONDIR", ".ipython"),
                     ("XDG_CACHE_HOME", ".cache"), ("TMPDIR", "tmp")):
        os.environ[var] = os.path.join(home, sub) if sub else home
    return copy, report
