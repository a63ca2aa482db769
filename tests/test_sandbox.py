"""The kernel's sandbox (issue 10): it fails closed, contains every process, and leaves nothing behind.

The hostile submissions themselves are in the corpus (tests/grading_corpus/sandbox_cases.py) and are
graded with everyone else by tests/test_grading_e2e.py; these tests pin down what the corpus cannot
show: a sandbox that cannot be set up (the grader's fault, not the student's) stops the kernel from
running at all; a submission graded just before innocent ones on the same worker, under the same
kernel uid, cannot touch them; and the pieces (the view, the environment, the report line) behave.
The tests that grade need root on Linux (as in CI) and are skipped elsewhere.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from grading_corpus import ASSIGNMENT, CORRECT_L1, NOTEBOOK, build_corpus, student_notebook
from grading_corpus.sandbox_cases import cases, corpus_sandbox_limits, heir_findings, printed
from regcourse.grading import engine, sandbox
from regcourse.grading.model import Limits, Outcome, Status, SubmissionRef
from regcourse.grading.report import isolation_notes

AS_ROOT = sandbox.wanted()
needs_root = pytest.mark.skipif(not AS_ROOT, reason="the kernel sandbox needs root on Linux")
LIMITS = Limits(cell_timeout_s=10, notebook_timeout_s=60, memory_bytes=768 * 2**20, output_bytes=2**20)
SANDBOX_CASES = {case.student: case for case in cases()}
#: What zz_heir finds when every earlier submission was contained (see sandbox_cases._heir).
NOTHING_FOUND = {"bait": [], "shared memory": [], "System V": [], "other processes": [], "checkout": [], "course": [],
                 "network": [], "home": []}


def assert_nothing_left(lurker_output: str) -> None:
    """No process of the lurker's kernel uid is left (its daemon, its fork bomb), and none of its bait."""
    uid = int(next(line for line in lurker_output.splitlines() if line.startswith("kernel uid")).split()[-1])
    deadline = time.monotonic() + 5
    while True:
        left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline", "uids"])
                if p.info["uids"] and p.info["uids"].real == uid]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == [], left
    for place in ("/tmp", "/dev/shm"):
        assert not (Path(place) / "lurker-bait.txt").exists()


# -- pieces that need no root ------------------------------------------------------------------------

def test_the_kernel_sees_python_but_not_the_checkout_it_comes_from():
    import json
    import subprocess

    # computed as the kernel launcher does: a fresh `python -P`, without the tests' own sys.path
    paths = json.loads(subprocess.run(
        [sys.executable, "-P", "-c", "import json; from regcourse.grading import sandbox; "
         "print(json.dumps(sandbox.view_python_paths()))"],
        capture_output=True, text=True, check=True, cwd="/").stdout)
    package = str(Path(sandbox.__file__).resolve().parents[1])  # .../regcourse
    assert any(package == p or package.startswith(p + "/") for p in paths), paths
    checkout = sandbox.grader_checkout()
    if checkout is not None:  # an editable install: its package, never the checkout itself
        assert not any(checkout == p or checkout.startswith(p + "/") for p in paths), paths
        assert not any(p.startswith(os.path.join(checkout, name)) for p in paths for name in ("tests", "solutions"))
    assert any(sys.prefix == p or sys.prefix.startswith(p + "/") for p in paths)


def test_the_kernel_keeps_only_harmless_variables(monkeypatch):
    for name, value in {"AWS_SECRET_ACCESS_KEY": "s3cr3t", "PGPASSWORD": "pw", "JPY_PARENT_PID": "1",
                        "REGCOURSE_SANDBOX": "{}", "TF_CPP_MIN_LOG_LEVEL": "3", "REGCOURSE_JUDGE": "record",
                        "COURSE_SPECIAL": "kept", "LC_ALL": "C.UTF-8"}.items():
        monkeypatch.setenv(name, value)
    env = sandbox._kernel_environment({"keep_env": ["COURSE_SPECIAL"]})
    assert not {"AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "JPY_PARENT_PID", "REGCOURSE_SANDBOX"} & set(env)
    assert {k: env[k] for k in ("TF_CPP_MIN_LOG_LEVEL", "REGCOURSE_JUDGE", "COURSE_SPECIAL", "LC_ALL")} == {
        "TF_CPP_MIN_LOG_LEVEL": "3", "REGCOURSE_JUDGE": "record", "COURSE_SPECIAL": "kept", "LC_ALL": "C.UTF-8"}
    assert env["HOME"] == sandbox.KERNEL_HOME and env["TMPDIR"] == "/tmp"


def test_only_the_paths_to_what_is_kept_count_as_visible(tmp_path):
    (tmp_path / "course" / "autograded" / "ann" / "a1").mkdir(parents=True)
    kept = [str(tmp_path / "course" / "autograded" / "ann" / "a1")]
    assert sandbox._sees_only(str(tmp_path / "course"), kept)
    (tmp_path / "course" / "gradebook.db").write_text("")
    assert not sandbox._sees_only(str(tmp_path / "course"), kept)
    assert sandbox._sees_only(str(tmp_path / "elsewhere"), kept)  # not there at all: fine


def test_the_report_says_which_submissions_did_not_run_for_want_of_isolation():
    failed = {"user": False, "network": False, "files": False, "failed": True, "reason": "OSError: no namespaces"}
    full = {"user": True, "network": True, "files": True}
    notes = isolation_notes([Outcome("ann", "a1", Status.FAILED_TO_RUN, isolation=failed),
                             Outcome("bob", "a1", Status.GRADED, isolation=full)])
    assert len(notes) == 2
    assert "could not be set up for 1 of 2" in notes[0] and "did not run" in notes[0]
    assert "OSError: no namespaces (1)" in notes[0]
    assert "all 1 kernels" in notes[1] and "checked inside each kernel" in notes[1]


def test_a_kernel_uid_is_never_swept_when_it_is_root_or_shared():
    assert sandbox.kill_user(0) == 0 and sandbox.kill_user(sandbox.NOBODY) == 0


# -- grading, as root ----------------------------------------------------------------------------------

def _submit(course: Path, student: str, l1_extra: str) -> SubmissionRef:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(student_notebook(course, l1_penalty=l1_extra + "\n\n" + CORRECT_L1), folder / NOTEBOOK)
    return SubmissionRef(student, ASSIGNMENT)


@needs_root
@pytest.mark.parametrize("fault", ["root-uid", "unbounded-writes"])
def test_a_kernel_whose_isolation_cannot_be_set_up_does_not_run(mini_course, monkeypatch, fault):
    """Fail closed: the grader's fault costs a flagged, zero, ungraded submission, never an unisolated kernel."""
    marker = mini_course / "ran-without-isolation.txt"
    ref = _submit(mini_course, "victim", f"open({str(marker)!r}, 'w').write('ran')")
    if fault == "root-uid":  # the set-up refuses: a kernel never runs as root
        monkeypatch.setattr(sandbox, "kernel_uid", lambda: 0)
    else:  # the container is set up, but the check inside it finds writes unbounded (tmpfs size=0)
        monkeypatch.setattr(sandbox, "KERNEL_MAX_DISK_BYTES", 0)
    (outcome,) = engine.grade_many(mini_course, [ref], LIMITS, workers=1)
    assert (outcome.status, outcome.score, outcome.test_results) == (Status.FAILED_TO_RUN, 0.0, {}), outcome
    assert outcome.isolation["failed"] and not any(outcome.isolation[k] for k in ("user", "network", "files"))
    assert any(f.startswith("sandbox: the kernel's isolation could not be set up") for f in outcome.flags), outcome
    assert any("did not run" in m for m in outcome.messages), outcome
    words = {"root-uid": "uid 0", "unbounded-writes": "files"}[fault]
    assert words in outcome.isolation["reason"], outcome.isolation
    assert not marker.exists(), "the notebook ran"
    assert "did not run" in isolation_notes([outcome])[0]


@needs_root
def test_a_submission_cannot_harm_the_next_ones_on_its_worker(mini_course):
    """One worker, one kernel uid: the lurker's daemon, bait and processes end with its kernel."""
    by_name = {c.student: c for c in cases()}
    build_corpus(mini_course, [by_name["aa_lurker"], by_name["zz_heir"]])
    innocent = _submit(mini_course, "mm_innocent", "")
    refs = [SubmissionRef("aa_lurker", ASSIGNMENT), innocent, SubmissionRef("zz_heir", ASSIGNMENT)]
    with corpus_sandbox_limits():
        outcomes = {o.student: o for o in engine.grade_many(mini_course, refs, LIMITS, workers=1)}
    for student in ("aa_lurker", "mm_innocent", "zz_heir"):
        o = outcomes[student]
        assert (o.status, o.score, o.flags, o.messages) == (Status.GRADED, 3.0, [], []), o
        assert o.isolation == {"user": True, "network": True, "files": True}, o
    lurker = printed(mini_course, "aa_lurker")
    assert "fork bomb started" in lurker and "refused" in lurker, lurker
    assert heir_findings(mini_course) == NOTHING_FOUND
    assert_nothing_left(lurker)


@needs_root
def test_what_the_kernel_writes_stays_in_its_container(mini_course):
    """Its folder's changes go to its own tmpfs: nbgrader's folder holds the graded notebook, root's, only."""
    ref = _submit(mini_course, "writer", "open('made-here.txt', 'w').write('x')\nimport os\nos.makedirs('sub')")
    (outcome,) = engine.grade_many(mini_course, [ref], LIMITS, workers=1)
    assert (outcome.status, outcome.score) == (Status.GRADED, 3.0), outcome
    folder = mini_course / "autograded" / "writer" / ASSIGNMENT
    assert sorted(p.name for p in folder.iterdir()) == [NOTEBOOK]
    assert all(p.stat().st_uid == 0 for p in [folder, *folder.rglob("*")])


def test_sandbox_cases_are_in_the_corpus():
    from grading_corpus import CASES

    names = {c.student for c in CASES}
    assert set(SANDBOX_CASES) <= names
    innocent = sorted(n for n in names if n not in SANDBOX_CASES)
    assert all(name < innocent[0] for name in SANDBOX_CASES if name != "zz_heir")  # graded before the innocent
    assert innocent[-1] < "zz_heir"  # and the heir after everyone



@needs_root
def test_files_the_course_did_not_release_stay_out_of_the_kernels_folder(mini_course):
    """nbgrader copies every file of solutions/<id>/ into the kernel's folder; only released ones stay in view."""
    for folder in ("solutions", "exercises"):
        (mini_course / folder / ASSIGNMENT / "data.csv").write_text("w,lam\n1,0.5\n")  # released with the exercise
    (mini_course / "solutions" / ASSIGNMENT / "answer_key.py").write_text("ANSWER = 'kept by the instructor'\n")
    ref = _submit(mini_course, "looker", "import os\nprint('sees', sorted(os.listdir('.')))")
    (outcome,) = engine.grade_many(mini_course, [ref], LIMITS, workers=1)
    assert (outcome.status, outcome.score) == (Status.GRADED, 3.0), outcome
    seen = printed(mini_course, "looker")
    assert "'data.csv'" in seen and "answer_key" not in seen, seen


@needs_root
def test_a_contained_kernel_takes_interrupts_and_sees_only_what_it_is_given(tmp_path):
    """The launcher's three processes, driven as nbclient drives them: SIGINT reaches the kernel through
    both, a file the grader hands over (``read_only``) is readable, its neighbours are not there."""
    import json
    import threading

    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpec

    job, folder = tmp_path / "job", tmp_path / "course" / "autograded" / "ann" / ASSIGNMENT
    for path in (job / "run", job / "view", job / "scratch", folder):
        path.mkdir(parents=True, mode=0o700)
    (job / "given.txt").write_text("handed over")
    (job / "kept.txt").write_text("not handed over")
    uid = sandbox.KERNEL_UID_BASE + threading.get_native_id()
    spec = {"isolate": True, "report": str(job / "isolation.json"), "course": str(tmp_path / "course"), "uid": uid,
            "run": str(job / "run"), "view": str(job / "view"), "scratch": str(job / "scratch"),
            "limits": sandbox.kernel_limits(), "checkout": sandbox.grader_checkout(), "withheld": [], "keep_env": [],
            "read_only": [str(job / "given.txt")], "cwd": str(folder)}
    km = KernelManager(transport="ipc", ip=str(job / "run" / "k"), connection_file=str(job / "run" / "kernel.json"))
    km._kernel_spec = KernelSpec(argv=[sys.executable, "-P", "-m", "regcourse.grading.kernel_launcher", "-f",
                                       "{connection_file}"], display_name="k", language="python",
                                 interrupt_mode="signal")
    km.start_kernel(env=dict(os.environ, REGCOURSE_SANDBOX=json.dumps(spec)), cwd=str(folder))
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        out = []
        code = (f"import os; print(open({str(job / 'given.txt')!r}).read(), os.path.exists({str(job / 'kept.txt')!r}), "
                "os.getpid(), os.getppid())")
        reply = kc.execute_interactive(code, timeout=30, output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok" and "".join(out).split() == ["handed", "over", "False", "2", "1"]
        msg_id = kc.execute("import time\nwhile True: time.sleep(0.01)")
        time.sleep(1)
        km.interrupt_kernel()  # SIGINT to the launcher's process group, as nbclient sends it
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["ename"] == "KeyboardInterrupt"
        assert json.loads((job / "isolation.json").read_text())["user"] is True
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        sandbox.kill_user(uid)
    assert not any(p.info["uids"] and p.info["uids"].real == uid for p in psutil.process_iter(["uids"]))
