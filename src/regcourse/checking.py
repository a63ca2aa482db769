"""Checks the assignments' tests share, in the cs231n style.

Every tolerance is a named constant with the reason it is safe. Tests convert
whatever a student returns (Python float, NumPy array, 0-d or n-d tensor)
through :func:`as_numpy` so that any correct return type passes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: float32 arithmetic over a few thousand elements: sums accumulate ~1e-7
#: relative error per term; 1e-5 leaves two orders of magnitude of margin.
FLOAT32_RTOL = 1e-5
#: Absolute floor for values that should be exactly zero in float32.
FLOAT32_ATOL = 1e-6
#: Central differences in float64 with step 1e-5 have truncation error
#: O(h²) ≈ 1e-10 and round-off ≈ 1e-16/h ≈ 1e-11: 1e-6 is safe by 4 orders.
GRADIENT_STEP = 1e-5
GRADIENT_RTOL = 1e-6


def as_numpy(value) -> np.ndarray:
    """A float64 NumPy array from a float, array, tensor or Keras variable."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value, dtype=np.float64)


def as_scalar(value, name: str = "value") -> float:
    """A Python float, or an AssertionError saying the value is not a scalar."""
    array = as_numpy(value)
    assert array.size == 1, f"{name} should be a scalar, got an array of shape {array.shape}"
    return float(array.reshape(()))


def relative_error(actual, expected) -> float:
    """max |a − e| / max(|a| + |e|, 1e-8): symmetric, and safe at zero."""
    a, e = as_numpy(actual), as_numpy(expected)
    return float(np.max(np.abs(a - e) / np.maximum(np.abs(a) + np.abs(e), 1e-8)))


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, step: float = GRADIENT_STEP) -> np.ndarray:
    """Central-difference gradient of scalar ``f`` at ``x`` (float64, element by element)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + step
        upper = float(f(x))
        x[index] = saved - step
        lower = float(f(x))
        x[index] = saved
        grad[index] = (upper - lower) / (2 * step)
    return grad


def assert_gradient_matches(
    f: Callable, x: np.ndarray, *, rtol: float = GRADIENT_RTOL, step: float = GRADIENT_STEP
) -> None:
    """``tf.GradientTape`` through ``f`` agrees with finite differences at ``x``.

    ``f`` must accept a float64 tensor and return a scalar tensor, so the
    tape and the finite differences see the same computation.
    """
    import tensorflow as tf

    variable = tf.Variable(np.asarray(x, dtype=np.float64))
    with tf.GradientTape() as tape:
        value = f(variable)
    analytic = tape.gradient(value, variable)
    assert analytic is not None, "no gradient flows from the output to the input: is it computed with TensorFlow ops?"
    numeric = numerical_gradient(lambda z: as_scalar(f(tf.constant(z))), x, step)
    error = relative_error(analytic, numeric)
    assert error < rtol, f"gradient check failed: relative error {error:.2e} >= {rtol:.0e}"
