"""Hidden tests of a5_batch_norm: a batch-normalization layer written by hand.

Each probe builds the student's ``MyBatchNormalization`` on fixed, seeded
inputs and records what it returns (outputs, variables, gradients); each
judge compares with the reference solution's record and, where a closed form
exists, with that closed form computed here from the reference record's
inputs.

Where the tests used to compare with ``keras.layers.BatchNormalization`` in
the student's process, the reference record stands in for Keras (the
reference solution is Keras' algorithm; ``tests/assignment_variants``
grades a subclass of Keras' own layer as a correct submission, which keeps
the two in step), and the closed forms below (batch moments, moving
averages, inference map, gradients) anchor both to the stated semantics.
Keras' layer runs in a probe only as an input generator: its
``get_weights()`` order in ``test_build`` and the seeded initial Dense
weights in ``test_in_model``.

Each probe also records the cases of its cell's visible test; the judge
decides those exactly as the visible test asserts them and files those
failures under the cases' keys (``Check.visible``), so that a visible test
that passed in the kernel but is wrong here is flagged by the grader.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from regcourse.checking import GRADIENT_RTOL, GRADIENT_STEP, as_scalar, numerical_gradient, relative_error
from regcourse.grading.judge import Check, Raised, Recorder, Verdict


def off_limits() -> dict:
    """The implementation policy (the notebook's "Implementation policy"): every ready-made batch normalization."""
    import keras
    import tensorflow as tf

    layer = keras.layers.BatchNormalization
    return {"keras.layers.BatchNormalization": (layer.__init__, layer.build, layer.call),
            "keras.ops.batch_normalization": keras.ops.batch_normalization,
            "tf.nn.batch_normalization": tf.nn.batch_normalization,
            "tf.compat.v1.nn.fused_batch_norm": tf.compat.v1.nn.fused_batch_norm}

NAMES = ("gamma", "beta", "moving_mean", "moving_variance")
#: How a comparison with the reference record is named to students: it computes what Keras' layer computes.
KERAS = "as keras.layers.BatchNormalization computes it"
KERAS_MODEL = "compared with the same model and data with keras.layers.BatchNormalization in place of yours"

#: The visible tests' comparisons: np.testing.assert_allclose(out, expected, atol=1e-5) keeps its default rtol=1e-7.
VISIBLE_ATOL, VISIBLE_RTOL = 1e-5, 1e-7
#: Outputs are O(1) to O(10) (|gamma| <= 3, |beta| <= 2). Float32 moments over at
#: most a few hundred values and the normalization itself are accurate to a few
#: 1e-7 relative; different correct formulas (two-pass vs E[x²]−E[x]², rsqrt vs
#: divide) differ by < 5e-6 here (measured). The wrong variants differ by > 1e-3.
#: Inference is an affine map of each value, O(10) at most here: float32 round-off ~1e-6.
OUTPUT_ATOL = 1e-4
#: Moving statistics: values O(1)–O(10), each update adds float32 round-off ~1e-6.
STAT_ATOL = 1e-4
#: Gradients through batch normalization in float32: dL/dx = gamma/sigma·(g − mean(g) − x̂·mean(g·x̂))
#: cancels terms of size |g|·|gamma|/sigma ≤ 30 here, so float32 round-off leaves < 1e-5 absolute
#: (measured on several correct implementations); the wrong variants are off by > 1e-3.
GRAD_ATOL = 1e-4
#: Two short SGD runs (8 steps) from identical weights on identical batches: they differ
#: only by float32 round-off in the normalization, amplified by at most ~10 per step.
MODEL_ATOL = 1e-4

# -- cases (shape, momentum, epsilon), each with its own seeded generator ------------------------

VISIBLE_BUILD = "visible (None, 3)"
BUILD_SHAPES = [(None, 1), (None, 7), (None, 4, 4, 5), (2, 3, 6)]
BUILD_CALL_SHAPES = [(6, 3), (2, 3, 3, 4)]
#: Keras' weights for the set_weights case: arange(5) + k, in Keras' order gamma, beta, moving_mean, moving_variance.
SET_WEIGHTS_OFFSETS = (1.0, 10.0, 20.0, 30.0)

TRAINING_SEED = 51
TRAINING_CASES = [((8, 3), 0.99, 1e-3), ((5, 4), 0.9, 0.1), ((32, 6), 0.5, 0.5), ((2, 3), 0.0, 1e-3),
                  ((3, 4, 4, 2), 0.9, 1e-3), ((2, 5, 3, 3), 0.7, 0.3), ((4, 2, 2, 5), 0.99, 1e-2), ((6, 7, 3), 0.8, 0.05)]
TRAINING_STEPS = 4
#: The layer's defaults are Keras' (the signature MyBatchNormalization(momentum=0.99, epsilon=1e-3)).
DEFAULT_MOMENTUM, DEFAULT_EPSILON = 0.99, 1e-3
DEFAULT_STEPS = 3

INFERENCE_SEED = 52
INFERENCE_CASES = [((8, 3), 0.99, 1e-3), ((1, 4), 0.9, 0.1), ((3, 4, 4, 2), 0.5, 0.5), ((2, 3, 5), 0.9, 1e-2)]
#: training=False, training=None, training not given, training=0: all inference.
INFERENCE_CALLS = ("training=False", "training=None", "training not given", "training=0")
AFTER_TRAINING_MOMENTUM, AFTER_TRAINING_EPSILON, AFTER_TRAINING_STEPS = 0.5, 1e-3, 3
#: The batches on which a layer shows its own training formula (statistics equal to the moving ones).
OWN_FORMULA_SEED, OWN_FORMULA_BATCH = 55, 16

GRADIENT_SEED = 53
FLOAT64_CASES = [((5, 3), 1e-3), ((4, 2), 0.5), ((2, 2, 3, 2), 1e-2)]
FLOAT32_GRADIENT_CASES = [((8, 3), 0.99, 1e-3), ((3, 4), 0.9, 0.2), ((3, 3, 2, 4), 0.9, 1e-2), ((2, 4, 3), 0.5, 0.5)]

MODEL_SEED = 54
MODEL_MOMENTUM, MODEL_EPSILON = 0.8, 1e-2
MODEL_DENSE = (0, 3)  # the two Dense layers (model.layers has no InputLayer)


def _case(shape, momentum, epsilon) -> str:
    return f"shape {shape}, momentum {momentum}, epsilon {epsilon}"


# -- the probes' helpers ----------------------------------------------------------------------

def _np(value) -> np.ndarray:
    """A variable, tensor or array as NumPy (how the old tests read them: keras.ops.convert_to_numpy)."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value))


def _set(bn, values) -> None:
    for name, value in zip(NAMES, values):
        getattr(bn, name).assign(value)


def _given(cls, momentum: float, epsilon: float, shape: tuple, weights: list) -> Callable:
    """A maker of ``cls(momentum, epsilon)`` built for ``shape`` and given ``weights`` (for ``Recorder.call``)."""
    def make():
        bn = cls(momentum=momentum, epsilon=epsilon)
        bn.build((None,) + tuple(shape[1:]))
        _set(bn, weights)
        return bn

    return make


def _watchable(variable):
    """What ``tf.GradientTape.watch`` accepts for a layer's variable (a Keras variable holds a TensorFlow one)."""
    import keras

    return variable.value if isinstance(variable, keras.Variable) else variable


def _read(rec: Recorder, key: str, bn) -> None:
    """Record the layer's four named variables as ``key|gamma`` ... ``key|moving_variance``."""
    for name in NAMES:
        rec.call(f"{key}|{name}", lambda name=name: _np(getattr(bn, name)).copy())


def _layout(bn) -> dict:
    """Which named attribute each entry of the weight lists is, and the variables' shapes."""
    named = {name: getattr(bn, name) for name in NAMES}

    def which(w):
        for name, v in named.items():
            if w is v:
                return name
        return f"another variable ({str(getattr(w, 'path', None) or getattr(w, 'name', type(w).__name__))[:60]})"

    return {"weights": [which(w) for w in bn.weights],
            "trainable": [which(w) for w in bn.trainable_weights],
            "non_trainable": [which(w) for w in bn.non_trainable_weights],
            "shapes": {name: [None if n is None else int(n) for n in v.shape] for name, v in named.items()}}


def _gradient_pair(f, x) -> dict:
    """The tape's gradient of ``f`` at ``x`` and the central-difference one, both through the student's layer.

    As regcourse.checking.assert_gradient_matches, without its assertion: the judge compares.
    """
    import tensorflow as tf

    variable = tf.Variable(np.asarray(x, dtype=np.float64))
    with tf.GradientTape() as tape:
        value = f(variable)
    analytic = tape.gradient(value, variable)
    if analytic is None:
        return {"analytic": "none"}
    numeric = numerical_gradient(lambda z: as_scalar(f(tf.constant(z))), x, GRADIENT_STEP)
    return {"analytic": _np(analytic), "numeric": numeric}


# -- the judges' helpers ----------------------------------------------------------------------

def _array(value):
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array


def _compare(v: Verdict, got, expected, what: str, *, atol: float, rtol: float = 0.0, key: str | None = None) -> bool:
    """``got`` (a student's value, None if it was not returned) within atol + rtol·|expected| of ``expected``.

    ``key`` marks the failure as one of that record key (only for keys whose visible test fails too).
    """
    if got is None:
        return False
    array = _array(got)
    if array is None:
        return v.check(False, f"{what}: expected an array of numbers, got {type(got).__name__}", key)
    want = np.asarray(expected, dtype=np.float64)
    if array.shape != want.shape:
        return v.check(False, f"{what}: shape {array.shape}, expected {want.shape}", key)
    close = np.isclose(array, want, rtol=rtol, atol=atol)
    if close.all():
        return True
    worst = np.unravel_index(int(np.argmax(np.where(close, -np.inf, np.nan_to_num(np.abs(array - want), nan=np.inf)))),
                             array.shape)
    where = f" at index {tuple(int(i) for i in worst)}" if array.ndim else ""
    tolerance = f"absolute tolerance {atol:g}" + (f", relative {rtol:g}" if rtol else "")
    v.fail(f"{what}: {array[worst]:.7g}{where} where {want[worst]:.7g} is expected "
           f"({int((~close).sum())} of {close.size} values off; {tolerance})", key)
    return False


def _as_visible_test(v: Verdict, key: str, what: str, expected, *, exact: bool = False) -> bool:
    """The visible test's own assertion on the student's recorded value, failing under ``key``.

    It is decided exactly as the visible test decides it (np.testing on the same
    arrays), so a failure here means the visible test failed too: when the
    kernel reported none, the grader flags it (``Check.visible``).
    """
    got = v.returned(key, what)
    if got is None:
        return False
    try:
        if exact:
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, atol=VISIBLE_ATOL)
        return True
    except (AssertionError, TypeError, ValueError):
        if _compare(v, got, expected, what, atol=0.0 if exact else VISIBLE_ATOL, rtol=0.0 if exact else VISIBLE_RTOL,
                    key=key):
            v.fail(f"{what}: outside the tolerance of the visible test", key)
        return False


def _close(got, want, atol: float) -> bool:
    """Whether ``got`` is ``want`` within ``atol``, failing nothing (None or another shape: no)."""
    got, want = _array(got), _array(want)
    return got is not None and want is not None and got.shape == want.shape and np.allclose(got, want, rtol=0.0, atol=atol)


def _agrees(v: Verdict, keys, *, atol: float) -> bool:
    """Whether the student's values for ``keys`` are the reference's within ``atol``, failing nothing.

    The gate of one mistake, one charge: a cell whose behaviour builds on the
    forward pass judges its own values only where the forward pass is right
    (the training and inference cells grade the forward pass itself).
    """
    return all(_close(v.student.get(key), v.reference.get(key), atol) for key in keys)


def _like_reference(v: Verdict, key: str, what: str, *, atol: float) -> bool:
    """The student's value for ``key`` within ``atol`` of the reference solution's."""
    return _compare(v, v.returned(key, what), v.reference[key], what, atol=atol)


def _exact(v: Verdict, got, expected, what: str) -> bool:
    return _compare(v, got, expected, what, atol=0.0)


def _moments(x, axes):
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=axes), x.var(axis=axes)  # ddof=0: biased


def _axes(shape) -> tuple:
    return tuple(range(len(shape) - 1))


def _numpy_reference(x, gamma, beta, mean_var, momentum, epsilon):
    """Output and updated moving statistics, in float64, of one training step."""
    x = np.asarray(x, dtype=np.float64)
    mean, var = _moments(x, _axes(x.shape))
    out = gamma * (x - mean) / np.sqrt(var + epsilon) + beta
    moving_mean, moving_var = mean_var
    return out, (moving_mean * momentum + mean * (1 - momentum), moving_var * momentum + var * (1 - momentum))


def _inference(x, gamma, beta, mean, var, epsilon):
    return gamma * (np.asarray(x, np.float64) - mean) / np.sqrt(var + epsilon) + beta


def _with_moments(rng, shape, mean, var) -> np.ndarray:
    """A float32 batch of ``shape`` whose mean and biased variance over every axis but the last are ``mean``
    and ``var`` (up to float32 rounding)."""
    z = rng.normal(size=shape)
    axes = _axes(shape)
    z = (z - z.mean(axis=axes)) / z.std(axis=axes)
    return (np.asarray(mean, np.float64) + np.sqrt(np.asarray(var, np.float64)) * z).astype(np.float32)


def _own_formula(v: Verdict, case: str) -> Callable | None:
    """The student's training-mode map for ``case``'s weights, as the probe showed it, or None.

    The layer's training output on a batch whose statistics equal the case's
    moving statistics is, for every formula a layer of this shape can use,
    an affine map per feature: fitted here, it is what the same formula
    computes with the moving statistics. None where the output is not such a
    map (it is not one formula applied feature by feature: test_training
    judges that) or could not be had.
    """
    x, out = _array(v.reference.get(f"{case}|own formula|input")), _array(v.student.get(f"{case}|own formula|out"))
    if x is None or out is None or out.shape != x.shape or not np.all(np.isfinite(out)):
        return None
    features = x.shape[-1]
    inputs, outputs = x.reshape(-1, features), out.reshape(-1, features)
    slope = np.empty(features)
    intercept = np.empty(features)
    for j in range(features):
        slope[j], intercept[j] = np.polyfit(inputs[:, j], outputs[:, j], 1)
    if not np.allclose(inputs * slope + intercept, outputs, rtol=0.0, atol=OUTPUT_ATOL):
        return None
    return lambda z: np.asarray(z, np.float64) * slope + intercept


# -- test_build ---------------------------------------------------------------------------------

def probe_build(ns: dict, rec: Recorder) -> None:
    import keras

    MyBatchNormalization = ns["MyBatchNormalization"]

    def record(key, make):
        bn = rec.call(f"{key}|layer", make, lambda _: "built")
        if bn is not None:
            rec.call(f"{key}|layout", lambda: _layout(bn))
            _read(rec, key, bn)

    def built(shape, **kwargs):
        bn = MyBatchNormalization(**kwargs)
        bn.build(shape)
        return bn

    record(VISIBLE_BUILD, lambda: built((None, 3)))
    for shape in BUILD_SHAPES:
        record(f"build {shape}", lambda shape=shape: built(shape, momentum=0.8, epsilon=0.02))
    # built by Keras on the first call, in inference mode so that nothing changes
    for shape in BUILD_CALL_SHAPES:
        def called(shape=shape):
            bn = MyBatchNormalization()
            bn(np.ones(shape, np.float32), training=False)
            return bn

        record(f"first call {shape}", called)
    # inside a model: Keras' own weight order, so set_weights(keras_bn.get_weights()) fills the right variables
    model = rec.call("model", lambda: keras.Sequential([keras.Input((5,)), MyBatchNormalization()]), lambda _: "built")
    if model is not None:
        record("in a model", lambda: model.layers[0])
        keras_bn = keras.layers.BatchNormalization()  # input generator only: Keras' get_weights() order
        keras_bn.build((None, 5))
        keras_bn.set_weights([np.arange(5, dtype=np.float32) + k for k in SET_WEIGHTS_OFFSETS])
        rec.call("set_weights", lambda: model.layers[0].set_weights(keras_bn.get_weights()), lambda _: "done")
        _read(rec, "after set_weights", model.layers[0])


def judge_build(v: Verdict) -> None:
    for key in [k[: -len("|layer")] for k in v.reference if k.endswith("|layer")]:
        what = _build_what(key)
        if v.returned(f"{key}|layer", what) is None:
            continue
        visible = key == VISIBLE_BUILD  # the visible test asserts the order of the first four weights and gamma
        layout = v.returned(f"{key}|layout", f"the weights of {what}")
        if layout is not None:
            _judge_layout(v, layout, v.reference[f"{key}|layout"], what, f"{key}|layout" if visible else None)
        if key.startswith("first call"):
            # values after a call are test_inference's to grade ("changes no variable"): here the layout only
            continue
        for name in NAMES:
            if visible and name == "gamma":
                _as_visible_test(v, f"{key}|gamma", f"initial value of gamma of {what}", v.reference[f"{key}|gamma"],
                                 exact=True)
                continue
            _exact(v, v.returned(f"{key}|{name}", f"{name} of {what}"), v.reference[f"{key}|{name}"],
                   f"initial value of {name} of {what}")
    if v.returned("model", "keras.Sequential([keras.Input((5,)), MyBatchNormalization()])") is None:
        return
    v.returned("set_weights", "layer.set_weights(keras_bn.get_weights()) for a layer in a model")
    for name in NAMES:
        _exact(v, v.returned(f"after set_weights|{name}", name), v.reference[f"after set_weights|{name}"],
               f"{name} after layer.set_weights(keras_bn.get_weights()) (Keras' order: gamma, beta, moving_mean, "
               f"moving_variance)")


def _build_what(key: str) -> str:
    kind, _, shape = key.partition(" ")
    if kind == "visible":
        return f"MyBatchNormalization() built with layer.build({shape})"
    if kind == "build":
        return f"MyBatchNormalization(momentum=0.8, epsilon=0.02) built with layer.build({shape})"
    if kind == "first":
        return f"MyBatchNormalization() built by its first call on an input of shape {shape.partition(' ')[2]}"
    return "MyBatchNormalization() in keras.Sequential([keras.Input((5,)), ...])"


def _judge_layout(v: Verdict, layout, expected: dict, what: str, visible_key: str | None = None) -> None:
    """The weight lists and shapes; ``visible_key`` keys the failures the visible test shares (order, gamma's shape)."""
    if not isinstance(layout, dict) or set(layout) != set(expected):
        v.fail(f"{what}: could not read its weights")
        return
    weights, want = layout["weights"], expected["weights"]
    # the visible test: [w is v for w, v in zip(layer.weights, [gamma, beta, ...])] == [True] * 4
    first_ok = isinstance(weights, list) and weights[:len(want)] == want
    if isinstance(weights, list) and len(weights) != len(want):
        v.fail(f"{what}: expected {len(want)} weights (gamma, beta, moving_mean, moving_variance and no other "
               f"variable), got {len(weights)}: {weights}", None if first_ok else visible_key)
    elif not first_ok:
        v.fail(f"{what}: layer.weights should be {want} in this order, got {weights}", visible_key)
    v.check(layout["trainable"] == expected["trainable"],
            f"{what}: gamma and beta (only) should be trainable, in this order; "
            f"layer.trainable_weights is {layout['trainable']}")
    v.check(layout["non_trainable"] == expected["non_trainable"],
            f"{what}: moving_mean and moving_variance (only) should be non-trainable, in this order; "
            f"layer.non_trainable_weights is {layout['non_trainable']}")
    shapes = layout["shapes"]
    for name in NAMES:
        got = shapes.get(name) if isinstance(shapes, dict) else None
        v.check(got == expected["shapes"][name], f"{what}: {name} has shape {got}, expected {expected['shapes'][name]}",
                visible_key if name == "gamma" else None)


# -- test_training ------------------------------------------------------------------------------

VISIBLE_TRAINING_X = [[1.0, 2.0], [3.0, 6.0], [5.0, 4.0], [7.0, 0.0]]


def _training_weights(features, rng):
    return [rng.uniform(0.5, 3.0, features) * rng.choice([-1, 1], features),  # gamma, some negative
            rng.uniform(-2.0, 2.0, features),                                  # beta
            rng.uniform(-1.0, 1.0, features),                                  # moving mean
            rng.uniform(0.5, 2.0, features)]                                   # moving variance


def probe_training(ns: dict, rec: Recorder) -> None:
    import tensorflow as tf

    MyBatchNormalization = ns["MyBatchNormalization"]
    x = np.array(VISIBLE_TRAINING_X, dtype=np.float32)
    layer = rec.call("visible|layer", lambda: MyBatchNormalization(momentum=0.9, epsilon=0.01), lambda _: "built")
    if layer is not None:
        rec.call("visible|out", lambda: _np(layer(x, training=True)))
        for name in ("moving_mean", "moving_variance"):
            rec.call(f"visible|{name}", lambda name=name: _np(getattr(layer, name)).copy())

    rng = np.random.default_rng(TRAINING_SEED)
    for shape, momentum, epsilon in TRAINING_CASES:
        case = _case(shape, momentum, epsilon)
        features = shape[-1]
        # every input of the case is drawn first: the same for every submission, whatever it raises
        weights = _training_weights(features, rng)
        xs = [(rng.normal(size=shape) * rng.uniform(0.5, 3.0, features) + rng.uniform(-3, 3, features)).astype(np.float32)
              for _ in range(TRAINING_STEPS)]
        rec.value(f"{case}|weights", weights)
        rec.value(f"{case}|inputs", xs)

        def make(momentum=momentum, epsilon=epsilon, shape=shape, weights=weights):
            bn = MyBatchNormalization(momentum=momentum, epsilon=epsilon)
            bn.build((None,) + shape[1:])
            _set(bn, [w.astype(np.float32) for w in weights])
            return bn

        bn = rec.call(f"{case}|layer", make, lambda _: "built")
        if bn is None:
            continue
        # several training steps, each batch with its own per-feature offset and scale
        for step, x in enumerate(xs):
            given = x if step % 2 == 0 else tf.constant(x)
            rec.call(f"{case}|{step}|out", lambda: _np(bn(given, training=True)))
            for name in ("moving_mean", "moving_variance"):
                rec.call(f"{case}|{step}|{name}", lambda name=name: _np(getattr(bn, name)).copy())
        # gamma and beta are parameters: training calls must not change them
        for name in ("gamma", "beta"):
            rec.call(f"{case}|after|{name}", lambda name=name: _np(getattr(bn, name)).copy())

    # the defaults are Keras' (momentum 0.99, epsilon 1e-3), and a feature that is constant over the batch
    # (variance 0) gives beta, with no division by zero
    x = rng.normal(size=(6, 3)).astype(np.float32)
    x[:, 1] = 4.0
    rec.value("defaults|input", x)
    bn = rec.call("defaults|layer", MyBatchNormalization, lambda _: "built")
    if bn is not None:
        for step in range(DEFAULT_STEPS):
            rec.call(f"defaults|{step}|out", lambda: _np(bn(x, training=True)))
        for name in ("moving_mean", "moving_variance"):
            rec.call(f"defaults|{name}", lambda name=name: _np(getattr(bn, name)).copy())


def _given_case(v: Verdict, shape: tuple, momentum: float, epsilon: float) -> tuple[str, list] | None:
    """A case the probe made with :func:`_given`: its name and the reference's weights, or None (and a failure)
    when the student's layer could not be built and given them."""
    case = _case(shape, momentum, epsilon)
    if v.returned(f"{case}|layer", f"MyBatchNormalization(momentum={momentum}, epsilon={epsilon}), built and "
                                   f"given weights, for inputs of shape {shape}") is None:
        return None
    return case, v.reference[f"{case}|weights"]


def judge_training(v: Verdict) -> None:
    x = np.array(VISIBLE_TRAINING_X, dtype=np.float32)  # the visible test's expected values, as it computes them
    if v.returned("visible|layer", "MyBatchNormalization(momentum=0.9, epsilon=0.01)") is not None:
        what = "the visible example (4x2, momentum 0.9, epsilon 0.01)"
        _as_visible_test(v, "visible|out", f"training output of {what}",
                         (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 0.01))  # np.var is the biased variance
        _as_visible_test(v, "visible|moving_mean", f"moving_mean after one training step of {what}", 0.1 * x.mean(axis=0))
        _as_visible_test(v, "visible|moving_variance", f"moving_variance after one training step of {what}",
                         0.9 + 0.1 * x.var(axis=0))

    ref = v.reference
    for shape, momentum, epsilon in TRAINING_CASES:
        given = _given_case(v, shape, momentum, epsilon)
        if given is None:
            continue
        case, weights = given
        stats = (weights[2], weights[3])
        for step, x in enumerate(ref[f"{case}|inputs"]):
            when = f"{case}, training step {step + 1} ({'NumPy array' if step % 2 == 0 else 'tensor'} input)"
            expected, stats = _numpy_reference(x, weights[0], weights[1], stats, momentum, epsilon)
            out = v.returned(f"{case}|{step}|out", f"training call, {when}")
            if _compare(v, out, expected, f"training output, {when}", atol=OUTPUT_ATOL):
                _like_reference(v, f"{case}|{step}|out", f"training output, {when}, {KERAS}",
                            atol=OUTPUT_ATOL)
            for name, value in zip(("moving_mean", "moving_variance"), stats):
                got = v.returned(f"{case}|{step}|{name}", f"{name} after training step {step + 1}, {case}")
                if _compare(v, got, value, f"{name} after {step + 1} training steps, {case}", atol=STAT_ATOL):
                    _like_reference(v, f"{case}|{step}|{name}",
                                f"{name} after {step + 1} training steps, {KERAS}, {case}",
                                atol=STAT_ATOL)
        for index, name in ((0, "gamma"), (1, "beta")):
            _exact(v, v.returned(f"{case}|after|{name}", f"{name} after training steps, {case}"),
                   weights[index].astype(np.float32),
                   f"{name} after training calls (training must not change gamma and beta), {case}")

    if v.returned("defaults|layer", "MyBatchNormalization() (the defaults)") is None:
        return
    x = ref["defaults|input"]
    features = x.shape[-1]
    stats = (np.zeros(features), np.ones(features))
    out = None
    for step in range(DEFAULT_STEPS):
        what = f"training output of MyBatchNormalization() (defaults momentum 0.99, epsilon 1e-3), step {step + 1}"
        expected, stats = _numpy_reference(x, np.ones(features), np.zeros(features), stats,
                                           DEFAULT_MOMENTUM, DEFAULT_EPSILON)
        out = v.returned(f"defaults|{step}|out", what)
        if _compare(v, out, expected, what, atol=OUTPUT_ATOL):
            _like_reference(v, f"defaults|{step}|out", f"{what}, {KERAS}", atol=OUTPUT_ATOL)
    array = _array(out) if out is not None else None
    if array is not None and array.ndim == 2 and array.shape[1] > 1:
        _compare(v, array[:, 1], np.zeros(len(array)),
                 "output of a feature that is constant over the batch (variance 0: the output is beta = 0)",
                 atol=OUTPUT_ATOL)
    for name, value in zip(("moving_mean", "moving_variance"), stats):
        what = f"{name} of MyBatchNormalization() (defaults) after {DEFAULT_STEPS} training steps"
        if _compare(v, v.returned(f"defaults|{name}", what), value, what, atol=STAT_ATOL):
            _like_reference(v, f"defaults|{name}", f"{what}, {KERAS}", atol=STAT_ATOL)


# -- test_inference ------------------------------------------------------------------------------

# epsilon 0: the visible example shows the moving statistics at work, and leaves the formula (where epsilon
# goes) to the training cell's example (one mistake, one charge)
VISIBLE_INFERENCE = dict(epsilon=0.0, moving_mean=[1.0, -1.0], moving_variance=[4.0, 0.25],
                         x=[[1.0, 2.0], [3.0, 6.0]])


def probe_inference(ns: dict, rec: Recorder) -> None:
    import tensorflow as tf

    MyBatchNormalization = ns["MyBatchNormalization"]
    spec = VISIBLE_INFERENCE

    def visible():
        layer = MyBatchNormalization(epsilon=spec["epsilon"])
        layer.build((None, 2))
        layer.moving_mean.assign(spec["moving_mean"])
        layer.moving_variance.assign(spec["moving_variance"])
        return layer

    layer = rec.call("visible|layer", visible, lambda _: "built")
    if layer is not None:
        rec.call("visible|out", lambda: _np(layer(np.array(spec["x"], dtype=np.float32), training=False)))
        rec.call("visible|moving_mean", lambda: _np(layer.moving_mean).copy())

    rng = np.random.default_rng(INFERENCE_SEED)
    own_rng = np.random.default_rng(OWN_FORMULA_SEED)
    for shape, momentum, epsilon in INFERENCE_CASES:
        case = _case(shape, momentum, epsilon)
        features = shape[-1]
        weights = [rng.uniform(0.5, 3.0, features) * rng.choice([-1, 1], features), rng.uniform(-2, 2, features),
                   rng.uniform(-3, 3, features), rng.uniform(0.2, 5.0, features)]
        weights = [w.astype(np.float32) for w in weights]
        xs = [(rng.normal(size=shape) * 3 + 2).astype(np.float32) for _ in INFERENCE_CALLS]
        batch = rng.normal(size=shape).astype(np.float32)
        rec.value(f"{case}|weights", weights)
        rec.value(f"{case}|inputs", xs)

        bn = rec.call(f"{case}|layer", _given(MyBatchNormalization, momentum, epsilon, shape, weights), lambda _: "built")
        if bn is None:
            continue
        calls = [lambda z: bn(z, training=False), lambda z: bn(z, training=None), lambda z: bn(z),
                 lambda z: bn(z, training=0)]
        for k, (call, x) in enumerate(zip(calls, xs)):
            given = x if k % 2 == 0 else tf.constant(x)
            rec.call(f"{case}|{k}|out", lambda: _np(call(given)))
            _read(rec, f"{case}|{k}", bn)
        # each example's output does not depend on the rest of the batch
        rec.call(f"{case}|whole", lambda: _np(bn(batch, training=False)))
        rec.call(f"{case}|alone", lambda: _np(bn(batch[:1], training=False)))
        # the layer's own training formula, shown on a batch whose statistics are the moving ones: with them,
        # inference computes what that formula does (whether the formula is right is test_training's to judge)
        own_x = _with_moments(own_rng, (OWN_FORMULA_BATCH,) + tuple(shape[1:]), weights[2], weights[3])
        rec.value(f"{case}|own formula|input", own_x)
        twin = rec.call(f"{case}|own formula|layer", _given(MyBatchNormalization, momentum, epsilon, shape, weights),
                        lambda _: "built")
        if twin is not None:
            rec.call(f"{case}|own formula|out", lambda: _np(twin(own_x, training=True)))

    # after training steps, inference uses the statistics those steps accumulated (and leaves them)
    xs = [(rng.normal(size=(16, 4)) * 2 + 5).astype(np.float32) for _ in range(AFTER_TRAINING_STEPS + 1)]
    rec.value("after training|inputs", xs)
    bn = rec.call("after training|layer",
                  lambda: MyBatchNormalization(momentum=AFTER_TRAINING_MOMENTUM, epsilon=AFTER_TRAINING_EPSILON),
                  lambda _: "built")
    if bn is None:
        return
    for step, x in enumerate(xs[:-1]):
        rec.call(f"after training|{step}", lambda: bn(x, training=True), lambda _: "called")
    _read(rec, "after training|before", bn)
    rec.call("after training|out", lambda: _np(bn(xs[-1], training=False)))
    _read(rec, "after training|after", bn)

    # a fresh layer given the statistics the trained one holds computes what the trained one must
    def given_them():
        layer = MyBatchNormalization(momentum=AFTER_TRAINING_MOMENTUM, epsilon=AFTER_TRAINING_EPSILON)
        layer.build((None, xs[-1].shape[-1]))
        _set(layer, [_np(bn.gamma), _np(bn.beta), _np(bn.moving_mean), _np(bn.moving_variance)])
        return layer

    given = rec.call("after training|given", given_them, lambda _: "built")
    if given is not None:
        rec.call("after training|given|out", lambda: _np(given(xs[-1], training=False)))


def judge_inference(v: Verdict) -> None:
    spec = VISIBLE_INFERENCE
    if v.returned("visible|layer", "MyBatchNormalization(epsilon=0.01) built, moving statistics assigned") is not None:
        what = "the visible example (2x2, epsilon 0.01)"
        x = np.array(spec["x"], dtype=np.float32)  # the visible test's expected values, as it computes them
        expected = (x - spec["moving_mean"]) / np.sqrt(np.array(spec["moving_variance"]) + spec["epsilon"])
        _as_visible_test(v, "visible|out", f"inference output of {what}", expected)
        _as_visible_test(v, "visible|moving_mean",
                         f"moving_mean after an inference call of {what} (inference changes no variable)",
                         spec["moving_mean"], exact=True)

    ref = v.reference
    for shape, momentum, epsilon in INFERENCE_CASES:
        given = _given_case(v, shape, momentum, epsilon)
        if given is None:
            continue
        case, weights = given
        gamma, beta, mean, var = (np.asarray(w, np.float64) for w in weights)
        own = _own_formula(v, case)
        for k, (how, x) in enumerate(zip(INFERENCE_CALLS, ref[f"{case}|inputs"])):
            when = f"inference call with {how} ({'NumPy array' if k % 2 == 0 else 'tensor'} input), {case}"
            out = v.returned(f"{case}|{k}|out", when)
            expected = _inference(x, gamma, beta, mean, var, epsilon)
            if own is not None and not _close(out, expected, OUTPUT_ATOL) and _close(out, own(x), OUTPUT_ATOL):
                # the layer's own training formula with the moving statistics: right for this cell, whatever
                # is wrong with the formula is charged once, in test_training
                pass
            elif _compare(v, out, expected, f"output of the {when}", atol=OUTPUT_ATOL):
                _like_reference(v, f"{case}|{k}|out", f"output of the {when}, {KERAS}", atol=OUTPUT_ATOL)
            for name, before in zip(NAMES, weights):
                _exact(v, v.returned(f"{case}|{k}|{name}", f"{name} after the {when}"), before,
                       f"{name} after the {when} (inference changes no variable)")
        whole = v.returned(f"{case}|whole", f"inference call on a batch, {case}")
        alone = v.returned(f"{case}|alone", f"inference call on the batch's first example alone, {case}")
        whole = _array(whole) if whole is not None else None
        if whole is not None and alone is not None and whole.ndim >= 1:
            _compare(v, alone, whole[:1],
                     f"inference output of the first example alone vs within its batch (it must not depend on the "
                     f"rest of the batch), {case}", atol=OUTPUT_ATOL)

    what = (f"MyBatchNormalization(momentum={AFTER_TRAINING_MOMENTUM}, epsilon={AFTER_TRAINING_EPSILON}) after "
            f"{AFTER_TRAINING_STEPS} training steps")
    if v.returned("after training|layer", what) is None:
        return
    xs = ref["after training|inputs"]
    for step in range(len(xs) - 1):
        v.returned(f"after training|{step}", f"training call {step + 1} of {what}")
    # Inference must use the statistics the layer accumulated, whatever they are: whether it accumulated the
    # right ones is test_training's to grade, and how it computes with them the cases above (one mistake,
    # one charge). So the trained layer must compute what a fresh layer given its statistics computes.
    mean, var = (_array(v.student.get(f"after training|before|{name}")) for name in ("moving_mean", "moving_variance"))
    out = v.returned("after training|out", f"inference call of {what}")
    if out is not None and v.check(mean is not None and var is not None and mean.shape == var.shape == xs[-1].shape[-1:],
                                   f"the moving statistics of {what} could not be read"):
        uses = (f"inference output of {what} (it uses the moving statistics those steps accumulated: "
                f"moving_mean {np.round(mean, 4).tolist()}, moving_variance {np.round(var, 4).tolist()})")
        given = _array(v.student.get("after training|given|out"))
        if given is not None and np.all(np.isfinite(given)):
            _compare(v, out, given, f"{uses}, compared with a fresh layer given those statistics", atol=OUTPUT_ATOL)
        else:  # the fresh layer could not be had: the formula itself
            _compare(v, out, _inference(xs[-1], 1.0, 0.0, mean, var, AFTER_TRAINING_EPSILON), uses, atol=OUTPUT_ATOL)
    for name in NAMES:
        before = v.returned(f"after training|before|{name}", f"{name} of {what}")
        after = v.returned(f"after training|after|{name}", f"{name} of {what} after an inference call")
        if before is not None:
            _exact(v, after, before, f"{name} of {what}: the inference call changed it")


# -- test_gradients ------------------------------------------------------------------------------

VISIBLE_GRADIENT_X = [[1.0, -2.0], [0.5, 3.0], [2.0, 0.0]]
VISIBLE_GRADIENT_W = [[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0]]
FLOAT64_FUNCTIONS = ("sum(w * bn(x))", "sum(w * bn(x) ** 2)")


def probe_gradients(ns: dict, rec: Recorder) -> None:
    import keras
    import tensorflow as tf

    MyBatchNormalization = ns["MyBatchNormalization"]
    rng = np.random.default_rng(GRADIENT_SEED)
    # the layer must also run in float64 (Keras' dtype policy), for an accurate finite-difference check
    saved_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(keras.DTypePolicy("float64"))
    try:
        layer = rec.call("visible|layer", lambda: MyBatchNormalization(epsilon=0.1), lambda _: "built")
        if layer is not None:
            x0 = np.array(VISIBLE_GRADIENT_X)
            rec.call("visible|dtype", lambda: _np(layer(x0, training=True)).dtype.name)
            w0 = tf.constant(VISIBLE_GRADIENT_W, tf.float64)
            rec.call("visible|gradient", lambda: _gradient_pair(lambda z: tf.reduce_sum(w0 * layer(z, training=True)), x0))
        # finite differences in float64, 2-D and 4-D, several epsilons
        for shape, epsilon in FLOAT64_CASES:
            case = f"float64, shape {shape}, epsilon {epsilon}"
            gamma, beta = rng.uniform(0.5, 2.0, shape[-1]), rng.uniform(-1.0, 1.0, shape[-1])
            x = rng.normal(size=shape) * 2 + 1
            w = tf.constant(rng.normal(size=shape))

            def make(shape=shape, epsilon=epsilon, gamma=gamma, beta=beta):
                bn = MyBatchNormalization(momentum=0.9, epsilon=epsilon)
                bn.build((None,) + shape[1:])
                bn.gamma.assign(gamma)
                bn.beta.assign(beta)
                return bn

            bn = rec.call(f"{case}|layer", make, lambda _: "built")
            if bn is None:
                continue
            functions = (lambda z: tf.reduce_sum(w * bn(z, training=True)),
                         lambda z: tf.reduce_sum(w * bn(z, training=True) ** 2))
            for name, f in zip(FLOAT64_FUNCTIONS, functions):
                rec.call(f"{case}|{name}", lambda: _gradient_pair(f, x))
    finally:
        keras.config.set_dtype_policy(saved_policy)

    # float32 gradients with respect to the input, gamma and beta
    for shape, momentum, epsilon in FLOAT32_GRADIENT_CASES:
        case = _case(shape, momentum, epsilon)
        features = shape[-1]
        weights = [rng.uniform(0.5, 3.0, features) * rng.choice([-1, 1], features), rng.uniform(-2, 2, features),
                   rng.uniform(-1, 1, features), rng.uniform(0.5, 2, features)]
        weights = [w.astype(np.float32) for w in weights]
        x = (rng.normal(size=shape) * 2 + 1).astype(np.float32)
        g = rng.normal(size=shape).astype(np.float32)
        rec.value(f"{case}|weights", weights)
        rec.value(f"{case}|x", x)
        rec.value(f"{case}|g", g)

        bn = rec.call(f"{case}|layer", _given(MyBatchNormalization, momentum, epsilon, shape, weights), lambda _: "built")
        if bn is None:
            continue
        x_tensor, g_tensor = tf.constant(x), tf.constant(g)

        def gradients(training):
            with tf.GradientTape() as tape:
                # gamma and beta watched whether trainable or not: test_build grades the flags, this cell the math
                tape.watch([x_tensor, _watchable(bn.gamma), _watchable(bn.beta)])
                loss = tf.reduce_sum(g_tensor * tf.convert_to_tensor(bn(x_tensor, training=training)))
            return ["none" if d is None else _np(d) for d in tape.gradient(loss, [x_tensor, bn.gamma, bn.beta])]

        for training in (False, True):  # inference first: the training call moves the moving statistics
            rec.call(f"{case}|training={training}|out", lambda: _np(bn(x_tensor, training=training)))
            rec.call(f"{case}|training={training}", lambda: gradients(training))


def judge_gradients(v: Verdict) -> None:
    if v.returned("visible|layer", "MyBatchNormalization(epsilon=0.1) under the float64 dtype policy") is not None:
        dtype = v.returned("visible|dtype", "a training call under the float64 dtype policy")
        if dtype is not None:
            v.check(dtype == v.reference["visible|dtype"],
                    f"under the float64 dtype policy the layer's output is {dtype}, expected "
                    f"{v.reference['visible|dtype']} (do not force a dtype in add_weight or call)", "visible|dtype")
        _judge_gradient_pair(v, "visible|gradient", "the visible example (3x2, epsilon 0.1), sum(w * bn(x))")
    for shape, epsilon in FLOAT64_CASES:
        case = f"float64, shape {shape}, epsilon {epsilon}"
        if v.returned(f"{case}|layer", f"MyBatchNormalization(momentum=0.9, epsilon={epsilon}) in float64, "
                                       f"built for shape {shape}, gamma and beta assigned") is None:
            continue
        for name in FLOAT64_FUNCTIONS:
            if not isinstance(v.student.get(f"{case}|{name}"), Raised):  # a forward pass that raised is not graded here
                _judge_gradient_pair(v, f"{case}|{name}", f"{case}, {name} in training mode")

    ref = v.reference
    for shape, momentum, epsilon in FLOAT32_GRADIENT_CASES:
        given = _given_case(v, shape, momentum, epsilon)
        if given is None:
            continue
        case, weights = given[0], [np.asarray(w, np.float64) for w in given[1]]
        x, g = np.asarray(ref[f"{case}|x"], np.float64), np.asarray(ref[f"{case}|g"], np.float64)
        axes = _axes(shape)
        for training in (False, True):
            key = f"{case}|training={training}"
            if not _agrees(v, [f"{key}|out"], atol=GRAD_ATOL):
                continue  # a wrong output (graded by test_training / test_inference) has other gradients: no charge here
            grads = v.returned(key, f"gradients of sum(g * bn(x, training={training})), {case}")
            if grads is None:
                continue
            if not isinstance(grads, list) or len(grads) != 3:
                v.fail(f"gradients of sum(g * bn(x, training={training})), {case}: could not be read")
                continue
            # closed forms: dL/dbeta = sum of g, dL/dgamma = sum of g * x_hat, dL/dx as below
            if training:
                mean, var = _moments(x, axes)
            else:
                mean, var = weights[2], weights[3]
            sigma = np.sqrt(var + epsilon)
            x_hat = (x - mean) / sigma
            if training:  # the batch statistics depend on x
                dx = weights[0] / sigma * (g - g.mean(axis=axes) - x_hat * (g * x_hat).mean(axis=axes))
            else:
                dx = weights[0] / sigma * g
            closed = (dx, (g * x_hat).sum(axis=axes), g.sum(axis=axes))
            for index, name in enumerate(("the input", "gamma", "beta")):
                what = f"gradient with respect to {name}, {case}, training={training}"
                grad = grads[index]
                if not v.check(not isinstance(grad, str),
                               f"no gradient with respect to {name} (training={training}, {case}): is it trainable, "
                               f"computed with TensorFlow ops?"):
                    continue
                if _compare(v, grad, closed[index], what, atol=GRAD_ATOL):
                    _compare(v, grad, ref[key][index], f"{what}, {KERAS}", atol=GRAD_ATOL)


def _judge_gradient_pair(v: Verdict, key: str, what: str) -> None:
    """assert_gradient_matches' two assertions, judged here (failing under ``key``: it is the visible test's too)."""
    pair = v.returned(key, f"the gradient check of {what}")
    if pair is None:
        return
    if not isinstance(pair, dict) or "analytic" not in pair:
        v.fail(f"the gradient check of {what}: could not be read")
        return
    if isinstance(pair["analytic"], str):
        v.fail(f"{what}: no gradient flows from the output to the input: is it computed with TensorFlow ops?", key)
        return
    analytic, numeric = _array(pair["analytic"]), _array(pair.get("numeric"))
    if analytic is None or numeric is None or analytic.shape != numeric.shape:
        v.fail(f"the gradient check of {what}: the gradient has the wrong shape or type")
        return
    error = relative_error(analytic, numeric)
    v.check(error < GRADIENT_RTOL,
            f"gradient check of {what} failed: relative error {error:.2e} >= {GRADIENT_RTOL:.0e} between the gradient "
            f"TensorFlow computes through your layer and finite differences of its output", key)


# -- test_in_model ------------------------------------------------------------------------------

def probe_in_model(ns: dict, rec: Recorder) -> None:
    import keras

    MyBatchNormalization = ns["MyBatchNormalization"]

    def visible():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), MyBatchNormalization(),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(np.ones((8, 4), np.float32), np.zeros(8), epochs=1, batch_size=4, verbose=0)
        return list(model.predict(np.ones((3, 4), np.float32), verbose=0).shape)

    rec.call("visible|prediction shape", visible)

    def _model(bn):
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), bn, keras.layers.Activation("relu"),
                                 keras.layers.Dense(3, activation="softmax")])

    keras.utils.set_random_seed(0)
    # input generator only: the seeded initial Dense weights (the judge compares with the reference record)
    initial = _model(keras.layers.BatchNormalization(momentum=MODEL_MOMENTUM, epsilon=MODEL_EPSILON))
    dense = {i: initial.layers[i].get_weights() for i in MODEL_DENSE}
    rng = np.random.default_rng(MODEL_SEED)
    start = [rng.uniform(0.5, 2, 8), rng.uniform(-1, 1, 8), rng.uniform(-1, 1, 8), rng.uniform(0.5, 2, 8)]
    x = (rng.normal(size=(64, 6)) * 2 + 1).astype(np.float32)
    y = rng.integers(0, 3, size=64)

    def trained():
        mine = _model(MyBatchNormalization(momentum=MODEL_MOMENTUM, epsilon=MODEL_EPSILON))
        _set(mine.layers[1], [w.astype(np.float32) for w in start])
        for i in MODEL_DENSE:
            mine.layers[i].set_weights(dense[i])
        mine.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
        mine.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        return mine

    # the layer alone, as in the model (these weights, 8 features): two training steps and an inference call
    import tensorflow as tf

    def forward():
        bn = MyBatchNormalization(momentum=MODEL_MOMENTUM, epsilon=MODEL_EPSILON)
        bn.build((None, 8))
        _set(bn, [w.astype(np.float32) for w in start])
        batches = (rng_forward.normal(size=(3, 16, 8)) * 2 + 1).astype(np.float32)
        outputs = [_np(bn(batches[0], training=True)), _np(bn(batches[1], training=True)),
                   _np(bn(batches[2], training=False))]
        sources = [tf.constant(batches[0]), bn.gamma, bn.beta]
        with tf.GradientTape() as tape:
            tape.watch([_watchable(w) for w in sources])
            loss = tf.reduce_sum(tf.convert_to_tensor(bn(sources[0], training=True)) ** 2)
        gradients = ["none" if d is None else _np(d) for d in tape.gradient(loss, sources)]
        return {"outputs": outputs, "gradients": gradients, "trainable": len(bn.trainable_weights)}

    rng_forward = np.random.default_rng(MODEL_SEED + 1)
    rec.call("forward", forward)
    mine = rec.call("fit", trained, lambda _: "trained")
    if mine is None:
        return
    _read(rec, "batch norm", mine.layers[1])
    for i in MODEL_DENSE:
        rec.call(f"dense {i}", lambda i=i: [np.asarray(w) for w in mine.layers[i].get_weights()])
    rec.call("predictions", lambda: np.asarray(mine.predict(x, verbose=0)))


def judge_in_model(v: Verdict) -> None:
    shape = v.returned("visible|prediction shape", "model.fit and model.predict of the visible example's model")
    if shape is not None:
        v.check(shape == v.reference["visible|prediction shape"],
                f"model.predict of the visible example's model has shape {shape}, "
                f"expected {v.reference['visible|prediction shape']}", "visible|prediction shape")
    if v.returned("fit", "model.fit of a model with MyBatchNormalization(momentum=0.8, epsilon=0.01)") is None:
        return
    predictions = _array(v.student.get("predictions"))
    v.check(predictions is not None and predictions.shape == (64, 3) and np.all(np.isfinite(predictions)),
            "model.predict after model.fit gives no finite (64, 3) probabilities")
    # Judged against the reference only where the layer alone is right (outputs, statistics, gradients,
    # trainable weights: each graded in its own cell): otherwise the trained values differ for that reason.
    forward, wanted = v.student.get("forward"), v.reference["forward"]
    if not (isinstance(forward, dict) and forward.get("trainable") == wanted["trainable"] and all(
            isinstance(forward.get(part), list) and len(forward[part]) == len(wanted[part])
            and all(_agrees(Verdict({"x": a}, {"x": b}), ["x"], atol=GRAD_ATOL) for a, b in zip(forward[part], wanted[part]))
            for part in ("outputs", "gradients"))):
        return
    for name in NAMES:
        _like_reference(v, f"batch norm|{name}", f"{name} after model.fit, {KERAS_MODEL}", atol=MODEL_ATOL)
    for i in MODEL_DENSE:
        what = f"the weights of the Dense layer model.layers[{i}] after model.fit, {KERAS_MODEL}"
        got = v.returned(f"dense {i}", what)
        if got is None:
            continue
        want = v.reference[f"dense {i}"]
        if v.check(isinstance(got, list) and len(got) == len(want), f"{what}: could not be read"):
            for part, a, b in zip(("kernel", "bias"), got, want):
                _compare(v, a, b, f"{what} ({part})", atol=MODEL_ATOL)
    _like_reference(v, "predictions", f"model.predict after model.fit, {KERAS_MODEL}", atol=MODEL_ATOL)


CHECKS = {
    "test_build": Check(
        probe_build,
        judge_build,
        contract=("creates, **in this order**", "exactly these four weights and no other variable",
                  "kept as attributes of those names", "Keras calls `build` the first time the layer sees",
                  "layer.set_weights(keras_layer.get_weights())"),
        visible=(f"{VISIBLE_BUILD}|layer", f"{VISIBLE_BUILD}|layout", f"{VISIBLE_BUILD}|gamma"),
    ),
    "test_training": Check(
        probe_training,
        judge_training,
        contract=("**biased** batch variance", "moving = moving * momentum + batch * (1 - momentum)",
                  "`gamma` and `beta` are left as they are", "MyBatchNormalization(momentum=0.99, epsilon=1e-3)",
                  "constant over the batch", "moving statistics after several training steps",
                  "Inputs may be NumPy arrays or tensors"),
        visible=("visible|layer", "visible|out", "visible|moving_mean", "visible|moving_variance"),
    ),
    "test_inference": Check(
        probe_inference,
        judge_inference,
        contract=("inference (`training` falsy, `None` or not given)", "changes no variable",
                  "depends on that example alone", "Inputs may be NumPy arrays or tensors"),
        visible=("visible|layer", "visible|out", "visible|moving_mean"),
    ),
    "test_gradients": Check(
        probe_gradients,
        judge_gradients,
        contract=("(with respect to the input, `gamma` and `beta`) must match", "so that gradients flow",
                  "the gradient check runs the layer in `float64`"),
        visible=("visible|layer", "visible|dtype", "visible|gradient"),
    ),
    "test_in_model": Check(
        probe_in_model,
        judge_in_model,
        contract=("works inside `model.fit`", "the same weights and predictions"),
        visible=("visible|prediction shape",),
    ),
}
