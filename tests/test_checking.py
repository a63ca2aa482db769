import numpy as np
import pytest
import tensorflow as tf

from regcourse.checking import (
    as_scalar,
    assert_gradient_matches,
    numerical_gradient,
    relative_error,
)


def test_numerical_gradient_of_a_quadratic_is_exact_to_tolerance():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(numerical_gradient(lambda z: np.sum(z**2), x), 2 * x, rtol=1e-8)


def test_gradient_check_passes_for_a_correct_graph_and_fails_for_a_broken_one():
    x = np.random.default_rng(0).normal(size=(3, 4))
    assert_gradient_matches(lambda w: tf.reduce_sum(tf.sin(w) * w), x)

    @tf.custom_gradient
    def wrong_square(w):
        return tf.reduce_sum(w**2), lambda upstream: upstream * w  # missing factor 2

    with pytest.raises(AssertionError, match="gradient check failed"):
        assert_gradient_matches(wrong_square, x)


def test_as_scalar_accepts_floats_arrays_and_tensors_but_not_vectors():
    assert as_scalar(2.5) == as_scalar(np.float32(2.5)) == as_scalar(tf.constant(2.5)) == 2.5
    with pytest.raises(AssertionError, match="should be a scalar"):
        as_scalar(tf.constant([1.0, 2.0]))


def test_relative_error_is_symmetric_and_zero_safe():
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(1.0, 2.0) == relative_error(2.0, 1.0) == pytest.approx(1 / 3)
