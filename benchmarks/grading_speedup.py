"""How much faster `regcourse grade` is than stock `nbgrader autograde`, on the same submissions.

    .venv/bin/python benchmarks/grading_speedup.py [K] [--workers N]

Makes K submissions (default 12: half correct, a quarter wrong, a quarter
crashing: an exception, a dead kernel) of a tiny NumPy assignment whose test
does about 1.5 s of real work, then in the same run:

1. executes every submission notebook directly with nbclient (kernel start
   included): the notebook's own execution time, the floor under any grader;
2. grades them with stock `nbgrader autograde <assignment>`, sequentially;
3. grades an identical copy with `regcourse grade <assignment> --workers 2`.

It prints the three times, the ratio stock / new (goal: at least 1.8x on 2
cores) and the per-submission overhead beyond the notebook's own execution
(goal: under 1 s), and checks both graders gave the same scores. The exit
status is 1 when a goal is missed.
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
TEST = '''workload(power_iteration, ROUNDS)
m = np.diag([5.0, 2.0, 1.0]) + 0.1
assert abs(power_iteration(m, 200) - np.linalg.eigvalsh(m)[-1]) < 1e-6'''

ANSWERS = {
    "correct": SOLUTION.replace("    ### BEGIN SOLUTION\n", "").replace("\n    ### END SOLUTION", ""),
    "wrong": "def power_iteration(a, steps):\n    return float(np.trace(a)) / a.shape[0]  # the mean eigenvalue",
    "raises": "def power_iteration(a, steps):\n    raise ValueError('not done yet')",
    "kills_kernel": "import os\nos._exit(1)",
}


def rounds_for(seconds: float) -> int:
    """How many workload rounds take ``seconds`` on this machine (measured here, in one process)."""
    import numpy as np

    namespace = {"np": np}
    exec(WORKLOAD, namespace)
    exec(ANSWERS["correct"], namespace)
    start = time.perf_counter()
    namespace["workload"](namespace["power_iteration"], 200)
    per_round = (time.perf_counter() - start) / 200
    return max(1, round(seconds / per_round))


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
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


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


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("k", nargs="?", type=int, default=12, help="number of submissions (default 12)")
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

        stock_s, result = run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], stock)
        print(f"stock `nbgrader autograde` (sequential):        {stock_s:6.1f} s "
              f"(exit status {result.returncode}: {'a crashed kernel fails the run' if result.returncode else 'ok'})")

        new_s, result = run([str(Path(sys.executable).parent / "regcourse"), "grade", ASSIGNMENT, "--workers",
                             str(options.workers), "--plain"], new)
        if result.returncode != 0:
            print(result.stdout, result.stderr)
            return 1
        timing = json.loads((new / "reports" / f"{ASSIGNMENT}-run.json").read_text())
        grading_s = timing["grading_seconds"]
        print(f"`regcourse grade --workers {options.workers}`:            {new_s:6.1f} s "
              f"(grading {grading_s:.1f} s, feedback {timing['feedback_seconds']:.1f} s, the rest: start-up, "
              f"collect, reports)")

        speedup = stock_s / new_s
        grading_speedup = stock_s / grading_s
        overhead = options.workers * grading_s / options.k - mean_own
        stock_overhead = stock_s / options.k - mean_own
        print(f"speedup, whole command: {speedup:.2f}x; grading phase alone: {grading_speedup:.2f}x "
              f"(goal >= {SPEEDUP_GOAL}x)")
        with (new / "reports" / f"{ASSIGNMENT}-outcomes.csv").open() as f:
            each = [float(row["seconds"]) for row in csv.DictReader(f)]
        print(f"overhead per submission beyond its own execution: {overhead:.2f} s "
              f"(workers x grading time / K - own; stock nbgrader: {stock_overhead:.2f} s; goal < {OVERHEAD_GOAL_S} s)")
        print(f"  each submission took {sum(each) / len(each):.2f} s on average inside the engine, "
              f"{sum(each) / len(each) - mean_own:.2f} s more than executing it alone")
        stock_scores, new_scores = scores(stock), scores(new)
        differing = {s: (stock_scores.get(s), new_scores.get(s)) for s, _ in subs
                     if stock_scores.get(s) != new_scores.get(s)}
        print(f"same scores from both graders: {'yes' if not differing else f'no, (stock, new): {differing}'}")
    met = speedup >= SPEEDUP_GOAL and overhead < OVERHEAD_GOAL_S and not differing
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
