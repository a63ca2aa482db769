"""a4_early_stopping: correct alternatives and plausible mistakes."""

GRADED = {
    "patience_early_stopping": "test_stopping_min",
}

# The reference written plainly (no nbgrader markers): the mistakes below are edits of it.
_REFERENCE = '''
class PatienceEarlyStopping(keras.callbacks.Callback):
    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f'mode must be "min" or "max", got {mode!r}')
        self.monitor = monitor
        self.patience = patience
        self.min_delta = abs(min_delta)
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        if self.best is None:
            improved = True
        elif self.mode == "min":
            improved = current < self.best - self.min_delta
        else:
            improved = current > self.best + self.min_delta
        if improved:
            self.best = current
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
'''


def _edit(source: str, *pairs: tuple[str, str]) -> str:
    """Apply exact replacements; each must match, so a mistake never silently equals the reference."""
    for old, new in pairs:
        assert source.count(old) == 1, f"edit does not match exactly once: {old!r}"
        source = source.replace(old, new)
    return source


# Keeps the whole history of values and derives everything from it; snapshots weights
# with Keras variables' numpy(); `patience` compared with "epochs since the best epoch".
_HISTORY_LIST = '''
class PatienceEarlyStopping(keras.callbacks.Callback):
    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False):
        super().__init__()
        if mode != "min" and mode != "max":
            raise ValueError("mode: " + repr(mode))
        self.monitor = monitor
        self.patience = int(patience)
        self.delta = float(abs(min_delta))
        self.mode = mode
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        self.history = []          # (epoch, value) of every monitored epoch of this run
        self.best_epoch = 0
        self.best = None
        self.stopped_epoch = 0
        self._snapshot = None

    def _beats(self, value, reference):
        if self.mode == "min":
            return value + self.delta < reference
        return value - self.delta > reference

    def on_epoch_end(self, epoch, logs=None):
        if not logs or self.monitor not in logs:
            return
        value = float(logs[self.monitor])
        self.history.append((epoch, value))
        if len(self.history) == 1 or self._beats(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self._snapshot = [variable.numpy().copy() for variable in self.model.weights]
            return
        epochs_since_best = sum(1 for e, _ in self.history if e > self.best_epoch)
        if epochs_since_best >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self._snapshot is not None:
            for variable, value in zip(self.model.weights, self._snapshot):
                variable.assign(value)
'''

# One comparison for both modes with a sign (NumPy), best starting at +-inf, and the
# weights restored at the stopping epoch already (and again at the end).
_SIGN_TRICK = '''
import copy


class PatienceEarlyStopping(keras.callbacks.Callback):
    _SIGNS = {"min": 1.0, "max": -1.0}

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False):
        super().__init__()
        try:
            self.sign = self._SIGNS[mode]
        except (KeyError, TypeError):
            raise ValueError(f"unknown mode {mode!r}") from None
        self.monitor, self.patience, self.min_delta = monitor, patience, np.abs(min_delta)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.best = self.sign * np.inf
        self.best_epoch = self.stopped_epoch = self.bad_epochs = 0
        self.saved = None

    def on_epoch_end(self, epoch, logs=None):
        if not logs or self.monitor not in logs:
            return
        current = np.float64(logs[self.monitor])
        if np.less(self.sign * current, self.sign * self.best - self.min_delta):
            self.best, self.best_epoch, self.bad_epochs = current, epoch, 0
            if self.restore_best_weights:
                self.saved = copy.deepcopy(self.model.get_weights())
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True
                if self.restore_best_weights and self.saved is not None:
                    self.model.set_weights(self.saved)

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.saved is not None:
            self.model.set_weights(self.saved)
'''

# keras.ops comparisons in float32 (as Keras itself does), patience as "epochs left".
_KERAS_OPS = '''
class PatienceEarlyStopping(keras.callbacks.Callback):
    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False):
        super().__init__()
        if mode == "min":
            self._better = lambda a, b: bool(keras.ops.less(a, b - self._delta))
        elif mode == "max":
            self._better = lambda a, b: bool(keras.ops.greater(a, b + self._delta))
        else:
            raise ValueError(mode)
        self._delta = abs(min_delta)
        self.monitor = monitor
        self.patience = patience
        self.restore = restore_best_weights

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self.stopped_epoch = None, 0, 0
        self._left = max(self.patience, 1)
        self._weights = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            return
        current = logs[self.monitor]
        if self.best is None or self._better(current, self.best):
            self.best, self.best_epoch = current, epoch
            self._left = max(self.patience, 1)
            if self.restore:
                self._weights = [np.array(w, copy=True) for w in self.model.get_weights()]
            return
        self._left -= 1
        if self._left == 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore and self._weights is not None:
            self.model.set_weights(self._weights)
'''

# The state as NumPy scalars: best in float32 (compared in float32, as Keras does), the epochs
# as int64; warns, as Keras does, when the monitored value is missing.
_NUMPY_STATE = """
class PatienceEarlyStopping(keras.callbacks.Callback):
    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False):
        super().__init__()
        if mode not in {"min", "max"}:
            raise ValueError("mode")
        self.monitor, self.patience, self.mode = monitor, np.int64(patience), mode
        self.min_delta = np.float32(abs(min_delta))
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.best = None
        self.best_epoch = np.int64(0)
        self.stopped_epoch = np.int64(0)
        self.wait = np.int64(0)
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            warnings.warn("no " + self.monitor)
            return
        current = np.float32(logs[self.monitor])
        if self.best is None:
            improved = True
        elif self.mode == "min":
            improved = bool(current + self.min_delta < self.best)
        else:
            improved = bool(current - self.min_delta > self.best)
        if improved:
            self.best, self.best_epoch, self.wait = current, np.int64(epoch), np.int64(0)
            if self.restore_best_weights:
                self.best_weights = [np.copy(w) for w in self.model.get_weights()]
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = np.int64(epoch)
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
"""

CORRECT = {
    "history-list": {"patience_early_stopping": _HISTORY_LIST},
    "numpy-sign-trick": {"patience_early_stopping": _SIGN_TRICK},
    "keras-ops-countdown": {"patience_early_stopping": _KERAS_OPS},
    "numpy-state": {"patience_early_stopping": _NUMPY_STATE},
}

_STOP = "test_stopping_min"
_ALL_CELLS = [_STOP, "test_stopping_max", "test_arguments", "test_restore_best_weights", "test_reset"]
# One mistake, one charge: only test_stopping_min compares the stopping rule with Keras'; the other cells
# judge their behaviour against the student's own rule (see the checks module), so a wrong rule costs
# test_stopping_min alone, and a wrong mode "max", restore, reset or argument costs its own cell.
WRONG = {
    # --- the stopping rule ---
    "off-by-one-patience": (
        {"patience_early_stopping": _edit(_REFERENCE, ("if self.wait >= self.patience:", "if self.wait > self.patience:"))},
        [_STOP],
    ),
    "min-delta-wrong-sign": (
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ("improved = current < self.best - self.min_delta", "improved = current < self.best + self.min_delta"),
            ("improved = current > self.best + self.min_delta", "improved = current > self.best - self.min_delta"))},
        [_STOP],
    ),
    "min-delta-ignored": (
        {"patience_early_stopping": _edit(_REFERENCE, ("self.min_delta = abs(min_delta)", "self.min_delta = 0.0"))},
        [_STOP],
    ),
    "ties-improve": (
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ("improved = current < self.best - self.min_delta", "improved = current <= self.best - self.min_delta"),
            ("improved = current > self.best + self.min_delta", "improved = current >= self.best + self.min_delta"))},
        [_STOP],
    ),
    "wait-never-reset": (  # counts every epoch without improvement, not consecutive ones
        {"patience_early_stopping": _edit(
            _REFERENCE, ("            self.best_epoch = epoch\n            self.wait = 0\n", "            self.best_epoch = epoch\n"))},
        [_STOP],
    ),
    "stopped-epoch-one-based": (
        {"patience_early_stopping": _edit(_REFERENCE, ("self.stopped_epoch = epoch\n", "self.stopped_epoch = epoch + 1\n"))},
        [_STOP],
    ),
    "max-handled-as-min": (
        {"patience_early_stopping": _edit(
            _REFERENCE, ("improved = current > self.best + self.min_delta", "improved = current < self.best - self.min_delta"))},
        ["test_stopping_max"],
    ),
    "sign-trick-delta-flips-in-max": (  # -c < -b - s*d: the margin changes side in mode "max"
        {"patience_early_stopping": _edit(
            _SIGN_TRICK,
            ("np.less(self.sign * current, self.sign * self.best - self.min_delta)",
             "np.less(self.sign * current, self.sign * (self.best - self.min_delta))"))},
        ["test_stopping_max"],
    ),
    "best-epoch-one-based": (
        {"patience_early_stopping": _edit(_REFERENCE, ("            self.best_epoch = epoch\n", "            self.best_epoch = epoch + 1\n"))},
        [_STOP],
    ),
    # --- restoring the best weights ---
    "restores-without-the-flag": (
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ("            if self.restore_best_weights:\n                self.best_weights = self.model.get_weights()\n",
             "            self.best_weights = self.model.get_weights()\n"),
            ("if self.restore_best_weights and self.best_weights is not None:", "if self.best_weights is not None:"))},
        ["test_restore_best_weights"],
    ),
    "restore-only-when-stopped": (
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ("if self.restore_best_weights and self.best_weights is not None:",
             "if self.restore_best_weights and self.best_weights is not None and self.stopped_epoch > 0:"))},
        ["test_restore_best_weights"],
    ),
    "saves-weight-references": (  # model.weights are the variables themselves, not copies
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ("self.best_weights = self.model.get_weights()", "self.best_weights = list(self.model.weights)"),
            ("self.model.set_weights(self.best_weights)", "self.model.set_weights([w.numpy() for w in self.best_weights])"))},
        ["test_restore_best_weights"],
    ),
    "snapshot-at-epoch-begin": (  # saves the weights of the epoch before the best one
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ("            if self.restore_best_weights:\n                self.best_weights = self.model.get_weights()\n",
             "            if self.restore_best_weights:\n                self.best_weights = self._epoch_start_weights\n"),
            ("    def on_train_end(self, logs=None):",
             "    def on_epoch_begin(self, epoch, logs=None):\n"
             "        self._epoch_start_weights = self.model.get_weights()\n\n"
             "    def on_train_end(self, logs=None):"))},
        ["test_restore_best_weights"],
    ),
    # --- reuse ---
    "state-set-only-in-init": (
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ("        self.on_train_begin()\n\n    def on_train_begin(self, logs=None):\n",
             "        self._reset()\n\n    def _reset(self):\n"))},
        ["test_reset"],
    ),
    # --- the implementation policy: Keras' callback, subclassed or wrapped, is not an implementation ---
    "subclasses-keras-early-stopping": (
        {"patience_early_stopping": '''
class PatienceEarlyStopping(keras.callbacks.EarlyStopping):
    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False):
        if mode not in ("min", "max"):
            raise ValueError(mode)
        super().__init__(monitor=monitor, patience=patience, min_delta=min_delta, mode=mode,
                         restore_best_weights=restore_best_weights)
'''},
        _ALL_CELLS,
    ),
    "wraps-keras-early-stopping": (
        {"patience_early_stopping": '''
class PatienceEarlyStopping(keras.callbacks.Callback):
    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(mode)
        self._inner = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta,
                                                    mode=mode, restore_best_weights=restore_best_weights)

    def set_model(self, model):
        super().set_model(model)
        self._inner.set_model(model)

    def on_train_begin(self, logs=None):
        self._inner.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._inner.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        self._inner.on_train_end(logs)

    @property
    def stopped_epoch(self):
        return self._inner.stopped_epoch

    @property
    def best_epoch(self):
        return self._inner.best_epoch

    @property
    def best(self):
        return self._inner.best
'''},
        _ALL_CELLS,
    ),
    # --- the arguments ---
    "unknown-mode-means-min": (
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ("""        if mode not in ("min", "max"):\n            raise ValueError(f'mode must be "min" or "max", got {mode!r}')\n""",
             """        if mode != "max":\n            mode = "min"\n"""))},
        ["test_arguments"],
    ),
    "negative-min-delta-kept": (
        {"patience_early_stopping": _edit(_REFERENCE, ("self.min_delta = abs(min_delta)", "self.min_delta = min_delta"))},
        ["test_arguments"],
    ),
    "keras-argument-order": (  # Keras' EarlyStopping takes min_delta before patience
        {"patience_early_stopping": _edit(
            _REFERENCE,
            ('def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False):',
             'def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="min", restore_best_weights=False):'))},
        ["test_arguments"],
    ),
}


#: Every wrong variant that loses more than one cell, and why that is not one mistake charged twice
#: (test_assignments.py checks that the list is exactly those variants).
SEVERAL_CELLS = {
    "subclasses-keras-early-stopping": "the implementation policy: every cell whose probe runs Keras' callback",
    "wraps-keras-early-stopping": "the implementation policy: every cell whose probe runs Keras' callback",
}
