"""McNemar's exact test (regcourse.stats), as chapters 07 and 08 use it, against SciPy's binomial test."""

import numpy as np
import pytest
from scipy.stats import binomtest

from regcourse.stats import binomial_two_sided_p, mcnemar_exact


@pytest.mark.parametrize("n", [0, 1, 2, 7, 20, 59])
def test_two_sided_p_equals_scipys_binomial_test(n):
    for k in range(n + 1):
        expected = binomtest(k, n, 0.5).pvalue if n else 1.0
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
