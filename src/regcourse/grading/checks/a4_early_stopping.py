"""Hidden tests of a4_early_stopping: ``PatienceEarlyStopping``, early stopping by hand.

The student's callback is compared with ``keras.callbacks.EarlyStopping`` of
Keras 3 on scripted runs where the cell grades the stopping rule itself
(``test_stopping_min``). The other cells grade one behaviour each *relative to
the student's own rule* (one mistake, one charge): mode "max" must do on a
curve what the student's mode "min" does on its negative
(``test_stopping_max``); arguments given positionally, by default or with a
negative ``min_delta`` must do what the student's keyword construction of
the canonical arguments does (``test_arguments``); the restored weights must
be those of the epoch whose value is the student's ``best``
(``test_restore_best_weights``); a reused instance must do what a fresh one
does (``test_reset``). So a wrong stopping rule costs ``test_stopping_min``
alone. Each probe plays every scripted run twice, through
the student's callback and through Keras' (with :func:`_play`, this module's
copy of the notebook's ``play``: the notebook's own could be redefined); the
judge compares the student's run with the *reference record's* Keras run,
computed in a clean process. The student's own Keras runs are recorded too
(the probe is the same for both) but never read. Every run's Keras record is
kept, so ``tests/test_judge.py`` also checks that the instructor solution
behaves as Keras does on all of them, not only on the runs the judge compares.

The real ``model.fit`` of ``test_restore_best_weights`` records the logged
validation losses, the callback's state and the weights at the end of every
epoch; the judge checks that the losses are the model's (the callback did not
change it during training) and that the model ends with the weights of the
epoch whose loss is the callback's own ``best``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from regcourse.checking import FLOAT32_RTOL, as_scalar
from regcourse.grading.judge import Check, Recorder, Verdict


def off_limits() -> dict:
    """The implementation policy (the notebook's "Implementation policy"): Keras' own early stopping."""
    import keras

    stopping = keras.callbacks.EarlyStopping
    return {"keras.callbacks.EarlyStopping": tuple(
        getattr(stopping, name) for name in ("__init__", "on_train_begin", "on_epoch_end", "on_train_end", "get_monitor_value"))}

#: Final weights of the real fit against the best epoch's: the model is 2 float32 weights after
#: a few full-batch SGD steps; ``FLOAT32_RTOL`` with this absolute floor (for weights near 0).
WEIGHTS_ATOL = 1e-7

#: What :func:`_play` reports about a run, as the notebook's ``play`` does.
FIELDS = ("epochs_run", "stopped_epoch", "best_epoch", "best", "weights_from_epoch")


# -- the scripted runs ------------------------------------------------------------------------

@dataclass
class Run:
    """One scripted run: the student's callback built from ``args``/``kwargs``, Keras' from ``keras``."""

    values: list
    kwargs: dict = field(default_factory=dict)
    keras: dict | None = None  # Keras' arguments; None: the same as the student's kwargs
    args: tuple = ()
    monitor: str = "val_loss"
    track_weights: bool = False
    exact: bool = False  # a visible test's run: `best` must equal Keras' exactly, as the visible assert does
    #: "keras": the reference's Keras run; "mirror": the student's mode "min" on the negated values;
    #: "canonical": the student's keyword construction of Keras' arguments; "restore": only the weights,
    #: against the student's own best epoch
    compare: str = "keras"

    def keras_kwargs(self) -> dict:
        return dict(self.kwargs) if self.keras is None else dict(self.keras)

    def own(self) -> tuple[dict, list] | None:
        """The student's run this one is compared with (arguments, values), or None."""
        if self.compare == "mirror":
            return {**self.kwargs, "mode": "min"}, [-v for v in self.values]
        if self.compare == "canonical":
            return {**DEFAULTS, **self.keras_kwargs()}, list(self.values)
        return None

    def what(self) -> str:
        arguments = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"PatienceEarlyStopping({', '.join(arguments)}) on {_values(self.values)}"


@dataclass
class Reuse:
    """One instance of each callback played through several runs in turn."""

    kwargs: dict
    runs: list
    monitor: str = "val_loss"
    exact: bool = False

    def what(self, i: int) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"one PatienceEarlyStopping({arguments}) reused, run {i + 1} of {len(self.runs)} on {_values(self.runs[i])}"


def _values(values, digits: int | None = None) -> str:
    return "[" + ", ".join(str(float(v)) if digits is None else f"{v:.{digits}g}" for v in values) + "]"


#: The constructor's defaults, as the contract states them.
DEFAULTS = dict(monitor="val_loss", patience=0, min_delta=0.0, mode="min", restore_best_weights=False)

# test_arguments -------------------------------------------------------------------------------
BAD_MODES = ["auto", "minimum", "maximize", "", None]
_SEQ = [2.0, 1.75, 1.5, 1.5, 1.25, 1.5, 1.0, 1.25, 1.5, 1.75, 2.0]


def _argument_runs() -> list[Run]:
    runs = []
    # the arguments in the order of the contract: monitor, patience, min_delta, mode, restore_best_weights
    for args in [("loss", 2, 0.25, "min", False), ("val_loss", 1, 0.0, "min", True), ("loss", 3, 0.25, "max", False)]:
        monitor, patience, min_delta, mode, restore = args
        values = _SEQ if mode == "min" else [-v for v in _SEQ]
        runs.append(Run(values, args=args, monitor=monitor, compare="canonical", keras=dict(
            monitor=monitor, patience=patience, min_delta=min_delta, mode=mode, restore_best_weights=restore)))
    # the defaults: val_loss, patience 0, min_delta 0, mode "min"
    for values in [_SEQ, [3.0, 2.0, 1.0, 0.5], [1.0, 1.0, 0.5]]:
        runs.append(Run(values, keras=dict(mode="min"), compare="canonical"))
    # a negative min_delta counts by its absolute value, as in Keras
    for mode in ["min", "max"]:
        values = _SEQ if mode == "min" else [-v for v in _SEQ]
        for patience in [1, 2]:
            runs.append(Run(values, dict(patience=patience, min_delta=-0.25, mode=mode), compare="canonical",
                            keras=dict(patience=patience, min_delta=0.25, mode=mode)))
    return runs


# test_stopping_min ----------------------------------------------------------------------------
# All values are multiples of 1/64 (and min_delta of 1/16): exact in float32 and float64, so
# `current < best - min_delta` and Keras' float32 `current + min_delta < best` agree even on
# the boundary, where an improvement of exactly min_delta does not count.
def _curves_min():
    yield [1.0, 1.0, 1.0, 1.0, 1.0]                                          # flat: ties only
    yield [4.0, 3.0, 2.0, 1.5, 1.0, 0.75, 0.5, 0.25]                         # always improving
    yield [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]                                    # always worsening
    yield [2.0, 1.75, 1.75, 1.5, 1.5, 1.5, 1.25, 1.25, 1.25, 1.25, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75]  # staircase with ties
    yield [1.0, 0.9375, 0.875, 0.8125, 0.75, 0.6875, 0.625, 0.5625, 0.5]     # steps of exactly 1/16
    yield [1.0, 0.75, 0.8125, 0.5, 0.5625, 0.625, 0.25, 0.3125, 0.375, 0.4375, 0.5, 0.5625]
    yield [2.0, 1.96875, 1.9375, 1.90625, 1.875, 1.5, 1.46875, 1.4375, 1.40625, 1.375]  # small, then large steps
    yield [3.0, 2.0, float("nan"), 1.5, float("nan"), float("nan"), 1.0, 1.25, 1.5, 1.75, 2.0]  # NaN never improves
    rng = np.random.default_rng(4)
    for _ in range(6):                                                       # noisy U-shaped validation curves
        t = np.arange(25)
        v = 1.0 + (t - rng.integers(3, 15)) ** 2 / 60 + rng.normal(0.0, 0.08, t.size)
        yield [float(x) for x in np.round(v * 64) / 64]


def _stopping_min_runs() -> list[Run]:
    runs = [  # the visible test's two runs
        Run([1.0, 0.75, 0.625, 0.6875, 0.875, 0.5], dict(patience=2), exact=True),
        Run([1.0, 1.0, 0.5], dict(patience=1), exact=True),
    ]
    for values in _curves_min():
        for patience in [0, 1, 2, 3, 5]:
            for min_delta in [0.0, 0.0625, 0.25]:
                for monitor in (["val_loss", "loss"] if patience == 2 else ["val_loss"]):
                    kwargs = dict(monitor=monitor, patience=patience, min_delta=min_delta, mode="min")
                    runs.append(Run(values, kwargs, monitor=monitor))
    return runs


# test_stopping_max ----------------------------------------------------------------------------
# Mirror images of the "min" curves as accuracies in [0, 1], on a grid of 1/256 (exact in
# float32); min_delta on a grid of 1/64, so boundary cases are exact too.
def _curves_max():
    yield [0.5, 0.5, 0.5, 0.5]
    yield [0.1015625, 0.25, 0.5, 0.625, 0.75, 0.875, 0.9375]
    yield [0.9375, 0.875, 0.75, 0.5, 0.25]
    yield [0.5, 0.5625, 0.5625, 0.625, 0.625, 0.625, 0.6875, 0.6875, 0.6875, 0.6875, 0.75, 0.75, 0.75, 0.75, 0.8125]
    yield [0.5, 0.515625, 0.53125, 0.546875, 0.5625, 0.578125, 0.59375, 0.609375]  # steps of exactly 1/64
    yield [0.5, 0.5625, 0.546875, 0.625, 0.609375, 0.59375, 0.6875, 0.671875, 0.65625, 0.640625, 0.625]
    yield [0.25, 0.5, float("nan"), 0.625, float("nan"), 0.5, 0.75, 0.6875, 0.625]
    rng = np.random.default_rng(5)
    for _ in range(6):
        t = np.arange(25)
        v = 0.9 - (t - rng.integers(3, 15)) ** 2 / 400 + rng.normal(0.0, 0.02, t.size)
        yield [float(x) for x in np.round(v * 256) / 256]


def _stopping_max_runs() -> list[Run]:
    runs = [  # the visible test's run: mode "max" on an accuracy
        Run([0.5, 0.75, 0.75, 0.625, 0.875], dict(monitor="val_accuracy", patience=2, mode="max"),
            monitor="val_accuracy", exact=True, compare="mirror"),
    ]
    for values in _curves_max():
        for patience in [0, 1, 2, 3, 5]:
            for min_delta in [0.0, 0.015625, 0.0625]:
                kwargs = dict(monitor="val_accuracy", patience=patience, min_delta=min_delta, mode="max")
                runs.append(Run(values, kwargs, monitor="val_accuracy", compare="mirror"))
    return runs


# test_restore_best_weights --------------------------------------------------------------------
# 1. Scripted runs, stopped early and not (patience 5 on short runs), with Keras as reference.
_SCRIPTED = [
    [1.0, 0.5, 0.75, 0.875, 0.9375],                  # best at 1; patience 5 never stops: restored anyway
    [4.0, 3.0, 2.0, 1.0],                              # best is the last epoch
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],               # ties: the best is the first epoch
    [2.0, 1.75, 1.75, 1.5, 1.5, 1.5, 1.25, 1.25, 1.25, 1.25, 1.0],
    [0.5, 0.25, 0.375, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75],
    [3.0, 2.0, float("nan"), 1.5, float("nan"), float("nan"), 1.0, 1.25, 1.5, 1.75, 2.0],
]


def _restore_runs() -> list[Run]:
    runs = [  # the visible test's runs: stopped after epoch 3, best epoch 1; and without restoring
        Run([1.0, 0.5, 0.75, 0.875], dict(patience=2, restore_best_weights=True), track_weights=True, exact=True,
            compare="restore"),
        Run([1.0, 0.5, 0.75, 0.875], dict(patience=2), track_weights=True, exact=True, compare="restore"),
    ]
    for values in _SCRIPTED:
        for patience in [1, 3, 5]:
            for min_delta, restore in [(0.0, True), (0.25, True), (0.0, False)]:
                kwargs = dict(patience=patience, min_delta=min_delta, restore_best_weights=restore)
                runs.append(Run(values, kwargs, track_weights=True, compare="restore"))
    # mode "max" too
    for patience in [1, 5]:
        kwargs = dict(monitor="val_accuracy", patience=patience, mode="max", restore_best_weights=True)
        runs.append(Run([0.25, 0.5, 0.375, 0.4375, 0.5, 0.46875], kwargs, monitor="val_accuracy", track_weights=True,
                        compare="restore"))
    return runs


# 2. A real model.fit. Linear regression from zero weights, full-batch SGD, no shuffling: the
# training is the same on every run and for any seed. The weights move along w = s * (1, 2)
# towards the training solution; the validation targets are made with (1, 0.5), so the
# validation loss 0.75 * (5 s^2 - 4 s + 1.25) falls until s = 0.4 (epoch 2) and then rises.
# (patience, epochs): stopped early; and a run that ends before patience runs out.
FIT_RUNS = [(3, 30), (5, 6)]


# test_reset -----------------------------------------------------------------------------------
_RESET_RUNS = [
    [0.25, 0.5, 0.75, 1.0, 1.25],
    [4.0, 3.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5],
    [1.0, 0.5, 0.375, 0.4375, 0.25, 0.3125, 0.375, 0.4375, 0.5],
    [0.125, 0.125, 0.125, 0.125, 0.125, 0.125],
    [8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0],
    [5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
]


def _reuses() -> list[Reuse]:
    # the visible test: the same instance, a new run: 0.25 is forgotten
    reuses = [Reuse(dict(patience=1), [[0.25, 0.5, 0.75], [4.0, 3.0, 2.0, 2.5]], exact=True)]
    for kwargs in [dict(patience=0), dict(patience=2), dict(patience=3, min_delta=0.0625),
                   dict(patience=2, restore_best_weights=True), dict(patience=10, restore_best_weights=True)]:
        reuses.append(Reuse(kwargs, _RESET_RUNS + _RESET_RUNS[::-1]))
    # mode "max", reused
    reuses.append(Reuse(dict(monitor="val_accuracy", patience=1, mode="max", restore_best_weights=True),
                        [[0.5, 0.9375, 0.875], [0.25, 0.375, 0.5, 0.625, 0.5625], [0.75, 0.5]], monitor="val_accuracy"))
    return reuses


ARGUMENT_RUNS = _argument_runs()
STOPPING_MIN_RUNS = _stopping_min_runs()
STOPPING_MAX_RUNS = _stopping_max_runs()
RESTORE_RUNS = _restore_runs()
REUSES = _reuses()
# the hidden cases as many as the old hidden tests counted (visible runs come first)
assert len(STOPPING_MIN_RUNS) == 2 + 14 * 15 + 14 * 3
assert len(STOPPING_MAX_RUNS) == 1 + 13 * 15


# -- the probe's driver -------------------------------------------------------------------------

def _epoch_weights(epoch):
    """Weights that identify an epoch: kernel = epoch + 1, bias = -(epoch + 1)."""
    return [np.full((1, 1), epoch + 1.0, np.float32), np.full((1,), -(epoch + 1.0), np.float32)]


def _play_model():
    import keras

    # zeros: building it draws no random numbers (play sets the weights anyway)
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])


def _play(callback, model, values, monitor="val_loss", track_weights=False) -> dict:
    """The notebook's ``play``: drive ``callback`` through a scripted training run; what happened."""
    model.stop_training = False
    model.set_weights(_epoch_weights(-1))
    callback.set_model(model)
    callback.on_train_begin({})
    epochs_run = 0
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch, {})
        if track_weights:
            model.set_weights(_epoch_weights(epoch))
        # Other entries than the monitored one, as model.fit would log them.
        logs = {"loss": 2.0 ** -epoch, "accuracy": 1.0 - 2.0 ** -(epoch + 1),
                "val_loss": 100.0 - epoch, "val_accuracy": 0.5}
        logs[monitor] = float(value)
        callback.on_epoch_end(epoch, logs)
        epochs_run = epoch + 1
        if model.stop_training:
            break
    callback.on_train_end({})
    kernel, bias = model.get_weights()
    best = callback.best
    return {
        "epochs_run": epochs_run,
        "stopped_epoch": int(as_scalar(callback.stopped_epoch, "stopped_epoch")),
        "best_epoch": int(as_scalar(callback.best_epoch, "best_epoch")),
        "best": None if best is None else as_scalar(best, "best"),
        "weights_from_epoch": [round(float(kernel.item())) - 1, round(-float(bias.item())) - 1],
    }


def _probe_runs(runs: list[Run], ns: dict, rec: Recorder, model) -> None:
    import keras

    PatienceEarlyStopping = ns["PatienceEarlyStopping"]
    for i, run in enumerate(runs):
        rec.call(f"run {i}", lambda: _play(PatienceEarlyStopping(*run.args, **run.kwargs), model, run.values,
                                            run.monitor, run.track_weights))
        own = run.own()
        if own is not None:
            rec.call(f"run {i}|own", lambda: _play(PatienceEarlyStopping(**own[0]), model, own[1], run.monitor,
                                                    run.track_weights))
        rec.library(f"run {i}|keras", lambda: _play(keras.callbacks.EarlyStopping(**run.keras_kwargs()), model,
                                                     run.values, run.monitor, run.track_weights))


def _probe_reuses(reuses: list[Reuse], ns: dict, rec: Recorder, model) -> None:
    import keras

    PatienceEarlyStopping = ns["PatienceEarlyStopping"]
    for i, reuse in enumerate(reuses):
        mine = rec.call(f"reuse {i}", lambda: PatienceEarlyStopping(**reuse.kwargs), lambda _: "constructed")
        theirs = keras.callbacks.EarlyStopping(**reuse.kwargs)
        for j, values in enumerate(reuse.runs):
            if mine is not None:
                rec.call(f"reuse {i} run {j}", lambda: _play(mine, model, values, reuse.monitor, track_weights=True))
            rec.call(f"reuse {i} run {j}|own", lambda: _play(PatienceEarlyStopping(**reuse.kwargs), model, values,
                                                              reuse.monitor, track_weights=True))
            rec.library(f"reuse {i} run {j}|keras", lambda: _play(theirs, model, values, reuse.monitor, track_weights=True))


# -- the judge's comparison -----------------------------------------------------------------------

def _same_best(got, want, exact: bool) -> bool:
    if got is None or want is None:
        return got is want
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False
    if math.isnan(got) or math.isnan(want):
        return math.isnan(got) and math.isnan(want)
    return got == want if exact else math.isclose(got, want, rel_tol=FLOAT32_RTOL)


def _read_run(v: Verdict, key: str, what: str) -> dict | None:
    got = v.returned(key, what)
    if got is None:
        return None
    if not isinstance(got, dict) or set(got) != set(FIELDS):
        v.fail(f"{what}: the run could not be read ({_short(got)})", key)
        return None
    return got


def _differences(got: dict, want: dict, exact: bool, negate_best: bool = False) -> list[str]:
    found = []
    for name in FIELDS:
        expected = want[name]
        if name == "best" and negate_best and isinstance(expected, (int, float)) and not isinstance(expected, bool):
            expected = -expected
        same = _same_best(got[name], expected, exact) if name == "best" else got[name] == expected
        if not same:
            found.append((name, got[name], expected))
    return found


def _judge_run(v: Verdict, key: str, what: str, exact: bool) -> None:
    """The student's run ``key`` against the reference's Keras run: the same as the notebook's ``same_run``."""
    got = _read_run(v, key, what)
    if got is None:
        return
    found = _differences(got, v.reference[f"{key}|keras"], exact)
    if found:
        v.fail(f"{what}: " + "; ".join(f"{n} = {_short(g)} where Keras' EarlyStopping gives {_short(w)}"
                                       for n, g, w in found), key)


def _judge_own(v: Verdict, key: str, run: Run) -> None:
    """The student's run ``key`` against the student's own comparison run (``run.compare``)."""
    got = _read_run(v, key, run.what())
    kwargs, values = run.own()
    if run.compare == "mirror":
        other = f"the same callback with mode=\"min\" on the negated values {_values(values)}"
    else:
        other = "PatienceEarlyStopping(" + ", ".join(f"{k}={w!r}" for k, w in kwargs.items()) + ") on the same values"
    own = _read_run(v, f"{key}|own", other)
    if got is None or own is None:
        return
    found = _differences(got, own, exact=True, negate_best=run.compare == "mirror")
    if found:
        v.fail(f"{run.what()}: " + "; ".join(f"{n} = {_short(g)}" for n, g, _ in found)
               + f", but {other} gives " + "; ".join(f"{n} = {_short(w)}" for n, _, w in found), key)


def _matches(value, best) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return (math.isnan(best) and math.isnan(value)) or (not math.isnan(best) and math.isclose(value, best, rel_tol=FLOAT32_RTOL))


def _best_epochs(values: list, run: dict) -> list[int] | None:
    """The epochs run whose value is the callback's own ``best``: restoring must give one of their weights.

    Judged by the value, not by ``best_epoch``, whose bookkeeping the stopping
    cells grade. None: ``best`` is no value seen.
    """
    best, epochs_run = run.get("best"), run.get("epochs_run")
    if not isinstance(best, (int, float)) or isinstance(best, bool) or not isinstance(epochs_run, int):
        return None
    return [epoch for epoch, value in enumerate(values[:epochs_run]) if _matches(value, best)] or None


def _judge_restored(v: Verdict, key: str, run: Run) -> None:
    """Which epoch's weights the model ends with, judged against the callback's own best value and epochs run."""
    got = _read_run(v, key, run.what())
    if got is None:
        return
    epochs_run = got["epochs_run"]
    if run.kwargs.get("restore_best_weights"):
        epochs = _best_epochs(run.values, got)
        if epochs is None:
            v.fail(f"{run.what()}: best = {_short(got['best'])} is none of the values monitored, so which epoch's "
                   "weights to restore is undefined", key)
            return
        restored = got["weights_from_epoch"]
        v.check(isinstance(restored, list) and len(restored) == 2 and restored[0] == restored[1] and restored[0] in epochs,
                f"{run.what()}: the model ends with the weights of epoch {_short(restored)}; the callback's best value "
                f"{_short(got['best'])} was reached at epoch {' or '.join(map(str, epochs))}, whose weights it must "
                "restore (stopped early or not)", key)
    else:
        last = epochs_run - 1 if isinstance(epochs_run, int) else None
        v.check(got["weights_from_epoch"] == [last, last],
                f"{run.what()}: without restore_best_weights the model must keep the last epoch's weights "
                f"(epoch {last}), it ends with those of epoch {_short(got['weights_from_epoch'])}", key)


def _short(value) -> str:
    text = repr(value) if not isinstance(value, list) else "(" + ", ".join(map(str, value)) + ")"
    return text if len(text) <= 80 else text[:77] + "..."


def _judge_runs(runs: list[Run], v: Verdict) -> None:
    for i, run in enumerate(runs):
        if run.compare == "keras":
            _judge_run(v, f"run {i}", run.what(), run.exact)
        elif run.compare == "restore":
            _judge_restored(v, f"run {i}", run)
        else:
            _judge_own(v, f"run {i}", run)


def _judge_reuses(reuses: list[Reuse], v: Verdict) -> None:
    for i, reuse in enumerate(reuses):
        if v.returned(f"reuse {i}", f"PatienceEarlyStopping({reuse.kwargs})") is None:
            continue
        for j in range(len(reuse.runs)):
            key, what = f"reuse {i} run {j}", reuse.what(j)
            got, fresh = _read_run(v, key, what), _read_run(v, f"{key}|own", f"a new PatienceEarlyStopping({reuse.kwargs})")
            if got is None or fresh is None:
                continue
            found = _differences(got, fresh, exact=True)
            if found:
                v.fail(f"{what}: " + "; ".join(f"{n} = {_short(g)} where a new instance gives {_short(w)}"
                                               for n, g, w in found) + " (on_train_begin must reset the state)", key)


# -- test_arguments -------------------------------------------------------------------------------

def probe_arguments(ns: dict, rec: Recorder) -> None:
    import keras

    PatienceEarlyStopping = ns["PatienceEarlyStopping"]
    rec.call("is a Callback", lambda: issubclass(PatienceEarlyStopping, keras.callbacks.Callback))
    rec.call("is an EarlyStopping", lambda: issubclass(PatienceEarlyStopping, keras.callbacks.EarlyStopping))
    rec.call("mode='auto' at construction", lambda: PatienceEarlyStopping(mode="auto"), lambda _: "constructed")
    model = _play_model()
    for bad in BAD_MODES:
        # ValueError at construction, or at the latest when the callback is first used
        rec.call(f"mode={bad!r}", lambda: _play(PatienceEarlyStopping(mode=bad), model, [1.0, 2.0, 3.0, 4.0]),
                 lambda _: "played")
    _probe_runs(ARGUMENT_RUNS, ns, rec, model)


def judge_arguments(v: Verdict) -> None:
    if v.returned("is a Callback", "issubclass(PatienceEarlyStopping, keras.callbacks.Callback)") is not None:
        v.check(v.student["is a Callback"] is True, "PatienceEarlyStopping must subclass keras.callbacks.Callback")
    if v.returned("is an EarlyStopping", "issubclass(PatienceEarlyStopping, keras.callbacks.EarlyStopping)") is not None:
        v.check(v.student["is an EarlyStopping"] is False,
                "PatienceEarlyStopping must not subclass keras.callbacks.EarlyStopping: implement it by hand")
    v.raises("mode='auto' at construction", "PatienceEarlyStopping(mode=\"auto\")", "ValueError")
    for bad in BAD_MODES:
        v.raises(f"mode={bad!r}", f"PatienceEarlyStopping(mode={bad!r}), at construction or when first used",
                 "ValueError")
    _judge_runs(ARGUMENT_RUNS, v)


# -- test_stopping_min / test_stopping_max ----------------------------------------------------------

def _probe_scripted(runs: list[Run]) -> Callable:
    def probe(ns: dict, rec: Recorder) -> None:
        _probe_runs(runs, ns, rec, _play_model())

    return probe


def _judge_scripted(runs: list[Run]) -> Callable:
    def judge(v: Verdict) -> None:
        _judge_runs(runs, v)

    return judge


# -- test_restore_best_weights ----------------------------------------------------------------------

def _fit(callback, epochs: int) -> dict:
    """Train the fit's linear model with ``callback``; the logs, the weights after every epoch and at the end."""
    import keras

    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]], np.float32)
    y_train = x @ np.array([[1.0], [2.0]], np.float32)
    y_val = x @ np.array([[1.0], [0.5]], np.float32)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse", run_eagerly=True)  # no tracing: faster
    weights = []  # the weights at the end of every epoch
    recorder = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: weights.append(model.get_weights()))
    history = model.fit(x, y_train, validation_data=(x, y_val), epochs=epochs, batch_size=4,
                        shuffle=False, verbose=0, callbacks=[recorder, callback]).history
    return {"val_loss": [float(x) for x in history["val_loss"]], "epochs": len(history["loss"]),
            "weights": weights, "final": model.get_weights()}


def probe_restore_best_weights(ns: dict, rec: Recorder) -> None:
    import keras

    PatienceEarlyStopping = ns["PatienceEarlyStopping"]
    _probe_runs(RESTORE_RUNS, ns, rec, _play_model())
    # No seed to set: the fit draws no random numbers (zero initial weights, no shuffling, full batch).
    for patience, epochs in FIT_RUNS:
        def mine():
            callback = PatienceEarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
            run = _fit(callback, epochs)
            run["stopped_epoch"] = int(as_scalar(callback.stopped_epoch, "stopped_epoch"))
            run["best_epoch"] = int(as_scalar(callback.best_epoch, "best_epoch"))
            run["best"] = as_scalar(callback.best, "best")
            return run

        rec.call(f"fit {patience} {epochs}", mine)
        rec.library(f"fit {patience} {epochs}|keras", lambda: _fit(
            keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True), epochs))


def _arrays(value) -> list[np.ndarray] | None:
    if not isinstance(value, list) or not all(isinstance(a, np.ndarray) for a in value):
        return None
    return value


def _close_weights(got, want) -> bool:
    got, want = _arrays(got), _arrays(want)
    return got is not None and want is not None and len(got) == len(want) and all(
        g.shape == w.shape and np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=FLOAT32_RTOL, atol=WEIGHTS_ATOL)
        for g, w in zip(got, want))


def judge_restore_best_weights(v: Verdict) -> None:
    _judge_runs(RESTORE_RUNS, v)
    for patience, epochs in FIT_RUNS:
        key = f"fit {patience} {epochs}"
        what = (f"model.fit (at most {epochs} epochs) with "
                f"PatienceEarlyStopping(monitor='val_loss', patience={patience}, restore_best_weights=True)")
        run = v.returned(key, what)
        if run is None:
            continue
        losses, weights = run.get("val_loss") if isinstance(run, dict) else None, run.get("weights") if isinstance(run, dict) else None
        if not (isinstance(losses, list) and losses and all(isinstance(x, (int, float)) for x in losses)
                and isinstance(weights, list) and len(weights) == len(losses)):
            v.fail(f"{what}: the run could not be read")
            continue
        # The losses are this model's (the same fit with Keras' callback logged them too, for as long as it ran):
        # a callback that changed the model during training is not judged further.
        keras_losses = v.reference[f"{key}|keras"]["val_loss"]
        common = min(len(losses), len(keras_losses))
        shown = _values(losses, 7)
        if not v.check(np.allclose(losses[:common], keras_losses[:common], rtol=FLOAT32_RTOL),
                       f"{what}: the logged validation losses {shown} are not those of this model "
                       "(does the callback change the model during training?)", key):
            continue
        # The weights it ends with: those of the epoch whose loss is the callback's own best value.
        epochs = _best_epochs(losses, {**run, "epochs_run": len(losses)})
        if epochs is None:
            v.fail(f"{what}: best = {_short(run.get('best'))} is none of the validation losses {shown}", key)
            continue
        v.check(any(_close_weights(run.get("final"), weights[epoch]) for epoch in epochs),
                f"{what}: the model does not end with the weights of epoch {' or '.join(map(str, epochs))}, whose "
                f"validation loss is the callback's best {_short(run.get('best'))}", key)


# -- test_reset -------------------------------------------------------------------------------------

def probe_reset(ns: dict, rec: Recorder) -> None:
    _probe_reuses(REUSES, ns, rec, _play_model())


def judge_reset(v: Verdict) -> None:
    _judge_reuses(REUSES, v)


CHECKS = {
    "test_arguments": Check(
        probe_arguments,
        judge_arguments,
        contract=(
            'PatienceEarlyStopping(monitor="val_loss", patience=0, min_delta=0.0, mode="min",',
            "(**not** of `keras.callbacks.EarlyStopping`)",
            '`mode` must be `"min"` or `"max"`, anything else raises `ValueError`',
            "`min_delta` is used by its absolute value",
        ),
    ),
    "test_stopping_min": Check(
        _probe_scripted(STOPPING_MIN_RUNS),
        _judge_scripted(STOPPING_MIN_RUNS),
        contract=(
            '`current < best - min_delta` (mode `"min"`)',
            "strictly, so a tie is no improvement (nor is NaN",
            "The first epoch of a run is always an improvement.",
            "the monitored value is `logs[monitor]`",
            "Training stops at the end of the `patience`-th epoch in a\nrow that does not improve",
            "With\n`patience=0` and with `patience=1` training stops at the end of the first epoch\nwithout improvement.",
        ),
    ),
    "test_stopping_max": Check(
        _probe_scripted(STOPPING_MAX_RUNS),
        _judge_scripted(STOPPING_MAX_RUNS),
        contract=(
            '`current > best + min_delta` (mode `"max"`)',
            "strictly, so a tie is no improvement (nor is NaN",
            "Training stops at the end of the `patience`-th epoch in a\nrow that does not improve",
        ),
    ),
    "test_restore_best_weights": Check(
        probe_restore_best_weights,
        judge_restore_best_weights,
        contract=(
            "the model gets the weights it had at the end of the best epoch, **whether training stopped early or not**",
            "in a real `model.fit`",
        ),
    ),
    "test_reset": Check(
        probe_reset,
        judge_reset,
        contract=("one instance can be reused for several `fit` calls",),
    ),
}
