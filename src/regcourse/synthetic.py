"""Synthetic data with a known ground truth.

Bias and variance can only be measured against the noise-free function, and
sparsity can only be judged against the true coefficients: real data knows
neither, so these demonstrations use the generators below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def true_function(x: np.ndarray) -> np.ndarray:
    """The noise-free target of the regression demonstrations: sin(2πx) on [0, 1]."""
    return np.sin(2 * np.pi * np.asarray(x))


def sample_regression(n: int, noise_std: float, rng: np.random.Generator):
    """``n`` points x ~ U[0, 1], y = true_function(x) + N(0, noise_std²).

    Pass a ``np.random.Generator`` so that repeated draws (one per resampled
    training set) stay reproducible from a single seed.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of points, got {n}.")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}.")
    x = rng.uniform(0.0, 1.0, size=n)
    return x, true_function(x) + rng.normal(0.0, noise_std, size=n)


def polynomial_features(x: np.ndarray, degree: int) -> np.ndarray:
    """Columns x⁰ … x^degree, with x first mapped from [0, 1] to [-1, 1] for conditioning."""
    z = 2.0 * np.asarray(x, dtype=np.float64) - 1.0
    return np.vander(z, degree + 1, increasing=True)


def fit_ridge(features: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Least squares with penalty l2·||w||² on every coefficient but the intercept."""
    penalty = l2 * np.eye(features.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(features.T @ features + penalty, features.T @ y)


@dataclass(frozen=True)
class SparseProblem:
    x: np.ndarray
    y: np.ndarray
    true_weights: np.ndarray  # zero except on the informative features


def make_sparse_regression(
    n_samples: int = 200,
    n_features: int = 50,
    n_informative: int = 5,
    noise_std: float = 0.1,
    seed: int = 0,
) -> SparseProblem:
    """A linear problem where only ``n_informative`` of the features matter."""
    if not 0 < n_informative <= n_features:
        raise ValueError(
            f"n_informative must be in 1..n_features={n_features}, got {n_informative}."
        )
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, n_features)).astype(np.float32)
    w = np.zeros(n_features, dtype=np.float32)
    w[:n_informative] = rng.choice([-1.0, 1.0], n_informative) * rng.uniform(1.0, 3.0, n_informative)
    y = (x @ w + rng.normal(0.0, noise_std, n_samples)).astype(np.float32)
    return SparseProblem(x, y, w)
