"""How much faster `regcourse grade` is than stock `nbgrader autograde`, on the same submissions.

    .venv/bin/python benchmarks/grading_speedup.py [K] [--workers N] [--workload a2|bench]

Two workloads:

- ``a2`` (default): K submissions of the course's own ``a2_penalties``, which
  import TensorFlow and Keras: half correct (the instructor's notebook and
  the correct variants of tests/assignment_variants), a quarter wrong (its
  wrong variants), a quarter crashing (an exception; every other one kills its
  kernel). This is the workload warm kernels are for: each cold kernel pays
  TensorFlow's import (about 4.75 s of CPU).
- ``bench``: K submissions of a tiny NumPy assignment whose test does about
  1.5 s of real, single-threaded work, in the same mix; no TensorFlow. The
  notebook's own execution (nbclient, kernel start included) is measured
  too: the floor under any grader.

In one run, on identical copies of the submissions, it grades with:

1. stock ``nbgrader autograde <assignment>``, sequentially (cold kernels);
2. ``regcourse grade --workers N`` with every kernel started cold
   (``REGCOURSE_COLD_KERNELS=1``);
3. ``regcourse grade --workers N``, warm kernels (the default): each kernel a
   fork of the worker's fork server, which imported TensorFlow once;
4. the same, warm, without the kernel sandbox (``REGCOURSE_NO_SANDBOX=1``;
   only when run as root, where the sandbox is on): what the sandbox costs.

It prints the times and the ratios between them (goals: warm at least 5x
stock on the a2 workload, at least 1.8x on bench, with 2 workers on 2
cores), each command's start-up, the judge's share of the submissions' time
(the hidden tests are judged outside the kernel; goal: at most 10 %), the
sandbox's cost (goal: within 10 %), the memory of the warm fork server and
of each forked kernel (resident, proportional and unique set sizes: a warm
kernel shares the server's pages until it writes them, so PSS and USS say
what it costs), and checks that every grader gave the same scores. The exit
status is 1 when a goal is missed.

Both commands spend about 2.3 s starting (importing nbgrader); no number of
workers shortens that, so very small batches show smaller ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
BENCH = "bench"
A2 = "a2_penalties"
#: Warm engine against stock nbgrader, per workload (2 workers, 2 cores).
SPEEDUP_GOALS = {"a2": 5.0, "bench": 1.8}
SANDBOX_COST_GOAL = 0.10
OVERHEAD_GOAL_S = 1.0
JUDGE_SHARE_GOAL = 0.10
WORK_TARGET_S = 1.5

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
WORKLOAD = '''def workload(power_iteration, rounds):
    """Dominant eigenvalues of many small symmetric matrices: real, single-threaded NumPy work."""
    rng = np.random.default_rng(0)
    total = 0.0
    for _ in range(rounds):
        a = rng.random((40, 40))
        total += power_iteration(a + a.T, 30)
    return total'''
SOLUTION = '''def power_iteration(a, steps):
    """The dominant eigenvalue of the symmetric matrix ``a`` by ``steps`` power iterations."""
    ### BEGIN SOLUTION
    v = np.ones(a.shape[0])
    for _ in range(steps):
        v = a @ v
        v /= np.linalg.norm(v)
    return float(v @ a @ v)
    ### END SOLUTION'''
# The visible test is quick; the hidden one (regcourse.grading.checks.bench) does the work, judged.
TEST = '''m = np.diag([5.0, 2.0, 1.0]) + 0.1
assert abs(power_iteration(m, 200) - np.linalg.eigvalsh(m)[-1]) < 1e-6
### BEGIN HIDDEN TESTS
from regcourse.grading.judge import hidden_check

hidden_check("bench", "test_power_iteration", globals())
### END HIDDEN TESTS'''

ANSWERS = {
    "correct": SOLUTION.replace("    ### BEGIN SOLUTION\n", "").replace("\n    ### END SOLUTION", ""),
    "wrong": "def power_iteration(a, steps):\n    return float(np.trace(a)) / a.shape[0]  # the mean eigenvalue",
    "raises": "def power_iteration(a, steps):\n    raise ValueError('not done yet')",
    "kills_kernel": "import os\nos._exit(1)",
}


def rounds_for(seconds: float) -> int:
    """How many workload rounds take ``seconds`` on this machine (measured here, in one process).

    After a warm-up, the median of five timings: one timing alone varied by 2x between runs.
    """
    import statistics

    import numpy as np

    namespace = {"np": np}
    exec(WORKLOAD, namespace)
    exec(ANSWERS["correct"], namespace)
    workload, answer = namespace["workload"], namespace["power_iteration"]
    workload(answer, 100)
    per_round = []
    for _ in range(5):
        start = time.perf_counter()
        workload(answer, 200)
        per_round.append((time.perf_counter() - start) / 200)
    return max(1, round(seconds / statistics.median(per_round)))


def meta(grade_id, **extra):
    return {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                         "solution": False, "task": False, **extra}}


def make_bench_course(course: Path, rounds: int) -> None:
    cell, md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.cells = [
        md("# Benchmark assignment: power iteration"),
        cell(f"import numpy as np\nROUNDS = {rounds}\n\n{WORKLOAD}", metadata=meta("setup", locked=True)),
        cell(SOLUTION, metadata=meta("power_iteration", solution=True)),
        cell(TEST, metadata=meta("test_power_iteration", grade=True, locked=True, points=1)),
    ]
    (course / "solutions" / BENCH).mkdir(parents=True)
    nbformat.write(nb, course / "solutions" / BENCH / f"{BENCH}.ipynb")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    run([sys.executable, "-m", "nbgrader", "generate_assignment", BENCH, "--force"], course, check=True)


def mix(k: int) -> list[str]:
    """Answer kinds of K submissions: half correct, a quarter wrong, the rest crashing."""
    kinds = ["correct"] * (k // 2) + ["wrong"] * (k // 4)
    crashing = ["raises", "kills_kernel"]
    return kinds + [crashing[i % 2] for i in range(k - len(kinds))]


def bench_submissions(course: Path, k: int) -> list[str]:
    release = nbformat.read(course / "exercises" / BENCH / f"{BENCH}.ipynb", 4)
    students = []
    for i, kind in enumerate(mix(k)):
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        for c in nb.cells:
            if c.metadata.get("nbgrader", {}).get("grade_id") == "power_iteration":
                c.source = ANSWERS[kind]
        student = f"s{i:03d}-{kind}"
        target = course / "submitted" / student / BENCH
        target.mkdir(parents=True)
        nbformat.write(nb, target / f"{BENCH}.ipynb")
        students.append(student)
    return students


def a2_course(course: Path, k: int) -> list[str]:
    """The course's a2_penalties released in ``course``, with K submissions built as the tests build them."""
    from grading_harness import Submission, build_submission, make_course, submissions_for

    make_course(course, [A2])
    variants = submissions_for(A2)
    correct = [v for v in variants if v.student == "solution" or v.student.startswith("correct-")]
    wrong = [v for v in variants if v.student.startswith("wrong-")]
    first_answer = next(c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(
        course / "solutions" / A2 / f"{A2}.ipynb", 4).cells if c.metadata.get("nbgrader", {}).get("solution"))
    crash = {"raises": "raise ValueError('not done yet')", "kills_kernel": "import os\nos._exit(1)"}
    students, counters = [], {"correct": 0, "wrong": 0}
    for i, kind in enumerate(mix(k)):
        if kind in counters:
            pool = correct if kind == "correct" else wrong
            base = pool[counters[kind] % len(pool)]
            counters[kind] += 1
            sub = Submission(f"s{i:03d}-{kind}-{base.student}", A2, base.replacements, skip_experiment=True)
        else:
            sub = Submission(f"s{i:03d}-{kind}", A2, {first_answer: crash[kind]}, skip_experiment=True)
        build_submission(course, sub)
        students.append(sub.student)
    return students


def environment() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env  # the kernels' own variables come from the course's nbgrader_config.py


def run(cmd, cwd: Path, check=False) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=environment(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{result.stdout}\n{result.stderr}")
    return seconds, result


def own_execution(course: Path, subs) -> list[float]:
    """Seconds to execute each submission with nbclient (kernel start included), as nbgrader does."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    solution_nb = nbformat.read(course / "solutions" / BENCH / f"{BENCH}.ipynb", 4)
    test_source = solution_nb.cells[3].source  # what nbgrader restores into the test cell
    times = []
    for student in subs:
        nb = nbformat.read(course / "submitted" / student / BENCH / f"{BENCH}.ipynb", 4)
        nb.cells[3].source = test_source
        start = time.perf_counter()
        try:
            NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                           extra_arguments=["--HistoryManager.hist_file=:memory:"],  # as nbgrader runs it
                           resources={"metadata": {"path": str(course)}}).execute(stderr=subprocess.DEVNULL)
        except DeadKernelError:
            pass
        times.append(time.perf_counter() - start)
    return times


def scores(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student_id: float(s.score) for s in gb.find_assignment(assignment).submissions}


def stock_command(assignment: str) -> list[str]:
    return [sys.executable, "-m", "nbgrader", "autograde", assignment]


def new_command(assignment: str, workers: int) -> list[str]:
    return [str(Path(sys.executable).parent / "regcourse"), "grade", assignment, "--workers", str(workers), "--plain"]


def start_up(course: Path, assignment: str, workers: int) -> tuple[float, float]:
    """Seconds each command takes with no submission to grade: what it costs before the first one."""
    empty = course.parent / f"{course.name}-empty"
    shutil.copytree(course, empty, ignore=shutil.ignore_patterns("submitted", "autograded", "feedback", "reports"))
    (empty / "submitted").mkdir()
    stock_s, _ = run(stock_command(assignment), empty)
    new_s, result = run(new_command(assignment, workers), empty)
    if result.returncode != 0:
        raise RuntimeError(f"regcourse grade with no submissions failed:\n{result.stdout}\n{result.stderr}")
    return stock_s, new_s


class MemorySampler(threading.Thread):
    """Every half second: the fork servers' memory, and each autograde's kernel (all its descendants)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.server: dict[str, int] = {}
        self.kernels: dict[int, dict[str, int]] = {}  # autograde pid -> the largest sizes seen

    def run(self) -> None:
        import psutil

        while not self.stop.wait(0.5):
            for proc in psutil.process_iter(["cmdline", "ppid"]):
                try:
                    if "regcourse.grading.forkserver" not in " ".join(proc.info["cmdline"] or []) or \
                            "forkserver" in " ".join(psutil.Process(proc.info["ppid"]).cmdline()):
                        continue  # not a server (its forks keep its command line)
                    self._keep(self.server, [proc])
                    for job in proc.children():
                        self._keep(self.kernels.setdefault(job.pid, {}), job.children(recursive=True))
                except psutil.Error:
                    continue

    @staticmethod
    def _keep(largest: dict[str, int], procs) -> None:
        import psutil

        sizes = {"rss": 0, "pss": 0, "uss": 0}
        for proc in procs:
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            for key in sizes:
                sizes[key] += getattr(info, key)
        if sizes["rss"]:
            for key, value in sizes.items():
                largest[key] = max(largest.get(key, 0), value)


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def grade_new(course: Path, assignment: str, workers: int, **env: str) -> tuple[float, dict, subprocess.CompletedProcess]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        seconds, result = run(new_command(assignment, workers), course)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if result.returncode != 0:
        raise RuntimeError(f"regcourse grade failed:\n{result.stdout}\n{result.stderr}")
    return seconds, json.loads((course / "reports" / f"{assignment}-run.json").read_text()), result


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("k", nargs="?", type=int, default=24, help="number of submissions (default 24)")
    args.add_argument("--workers", type=int, default=2, help="workers of the new command (default 2)")
    args.add_argument("--workload", choices=sorted(SPEEDUP_GOALS), default="a2", help="a2 (default) or bench")
    options = args.parse_args(argv)
    assignment = A2 if options.workload == "a2" else BENCH
    sandboxed = os.geteuid() == 0 and sys.platform.startswith("linux")
    with tempfile.TemporaryDirectory() as tmp:
        stock = Path(tmp) / "stock"
        stock.mkdir()
        if options.workload == "a2":
            students = a2_course(stock, options.k)
            print(f"{options.k} submissions of {A2} (TensorFlow), {os.cpu_count()} cores")
        else:
            rounds = rounds_for(WORK_TARGET_S)
            make_bench_course(stock, rounds)
            students = bench_submissions(stock, options.k)
            print(f"{options.k} submissions of the NumPy bench assignment, {os.cpu_count()} cores; test work "
                  f"calibrated to {WORK_TARGET_S} s ({rounds} rounds)")
        runs = {name: Path(tmp) / name for name in ("cold", "warm", "unsandboxed")}
        for copy in runs.values():
            shutil.copytree(stock, copy)
        kinds = sorted({s.split("-")[1] for s in students})
        print("mix: " + ", ".join(f"{sum(1 for s in students if s.split('-')[1] == k)} {k}" for k in kinds))
        if options.workload == "bench":
            own = own_execution(stock, students)
            print(f"notebooks' own execution (nbclient, sequential): {sum(own):6.1f} s, "
                  f"{sum(own) / len(own):.2f} s per submission")

        stock_s, result = run(stock_command(assignment), stock)
        print(f"stock `nbgrader autograde` (sequential, cold):   {stock_s:6.1f} s "
              f"(exit status {result.returncode}: {'a crashed kernel fails the run' if result.returncode else 'ok'})")
        cold_s, cold, _ = grade_new(runs["cold"], assignment, options.workers, REGCOURSE_COLD_KERNELS="1")
        print(f"`regcourse grade --workers {options.workers}`, cold kernels:   {cold_s:6.1f} s "
              f"(grading {cold['grading_seconds']:.1f} s)")
        sampler = MemorySampler()
        sampler.start()
        warm_s, warm, _ = grade_new(runs["warm"], assignment, options.workers)
        sampler.stop.set()
        print(f"`regcourse grade --workers {options.workers}`, warm kernels:   {warm_s:6.1f} s "
              f"(grading {warm['grading_seconds']:.1f} s)")
        if sandboxed:
            bare_s, _, _ = grade_new(runs["unsandboxed"], assignment, options.workers, REGCOURSE_NO_SANDBOX="1")
            print(f"the same, warm, without the sandbox:            {bare_s:6.1f} s")
        stock_start, new_start = start_up(stock, assignment, options.workers)
        print(f"start-up, both commands with no submission:     {stock_start:6.1f} s stock, {new_start:.1f} s new")

        speedup = stock_s / warm_s
        goal = SPEEDUP_GOALS[options.workload]
        print(f"speedup, whole command: warm {speedup:.2f}x stock (goal >= {goal}x), cold {stock_s / cold_s:.2f}x "
              f"stock; warm {cold_s / warm_s:.2f}x cold; per submission, once started: "
              f"{(stock_s - stock_start) / max(warm_s - new_start, 1e-9):.2f}x")
        overhead = 0.0
        if options.workload == "bench":  # the engine's own cost per submission, beyond executing the notebook
            overhead = options.workers * warm["grading_seconds"] / options.k - sum(own) / len(own)
            print(f"overhead per submission beyond its own execution: {overhead:.2f} s (workers x grading time / K "
                  f"- own; goal < {OVERHEAD_GOAL_S} s)")
        sandbox_cost = warm_s / bare_s - 1 if sandboxed else 0.0
        if sandboxed:
            print(f"the sandbox costs {100 * sandbox_cost:+.1f} % of the warm run (goal <= {100 * SANDBOX_COST_GOAL:.0f} %)")
        judge_share = warm["judge_seconds"] / max(warm["submission_seconds"], 1e-9)
        print(f"the judge (outside the kernel): {warm['judge_seconds']:.2f} s in all, "
              f"{1000 * warm['judge_seconds'] / options.k:.0f} ms per submission, {100 * judge_share:.1f} % of the "
              f"submissions' time (goal <= {100 * JUDGE_SHARE_GOAL:.0f} %)")
        if sampler.server:
            kernels = [k for k in sampler.kernels.values() if k]
            print(f"memory: the fork server {mib(sampler.server['rss'])} resident, {mib(sampler.server['pss'])} "
                  f"proportional (PSS); each kernel at its largest (mean of {len(kernels)}): "
                  + ", ".join(f"{key.upper()} {mib(sum(k[key] for k in kernels) / max(len(kernels), 1))}"
                              for key in ("rss", "pss", "uss")))
        graded = {"stock": scores(stock, assignment), **{name: scores(c, assignment) for name, c in runs.items()
                                                         if name != "unsandboxed" or sandboxed}}
        # A kernel killed by a cell: stock nbgrader gives up on the notebook (zero), the engine scores zero on
        # that cell and grades the rest (by design); so those are compared among the engine's runs only.
        def compared(student):
            return {name: g.get(student) for name, g in graded.items()
                    if name != "stock" or "kills_kernel" not in student}

        differing = {s: compared(s) for s in students if len(set(compared(s).values())) > 1}
        print(f"same scores from every grader (stock left out where a kernel is killed): "
              f"{'yes' if not differing else f'no: {differing}'}")
    met = speedup >= goal and overhead < OVERHEAD_GOAL_S and judge_share <= JUDGE_SHARE_GOAL and sandbox_cost <= SANDBOX_COST_GOAL and not differing
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
