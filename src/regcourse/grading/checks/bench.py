"""Hidden tests of ``bench``, the power-iteration assignment of ``benchmarks/grading_speedup.py``.

The probe does the workload's real work (about 1.5 s of NumPy), as a hidden
test that exercises a function on many inputs does; the judge compares one
eigenvalue and the workload's total with the reference's.
"""

from __future__ import annotations

import numpy as np

from regcourse.grading.judge import Check, Recorder, Verdict

#: 200 power iterations on a 3x3 matrix with a spectral gap of 2.5: converged to round-off.
EIGENVALUE_RTOL = 1e-9
#: The workload sums ~ROUNDS eigenvalues of 40x40 matrices after 30 iterations each: the same
#: arithmetic in a correct implementation, up to the order of floating-point operations.
WORKLOAD_RTOL = 1e-6


def probe(ns: dict, rec: Recorder) -> None:
    power_iteration, workload = ns["power_iteration"], ns["workload"]
    rec.call("workload", lambda: float(workload(power_iteration, ns["ROUNDS"])))
    rec.call("diagonal", lambda: float(power_iteration(np.diag([5.0, 2.0, 1.0]) + 0.1, 200)))


def judge(v: Verdict) -> None:
    v.close("diagonal", "the dominant eigenvalue of diag(5, 2, 1) + 0.1", rtol=EIGENVALUE_RTOL)
    v.close("workload", "the sum of dominant eigenvalues over the workload", rtol=WORKLOAD_RTOL)


CHECKS = {"test_power_iteration": Check(probe, judge, contract=("power_iteration",))}
