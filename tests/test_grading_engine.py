"""The grading engine: parallel and consistent, limited, isolated, fair to hostile code (issue 4).

Every test grades submissions of the corpus' tiny ``mini`` assignment (NumPy
only, two test cells worth 1 and 2 points; see ``tests/grading_corpus``) with
the real engine: stock nbgrader in forked processes, real kernels. The
end-to-end tests grade the whole hostile corpus through the command; these
pin down the engine's own mechanics: the gradebook under concurrency, Dask,
each limit and how the cell that broke it is found and stopped, the kernel's
isolation (when the tests run as root, as in CI), the integrity checks.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from grading_corpus import (
    ASSIGNMENT,
    CORRECT_L1,
    CORRECT_L2,
    NOTEBOOK,
    WRONG_L1,
    WRONG_L2,
    cells_by_id,
    student_notebook,
    write_assignment_source,
)
from regcourse.grading import engine, sandbox
from regcourse.grading.model import Limits, Status, SubmissionRef

AS_ROOT = sandbox.wanted()
MiB = 1024**2
#: Small limits so that each limit is reached in seconds. 400 MiB: a NumPy
#: kernel uses ~100 MiB; the bombs below go to 1 GiB at most. 6 s a cell: the
#: per-cell clock is a wall clock, and the rest of the suite grades TensorFlow on
#: the same two cores (CI once stopped an honest cell at 3 s).
FAST = Limits(cell_timeout_s=6, notebook_timeout_s=60, memory_bytes=400 * MiB, output_bytes=50_000)
#: For the tests of the gradebook, the workers and the scheduler, where no cell is
#: meant to reach a limit: four kernels on two busy cores must not reach one
#: either.
ROOMY = Limits(cell_timeout_s=60, notebook_timeout_s=180, memory_bytes=400 * MiB, output_bytes=50_000)
FULL = {"test_l2_norm": (1.0, 1.0), "test_l1_penalty": (2.0, 2.0)}


@pytest.fixture(scope="module")
def course(mini_course_template, tmp_path_factory):
    """One copy of the released ``mini`` course for this module; each test uses its own students."""
    return shutil.copytree(mini_course_template, tmp_path_factory.mktemp("engine") / "course")


def submit(course: Path, student: str, nb=None, **solutions: str) -> SubmissionRef:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb if nb is not None else student_notebook(course, **solutions), folder / NOTEBOOK)
    return SubmissionRef(student, ASSIGNMENT)


def grade_rows(course: Path, students: list[str]) -> list[tuple[str, str, int]]:
    """(student, test cell, number of grade rows) straight from the SQLite gradebook."""
    with sqlite3.connect(course / "gradebook.db") as db:
        return db.execute(
            f"""select student.id, base_cell.name, count(*) from grade
            join submitted_notebook on grade.notebook_id = submitted_notebook.id
            join submitted_assignment on submitted_notebook.assignment_id = submitted_assignment.id
            join student on submitted_assignment.student_id = student.id
            join base_cell on grade.cell_id = base_cell.id
            where student.id in ({','.join('?' * len(students))}) group by 1, 2""",
            students,
        ).fetchall()


# -- the gradebook under concurrency ------------------------------------------------------------

VARIANTS = {
    "right": ({}, FULL),
    "wrong-l2": ({"l2_norm": WRONG_L2}, {"test_l2_norm": (0.0, 1.0), "test_l1_penalty": (2.0, 2.0)}),
    "wrong-l1": ({"l1_penalty": WRONG_L1}, {"test_l2_norm": (1.0, 1.0), "test_l1_penalty": (0.0, 2.0)}),
    "wrong-both": ({"l2_norm": WRONG_L2, "l1_penalty": WRONG_L1}, {"test_l2_norm": (0.0, 1.0), "test_l1_penalty": (0.0, 2.0)}),
}


def test_parallel_grades_land_once_and_equal_one_at_a_time_grading(course):
    refs = [submit(course, f"par-{name}", **solutions) for name, (solutions, _) in VARIANTS.items()]
    arrived = []
    parallel = engine.grade_many(course, refs, ROOMY, workers=4, on_result=arrived.append)
    assert [o.student for o in parallel] == [r.student for r in refs]  # the order of refs
    assert sorted(o.student for o in arrived) == sorted(r.student for r in refs)  # each reported once
    for outcome, (_, expected) in zip(parallel, VARIANTS.values()):
        assert (outcome.status, outcome.test_results, outcome.flags) == (Status.GRADED, expected, []), outcome
        assert outcome.score == sum(score for score, _ in expected.values())
    one_at_a_time = engine.grade_many(course, refs, ROOMY, workers=1)  # regrading replaces, never adds
    assert [(o.score, o.test_results) for o in one_at_a_time] == [(o.score, o.test_results) for o in parallel]
    rows = grade_rows(course, [r.student for r in refs])
    assert len(rows) == 2 * len(refs) and {n for *_, n in rows} == {1}, rows
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_a_submission_listed_twice_is_refused_before_grading(course):
    ref = SubmissionRef("twice", ASSIGNMENT)
    with pytest.raises(ValueError, match="twice/mini"):
        engine.grade_many(course, [ref, ref], ROOMY, workers=2)


def test_dask_cluster_grades_the_same(course, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    refs = [submit(course, f"dask-{name}", **VARIANTS[name][0]) for name in ("right", "wrong-l1")]
    import dask

    # the scheduler's and the workers' scratch space, else left in the machine's temporary folder
    with dask.config.set({"temporary-directory": str(tmp_path)}), distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
    ) as cluster:
        outcomes = engine.grade_many(course, refs, ROOMY, scheduler=cluster.scheduler_address)
    assert [(o.student, o.status, o.test_results) for o in outcomes] == [
        (refs[0].student, Status.GRADED, VARIANTS["right"][1]),
        (refs[1].student, Status.GRADED, VARIANTS["wrong-l1"][1]),
    ]


@pytest.mark.skipif(not os.environ.get("REGCOURSE_TEST_POSTGRES_URL"), reason="REGCOURSE_TEST_POSTGRES_URL not set")
def test_postgresql_gradebook_takes_parallel_graders(tmp_path):
    """nbgrader's db_url pointing at PostgreSQL: what graders on several machines share."""
    url = os.environ["REGCOURSE_TEST_POSTGRES_URL"]
    pg_course = tmp_path / "course"
    write_assignment_source(pg_course)
    with open(pg_course / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.CourseDirectory.db_url = {url!r}\n")
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"],
                   cwd=pg_course, check=True, capture_output=True)
    run = uuid.uuid4().hex[:8]  # the database outlives the test: students unique to this run
    refs = [submit(pg_course, f"pg-{run}-{name}", **solutions) for name, (solutions, _) in VARIANTS.items()]
    outcomes = engine.grade_many(pg_course, refs, ROOMY, workers=4)
    assert [o.test_results for o in outcomes] == [expected for _, expected in VARIANTS.values()]
    assert not (pg_course / "gradebook.db").exists()


# -- limits, hostile code, isolation: one batch ------------------------------------------------

TARGET_MODE = 0o640

#: Each case: what the student's l2_norm / l1_penalty cells hold.
HOSTILE = {
    # A function the test calls eats memory: the test cell is stopped, the other one graded.
    "bomb-in-test": {"l2_norm": "def l2_norm(w):\n    hoard = []\n    for _ in range(8):\n"
                                "        hoard.append(np.ones(2**24))\n    return 0.0"},
    # The kernel process exits under the l1 cell: that cell is stopped, its test fails, the rest graded.
    "kernel-exit": {"l1_penalty": "import os\nos._exit(3)"},
    # Interrupted at the per-cell limit, so it never gets to define l2_norm: its test fails.
    "endless": {"l2_norm": "while True:\n    pass\n" + CORRECT_L2},
    # Ignores the interrupt: nbgrader gives up on the kernel; the cell is stopped in a second run.
    "deaf-loop": {"l1_penalty": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"},
    # 200 kB of stdout is cut at the cap; stderr written by a tested function still scores zero
    # (stock nbgrader: a test cell with stderr output fails), truncated or not.
    "flood": {"l1_penalty": "print('y' * 200_000)\n" + CORRECT_L1,
              "l2_norm": "import sys\ndef l2_norm(w):\n    sys.stderr.write('z' * 100_000)\n"
                         "    return float(np.linalg.norm(np.ravel(w)))"},
    # Ways to make the kernel's own checks pass wrong answers: the judge outside the kernel is not fooled.
    "tamper": {"l2_norm": "import builtins, types\n"
                          "np.testing.assert_allclose = lambda *a, **k: None\n"
                          "builtins.abs = lambda x: 0\n"
                          "checking = types.SimpleNamespace(relative_error=lambda *a: 0.0, FLOAT32_RTOL=1.0)\n"
                          "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)\n" + WRONG_L2,
               "l1_penalty": WRONG_L1},
    "control": {},
}


def _snooper(course: Path, target: Path) -> str:
    """An l2_norm cell that is correct only if no secret was readable, no network reachable."""
    secrets = [course / "solutions" / ASSIGNMENT / NOTEBOOK, course / "gradebook.db",
               course / "submitted" / "control" / ASSIGNMENT / NOTEBOOK, NOTEBOOK,
               f"../../../solutions/{ASSIGNMENT}/{NOTEBOOK}", target]
    return f'''import os, socket, subprocess
leaks = []
for path in {[str(p) for p in secrets]!r}:
    try:
        open(path, "rb").read(1)
        leaks.append(path)
    except OSError:
        pass
try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)
    leaks.append("network")
except OSError:
    pass
if os.getuid() == 0:
    leaks.append("root")
os.symlink({str(target)!r}, "planted")  # nbgrader (root) would chmod this after the run
subprocess.Popen(["sleep", "600"], start_new_session=True)  # outlives the kernel unless killed
print("leaks:", leaks)
def l2_norm(w):
    return float(np.linalg.norm(np.ravel(w))) if not leaks else -1.0'''


def _cells_out_of_place(course: Path):
    """Test cells edited, deleted and moved to the top, the set-up cell deleted: all undone, all flagged."""
    nb = student_notebook(course)
    cells = cells_by_id(nb)
    cells["test_l2_norm"].source = "pass  # my tests"
    nb.cells.remove(cells["test_l1_penalty"])
    nb.cells.remove(cells["setup"])  # the imports the tests need
    nb.cells.remove(cells["test_l2_norm"])
    nb.cells.insert(1, cells["test_l2_norm"])  # before l2_norm
    return nb


@pytest.fixture(scope="module")
def hostile(course, tmp_path_factory):
    """Grade every hostile case in one batch of two workers; outcomes by student."""
    target = tmp_path_factory.mktemp("outside") / "secret.txt"
    target.write_text("not for students\n")
    target.chmod(TARGET_MODE)
    refs = [submit(course, name, **solutions) for name, solutions in HOSTILE.items()]
    refs.append(submit(course, "snoop", l2_norm=_snooper(course, target)))
    refs.append(submit(course, "out-of-place", nb=_cells_out_of_place(course)))
    refs.append(submit(course, "linked"))
    os.symlink("/etc/hostname", course / "submitted" / "linked" / ASSIGNMENT / "data.txt")
    not_json = course / "submitted" / "not-json" / ASSIGNMENT
    not_json.mkdir(parents=True)
    (not_json / NOTEBOOK).write_text('{"cells": [')
    refs.append(SubmissionRef("not-json", ASSIGNMENT))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "IOPUB_TIMEOUT_S", 3)  # give up on the deaf kernel sooner
        outcomes = engine.grade_many(course, refs, FAST, workers=2)
    return {o.student: o for o in outcomes} | {"_target": target}


def test_control_is_graded_without_remarks(hostile):
    o = hostile["control"]
    assert (o.status, o.score, o.max_score, o.flags, o.messages) == (Status.GRADED, 3.0, 3.0, [], [])


def test_memory_cap_stops_the_test_cell_that_called_the_bomb(hostile):
    o = hostile["bomb-in-test"]
    assert o.status is Status.LIMIT_EXCEEDED
    assert o.test_results == {"test_l2_norm": (0.0, 1.0), "test_l1_penalty": (2.0, 2.0)}
    assert any("test_l2_norm" in m and "400 MiB of memory" in m for m in o.messages), o.messages


def test_a_dead_kernel_costs_only_the_cell_that_killed_it(hostile):
    o = hostile["kernel-exit"]
    assert o.status is Status.LIMIT_EXCEEDED and o.score == 1.0
    assert any("'l1_penalty'" in m and "kernel died" in m for m in o.messages), o.messages


def test_a_cell_over_its_time_limit_is_interrupted_and_the_rest_runs(hostile):
    o = hostile["endless"]
    assert o.status is Status.LIMIT_EXCEEDED and o.score == 2.0
    assert any("'l2_norm'" in m and f"{FAST.cell_timeout_s} s limit per cell" in m for m in o.messages), o.messages


def test_a_kernel_deaf_to_interrupts_is_stopped_in_a_second_run(hostile):
    o = hostile["deaf-loop"]
    assert o.status is Status.LIMIT_EXCEEDED and o.test_results == {"test_l2_norm": (1.0, 1.0), "test_l1_penalty": (0.0, 2.0)}
    assert any("did not stop when interrupted" in m for m in o.messages), o.messages


def test_output_is_capped_as_it_arrives_without_changing_grades(hostile, course):
    o = hostile["flood"]
    assert o.status is Status.LIMIT_EXCEEDED
    assert o.test_results == {"test_l2_norm": (0.0, 1.0), "test_l1_penalty": (2.0, 2.0)}  # stderr still fails
    assert any("printed more than 48.8 KiB" in m for m in o.messages), o.messages
    graded = course / "autograded" / "flood" / ASSIGNMENT / NOTEBOOK
    assert graded.stat().st_size < 4 * FAST.output_bytes


def test_replaced_checking_helpers_change_no_score_and_are_flagged(hostile):
    o = hostile["tamper"]
    assert (o.status, o.score) == (Status.GRADED, 0.0)  # wrong answers, judged outside the kernel
    flags = " ".join(o.flags)
    for cell in ("test_l2_norm", "test_l1_penalty"):  # its errors swallowed: no record, or a visible case judged wrong
        assert f"of cell '{cell}'" in flags, o.flags


def test_edited_deleted_and_moved_test_cells_are_undone_and_flagged(hostile):
    o = hostile["out-of-place"]
    assert (o.status, o.test_results) == (Status.GRADED, FULL)
    flags = " ".join(o.flags)
    for words in ("edited test cell 'test_l2_norm'", "deleted test cell 'test_l1_penalty'",
                  "deleted locked cell 'setup'", "out of order"):
        assert words in flags, o.flags


def test_links_in_a_submission_are_ignored_and_flagged(hostile, course):
    o = hostile["linked"]
    assert (o.status, o.score) == (Status.GRADED, 3.0)
    assert any("data.txt" in f for f in o.flags), o.flags
    assert not (course / "autograded" / "linked" / ASSIGNMENT / "data.txt").exists()


def test_a_notebook_that_is_not_json_fails_alone_with_a_reason(hostile):
    o = hostile["not-json"]
    assert (o.status, o.score) == (Status.FAILED_TO_RUN, 0.0)
    assert any("JSON" in m for m in o.messages), o.messages


def test_the_kernel_sees_no_secret_no_network_and_leaves_nothing_behind(hostile, course):
    o = hostile["snoop"]
    if not o.isolation.get("user"):
        pytest.skip(f"kernel isolation unavailable here: {o.isolation.get('reason')}")
    assert o.isolation == {"user": True, "network": True, "files": True}, o.isolation
    assert (o.status, o.score) == (Status.GRADED, 3.0)  # l2_norm returns -1.0 on any leak
    assert (course / "autograded" / "snoop" / ASSIGNMENT).stat().st_uid == 0  # given back to root
    import psutil

    time.sleep(0.2)
    left = [p.info for p in psutil.process_iter(["name", "cmdline"]) if p.info["cmdline"] == ["sleep", "600"]]
    assert left == []


def test_attempts_to_read_course_files_are_flagged(hostile):
    flags = " ".join(hostile["snoop"].flags)
    for path in ("solutions/mini/mini.ipynb", "gradebook.db", "submitted/control/mini/mini.ipynb",
                 "autograded/snoop/mini/mini.ipynb"):
        assert f"tried to read {path}" in flags, hostile["snoop"].flags
    assert "secret.txt" not in flags  # outside the course: not the grader's business


def test_a_link_planted_by_student_code_is_removed_before_nbgrader_writes(hostile, course):
    assert not (course / "autograded" / "snoop" / ASSIGNMENT / "planted").is_symlink()
    assert hostile["_target"].stat().st_mode & 0o777 == TARGET_MODE  # nbgrader's chmod 444 did not follow it


def test_every_outcome_says_whether_the_kernel_was_isolated_and_if_not_why(hostile):
    for name, o in hostile.items():
        if name in ("_target", "not-json"):  # not-json: no kernel ever started
            continue
        assert set(o.isolation) >= {"user", "network", "files"}, (name, o.isolation)
        assert all(o.isolation[k] for k in ("user", "network", "files")) or o.isolation["reason"], (name, o.isolation)
    if not AS_ROOT:
        assert hostile["control"].isolation["reason"] == sandbox.unavailable_reason()


# -- the notebook's wall clock ------------------------------------------------------------------

def test_notebook_time_limit_interrupts_then_skips_the_remaining_cells(course):
    ref = submit(course, "slow", l2_norm="import time\ntime.sleep(30)\n" + CORRECT_L2)
    o = engine.grade_one(course, ref, Limits(cell_timeout_s=30, notebook_timeout_s=4))
    assert (o.status, o.score) == (Status.LIMIT_EXCEEDED, 0.0)
    text = " ".join(o.messages)
    assert "reached its 4 s limit" in text and "'test_l1_penalty' did not run" in text, o.messages
    assert o.seconds < 30


def test_the_wall_clock_backstop_kills_a_run_the_limits_inside_could_not_stop(course, monkeypatch):
    """The interrupt at the notebook's limit is ignored: the whole run is killed, then regraded."""
    monkeypatch.setattr(engine, "WALL_GRACE_S", 4.0)
    monkeypatch.setattr(engine, "IOPUB_TIMEOUT_S", 60)
    deaf = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    ref = submit(course, "deaf-slow", l1_penalty=deaf)
    o = engine.grade_one(course, ref, Limits(cell_timeout_s=60, notebook_timeout_s=5))
    assert (o.status, o.test_results["test_l2_norm"]) == (Status.LIMIT_EXCEEDED, (1.0, 1.0))
    assert any("ran past its 5 s limit" in m for m in o.messages), o.messages


# -- refused before grading ---------------------------------------------------------------------

@pytest.mark.parametrize("student, words", [("a*", "patterns"), ("nobody-here", "No submission folder")])
def test_ids_nbgrader_would_misread_and_missing_folders_fail_with_a_reason(course, student, words):
    o = engine.grade_one(course, SubmissionRef(student, ASSIGNMENT), FAST)
    assert o.status is Status.FAILED_TO_RUN and any(words in m for m in o.messages), o.messages


def test_a_batch_of_several_assignments_computes_their_references_side_by_side(monkeypatch):
    """Each reference is a process of its own, mostly single-threaded: a batch of several assignments runs them
    ``workers`` at a time before grading, and the first course error still stops the batch."""
    import threading

    from regcourse.grading.course import CourseError

    running, overlapped, lock = set(), [], threading.Lock()

    def fake_reference(course_root, assignment):
        with lock:
            running.add(assignment)
            overlapped.append(len(running))
        time.sleep(0.3)
        with lock:
            running.discard(assignment)
        if assignment == "broken":
            raise CourseError("the reference solution of broken could not be probed")
        return Path(course_root) / f"{assignment}.json"

    monkeypatch.setattr(engine, "reference_records", fake_reference)
    engine._compute_references(Path("/course"), ["a1", "a2", "a3"], workers=2)
    assert max(overlapped) == 2, overlapped
    overlapped.clear()
    engine._compute_references(Path("/course"), ["a1", "a2"], workers=1)
    assert max(overlapped) == 1, overlapped
    with pytest.raises(CourseError, match="broken"):
        engine._compute_references(Path("/course"), ["a1", "broken", "a3"], workers=2)
