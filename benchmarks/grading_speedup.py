"""How much faster `regcourse grade` is than stock `nbgrader autograde`, on the same submissions.

    .venv/bin/python benchmarks/grading_speedup.py [K] [--workers N]

Makes K submissions (default 24: half correct, a quarter wrong, a quarter
crashing: an exception, a dead kernel) of a tiny NumPy assignment whose test
does about 1.5 s of real, single-threaded work, then in the same run:

1. executes every submission notebook directly with nbclient (kernel start
   included): the notebook's own execution time, the floor under any grader;
2. grades them with stock `nbgrader autograde <assignment>`, sequentially;
3. grades an identical copy with `regcourse grade <assignment> --workers 2`;
4. runs both commands once more with no submission at all: their start-up.

It prints the times, the ratio stock / new for the whole command (goal: at
least 1.8x on 2 cores), the same ratio per submission once both have started
(what a class of 300 sees), the per-submission overhead beyond the
notebook's own execution (goal: under 1 s), the judge's share of the
submissions' time (the hidden test is judged outside the kernel, see
``regcourse.grading.checks.bench``; goal: at most 10 %), and checks that both graders gave
the same scores. The exit status is 1 when a goal is missed.

Both commands spend about 2.3 s starting (importing nbgrader, a third of it
a URI grammar jsonschema builds at import), and no number of workers shortens
that: with K=12 small notebooks it is a tenth of the stock run, so the
whole-command ratio stays under 1.8x even at 2x per submission. K=24 (a
small section) is the default; pass K to see any other size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "bench"
SPEEDUP_GOAL = 1.8
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


def make_course(course: Path, rounds: int) -> None:
    cell, md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.cells = [
        md("# Benchmark assignment: power iteration"),
        cell(f"import numpy as np\nROUNDS = {rounds}\n\n{WORKLOAD}", metadata=meta("setup", locked=True)),
        cell(SOLUTION, metadata=meta("power_iteration", solution=True)),
        cell(TEST, metadata=meta("test_power_iteration", grade=True, locked=True, points=1)),
    ]
    (course / "solutions" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(nb, course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"], course, check=True)


def submissions(k: int) -> list[tuple[str, str]]:
    """(student, answer kind): half correct, a quarter wrong, the rest crashing."""
    kinds = ["correct"] * (k // 2) + ["wrong"] * (k // 4)
    crashing = ["raises", "kills_kernel"]
    kinds += [crashing[i % 2] for i in range(k - len(kinds))]
    return [(f"s{i:03d}-{kind}", kind) for i, kind in enumerate(kinds)]


def write_submissions(course: Path, subs) -> None:
    release = nbformat.read(course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    for student, kind in subs:
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        for c in nb.cells:
            if c.metadata.get("nbgrader", {}).get("grade_id") == "power_iteration":
                c.source = ANSWERS[kind]
        target = course / "submitted" / student / ASSIGNMENT
        target.mkdir(parents=True)
        nbformat.write(nb, target / f"{ASSIGNMENT}.ipynb")


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

    solution_nb = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    test_source = solution_nb.cells[3].source  # what nbgrader restores into the test cell
    times = []
    for student, _ in subs:
        nb = nbformat.read(course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
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


def scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student_id: float(s.score) for s in gb.find_assignment(ASSIGNMENT).submissions}


STOCK_COMMAND = [sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT]


def new_command(workers: int) -> list[str]:
    return [str(Path(sys.executable).parent / "regcourse"), "grade", ASSIGNMENT, "--workers", str(workers), "--plain"]


def start_up(course: Path, workers: int) -> tuple[float, float]:
    """Seconds each command takes with no submission to grade: what it costs before the first one."""
    empty = course.parent / f"{course.name}-empty"
    shutil.copytree(course, empty, ignore=shutil.ignore_patterns("submitted", "autograded", "feedback", "reports"))
    (empty / "submitted").mkdir()
    stock_s, _ = run(STOCK_COMMAND, empty)
    new_s, result = run(new_command(workers), empty)
    if result.returncode != 0:
        raise RuntimeError(f"regcourse grade with no submissions failed:\n{result.stdout}\n{result.stderr}")
    return stock_s, new_s


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("k", nargs="?", type=int, default=24, help="number of submissions (default 24)")
    args.add_argument("--workers", type=int, default=2, help="workers of the new command (default 2)")
    options = args.parse_args(argv)
    subs = submissions(options.k)
    rounds = rounds_for(WORK_TARGET_S)
    counts = {kind: sum(1 for _, k in subs if k == kind) for kind in ANSWERS}
    print(f"{options.k} submissions ({', '.join(f'{n} {kind}' for kind, n in counts.items())}), "
          f"{os.cpu_count()} cores; test work calibrated to {WORK_TARGET_S} s ({rounds} rounds)")
    with tempfile.TemporaryDirectory() as tmp:
        stock, new = Path(tmp) / "stock", Path(tmp) / "new"
        stock.mkdir()
        make_course(stock, rounds)
        write_submissions(stock, subs)
        shutil.copytree(stock, new)

        own = own_execution(stock, subs)
        mean_own = sum(own) / len(own)
        print(f"notebook's own execution (nbclient, sequential): {sum(own):6.1f} s, {mean_own:.2f} s per submission")

        stock_s, result = run(STOCK_COMMAND, stock)
        print(f"stock `nbgrader autograde` (sequential):        {stock_s:6.1f} s "
              f"(exit status {result.returncode}: {'a crashed kernel fails the run' if result.returncode else 'ok'})")

        new_s, result = run(new_command(options.workers), new)
        if result.returncode != 0:
            print(result.stdout, result.stderr)
            return 1
        timing = json.loads((new / "reports" / f"{ASSIGNMENT}-run.json").read_text())
        grading_s = timing["grading_seconds"]
        print(f"`regcourse grade --workers {options.workers}`:            {new_s:6.1f} s "
              f"(grading {grading_s:.1f} s; before it: start-up, collecting; after it: the last "
              f"feedback ({timing['feedback_seconds']:.1f} s), grades.csv, plots)")
        stock_start, new_start = start_up(stock, options.workers)
        print(f"start-up, both commands with no submission:     {stock_start:6.1f} s stock, {new_start:.1f} s new")

        speedup = stock_s / new_s
        per_submission = (stock_s - stock_start) / max(new_s - new_start, 1e-9)
        print(f"speedup, whole command: {speedup:.2f}x (goal >= {SPEEDUP_GOAL}x); per submission, once started: "
              f"{per_submission:.2f}x; grading phase alone: {stock_s / grading_s:.2f}x")
        overhead = options.workers * grading_s / options.k - mean_own
        stock_overhead = (stock_s - stock_start) / options.k - mean_own
        print(f"overhead per submission beyond its own execution: {overhead:.2f} s "
              f"(workers x grading time / K - own; stock nbgrader: {stock_overhead:.2f} s; goal < {OVERHEAD_GOAL_S} s)")
        with (new / "reports" / f"{ASSIGNMENT}-outcomes.csv").open() as f:
            each = [float(row["seconds"]) for row in csv.DictReader(f)]
        print(f"  each submission took {sum(each) / len(each):.2f} s on average inside the engine "
              f"({sum(each) / len(each) - mean_own:+.2f} s against executing it alone)")
        judge_share = timing["judge_seconds"] / max(timing["submission_seconds"], 1e-9)
        print(f"the judge (outside the kernel): {timing['judge_seconds']:.2f} s in all, "
              f"{1000 * timing['judge_seconds'] / options.k:.0f} ms per submission, {100 * judge_share:.1f} % of the "
              f"submissions' time (goal <= {100 * JUDGE_SHARE_GOAL:.0f} %)")
        stock_scores, new_scores = scores(stock), scores(new)
        differing = {s: (stock_scores.get(s), new_scores.get(s)) for s, _ in subs
                     if stock_scores.get(s) != new_scores.get(s)}
        print(f"same scores from both graders: {'yes' if not differing else f'no, (stock, new): {differing}'}")
    met = speedup >= SPEEDUP_GOAL and overhead < OVERHEAD_GOAL_S and judge_share <= JUDGE_SHARE_GOAL and not differing
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
