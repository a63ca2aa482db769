"""Comparing two classifiers that were scored on the same examples.

When two models are evaluated on the same test digits, their accuracies are
not independent: most digits are classified correctly (or wrongly) by both,
and only the digits on which they disagree say anything about which model is
better. McNemar's test uses exactly those. Under the null hypothesis that both
models are equally accurate, each discordant digit is equally likely to favour
either model, so the number won by model A is Binomial(discordant, 1/2); the
exact test needs no large-sample approximation.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np


@dataclass(frozen=True)
class PairedComparison:
    """Counts of McNemar's table and the exact two-sided p-value."""

    n: int  # examples scored by both models
    both_right: int
    only_a_right: int  # model A right, model B wrong
    only_b_right: int  # model B right, model A wrong
    both_wrong: int
    p_value: float

    @property
    def discordant(self) -> int:
        return self.only_a_right + self.only_b_right

    @property
    def accuracy_difference(self) -> float:
        """Accuracy of A minus accuracy of B: only the discordant examples contribute."""
        return (self.only_a_right - self.only_b_right) / self.n


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n trials with probability 1/2 (SciPy's ``binomtest``).

    The distribution is symmetric, so this is twice the smaller tail, at most 1.
    """
    from scipy.stats import binomtest

    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}.")
    if n == 0:
        return 1.0  # no discordant example: no evidence either way
    return float(binomtest(k, n, 0.5).pvalue)


def mcnemar_exact(correct_a, correct_b) -> PairedComparison:
    """Exact McNemar test of two models from their per-example correctness (boolean arrays)."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D arrays of the same length, got shapes {a.shape} and {b.shape}.")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return PairedComparison(
        n=len(a),
        both_right=int(np.sum(a & b)),
        only_a_right=only_a,
        only_b_right=only_b,
        both_wrong=int(np.sum(~a & ~b)),
        p_value=binomial_two_sided_p(only_a, only_a + only_b),
    )
