"""The chapters' MLP: the blocks each option adds, and augmentation that acts in training only."""

import numpy as np
import pytest

from regcourse.models import make_mlp


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_each_option_adds_its_layers_where_the_chapters_say():
    assert _kinds(make_mlp((8,))) == ["Dense", "Activation", "Dense"]
    assert _kinds(make_mlp((8,), batch_norm=True, dropout_rate=0.5)) == [
        "Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]
    assert _kinds(make_mlp((8,), augment_shift=0.1))[:3] == ["Reshape", "RandomTranslation", "Flatten"]


def test_augmentation_shifts_in_training_only():
    from regcourse.seeding import set_seed

    set_seed(0)
    model = make_mlp((8,), augment_shift=0.2)
    augment = model.layers[1]
    image = np.zeros((4, 28, 28, 1), np.float32)
    image[:, 10:18, 10:18] = 1.0  # a square in the middle, shifted by up to 5.6 pixels
    assert np.array_equal(np.asarray(augment(image, training=False)), image)
    shifted = np.asarray(augment(image, training=True))
    assert not np.array_equal(shifted, image)
    # fill_mode="constant": pixels move, nothing wraps around (bilinear interpolation may blur the edges)
    assert shifted.sum() == pytest.approx(image.sum(), rel=0.2)
    assert np.allclose(model.predict(image.reshape(4, 784), verbose=0), model.predict(image.reshape(4, 784), verbose=0))


@pytest.mark.parametrize("bad", [-0.1, 0.6])
def test_a_shift_outside_half_the_image_is_refused(bad):
    with pytest.raises(ValueError, match="augment_shift"):
        make_mlp(augment_shift=bad)


def test_augmentation_needs_square_images():
    with pytest.raises(ValueError, match="square"):
        make_mlp(augment_shift=0.1, input_dim=10)


def test_many_steps_per_execution_train_bit_for_bit_as_one_step_at_a_time():
    """Why STEPS_PER_EXECUTION may be anything: it saves Python work and changes no number.

    Dropout, batch normalization and augmentation draw random numbers and update state on every
    step; a partial last batch (100 digits in batches of 16) and validation run through the same
    multi-step loop.
    """
    import keras

    from regcourse.models import STEPS_PER_EXECUTION
    from regcourse.seeding import set_seed

    assert STEPS_PER_EXECUTION > 1
    rng = np.random.default_rng(0)
    x, y = rng.random((100, 784), dtype=np.float32), rng.integers(0, 10, 100)
    runs = []
    for steps in (STEPS_PER_EXECUTION, 1):
        set_seed(0)
        model = make_mlp((16,), dropout_rate=0.3, batch_norm=True, augment_shift=0.1)
        if steps == 1:
            model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], steps_per_execution=1)
        history = model.fit(x, y, validation_data=(x[:30], y[:30]), epochs=3, batch_size=16, verbose=0)
        runs.append((history.history, [np.asarray(w) for w in model.get_weights()]))
    (history_many, weights_many), (history_one, weights_one) = runs
    assert history_many == history_one
    assert all(np.array_equal(a, b) for a, b in zip(weights_many, weights_one))
