"""Hidden tests of ``mini``, the tiny NumPy assignment of the grading tests (tests/grading_corpus)."""

from __future__ import annotations

import numpy as np

from regcourse.grading.judge import Check, Recorder, Verdict

#: Both functions are a handful of float64 operations on exact inputs.
RTOL = 1e-12


def probe_l2_norm(ns: dict, rec: Recorder) -> None:
    l2_norm = ns["l2_norm"]
    rec.call("vector", lambda: float(l2_norm([3.0, 4.0])))
    rec.call("matrix", lambda: float(l2_norm(np.arange(12.0).reshape(3, 4))))


def judge_l2_norm(v: Verdict) -> None:
    v.close("vector", "l2_norm([3, 4])", rtol=RTOL)
    v.close("matrix", "l2_norm of a 3x4 matrix", rtol=RTOL)


def probe_l1_penalty(ns: dict, rec: Recorder) -> None:
    l1_penalty = ns["l1_penalty"]
    rec.call("pair", lambda: float(l1_penalty([1.0, -2.0], 0.5)))
    rec.call("grid", lambda: float(l1_penalty(np.linspace(-1.0, 1.0, 7), 0.25)))


def judge_l1_penalty(v: Verdict) -> None:
    v.close("pair", "l1_penalty([1, -2], 0.5)", rtol=RTOL)
    v.close("grid", "l1_penalty on a grid", rtol=RTOL)


CHECKS = {
    "test_l2_norm": Check(probe_l2_norm, judge_l2_norm, contract=("l2_norm",), visible=("vector",)),
    "test_l1_penalty": Check(probe_l1_penalty, judge_l1_penalty, contract=("l1_penalty",), visible=("pair",)),
}
