"""McNemar's exact test (regcourse.stats), as chapters 07 and 08 use it: exact tails counted by hand."""

from math import comb

import numpy as np
import pytest
from scipy.stats import binomtest

from regcourse.stats import binomial_two_sided_p, mcnemar_exact


@pytest.mark.parametrize(
    "k, n, expected",
    [(0, 0, 1.0), (0, 1, 1.0), (0, 7, 2 / 2**7), (7, 7, 2 / 2**7), (1, 7, 2 * 8 / 2**7), (3, 7, 1.0),
     (1, 20, 2 * 21 / 2**20), (10, 20, 1.0), (5, 59, 2 * sum(comb(59, i) for i in range(6)) / 2**59)],
)
def test_two_sided_p_is_twice_the_smaller_exact_tail(k, n, expected):
    assert binomial_two_sided_p(k, n) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_counts_only_the_discordant_examples():
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    result = mcnemar_exact(a, b)
    assert (result.both_right, result.only_a_right, result.only_b_right, result.both_wrong) == (2, 3, 1, 2)
    assert result.discordant == 4 and result.accuracy_difference == pytest.approx(2 / 8)
    assert result.p_value == pytest.approx(binomtest(3, 4, 0.5).pvalue)


@pytest.mark.parametrize("k, n", [(-1, 3), (4, 3)])
def test_impossible_counts_are_refused(k, n):
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_two_sided_p(k, n)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        mcnemar_exact([True, False], [True])
