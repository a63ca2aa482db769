"""Hidden tests of a1_bias_variance: the bias–variance decomposition.

The inputs are fixed (hand-made arrays, and arrays drawn from seeded
generators), so the judge computes the exact expected values itself, in
float64, from the same inputs: the hand-made cases keep their hand-computed
values, the others use :func:`_exact`. The probe rebuilds every input afresh
for each call, so a submission that modifies its arguments in place cannot
change what a later call, or the judge, sees.
"""

from __future__ import annotations

import math

import numpy as np

from regcourse.checking import FLOAT32_RTOL, as_scalar
from regcourse.grading.judge import Check, Recorder, Verdict

#: bias² and variance of float32 inputs, averaged over up to 20,000 elements.
VALUE_RTOL = FLOAT32_RTOL
#: Absolute floor for the values that are exactly zero (identical models, an unbiased average model).
ZERO_ATOL = 1e-9
#: bias² + variance against the mean squared error, an exact identity (ddof=0) up to the
#: round-off of two separately computed float32 sums.
IDENTITY_RTOL = 1e-4
#: The variance of shifted predictions against the unshifted one.
SHIFT_RTOL = FLOAT32_RTOL

#: The visible example and hand-made cases, each aimed at one mistake: name -> (predictions, targets).
HAND_CASES = {
    "the visible example": ([[1.0, 2.0], [3.0, 4.0]], [0.0, 0.0]),
    # errors of opposite sign: bias² is the mean of the squared gaps, not the square of the mean gap
    "errors of opposite sign": ([[1.0, -1.0]] * 3, [0.0, 0.0]),
    # identical models have zero variance, however far apart the points are
    "identical, perfect models": ([[0.0, 5.0, -3.0]] * 4, [0.0, 5.0, -3.0]),
    # the average model is the truth: zero bias, all variance ({-2, 2} has population variance 4)
    "an unbiased average model": ([[-2.0, 8.0], [2.0, 12.0]], [0.0, 10.0]),
    # three models (ddof=0 divides by 3, ddof=1 by 2), non-square
    "3 models x 4 points": ([[0.0, 1.0, 2.0, 3.0], [3.0, 1.0, 2.0, 0.0], [0.0, 4.0, 2.0, 0.0]], [1.0, 1.0, 1.0, 1.0]),
    # one model: variance 0, bias² is its mean squared error
    "a single model": ([[1.0, 3.0, -1.0]], [0.0, 1.0, 1.0]),
    "a single point": ([[1.0], [2.0], [6.0]], [0.0]),
}
#: Hand-computed (bias², variance) of the hand-made cases; None: computed by :func:`_exact`.
HAND_EXPECTED = {
    "the visible example": (6.5, 1.0),  # average model (2, 3): (4 + 9) / 2; spread 2 at each point: variance 1
    "errors of opposite sign": (1.0, 0.0),
    "identical, perfect models": (0.0, 0.0),
    "an unbiased average model": (0.0, 4.0),
    "3 models x 4 points": None,
    "a single model": ((1 + 4 + 4) / 3, 0.0),
    "a single point": (9.0, (4 + 1 + 9) / 3),
}

RANDOM_SEED = 11
#: (n_models, n_points) of the random cases, each in float32 and float64.
RANDOM_SHAPES = [(2, 3), (5, 1), (7, 40), (40, 7), (200, 100)]
SHIFT = 3.0


def _random_inputs():
    """The seeded random cases, drawn in a fixed order: [(name, predictions, truth)], then the shift pair."""
    rng = np.random.default_rng(RANDOM_SEED)
    cases = []
    for n_models, n_points in RANDOM_SHAPES:
        for dtype in (np.float32, np.float64):
            truth = rng.normal(size=n_points).astype(dtype)
            # per-point offsets and spreads, so that per-point and pooled statistics differ
            p = (truth + rng.normal(size=n_points)
                 + rng.uniform(0.2, 2.0, size=n_points) * rng.normal(size=(n_models, n_points))).astype(dtype)
            cases.append((f"{n_models} models x {n_points} points, {np.dtype(dtype).name}", p, truth))
    shift_p = rng.normal(size=(10, 6))
    shift_f = rng.normal(size=6)
    return cases, (shift_p, shift_f)


def _exact(p, f) -> tuple[float, float]:
    """(bias², variance) by the definition, in float64."""
    p = np.asarray(p, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    return float(np.mean((p.mean(axis=0) - f) ** 2)), float(np.mean(p.var(axis=0)))


def _pair(result):
    """What bias_variance returned: [bias², variance] as floats, or what it was instead of a pair."""
    try:
        n = len(result)
    except TypeError:
        return {"instead": f"a single {type(result).__name__}"}
    if n != 2:
        return {"instead": f"{n} values"}
    return [as_scalar(result[0], "bias_squared"), as_scalar(result[1], "variance")]


# -- test_bias_variance ---------------------------------------------------------------------------

def probe_bias_variance(ns: dict, rec: Recorder) -> None:
    import tensorflow as tf

    bias_variance = ns["bias_variance"]
    for name, (p, f) in HAND_CASES.items():
        rec.call(name, lambda: bias_variance(np.array(p, dtype=np.float64), np.array(f, dtype=np.float64)), _pair)
    cases, (shift_p, shift_f) = _random_inputs()
    for name, p, truth in cases:
        rec.call(f"{name}|array", lambda: bias_variance(p.copy(), truth.copy()), _pair)
        rec.call(f"{name}|tensor", lambda: bias_variance(tf.constant(p), tf.constant(truth)), _pair)
    rec.call("shift 0", lambda: bias_variance(shift_p.copy(), shift_f.copy()), _pair)
    rec.call(f"shift {SHIFT}", lambda: bias_variance(shift_p + SHIFT, shift_f.copy()), _pair)


def _judge_pair(v: Verdict, key: str, what: str, expected: tuple[float, float]):
    """The student's (bias², variance) for ``key`` if both match ``expected``, else None (and failures)."""
    value = v.returned(key, what)
    if value is None:
        return None
    if isinstance(value, dict):
        v.fail(f"{what}: return the tuple (bias_squared, variance), got {value.get('instead')}")
        return None
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
        v.fail(f"{what}: the grader could not read the two numbers returned")
        return None
    ok = True
    for name, got, want in zip(("bias_squared", "variance"), value, expected):
        ok &= v.check(math.isclose(got, want, rel_tol=VALUE_RTOL, abs_tol=ZERO_ATOL),
                      f"{what}: {name} is {got:.7g}, expected {want:.7g} (relative tolerance {VALUE_RTOL:g})")
    return (float(value[0]), float(value[1])) if ok else None


def judge_bias_variance(v: Verdict) -> None:
    for name, (p, f) in HAND_CASES.items():
        _judge_pair(v, name, f"bias_variance on {name} (predictions {p}, targets {f})",
                    HAND_EXPECTED[name] or _exact(p, f))
    cases, (shift_p, shift_f) = _random_inputs()
    for name, p, truth in cases:
        expected = _exact(p, truth)
        mse = float(np.mean((p.astype(np.float64) - truth.astype(np.float64)) ** 2))
        for kind in ("array", "tensor"):
            kind_name = "NumPy arrays" if kind == "array" else "TensorFlow tensors"
            what = f"bias_variance for random {name}, as {kind_name}"
            got = _judge_pair(v, f"{name}|{kind}", what, expected)
            if got is not None:
                total = got[0] + got[1]
                v.check(math.isclose(total, mse, rel_tol=IDENTITY_RTOL),
                        f"{what}: bias_squared + variance is {total:.7g}, but the mean squared error against the "
                        f"targets is {mse:.7g}: with ddof=0 they are equal")
    shifted = {}
    for shift in (0, SHIFT):
        shifted[shift] = _judge_pair(v, f"shift {shift}", f"bias_variance for random 10 models x 6 points shifted by {shift}",
                                     _exact(shift_p + shift, shift_f))
    if shifted[0] is not None and shifted[SHIFT] is not None:
        v.check(math.isclose(shifted[0][1], shifted[SHIFT][1], rel_tol=SHIFT_RTOL),
                f"adding {SHIFT} to every prediction changed the variance from {shifted[0][1]:.7g} to "
                f"{shifted[SHIFT][1]:.7g}: a shift must not change it")


# -- test_bias_variance_errors ----------------------------------------------------------------------

#: (kind, shape) of predictions of the wrong rank (zeros; the "NumPy scalar" is np.float64(1.0)), each with 4 targets.
BAD_PREDICTIONS = [("NumPy", (4,)), ("NumPy", (2, 3, 4)), ("NumPy scalar", ()), ("tensor", (4,)), ("tensor", (2, 3, 4))]
#: (kind, shape) of targets for (3, 4) predictions, whose lengths disagree; NumPy would broadcast (1,).
BAD_TARGETS = [("NumPy", (3,)), ("NumPy", (5,)), ("NumPy", (1,)), ("tensor", (1,)), ("tensor", (5,))]
#: (kind, predictions shape, targets shape) whose lengths disagree.
MISMATCHED = [("NumPy", (3, 1), (4,)), ("tensor", (6, 2), (3,))]
#: The visible tests: (what, predictions shape, targets shape), NumPy zeros.
VISIBLE_ERRORS = [("1-D predictions", (5,), (5,)), ("targets of length 5 for predictions with 4 columns", (3, 4), (5,))]


def _returned(_) -> str:
    return "returned"


def probe_bias_variance_errors(ns: dict, rec: Recorder) -> None:
    import tensorflow as tf

    bias_variance = ns["bias_variance"]

    def zeros(kind: str, shape: tuple):
        if kind == "NumPy scalar":
            return np.float64(1.0)
        return tf.zeros(shape) if kind == "tensor" else np.zeros(shape)

    def ones(kind: str, shape: tuple):
        return tf.ones(shape) if kind == "tensor" else np.ones(shape)

    for what, p_shape, f_shape in VISIBLE_ERRORS:
        rec.call(f"visible: {what}", lambda: bias_variance(np.zeros(p_shape), np.zeros(f_shape)), _returned)
    for kind, shape in BAD_PREDICTIONS:
        rec.call(f"predictions {kind} {shape}", lambda: bias_variance(zeros(kind, shape), np.ones(4)), _returned)
    for kind, shape in BAD_TARGETS:
        good_p = np.arange(12, dtype=np.float64).reshape(3, 4)
        rec.call(f"targets {kind} {shape}", lambda: bias_variance(good_p, ones(kind, shape)), _returned)
    for kind, p_shape, f_shape in MISMATCHED:
        rec.call(f"mismatch {kind} {p_shape} {f_shape}",
                 lambda: bias_variance(ones(kind, p_shape), ones(kind, f_shape)), _returned)
    rec.call("valid", lambda: bias_variance(np.arange(12, dtype=np.float64).reshape(3, 4), np.ones(4)), _returned)


def judge_bias_variance_errors(v: Verdict) -> None:
    for what, p_shape, f_shape in VISIBLE_ERRORS:
        v.raises(f"visible: {what}", f"bias_variance with {what} (predictions {p_shape}, targets {f_shape})", "ValueError")
    for kind, shape in BAD_PREDICTIONS:
        v.raises(f"predictions {kind} {shape}", f"bias_variance with {kind} predictions of shape {shape} "
                 f"(not 2-D) and 4 targets", "ValueError")
    for kind, shape in BAD_TARGETS:
        v.raises(f"targets {kind} {shape}", f"bias_variance with predictions of shape (3, 4) and {kind} targets "
                 f"of shape {shape}", "ValueError")
    for kind, p_shape, f_shape in MISMATCHED:
        v.raises(f"mismatch {kind} {p_shape} {f_shape}", f"bias_variance with {kind} predictions of shape {p_shape} "
                 f"and targets of shape {f_shape}", "ValueError")
    # valid inputs raise nothing; what they return is test_bias_variance's to grade (one mistake, one charge)
    v.returned("valid", "bias_variance on valid inputs (predictions (3, 4), 4 targets)")


CHECKS = {
    "test_bias_variance": Check(
        probe_bias_variance,
        judge_bias_variance,
        contract=(
            "`bias_squared` = mean over points of (mean over models − target)²",
            "mean over points of the **population** variance over models",
            "(divide by `n_models`, i.e. `ddof=0`)",
            "Return the two numbers as a tuple `(bias_squared, variance)`, in that order.",
            "inputs may be NumPy arrays or TensorFlow tensors, of `float32` or `float64`",
            "A single model is valid input: `predictions` of shape `(1, n_points)` has",
            "`n_points = 1`, is valid too",
            "`bias_squared + variance`",
        ),
    ),
    "test_bias_variance_errors": Check(
        probe_bias_variance_errors,
        judge_bias_variance_errors,
        contract=(
            "raise `ValueError` if `predictions` is not 2-D, or if the number of columns",
            "of `predictions` and the length of `targets` disagree",
            "inputs may be NumPy arrays or TensorFlow tensors",
            "Beware of broadcasting",
        ),
    ),
}
