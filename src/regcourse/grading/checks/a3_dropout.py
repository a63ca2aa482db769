"""Hidden tests of a3_dropout: the InvertedDropout layer, build_mlp and generalization_gap.

The layer is random: its masks cannot be compared with the reference's
element by element. Its probes record what each training call returned,
compactly (shape, dtype, the dropped mask as packed bits, the survivors'
ratio output / input), and the judges evaluate the statistical and relational
properties on those records: the fraction dropped, the mean preserved, two
calls drawing different masks, rows, columns and neighbours independent. The
deterministic parts (inference is the identity, the configuration, the model's
structure, the gap) are compared with the reference record or with what the
contract states.
"""

from __future__ import annotations

import math

import numpy as np

from regcourse.checking import FLOAT32_ATOL, FLOAT32_RTOL
from regcourse.grading.judge import Check, Raised, Recorder, Verdict


def off_limits() -> dict:
    """The implementation policy (the notebook's "Implementation policy"): Keras' and TensorFlow's dropout."""
    import keras
    import tensorflow as tf

    return {"keras.layers.Dropout": (keras.layers.Dropout.__init__, keras.layers.Dropout.call),
            "keras.random.dropout": keras.random.dropout, "tf.nn.dropout": (tf.nn.dropout, tf.compat.v1.nn.dropout)}

# -- tolerances -----------------------------------------------------------------------------

# ---- Statistical bounds (false failure below 1e-9 for ANY correct implementation and ANY seed) ----
# Each element is dropped independently with probability p, so the drop indicators D_1..D_n are
# i.i.d. Bernoulli(p). Hoeffding's inequality for n independent variables with values in [a, b]:
#     P(|mean - E[mean]| >= t) <= 2 exp(-2 n t^2 / (b - a)^2).
# (Float rounding moves values by ~1e-7 relative: negligible against every t below.)
# Setting the right-hand side to delta gives the tolerance t = (b - a) sqrt(ln(2 / delta) / (2 n)),
# which `tolerance` computes. Every statistical check of test_dropout_training uses delta = 1e-12
# (one event) or delta = 1e-13 per event with a union bound over at most 800 events (8e-11 in all);
# there are fewer than 60 checks of the first kind, so the whole cell fails a correct layer with
# probability below 60e-12 + 8e-11 < 1e-9, whatever the random stream.
DELTA = 1e-12
#: Per row/column of the 400 x 400 input (800 events, union bound 8e-11).
LINE_DELTA = 1e-13
#: Visible test: 10,000 independent drops: P(|fraction - 0.5| >= 0.1) <= 2 exp(-2 * 10000 * 0.1**2) = 3e-87 (Hoeffding).
VISIBLE_DROPPED = (0.4, 0.6)
#: Visible test, per row and per column of ones((100, 100)): P(|dropped/100 - 0.5| >= 0.4) <= 2 exp(-2 * 100 * 0.4**2)
#: = 2.5e-14, 200 lines: 5e-12. A mask shared along a row or a column drops 0 or 100 of it.
VISIBLE_LINE_DROPPED = (10, 90)
#: The rate read back from get_config: the float the student stored, up to math.isclose's default.
CONFIG_RTOL = 1e-9
#: The gradient is w·m/(1-p), one float32 multiply per element; dropped elements have exactly 0.
GRADIENT_RTOL, GRADIENT_ATOL = FLOAT32_RTOL, FLOAT32_ATOL
#: The same float32 network on different batch sizes: matmul summation order moves results by ~1e-7.
PREDICT_RTOL, PREDICT_ATOL = 1e-5, 1e-6
#: model.evaluate averages float32 losses over batches and clips probabilities: 1e-4 relative.
EVALUATE_RTOL = 1e-4
#: Keras' cross-entropy clips probabilities to [EPSILON, 1 - EPSILON] (keras.backend.epsilon()).
EPSILON = 1e-7
#: An activation is identified by its values on ACTIVATION_PROBE: float32 relu/softmax of six numbers.
ACTIVATION_RTOL, ACTIVATION_ATOL = 1e-6, 1e-7
#: build_mlp: evaluate's loss against the cross-entropy of the float32 predictions (64 examples).
LOSS_RTOL = 1e-4
#: Accuracy is a fraction of 64 examples: only float32 rounding may separate the two.
ACCURACY_ATOL = 1e-6
#: Gaps of float32 accuracies (or a float32 tensor): 1e-6 absolute.
GAP_ATOL = 1e-6
#: The visible gap example: float64 arithmetic on given numbers.
VISIBLE_GAP_ATOL = 1e-9


def tolerance(n: int, width: float = 1.0, delta: float = DELTA) -> float:
    """Hoeffding's t for the mean of n independent variables of range ``width`` at confidence 1 - delta."""
    return width * math.sqrt(math.log(2.0 / delta) / (2.0 * n))


# -- shared conversions (probe side) --------------------------------------------------------

def _as_numpy(value) -> np.ndarray:
    from regcourse.checking import as_numpy

    return as_numpy(value)


def _scalar(value) -> float:
    from regcourse.checking import as_scalar

    return as_scalar(value, "generalization_gap")


def _dtype(value) -> str | None:
    """The Keras name of the value's dtype; None when it has none (the judge reports that)."""
    import keras

    try:
        return keras.backend.standardize_dtype(value.dtype)
    except Exception:  # no dtype, or not one Keras knows
        return None


def _shape(value) -> list[int] | None:
    """The value's shape; None when it has none (the judge reports that)."""
    try:
        return [int(n) for n in tuple(value.shape)]
    except Exception:  # no shape, or one with unknown dimensions
        return None


def _built(_) -> str:
    return "built"


def _returned(_) -> str:
    return "returned"


def _plain(value):
    """A config value as plain data when it is one, else its repr (never equal to a number)."""
    if isinstance(value, (bool, int, float, str, type(None), np.integer, np.floating)):
        return value
    return repr(value)


def _no_zeros(rng, shape, dtype=np.float32) -> np.ndarray:
    """Inputs bounded away from 0, of both signs, so 'dropped' means exactly 'output is 0'."""
    return (rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)).astype(dtype)


def _training_output(x: np.ndarray, y, *, mask: bool = True) -> dict:
    """A training call's output, compactly: shape, dtype, which elements are 0 (packed bits, unless not
    ``mask``) and y / x."""
    out = {"shape": _shape(y), "dtype": _dtype(y)}
    if out["shape"] is None or tuple(out["shape"]) != x.shape:
        return out
    values = _as_numpy(y)
    dropped = values == 0
    ratio = values / np.asarray(x, dtype=np.float64)
    survivors = ratio[~dropped]
    if mask:
        out["dropped"] = np.packbits(dropped.ravel())
    out.update(
        ratio_min=float(np.min(survivors)) if survivors.size else None,
        ratio_max=float(np.max(survivors)) if survivors.size else None,
        ratio_mean=float(np.mean(ratio)),
    )
    return out


def _unpack(bits: np.ndarray, shape) -> np.ndarray:
    return np.unpackbits(bits, count=math.prod(shape)).astype(bool).reshape(shape)


# -- test_dropout_construction --------------------------------------------------------------

BAD_RATES = (1, 1.0, 1.5, 7, -0.1, -1e-6)
GOOD_RATES = (0, 0.0, 1e-3, 0.5, 0.99)
CONFIG_CASES = [(0.3, None), (0.25, 42), (0.0, 7), (0.9, 0)]


def _float_or_none(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _config(config) -> dict:
    """rate (as stored, and as float()) and seed of a config as plain data; absent keys are left out."""
    if not isinstance(config, dict):
        return {"__not_a_dict__": type(config).__name__}
    plain = {key: _plain(config[key]) for key in ("rate", "seed") if key in config}
    if "rate" in config:
        plain["rate as float"] = _float_or_none(config["rate"])
    return plain


def probe_construction(ns: dict, rec: Recorder) -> None:
    import keras

    InvertedDropout = ns["InvertedDropout"]
    layer = rec.call("visible|layer", lambda: InvertedDropout(0.3, seed=5), lambda l: isinstance(l, keras.layers.Layer))
    if layer is not None:
        rec.call("visible|config", layer.get_config, _config)
    for bad in BAD_RATES:
        rec.call(f"bad|{bad!r}", lambda: InvertedDropout(bad), _built)
    for good in GOOD_RATES:
        rec.call(f"good|{good!r}", lambda: InvertedDropout(good), _built)
    rec.call("keywords", lambda: InvertedDropout(rate=0.2, seed=None), _built)
    for rate, seed in CONFIG_CASES:
        case = f"rate={rate}, seed={seed}"
        layer = rec.call(f"{case}|layer", lambda: InvertedDropout(rate, seed=seed), _built)
        if layer is None:
            continue
        config = rec.call(f"{case}|config", layer.get_config, _config)
        if config is not None:
            clone = rec.call(f"{case}|from_config", lambda: InvertedDropout.from_config(config),
                             lambda c: isinstance(c, InvertedDropout))
            if clone is not None:
                rec.call(f"{case}|clone config", clone.get_config, _config)

        def round_trip():  # Keras' own serialization round trip (what saving a model uses)
            serialized = keras.saving.serialize_keras_object(layer)
            return keras.saving.deserialize_keras_object(serialized, custom_objects={"InvertedDropout": InvertedDropout})

        restored = rec.call(f"{case}|restored", round_trip, lambda r: isinstance(r, InvertedDropout))
        if restored is not None:
            rec.call(f"{case}|restored config", restored.get_config, _config)


def _judge_config(v: Verdict, key: str, what: str, rate, seed, *, exact: bool = False) -> None:
    """rate and seed in the config: float(rate) close to the rate (exactly the rate when ``exact``), seed == seed."""
    config = v.returned(key, what)
    if config is None:
        return
    shown = {name: config[name] for name in ("rate", "seed") if name in config}
    if not v.check("rate" in config and "seed" in config, f"{what} must hold rate and seed, got {shown}", key):
        return
    if exact:
        same = config["rate"] == rate and not isinstance(config["rate"], str)
    else:
        same = config["rate as float"] is not None and math.isclose(config["rate as float"], rate, rel_tol=CONFIG_RTOL)
    v.check(same, f"{what}: rate {rate} but the config has {config['rate']!r}", key)
    v.check(config["seed"] == seed and not isinstance(config["seed"], str),
            f"{what}: seed {seed} but the config has {config['seed']!r}", key)


def judge_construction(v: Verdict) -> None:
    if v.returned("visible|layer", "InvertedDropout(0.3, seed=5)") is not None:
        v.check(v.student["visible|layer"] is True, "InvertedDropout must be a keras.layers.Layer", "visible|layer")
        _judge_config(v, "visible|config", "InvertedDropout(0.3, seed=5).get_config()", 0.3, 5, exact=True)
    for bad in BAD_RATES:
        v.raises(f"bad|{bad!r}", f"InvertedDropout({bad!r})", "ValueError")
    for good in GOOD_RATES:
        v.returned(f"good|{good!r}", f"InvertedDropout({good!r}) (a valid rate)")
    v.returned("keywords", "InvertedDropout(rate=0.2, seed=None) (the keyword arguments of the contract)")
    for rate, seed in CONFIG_CASES:
        case = f"rate={rate}, seed={seed}"
        if v.returned(f"{case}|layer", f"InvertedDropout({rate}, seed={seed})") is None:
            continue
        _judge_config(v, f"{case}|config", f"InvertedDropout({rate}, seed={seed}).get_config()", rate, seed)
        if f"{case}|from_config" in v.student:
            if v.returned(f"{case}|from_config", f"InvertedDropout.from_config(...) for {case}") is not None:
                if v.check(v.student[f"{case}|from_config"] is True,
                           f"InvertedDropout.from_config(...) for {case} must return an InvertedDropout"):
                    _judge_config(v, f"{case}|clone config", f"the config of from_config(get_config()) for {case}", rate, seed)
        restored = v.returned(f"{case}|restored", f"Keras' serialize/deserialize round trip for {case}")
        if restored is not None and v.check(restored is True, f"Keras' round trip for {case} must give an InvertedDropout"):
            _judge_config(v, f"{case}|restored config", f"the config after Keras' round trip for {case}", rate, seed)


# -- test_dropout_inference -----------------------------------------------------------------

SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 3, 4, 5)]
INFERENCE_RATES = (0.0, 0.2, 0.5, 0.9)
KWARGS = ({}, {"training": False}, {"training": None})


def _output(y) -> dict:
    return {"shape": _shape(y), "dtype": _dtype(y), "values": _as_numpy(y)}


def _kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "no training argument"


def probe_inference(ns: dict, rec: Recorder) -> None:
    import tensorflow as tf

    InvertedDropout = ns["InvertedDropout"]
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    layer = rec.call("visible|layer", lambda: InvertedDropout(0.5), _built)
    if layer is not None:
        for kwargs in KWARGS:
            rec.call(f"visible|{_kwargs_text(kwargs)}", lambda: layer(x, **kwargs), _output)
    zero = rec.call("visible|rate 0 layer", lambda: InvertedDropout(0.0), _built)
    if zero is not None:
        rec.call("visible|rate 0 training", lambda: zero(x, training=True), _output)

    rng = np.random.default_rng(30)
    for rate in INFERENCE_RATES:
        layer = rec.call(f"{rate}|layer", lambda: InvertedDropout(rate), _built)
        for shape in SHAPES:
            x = rng.normal(size=shape).astype(np.float32)  # drawn whatever the layer does
            if layer is None:
                continue
            for kind, given in (("array", x), ("tensor", tf.constant(x))):
                for kwargs in KWARGS:
                    rec.call(f"{rate}|{shape}|float32 {kind}|{_kwargs_text(kwargs)}", lambda: layer(given, **kwargs), _output)
            # a training call in between changes nothing at inference
            rec.call(f"{rate}|{shape}|training call", lambda: layer(x, training=True), _returned)
            for kwargs in ({"training": False}, {}):
                rec.call(f"{rate}|{shape}|after training|{_kwargs_text(kwargs)}", lambda: layer(x, **kwargs), _output)
    # rate 0 is the identity even while training (a new layer for every shape, as before the first call)
    for shape in SHAPES:
        x = rng.normal(size=shape).astype(np.float32)
        for rate in (0.0, 0):
            layer = rec.call(f"rate {rate!r} training|{shape}|layer", lambda: InvertedDropout(rate), _built)
            if layer is not None:
                rec.call(f"rate {rate!r} training|{shape}", lambda: layer(x, training=True), _output)


def _judge_identity(v: Verdict, key: str, what: str, *, visible: bool = False) -> None:
    """The output has the input's shape and dtype and equals it exactly (the reference returns the input).

    A ``visible`` case is judged as the visible test asserts it: its values (and their shape) only.
    """
    out = v.returned(key, what)
    if out is None:
        return
    want = v.reference[key]
    got, expected = np.asarray(out["values"]), np.asarray(want["values"])
    if not visible:
        shape = None if out["shape"] is None else tuple(out["shape"])
        if not v.check(shape == tuple(want["shape"]), f"{what}: shape {shape}, expected the input's {tuple(want['shape'])}", key):
            return
        v.check(out["dtype"] == want["dtype"], f"{what}: dtype {out['dtype']}, expected the input's {want['dtype']}", key)
    if got.shape != expected.shape:
        v.fail(f"{what}: an output of shape {got.shape}, expected the input's {expected.shape}", key)
    elif not np.array_equal(got, expected):
        worst = int(np.argmax(np.abs(got - expected))) if got.size else 0
        v.fail(f"{what}: not the identity (an element is {got.flat[worst]:.7g} where the input is {expected.flat[worst]:.7g})", key)


# The layers at rate 0 the inference cell builds (_rate_zero_layer): a layer that refuses rate 0 is charged for
# it by test_dropout_construction (a valid rate), and this cell leaves their cases out (one mistake, one charge).
def _rate_zero_layer(key: str) -> bool:
    return key in ("0.0|layer", "visible|rate 0 layer") or (key.startswith("rate ") and key.endswith("|layer"))


def _layer_of(key: str) -> str:
    parts = key.split("|")
    if key == "visible|rate 0 training":
        return "visible|rate 0 layer"
    if parts[0].startswith("rate "):
        return f"{parts[0]}|{parts[1]}|layer"
    return f"{parts[0]}|layer"


def judge_inference(v: Verdict) -> None:
    refused = {key for key in v.reference if _rate_zero_layer(key) and isinstance(v.student.get(key), Raised)}
    for key in v.reference:
        parts = key.split("|")
        layer = _layer_of(key)
        if layer in refused or key in refused:
            continue  # rate 0 refused: test_dropout_construction's to charge
        if key not in v.student and isinstance(v.student.get(layer), Raised):
            continue  # the layer could not be constructed: reported once, under its own key
        if key == "visible|rate 0 layer":
            v.returned(key, "InvertedDropout(0.0)")
        elif key == "visible|layer":
            v.returned(key, "InvertedDropout(0.5)")
        elif parts[0] == "visible":
            what = "InvertedDropout(0.0)(x, training=True) (rate 0 is the identity)" if parts[1] == "rate 0 training" \
                else f"InvertedDropout(0.5) on a 3x4 float32 array with {parts[1]}"
            _judge_identity(v, key, what, visible=True)
        elif parts[-1] == "layer":
            v.returned(key, f"InvertedDropout({parts[0].split()[1] if parts[0].startswith('rate ') else parts[0]})")
        elif parts[-1] == "training call":
            pass  # whether a training call works is test_dropout_training's to grade; the inference calls after it are
            # this cell's (one mistake, one charge)
        elif parts[0].startswith("rate "):
            rate = parts[0].split()[-2]
            _judge_identity(v, key, f"InvertedDropout({rate})(x, training=True) on a float32 array of shape {parts[1]} "
                                    "(rate 0 is the identity even while training)")
        elif parts[2] == "after training":
            _judge_identity(v, key, f"InvertedDropout({parts[0]}) on a float32 array of shape {parts[1]} with {parts[3]}, "
                                    "after a training call")
        else:
            _judge_identity(v, key, f"InvertedDropout({parts[0]}) on a {parts[2]} of shape {parts[1]} with {parts[3]}")


# -- test_dropout_training ------------------------------------------------------------------

TRAINING_RATES = (0.1, 0.3, 0.5, 0.8)
TRAINING_SEEDS = (None, 7)


def _visible_output(y) -> dict:
    values = _as_numpy(y)
    unique, counts = np.unique(values, return_counts=True)
    dropped = values == 0
    lines = (dropped.sum(axis=1), dropped.sum(axis=0)) if dropped.ndim == 2 else (np.zeros(0), np.zeros(0))
    return {"values": unique, "counts": counts.astype(np.int64), "size": int(values.size),
            "row_drops": lines[0].astype(np.int64), "column_drops": lines[1].astype(np.int64)}


def probe_training(ns: dict, rec: Recorder) -> None:
    import tensorflow as tf

    InvertedDropout = ns["InvertedDropout"]
    layer = rec.call("visible|layer", lambda: InvertedDropout(0.5), _built)
    if layer is not None:
        rec.call("visible|output", lambda: layer(np.ones((100, 100), dtype=np.float32), training=True), _visible_output)

    rng = np.random.default_rng(31)

    def training(key, layer, x, call=None):
        if layer is not None:
            rec.call(key, call or (lambda: layer(x, training=True)), lambda y: _training_output(x, y))

    # 1) per rate, with and without a seed: exact values, drop fraction, mean preserved, fresh masks
    x = _no_zeros(rng, (200, 500))
    for rate in TRAINING_RATES:
        for seed in TRAINING_SEEDS:
            case = f"1|rate {rate}, seed {seed}"
            layer = rec.call(f"{case}|layer", lambda: InvertedDropout(rate, seed=seed), _built)
            training(f"{case}|first call", layer, x)
            training(f"{case}|second call", layer, x)

    # 2) element-wise, not row- or column-wise; 3) any shape, neighbours independent; other ranks
    half = rec.call("half|layer", lambda: InvertedDropout(0.5), _built)
    x = _no_zeros(rng, (400, 400))
    training("2|400x400", half, x)
    x = _no_zeros(rng, (8, 16, 16, 32))
    training("3|4-D", half, x)
    for shape in [(1000,), (10, 20, 30)]:
        x = _no_zeros(rng, shape)
        training(f"3|shape {shape}", half, x)

    # 4) fresh masks also inside a compiled graph (what model.fit runs)
    layer = rec.call("4|layer", lambda: InvertedDropout(0.3, seed=11), _built)
    x = _no_zeros(rng, (200, 500))
    if layer is not None:
        @tf.function
        def step(t):
            return layer(t, training=True)

        training("4|first call", layer, x, lambda: step(tf.constant(x)))
        training("4|second call", layer, x, lambda: step(tf.constant(x)))

    # 6) gradients flow through the realized mask: d sum(w * y) / dx = w * m / (1 - p)
    layer = rec.call("6|layer", lambda: InvertedDropout(0.4), _built)
    x = tf.Variable(_no_zeros(rng, (60, 50)))
    w = rng.normal(size=(60, 50)).astype(np.float32)
    rec.value("6|w", w)
    if layer is not None:
        def gradient():
            with tf.GradientTape() as tape:
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.convert_to_tensor(y) * tf.constant(w))
            grad = tape.gradient(loss, x)
            return {"kept": np.packbits((_as_numpy(y) != 0).ravel()),
                    "gradient": None if grad is None else _as_numpy(grad)}

        rec.call("6|gradient", gradient)


def _dropped(v: Verdict, key: str, what: str, rate: float):
    """Exact property: every output element is 0 or x / (1 - rate). Returns the dropped mask (or None)."""
    out = v.returned(key, what)
    if out is None:
        return None
    want = v.reference[key]
    shape = None if out["shape"] is None else tuple(out["shape"])
    if not v.check(shape == tuple(want["shape"]), f"{what}: shape {shape} != input shape {tuple(want['shape'])}"):
        return None
    v.check(out["dtype"] == want["dtype"], f"{what}: dtype {out['dtype']}, expected {want['dtype']} (the input's)")
    scale = 1.0 / (1.0 - rate)
    low, high = out["ratio_min"], out["ratio_max"]
    if low is not None:  # |y - x/(1-p)| <= rtol |x/(1-p)|  <=>  y/x in [(1 - rtol), (1 + rtol)] / (1 - p)
        ok = scale * (1 - FLOAT32_RTOL) <= low and high <= scale * (1 + FLOAT32_RTOL)
        v.check(ok, f"{what}: survivors must be x / (1 - rate) = {scale:.6g} x, found output/input from "
                    f"{low:.7g} to {high:.7g}")
    return _unpack(out["dropped"], out["shape"])


def _fraction(v: Verdict, d, rate: float, what: str, delta: float = DELTA) -> None:
    if d is not None:
        v.check(abs(d.mean() - rate) < tolerance(d.size, delta=delta),
                f"{what}: dropped {d.mean():.4f} of the elements, expected {rate} (each independently with probability rate)")


def _fresh(v: Verdict, d1, d2, rate: float, what: str) -> None:
    """Two independent masks disagree on i.i.d. Bernoulli(2p(1-p)) indicators; the same mask twice gives 0."""
    if d1 is None or d2 is None:
        return
    disagree = np.mean(d1 != d2)
    v.check(abs(disagree - 2 * rate * (1 - rate)) < tolerance(d1.size),
            f"{what}: two training calls disagree on {disagree:.4f} of the elements, expected "
            f"{2 * rate * (1 - rate):.3f}: draw a fresh mask on every call (with an integer seed too: "
            "draw from a keras.random.SeedGenerator made once in __init__)")


def judge_training(v: Verdict) -> None:
    # visible: rate 0.5 on ones
    if v.returned("visible|layer", "InvertedDropout(0.5)") is not None:
        out = v.returned("visible|output", "InvertedDropout(0.5) on ones((100, 100)) with training=True")
        if out is not None:
            values = set(np.asarray(out["values"]).tolist())
            v.check(values <= {0.0, 2.0}, "with rate 0.5 every element of ones must become 0 or 1 / (1 - 0.5) = 2, "
                                          f"found {sorted(values - {0.0, 2.0})[:5]}", "visible|output")
            # The statistical checks fail under their own key: the judge's draw is not the kernel's, and a
            # wrong layer may pass one and fail the other by chance. That is no sign of tampering.
            statistics = "visible|output statistics"
            zeros = int(np.sum(np.asarray(out["counts"])[np.asarray(out["values"]) == 0]))
            fraction = zeros / max(out["size"], 1)
            v.check(VISIBLE_DROPPED[0] < fraction < VISIBLE_DROPPED[1],
                    f"InvertedDropout(0.5) dropped {fraction:.3f} of the elements of ones((100, 100)), expected about 0.5",
                    statistics)
            low, high = VISIBLE_LINE_DROPPED
            for axis, name in (("row_drops", "row"), ("column_drops", "column")):
                drops = np.asarray(out[axis])
                v.check(drops.size == 100 and bool(np.all((low < drops) & (drops < high))),
                        f"InvertedDropout(0.5) on ones((100, 100)) dropped between {drops.min(initial=0)} and "
                        f"{drops.max(initial=0)} of the 100 elements of a {name}: each element is dropped on its own, "
                        f"so every {name} loses about half", statistics)

    # 1) per rate and seed: exact values, drop fraction, mean preserved, fresh masks
    n = 200 * 500
    for rate in TRAINING_RATES:
        for seed in TRAINING_SEEDS:
            case = f"1|rate {rate}, seed {seed}"
            what = f"InvertedDropout({rate}, seed={seed})"
            if v.returned(f"{case}|layer", what) is None:
                continue
            masks = []
            for call in ("first call", "second call"):
                d = _dropped(v, f"{case}|{call}", f"{what}, {call} with training=True", rate)
                # drop fraction: D_i in [0, 1], Hoeffding with n = 100,000 -> t = 0.012
                _fraction(v, d, rate, f"{what}, {call}")
                masks.append(d)
            # mean preservation: y_i / x_i is in {0, 1/(1-p)} with mean 1; Hoeffding with width 1/(1-p)
            first = v.student.get(f"{case}|first call")
            if masks[0] is not None and not isinstance(first, Raised):
                mean = first["ratio_mean"]
                v.check(abs(mean - 1.0) < tolerance(n, width=1.0 / (1.0 - rate)),
                        f"{what}: E[output / input] = {mean:.4f}, expected 1 (inverted scaling)")
            # fresh mask on every call: [d1_i != d2_i] are i.i.d. Bernoulli(2p(1-p)); Hoeffding with n = 100,000
            _fresh(v, masks[0], masks[1], rate, what)

    if v.returned("half|layer", "InvertedDropout(0.5)") is not None:
        # 2) element-wise: each row/column is 400 independent drops; with delta = 1e-13 per line,
        # t = sqrt(ln(2e13) / 800) = 0.196, union over 800 lines: 8e-11. Whole rows/columns give 0 or 1.
        d = _dropped(v, "2|400x400", "InvertedDropout(0.5) on a 400x400 input", 0.5)
        if d is not None:
            line_tolerance = tolerance(400, delta=LINE_DELTA)
            for axis, name in ((1, "row"), (0, "column")):
                worst = np.max(np.abs(d.mean(axis=axis) - 0.5))
                v.check(worst < line_tolerance, f"InvertedDropout(0.5) on a 400x400 input: a {name} has drop fraction "
                                                f"{0.5 + worst:.3f} or {0.5 - worst:.3f}: drop elements, not {name}s")
        # 3) any shape; along every axis, disjoint neighbour pairs (even index, odd index) agree with
        # probability p^2 + (1-p)^2 = 1/2 for p = 1/2, independently over the 32,768 pairs: Hoeffding
        # t = 0.021. A mask shared along an axis (spatial dropout) agrees on every pair.
        d = _dropped(v, "3|4-D", "InvertedDropout(0.5) on an input of shape (8, 16, 16, 32)", 0.5)
        if d is not None:
            _fraction(v, d, 0.5, "InvertedDropout(0.5) on an input of shape (8, 16, 16, 32)")
            for axis in range(4):
                even = np.take(d, np.arange(0, d.shape[axis], 2), axis=axis)
                odd = np.take(d, np.arange(1, d.shape[axis], 2), axis=axis)
                agree = np.mean(even == odd)
                v.check(abs(agree - 0.5) < tolerance(even.size),
                        f"InvertedDropout(0.5) on an input of shape (8, 16, 16, 32): neighbours along axis {axis} agree "
                        f"on {agree:.3f} of pairs: the mask must be independent per element")
        for shape in [(1000,), (10, 20, 30)]:  # other ranks keep shape and rule
            _dropped(v, f"3|shape {shape}", f"InvertedDropout(0.5) on an input of shape {shape}", 0.5)

    # 4) inside a tf.function
    what = "InvertedDropout(0.3, seed=11) inside a tf.function"
    if v.returned("4|layer", "InvertedDropout(0.3, seed=11)") is not None:
        d1 = _dropped(v, "4|first call", f"{what}, first call", 0.3)
        d2 = _dropped(v, "4|second call", f"{what}, second call", 0.3)
        _fraction(v, d1, 0.3, f"{what}, first call")
        _fresh(v, d1, d2, 0.3, what)

    # 6) gradients flow through the realized mask. (Finite differences do not apply: every forward
    # pass draws a new mask; so the tape's gradient is compared with the exact derivative of the
    # output it produced.)
    if v.returned("6|layer", "InvertedDropout(0.4)") is not None:
        result = v.returned("6|gradient", "the gradient through InvertedDropout(0.4)")
        if result is not None and v.check(result["gradient"] is not None,
                                          "no gradient flows through the layer: use TensorFlow/Keras ops in call"):
            w = np.asarray(v.reference["6|w"])
            kept = _unpack(result["kept"], w.shape)
            expected = np.where(kept, w / 0.6, 0.0)
            grad = np.asarray(result["gradient"], dtype=np.float64)
            if v.check(grad.shape == expected.shape, f"the gradient has shape {grad.shape}, expected {expected.shape}"):
                close = np.isclose(grad, expected, rtol=GRADIENT_RTOL, atol=GRADIENT_ATOL)
                if not close.all():
                    i = int(np.argmin(close.ravel()))
                    v.fail(f"the gradient of sum(w * layer(x)) with respect to x must be w * mask / (1 - rate): "
                           f"an element is {grad.flat[i]:.7g} where {expected.flat[i]:.7g} is expected")


# -- test_dropout_dtype ---------------------------------------------------------------------

FLOAT64_RATES = (0.2, 0.5)  # not 0: rate 0 is the inference cell's (a layer rejecting it loses that one)
#: Survivors' output/input ratios computed in float64 agree to about 1e-16; a float32 step leaves about 1e-7.
FLOAT64_SPREAD = 1e-12


def _float64_output(x: np.ndarray, y) -> dict:
    """A call's output under the float64 policy: its shape and dtype, and how far apart its survivors' ratios lie."""
    return _training_output(x, y, mask=False)


def probe_dtype(ns: dict, rec: Recorder) -> None:
    import keras

    InvertedDropout = ns["InvertedDropout"]
    rng = np.random.default_rng(35)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        layer = rec.call("visible|layer", lambda: InvertedDropout(0.4), _built)
        if layer is not None:
            for kwargs in ({}, {"training": True}):
                rec.call(f"visible|{_kwargs_text(kwargs)}", lambda: layer(np.ones((50, 50)), **kwargs),
                         lambda y: {"dtype": _dtype(y)})
        # a layer per input shape: how one layer copes with several shapes is the other cells' to grade
        for rate in FLOAT64_RATES:
            for shape in SHAPES:
                x = _no_zeros(rng, shape, dtype=np.float64)  # drawn whatever the layer does
                layer = rec.call(f"{rate} {shape}|layer", lambda: InvertedDropout(rate), _built)
                if layer is None:
                    continue
                for kwargs in (*KWARGS, {"training": True}):
                    rec.call(f"{rate} {shape}|{_kwargs_text(kwargs)}", lambda: layer(x, **kwargs),
                             lambda y: _float64_output(x, y))
    finally:
        keras.config.set_dtype_policy(previous_policy)


def judge_dtype(v: Verdict) -> None:
    """Only what the float64 policy adds: the call works, keeps shape and float64, and computes in float64.

    Which elements are dropped and by how much survivors are scaled are the
    other cells' to grade (the same rule holds in float32): a layer wrong in
    both dtypes is charged there, once.
    """
    policy = "under the float64 dtype policy"
    if v.returned("visible|layer", f"InvertedDropout(0.4) {policy}") is not None:
        for call in ("no training argument", "training=True"):
            key = f"visible|{call}"
            out = v.returned(key, f"InvertedDropout(0.4) {policy} on ones((50, 50)) with {call}")
            if out is not None:
                v.check(out["dtype"] == "float64", f"InvertedDropout(0.4) {policy} returned {out['dtype']} with {call}, "
                                                   "expected float64: keep the input's dtype", key)
    for key in v.reference:
        parts = key.split("|")
        if parts[0] == "visible":
            continue
        rate, shape = parts[0].split(" ", 1)
        what = f"InvertedDropout({rate}) {policy}"
        if parts[-1] == "layer":
            v.returned(key, what)
            continue
        if isinstance(v.student.get(f"{parts[0]}|layer"), Raised) and key not in v.student:
            continue  # reported once, under the layer's key
        what = f"{what} on a float64 array of shape {shape} with {parts[1]}"
        out = v.returned(key, what)
        if out is None:
            continue
        shape = None if out["shape"] is None else tuple(out["shape"])
        want = tuple(v.reference[key]["shape"])
        if not v.check(shape == want, f"{what}: shape {shape}, expected the input's {want}"):
            continue
        if not v.check(out["dtype"] == "float64", f"{what}: dtype {out['dtype']}, expected float64 (the input's)"):
            continue
        low, high = out.get("ratio_min"), out.get("ratio_max")
        if low is not None and high is not None:
            v.check(high - low <= FLOAT64_SPREAD * max(abs(high), 1.0),
                    f"{what}: the survivors' output/input ratios range from {low!r} to {high!r}: computed in float32 "
                    "somewhere (keep every step in the input's dtype)")


# -- test_dropout_in_model ------------------------------------------------------------------

def probe_in_model(ns: dict, rec: Recorder) -> None:
    import keras

    InvertedDropout = ns["InvertedDropout"]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(32)
    x = rng.normal(size=(64, 20)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    xs, ys = rng.normal(size=(50, 5, 4)).astype(np.float32), rng.normal(size=(50, 1)).astype(np.float32)
    rec.value("labels", y)

    def sequential():
        model = keras.Sequential([
            keras.Input((20,)),
            keras.layers.Dense(16, activation="relu"),
            InvertedDropout(0.5),
            keras.layers.Dense(3, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    model = rec.call("sequential|model", sequential, _built)
    if model is not None and rec.call("sequential|fit", lambda: model.fit(x, y, epochs=2, batch_size=16, verbose=0),
                                      lambda h: [float(loss) for loss in h.history["loss"]]) is not None:
        rec.call("sequential|predict", lambda: model.predict(x, verbose=0), _as_numpy)
        rec.call("sequential|predict batch 7", lambda: model.predict(x, batch_size=7, verbose=0), _as_numpy)
        first, dropout, last = model.layers
        # the same network, the layer called directly in inference mode: what predict and evaluate must see.
        # (Whether the layer is the identity then is test_dropout_inference's to grade: charged once, there.)
        rec.call("sequential|layer at inference", lambda: last(dropout(first(x), training=False)), _as_numpy)
        rec.call("sequential|evaluate", lambda: model.evaluate(x, y, verbose=0, batch_size=64), _as_numpy)

    # a functional model on 3-D inputs, unknown batch size and a partial last batch
    def functional():
        inputs = keras.Input((5, 4))
        hidden = InvertedDropout(0.25)(keras.layers.Dense(8, activation="relu")(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(hidden)))
        model.compile(optimizer="sgd", loss="mse")
        return model

    model = rec.call("functional|model", functional, _built)
    if model is not None and rec.call("functional|fit", lambda: model.fit(xs, ys, epochs=2, batch_size=13, verbose=0),
                                      lambda h: [float(loss) for loss in h.history["loss"]]) is not None:
        rec.call("functional|predict", lambda: model.predict(xs, batch_size=50, verbose=0), _as_numpy)
        rec.call("functional|direct", lambda: model(xs, training=False), _as_numpy)


def _cross_entropy(labels: np.ndarray, p: np.ndarray) -> float:
    """keras.losses.sparse_categorical_crossentropy of probabilities, averaged: clip, renormalize, -log."""
    q = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1 - EPSILON)
    return float(np.mean(np.log(q.sum(axis=-1)) - np.log(q[np.arange(len(labels)), labels])))


def _allclose(v: Verdict, got, want, what: str, *, rtol: float, atol: float) -> bool:
    """numpy.testing.assert_allclose(got, want, rtol, atol) as a verdict: same shape (or a scalar ``want``)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if want.ndim and got.shape != want.shape:
        return v.check(False, f"{what}: shape {got.shape}, expected {want.shape}")
    close = np.isclose(got, want, rtol=rtol, atol=atol)
    if close.all():
        return True
    i = int(np.argmin(close.ravel()))
    g, w = np.broadcast_to(got, close.shape).flat[i], np.broadcast_to(want, close.shape).flat[i]
    return v.check(False, f"{what}: {g:.7g} where {w:.7g} is expected (relative tolerance {rtol:g})")


def judge_in_model(v: Verdict) -> None:
    what = "a Sequential model Dense(16, relu) → InvertedDropout(0.5) → Dense(3, softmax)"
    if v.returned("sequential|model", f"building {what}") is not None:
        losses = v.returned("sequential|fit", f"model.fit of {what}")
        if losses is not None:
            v.check(bool(np.all(np.isfinite(losses))), f"model.fit of {what}: the losses {losses} are not all finite",
                    "sequential|fit")
            prediction = v.returned("sequential|predict", f"model.predict of {what}")
            if prediction is not None and v.check(prediction.shape == (64, 3),
                                                  f"model.predict of {what}: shape {prediction.shape}, expected (64, 3)",
                                                  "sequential|predict"):
                # predict is deterministic (no dropout at inference) and is the network with the layer at inference
                again = v.returned("sequential|predict batch 7", f"model.predict(batch_size=7) of {what}")
                if again is not None:
                    _allclose(v, again, prediction, "model.predict must be deterministic (batch_size 7 against the default)",
                              rtol=PREDICT_RTOL, atol=PREDICT_ATOL)
                direct = v.returned("sequential|layer at inference",
                                    "the model's layers called one by one, InvertedDropout with training=False")
                if direct is not None:
                    _allclose(v, prediction, direct, "model.predict must see the layer in inference mode (against the "
                                                     "layers called one by one, InvertedDropout with training=False)",
                              rtol=PREDICT_RTOL, atol=PREDICT_ATOL)
                    evaluated = v.returned("sequential|evaluate", f"model.evaluate of {what}")
                    if evaluated is not None:
                        _allclose(v, evaluated, _cross_entropy(np.asarray(v.reference["labels"]), direct),
                                  "model.evaluate must see the layer in inference mode (its loss)", rtol=EVALUATE_RTOL,
                                  atol=0.0)
    what = "a functional model on 3-D inputs with InvertedDropout(0.25)"
    if v.returned("functional|model", f"building {what}") is not None:
        losses = v.returned("functional|fit", f"model.fit of {what}, batch size 13 (a partial last batch: use the dynamic "
                                              "shape tf.shape(inputs) or keras.ops.shape(inputs))")
        if losses is not None:
            v.check(bool(np.all(np.isfinite(losses))), f"model.fit of {what}: the losses {losses} are not all finite")
            predicted = v.returned("functional|predict", f"model.predict of {what}")
            direct = v.returned("functional|direct", f"calling {what} with training=False")
            if predicted is not None and direct is not None:
                _allclose(v, predicted, direct, f"model.predict of {what} against model(x, training=False)",
                          rtol=PREDICT_RTOL, atol=PREDICT_ATOL)


# -- test_build_mlp -------------------------------------------------------------------------

ACTIVATION_PROBE = [[-2.0, -0.5, 0.0, 0.3, 1.0, 3.0]]
MLP_CASES = ((0.0, True), (0.2, False), (0.5, True), (0, False))


def _activation_values(function) -> np.ndarray:
    import keras
    import tensorflow as tf

    return np.asarray(keras.ops.convert_to_numpy(function(tf.constant(ACTIVATION_PROBE))), dtype=np.float64)


def _rate_of(layer) -> float:
    try:
        return float(layer.get_config()["rate"])
    except Exception:
        return float(layer.rate)


def _layers(model, InvertedDropout) -> list:
    """Each layer of the model as plain data: what it is, and what the judge needs to identify it."""
    import keras

    summary = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            summary.append({"kind": "input"})
        elif isinstance(layer, InvertedDropout):
            summary.append({"kind": "dropout", "rate": _rate_of(layer)})
        elif isinstance(layer, keras.layers.Dense):
            summary.append({"kind": "dense", "units": int(layer.units), "activation": _activation_values(layer.activation),
                            "kernel": [int(n) for n in tuple(layer.kernel.shape)]})
        elif isinstance(layer, (keras.layers.Activation, keras.layers.ReLU, keras.layers.Softmax)):
            summary.append({"kind": "activation", "activation": _activation_values(layer), "class": type(layer).__name__})
        else:
            summary.append({"kind": "other", "class": type(layer).__name__})
    return summary


def _stand_in_dropout():
    """A correct ``InvertedDropout`` of the grader's own: ``test_build_mlp`` grades the model, not the layer.

    Its probe puts this class where ``build_mlp`` finds ``InvertedDropout``, so
    a broken layer costs the layer's cells only (one mistake, one charge).
    """
    import keras

    class InvertedDropout(keras.layers.Layer):
        def __init__(self, rate, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.rate, self.seed = rate, seed
            self._seeds = keras.random.SeedGenerator(seed)

        def call(self, inputs, training=None):
            if not training or self.rate == 0:
                return inputs
            keep = keras.random.uniform(keras.ops.shape(inputs), seed=self._seeds) >= self.rate
            return keras.ops.where(keep, inputs / (1.0 - self.rate), keras.ops.zeros_like(inputs))

        def get_config(self):
            return {**super().get_config(), "rate": self.rate, "seed": self.seed}

    return InvertedDropout


def probe_build_mlp(ns: dict, rec: Recorder) -> None:
    import keras

    build_mlp, student_class = ns["build_mlp"], ns["InvertedDropout"]

    def count(model):
        return {"model": isinstance(model, keras.Model), "dropouts": sum(isinstance(l, student_class) for l in model.layers)}

    # what the cell's visible tests assert, with the student's own layer (only constructed: the layer's own
    # cells grade how it is implemented)
    rec.call("visible|0.5", lambda: build_mlp(0.5), count, off_limits={})
    rec.call("visible|0.0", lambda: build_mlp(0.0), count, off_limits={})
    scope = getattr(build_mlp, "__globals__", ns)
    scope["InvertedDropout"] = stand_in = _stand_in_dropout()
    try:
        _probe_models(build_mlp, (stand_in, student_class), rec)
    finally:
        scope["InvertedDropout"] = student_class


def _probe_models(build_mlp, InvertedDropout: tuple, rec: Recorder) -> None:
    import keras

    rng = np.random.default_rng(33)
    x = rng.uniform(size=(64, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    rec.value("labels", y)
    keras.utils.set_random_seed(1)
    for rate, check_compiled in MLP_CASES:
        case = f"{rate!r}"
        model = rec.call(f"{case}|model", lambda: build_mlp(rate), lambda m: isinstance(m, keras.Model))
        if model is None or not isinstance(model, keras.Model):
            continue
        # builds the model on 784 inputs
        if rec.call(f"{case}|predictions", lambda: keras.ops.convert_to_numpy(model(x, training=False)), _as_numpy) is None:
            continue
        rec.call(f"{case}|layers", lambda: _layers(model, InvertedDropout))
        rec.call(f"{case}|optimizer", lambda: model.optimizer, lambda o: {
            "class": type(o).__name__, "adam": isinstance(o, keras.optimizers.Adam),
            "adamw": isinstance(o, keras.optimizers.AdamW)})
        if not check_compiled:
            continue
        # The compiled settings are graded by what evaluate and fit report, not by their graph: run eagerly (the
        # same numbers; tracing the train and test steps would cost about 3 s of every submission).
        model.run_eagerly = True
        # loss and metric, by their values: evaluate = mean cross-entropy and accuracy of the predictions
        rec.call(f"{case}|evaluate", lambda: model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True),
                 lambda r: {str(k): float(np.asarray(value)) for k, value in r.items()})
        # it trains: one epoch on a small batch, with and without dropout
        rec.call(f"{case}|fit", lambda: model.fit(x, y, validation_data=(x[:16], y[:16]), epochs=1, batch_size=32, verbose=0),
                 lambda h: {"keys": sorted(h.history), "last loss": float(h.history["loss"][-1]) if "loss" in h.history else None})


def _activation_name(values) -> str:
    """Which of linear/relu/softmax the recorded values are (identified by its values, not its name)."""
    probe = np.asarray(ACTIVATION_PROBE, dtype=np.float64)
    shifted = np.exp(probe - probe.max(axis=-1, keepdims=True))
    known = {"linear": probe, "relu": np.maximum(probe, 0.0), "softmax": shifted / shifted.sum(axis=-1, keepdims=True)}
    values = np.asarray(values, dtype=np.float64)
    for name, expected in known.items():
        if values.shape == expected.shape and np.allclose(values, expected, rtol=ACTIVATION_RTOL, atol=ACTIVATION_ATOL):
            return name
    return "other"


def _structure(layers: list) -> list:
    """("dense", units, activation) and ("dropout", rate); an activation layer right after a linear Dense is merged into it."""
    tokens = []
    for layer in layers:
        kind = layer["kind"]
        if kind == "input":
            continue
        if kind == "dropout":
            tokens.append(("dropout", round(layer["rate"], 9)))
        elif kind == "dense":
            tokens.append(("dense", layer["units"], _activation_name(layer["activation"])))
        elif kind == "activation" and tokens and tokens[-1][0] == "dense" and tokens[-1][2] == "linear":
            tokens[-1] = ("dense", tokens[-1][1], _activation_name(layer["activation"]))
        else:
            tokens.append(("other", layer["class"]))
    return tokens


def judge_build_mlp(v: Verdict) -> None:
    visible = v.returned("visible|0.5", "build_mlp(0.5)")
    if visible is not None:
        v.check(visible["model"] is True, "build_mlp(0.5) must return a keras.Model", "visible|0.5")
        v.check(visible["dropouts"] == 2, f"build_mlp(0.5) must have two InvertedDropout layers, found {visible['dropouts']}",
                "visible|0.5")
    visible = v.returned("visible|0.0", "build_mlp(0.0)")
    if visible is not None:
        v.check(visible["dropouts"] == 0, f"build_mlp(0.0) must have no InvertedDropout layer, found {visible['dropouts']}",
                "visible|0.0")
    labels = np.asarray(v.reference["labels"])
    for rate, check_compiled in MLP_CASES:
        case, what = f"{rate!r}", f"build_mlp({rate!r})"
        model = v.returned(f"{case}|model", what)
        if model is None or not v.check(model is True, f"{what} must return a keras.Model"):
            continue
        predictions = v.returned(f"{case}|predictions", f"{what} called on a (64, 784) batch with training=False")
        if predictions is None:
            continue
        v.check(predictions.shape == (64, 10), f"{what} gives outputs of shape {predictions.shape}, expected (64, 10)")
        layers = v.returned(f"{case}|layers", f"the layers of {what}")
        if layers is not None:
            expected = [("dense", 128, "relu"), ("dense", 64, "relu"), ("dense", 10, "softmax")]
            if rate > 0:
                expected.insert(2, ("dropout", rate))
                expected.insert(1, ("dropout", rate))
            found = _structure(layers)
            v.check(found == expected, f"{what}: layers {found}, expected {expected}")
            kernels = [tuple(layer["kernel"]) for layer in layers if layer["kind"] == "dense"]
            v.check(kernels == [(784, 128), (128, 64), (64, 10)], f"{what}: Dense kernels {kernels}, expected "
                                                                  "[(784, 128), (128, 64), (64, 10)]")
        optimizer = v.returned(f"{case}|optimizer", f"the optimizer of {what}")
        if optimizer is not None:
            v.check(optimizer["adam"] is True and optimizer["adamw"] is False,
                    f"{what}: optimizer {optimizer['class']}, expected Adam")
        if not check_compiled:
            continue
        result = v.returned(f"{case}|evaluate", f"model.evaluate of {what}")
        if result is not None and v.check("accuracy" in result, f"{what}: compile with metrics=['accuracy'] "
                                                                f"(evaluate gives {sorted(result)})"):
            p = np.asarray(predictions, dtype=np.float64)
            if p.shape == (64, 10):
                cross_entropy = float(np.mean(-np.log(np.clip(p[np.arange(64), labels], EPSILON, 1.0))))
                v.check(math.isclose(result.get("loss", math.nan), cross_entropy, rel_tol=LOSS_RTOL),
                        f"{what}: loss {result.get('loss')} is not the sparse categorical cross-entropy "
                        f"{cross_entropy:.6g} of the softmax outputs")
                accuracy = float(np.mean(p.argmax(axis=1) == labels))
                v.check(math.isclose(result["accuracy"], accuracy, abs_tol=ACCURACY_ATOL),
                        f"{what}: accuracy {result['accuracy']} is not the accuracy {accuracy} of the predictions")
        fit = v.returned(f"{case}|fit", f"model.fit of {what} with validation_data")
        if fit is not None:
            wanted = {"loss", "accuracy", "val_loss", "val_accuracy"}
            if v.check(wanted <= set(fit["keys"]), f"{what}: model.fit recorded {fit['keys']}, expected {sorted(wanted)}"):
                v.check(fit["last loss"] is not None and math.isfinite(fit["last loss"]),
                        f"{what}: the training loss is {fit['last loss']}, not finite")


# -- test_generalization_gap ----------------------------------------------------------------

GAP_CASES = [
    # last values (not first, not max, not mean), train minus validation, accuracy not loss
    dict(loss=[2.0, 0.3, 0.2], accuracy=[0.5, 0.97, 0.95], val_loss=[1.9, 0.6, 0.9], val_accuracy=[0.6, 0.82, 0.7]),
    # a negative gap stays negative
    dict(loss=[1.0, 0.8], accuracy=[0.4, 0.6], val_loss=[0.9, 0.7], val_accuracy=[0.5, 0.7]),
    # one epoch; keys in another order, extra keys, NumPy scalars
    dict(val_accuracy=[np.float32(0.25)], learning_rate=[0.001], accuracy=[np.float32(0.75)], val_loss=[3.0], loss=[0.5]),
    dict(accuracy=[0.1, 0.2, 0.3, 0.4, 1.0], val_accuracy=[0.2, 0.3, 0.9, 0.5, 0.6], loss=[9, 8, 7, 6, 5], val_loss=[1, 2, 3, 4, 5]),
]
VISIBLE_HISTORY = {"loss": [1.2, 0.4], "accuracy": [0.6, 0.9], "val_loss": [1.3, 0.7], "val_accuracy": [0.55, 0.8]}


def probe_generalization_gap(ns: dict, rec: Recorder) -> None:
    import keras

    generalization_gap = ns["generalization_gap"]

    def made(series):
        constructed = keras.callbacks.History()
        constructed.history = {key: list(values) for key, values in series.items()}
        return constructed

    rec.call("visible", lambda: generalization_gap(made(VISIBLE_HISTORY)), _scalar)
    for i, series in enumerate(GAP_CASES):
        rec.call(f"case {i}", lambda: generalization_gap(made(series)), _scalar)

    # a real History from a tiny fit
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(34)
    x, y = rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 3, size=40)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    # eagerly: a History is what is graded, and tracing would cost more than the three epochs
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], run_eagerly=True)
    history = model.fit(x[:30], y[:30], validation_data=(x[30:], y[30:]), epochs=3, batch_size=10, verbose=0)
    rec.value("fit|history", {key: [float(value) for value in history.history[key]] for key in ("accuracy", "val_accuracy")})
    rec.call("fit|gap", lambda: generalization_gap(history), _scalar)


def _judge_gap(v: Verdict, key: str, what: str, expected: float | None, atol: float) -> None:
    gap = v.returned(key, what)
    if gap is None or expected is None:
        return
    v.check(math.isclose(gap, expected, abs_tol=atol), f"{what}: got {gap:.7g}, expected {expected:.7g}", key)


def judge_generalization_gap(v: Verdict) -> None:
    _judge_gap(v, "visible", f"generalization_gap of the History {VISIBLE_HISTORY}", v.reference["visible"], VISIBLE_GAP_ATOL)
    for i, series in enumerate(GAP_CASES):
        _judge_gap(v, f"case {i}", f"generalization_gap of the History {series}", v.reference[f"case {i}"], GAP_ATOL)
    history = v.got("fit|history")
    expected = None if history is None else history["accuracy"][-1] - history["val_accuracy"][-1]
    _judge_gap(v, "fit|gap", f"generalization_gap of the History of a 3-epoch model.fit ({history})", expected, GAP_ATOL)


CHECKS = {
    "test_dropout_construction": Check(
        probe_construction,
        judge_construction,
        contract=("`0 <= rate < 1`, else `ValueError` when the layer is constructed", "`get_config()` holds `rate` and `seed`",
                  "`InvertedDropout.from_config(layer.get_config())` rebuilds the layer",
                  "`keras.saving.serialize_keras_object`"),
        visible=("visible|layer", "visible|config", "bad|1.0"),
    ),
    "test_dropout_inference": Check(
        probe_inference,
        judge_inference,
        contract=("Otherwise (`training=False`, `training=None` or not given) the input is returned unchanged",
                  "`rate = 0` is the identity", "Shape and dtype are preserved"),
        visible=("visible|layer", "visible|no training argument", "visible|training=False", "visible|training=None",
                 "visible|rate 0 layer", "visible|rate 0 training"),
    ),
    "test_dropout_training": Check(
        probe_training,
        judge_training,
        contract=("each element of the input is zeroed **independently** with probability `rate`",
                  "every survivor is multiplied by $1/(1-\\text{rate})$", "with a **fresh** random mask on every call",
                  "also when `seed` is an integer", "Gradients flow through the layer"),
        visible=("visible|layer", "visible|output"),
    ),
    "test_dropout_dtype": Check(
        probe_dtype,
        judge_dtype,
        contract=("Under Keras' `float64` dtype policy", "takes and returns float64 and computes in float64"),
        visible=("visible|layer", "visible|no training argument", "visible|training=True"),
    ),
    "test_dropout_in_model": Check(
        probe_in_model,
        judge_in_model,
        contract=("It works inside `model.fit` and `model.predict`", "`model.predict` and `model.evaluate` see the network without dropout",
                  "take the shape of the mask from `tf.shape(inputs)` or `keras.ops.shape(inputs)`"),
        visible=("sequential|model", "sequential|fit", "sequential|predict"),
    ),
    "test_build_mlp": Check(
        probe_build_mlp,
        judge_build_mlp,
        contract=("the compiled model 784 → `Dense(128, relu)` → [`InvertedDropout`] → `Dense(64, relu)` → [`InvertedDropout`] → "
                  "`Dense(10, softmax)`", "optimizer Adam, loss sparse categorical cross-entropy, `metrics=[\"accuracy\"]`",
                  "only when `dropout_rate > 0`"),
        visible=("visible|0.5", "visible|0.0"),
    ),
    "test_generalization_gap": Check(
        probe_generalization_gap,
        judge_generalization_gap,
        contract=("last training accuracy − last validation accuracy", "a scalar may be returned as a Python",
                  "float or a 0-d tensor"),
        visible=("visible",),
    ),
}
