"""The small MNIST models the chapters compare, built one way everywhere.

Chapters differ in the regularizer they switch on, never in how the rest of
the network is built, so differences in the curves are the regularizer's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .data import N_CLASSES, N_PIXELS, DataSplit

#: Training steps Keras runs per call into its compiled step function. Each call costs Python
#: work of its own, which for these small networks is a fifth of the training time; running up
#: to 32 batches per call (a whole epoch of most chapters) leaves the arithmetic, and so every
#: result, bit for bit the same (the chapters' regression results did not change) and saves
#: about a fifth of the CPU time (chapters 03 and 08: 65 and 173 core-seconds before, 51 and
#: 140 after). Epoch-level callbacks see every epoch as before; a batch-level callback would
#: see every 32nd batch only, and no model of the course uses one.
STEPS_PER_EXECUTION = 32


def make_mlp(
    hidden: tuple[int, ...] = (128, 64),
    *,
    dropout_rate: float = 0.0,
    kernel_regularizer=None,
    batch_norm: bool = False,
    augment_shift: float = 0.0,
    learning_rate: float = 1e-3,
    optimizer: str = "adam",
    input_dim: int = N_PIXELS,
    n_classes: int = N_CLASSES,
):
    """A compiled ReLU MLP for flattened digits.

    Each hidden block is Dense → [BatchNormalization] → ReLU → [Dropout];
    batch normalization goes before the non-linearity, as in Ioffe & Szegedy.
    ``augment_shift`` > 0 puts data augmentation in front: every training
    batch is shifted at random by up to that fraction of the image's side
    (Keras' ``RandomTranslation``, which like dropout acts in training only),
    so the model sees a new variant of each digit in every epoch.
    ``optimizer`` is "adam", "adamw" or "sgd".
    """
    import keras

    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}.")
    if not 0.0 <= augment_shift <= 0.5:
        raise ValueError(f"augment_shift must be in [0, 0.5] (a fraction of the image's side), got {augment_shift}.")
    layers = [keras.Input((input_dim,))]
    if augment_shift:
        side = round(input_dim**0.5)
        if side * side != input_dim:
            raise ValueError(f"augment_shift shifts square images: {input_dim} inputs are no flattened square image.")
        layers += [
            keras.layers.Reshape((side, side, 1)),
            keras.layers.RandomTranslation(augment_shift, augment_shift, fill_mode="constant"),
            keras.layers.Flatten(),
        ]
    for units in hidden:
        layers.append(keras.layers.Dense(units, kernel_regularizer=kernel_regularizer))
        if batch_norm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.Activation("relu"))
        if dropout_rate:
            layers.append(keras.layers.Dropout(dropout_rate))
    layers.append(keras.layers.Dense(n_classes, activation="softmax"))
    model = keras.Sequential(layers)
    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
    }
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {optimizer!r}.")
    model.compile(
        optimizer=optimizers[optimizer](learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return model


@dataclass
class TrainingRun:
    """What one training run measured; ``history`` is Keras' ``History.history``."""

    history: dict[str, list[float]]
    seconds: float
    epochs_run: int
    extras: dict = field(default_factory=dict)

    @property
    def final_train_accuracy(self) -> float:
        return self.history["accuracy"][-1]

    @property
    def final_val_accuracy(self) -> float:
        return self.history["val_accuracy"][-1]

    @property
    def generalization_gap(self) -> float:
        """Last training accuracy minus last validation accuracy."""
        return self.final_train_accuracy - self.final_val_accuracy


def train(model, data: DataSplit, *, epochs: int, batch_size: int = 64, callbacks=()) -> TrainingRun:
    """Fit on the training split, validate on the validation split, quietly."""
    start = time.perf_counter()
    history = model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=list(callbacks),
        verbose=0,
    )
    seconds = time.perf_counter() - start
    return TrainingRun(history.history, seconds, len(history.history["loss"]))
