"""Hidden tests of a2_penalties: L1, L2 and elastic-net penalties.

Each probe records what the student's objects return on fixed, seeded
inputs; each judge compares with the reference solution's record.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from regcourse.checking import FLOAT32_RTOL, as_scalar
from regcourse.grading.judge import Check, Recorder, Verdict


def off_limits() -> dict:
    """The implementation policy (the notebook's "Implementation policy"): Keras' own regularizers."""
    import keras

    return {f"keras.regularizers.{name}": (getattr(keras.regularizers, name).__init__,
                                          getattr(keras.regularizers, name).__call__) for name in ("L1", "L2", "L1L2")}

#: Penalties of exact zero (λ = 0) are compared with this absolute floor.
ZERO_ATOL = 1e-9
#: The gradient of the penalty is l1·sign(k) + 2·l2·k, a few float32 operations per element.
GRADIENT_RTOL, GRADIENT_ATOL = 1e-5, 1e-7
#: Strengths read back from get_config: the float the student stored, as math.isclose's default.
CONFIG_RTOL = 1e-9

SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 2, 3, 5)]
LAMBDAS = (0.0, 1e-3, 0.7, 3.0)
BAD_STRENGTHS = [dict(l1=-0.1), dict(l2=-1e-9), dict(l1=float("nan")), dict(l2=float("inf")), dict(l1=float("-inf"))]


def _scalar(value):
    return as_scalar(value, "the penalty")


def _probe_penalty(name: str, seed: int, extra) -> Callable:
    def probe(ns: dict, rec: Recorder) -> None:
        import tensorflow as tf

        penalty = ns[name]
        w = np.array([[1.0, -2.0], [0.5, 0.0]], dtype=np.float32)
        rec.call("visible", lambda: penalty(w, 0.1), _scalar)
        rng = np.random.default_rng(seed)
        for shape in SHAPES:
            for dtype in (np.float32, np.float64):
                for lam in LAMBDAS:
                    x = rng.normal(size=shape).astype(dtype)
                    for kind, given in (("array", x), ("tensor", tf.constant(x))):
                        rec.call(f"{shape}|{np.dtype(dtype).name}|{lam}|{kind}", lambda: penalty(given, lam), _scalar)
        extra(penalty, rng, rec)

    return probe


def _negative(penalty, rng, rec: Recorder) -> None:
    rec.call("all-negative", lambda: penalty(-np.ones((4, 4), np.float32), 0.5), _scalar)


def _keras_l2_convention(penalty, rng, rec: Recorder) -> None:
    k = rng.normal(size=(6, 4)).astype(np.float32)
    rec.call("keras-convention", lambda: penalty(k, 0.01), _scalar)


def _judge_penalty(name: str, extra: dict[str, str]) -> Callable:
    def judge(v: Verdict) -> None:
        v.close("visible", f"{name}(w, 0.1) for the 2x2 example", rtol=FLOAT32_RTOL)
        for key in v.reference:
            if key.count("|") == 3:
                shape, dtype, lam, kind = key.split("|")
                v.close(key, f"{name} of a {dtype} {kind} of shape {shape} with lam={lam}", rtol=FLOAT32_RTOL, atol=ZERO_ATOL)
        for key, what in extra.items():
            v.close(key, what, rtol=FLOAT32_RTOL)

    return judge


# -- ElasticNet ----------------------------------------------------------------------------------

def probe_elastic_net(ns: dict, rec: Recorder) -> None:
    import keras
    import tensorflow as tf

    from regcourse.seeding import set_seed

    ElasticNet = ns["ElasticNet"]
    rec.call("visible-value", lambda: ElasticNet(l1=0.1, l2=0.2)(tf.constant([1.0, -2.0])), _scalar)
    rec.call("visible-config", lambda: ElasticNet(l1=0.1, l2=0.2).get_config())
    rng = np.random.default_rng(4)
    for l1, l2 in [(0.0, 0.0), (0.3, 0.0), (0.0, 0.05), (1e-4, 2.5), (2, 3)]:
        case = f"l1={l1}, l2={l2}"
        reg = rec.call(f"{case}|regularizer", lambda: ElasticNet(l1=l1, l2=l2),
                       lambda r: isinstance(r, keras.regularizers.Regularizer))
        if reg is None:
            continue
        for shape in [(5,), (4, 3), (2, 3, 4)]:
            x = rng.normal(size=shape).astype(np.float32)
            rec.call(f"{case}|value {shape}", lambda: reg(tf.constant(x)), _scalar)
        config = rec.call(f"{case}|config", reg.get_config, _config)
        if config is None:
            continue
        clone = rec.call(f"{case}|from_config", lambda: ElasticNet.from_config(config), lambda c: isinstance(c, ElasticNet))
        if clone is None:
            continue
        rec.call(f"{case}|clone config", clone.get_config, _config)
        x = rng.normal(size=(3, 3)).astype(np.float32)
        rec.call(f"{case}|clone value", lambda: clone(tf.constant(x)), _scalar)
        rec.call(f"{case}|original value", lambda: reg(tf.constant(x)), _scalar)
    rec.call("defaults", lambda: ElasticNet()(tf.ones((3, 3))), _scalar)
    for bad in BAD_STRENGTHS:
        rec.call(f"bad {bad}", lambda: ElasticNet(**bad), lambda _: "constructed")
    set_seed(0)
    layer = rec.call("in a layer", lambda: keras.layers.Dense(4, kernel_regularizer=ElasticNet(l1=0.01, l2=0.02)),
                     lambda _: "built")
    if layer is not None:
        model = rec.call("model", lambda: keras.Sequential([keras.Input((3,)), layer]), lambda _: "built")
        if model is not None:
            rec.value("kernel", layer.kernel.numpy())
            rec.call("losses", lambda: [_scalar(loss) for loss in model.losses])

            def gradient():
                with tf.GradientTape() as tape:
                    penalty = layer.kernel_regularizer(layer.kernel)
                grad = tape.gradient(penalty, layer.kernel)
                return "none" if grad is None else grad.numpy()

            rec.call("gradient", gradient)

    def round_trip():
        serialized = keras.saving.serialize_keras_object(ElasticNet(l1=0.01, l2=0.02))
        restored = keras.saving.deserialize_keras_object(serialized, custom_objects={"ElasticNet": ElasticNet})
        return [isinstance(restored, ElasticNet), _config(restored.get_config())]

    rec.call("keras round trip", round_trip)


def _config(config):
    """The config as plain data: a dict of its keys and values, whatever their types."""
    if not isinstance(config, dict):
        return {"__not_a_dict__": type(config).__name__}
    return {str(k): v if isinstance(v, (bool, int, float, str, type(None))) else repr(v) for k, v in config.items()}


def judge_elastic_net(v: Verdict) -> None:
    v.close("visible-value", "ElasticNet(l1=0.1, l2=0.2) on [1, -2]", rtol=FLOAT32_RTOL)
    v.equal("visible-config", "ElasticNet(l1=0.1, l2=0.2).get_config()")
    for key, expected in v.reference.items():
        case, _, what = key.partition("|")
        if what == "regularizer":
            if v.returned(key, f"ElasticNet({case})") is not None:
                v.check(v.student[key] is True, f"ElasticNet({case}) must be a keras.regularizers.Regularizer")
        elif what.startswith("value") or what == "clone value":
            v.close(key, f"ElasticNet({case}) {what}", rtol=FLOAT32_RTOL, atol=ZERO_ATOL)
        elif what == "config":
            _judge_config(v, key, expected, f"ElasticNet({case}).get_config()")
        elif what == "from_config":
            if v.returned(key, f"ElasticNet.from_config(...) for {case}") is not None:
                v.check(v.student[key] is True, f"ElasticNet.from_config(...) for {case} must return an ElasticNet")
        elif what == "clone config":
            config = v.returned(key, f"get_config() of the clone for {case}")
            if config is not None:
                v.check(config == v.student.get(f"{case}|config"),
                        f"from_config(get_config()) for {case} must rebuild the same config, got {config}")
    v.close("defaults", "ElasticNet() (default strengths) on ones", rtol=0.0, atol=0.0)
    for bad in BAD_STRENGTHS:
        v.raises(f"bad {bad}", f"ElasticNet(**{bad})", "ValueError")
    if v.returned("in a layer", "Dense(4, kernel_regularizer=ElasticNet(l1=0.01, l2=0.02))") is None:
        return
    losses = v.returned("losses", "model.losses with an ElasticNet kernel regularizer")
    kernel = v.got("kernel")
    if losses is not None and kernel is not None:
        if v.check(len(losses) == 1, f"model.losses should hold one penalty, got {len(losses)}"):
            k = np.asarray(kernel, dtype=np.float64)
            expected = 0.01 * np.abs(k).sum() + 0.02 * np.square(k).sum()
            v.check(math.isclose(float(losses[0]), expected, rel_tol=FLOAT32_RTOL),
                    f"the penalty in model.losses is {losses[0]:.7g}, expected {expected:.7g} for the layer's kernel")
    grad = v.returned("gradient", "the gradient of the penalty")
    if grad is not None:
        if v.check(not isinstance(grad, str), "no gradient through ElasticNet: use TensorFlow ops"):
            v.close("gradient", "the gradient of the penalty (l1·sign(k) + 2·l2·k)", rtol=GRADIENT_RTOL, atol=GRADIENT_ATOL)
    restored = v.returned("keras round trip", "Keras' serialize/deserialize round trip")
    if restored is not None:
        v.check(restored[0] is True and restored[1] == {"l1": 0.01, "l2": 0.02},
                f"Keras' serialize/deserialize round trip gave {restored[1]}, expected {{'l1': 0.01, 'l2': 0.02}}")


def _judge_config(v: Verdict, key: str, expected: dict, what: str) -> None:
    config = v.returned(key, what)
    if config is None:
        return
    if not v.check(set(config) == set(expected), f"{what} must have exactly the keys {sorted(expected)}, got {sorted(config)}"):
        return
    for name, want in expected.items():
        got = config[name]
        v.check(isinstance(got, (int, float)) and not isinstance(got, bool) and math.isclose(got, want, rel_tol=CONFIG_RTOL),
                f"{what}[{name!r}] is {got!r}, expected {want!r}")


CHECKS = {
    "test_l1_penalty": Check(
        _probe_penalty("l1_penalty", 2, _negative),
        _judge_penalty("l1_penalty", {"all-negative": "l1_penalty of all-negative weights (|w|, not w)"}),
        contract=("l1_penalty(weights, lam)", "over *all* elements", "NumPy array or a TensorFlow tensor"),
        visible=("visible",),
    ),
    "test_l2_penalty": Check(
        _probe_penalty("l2_penalty", 3, _keras_l2_convention),
        _judge_penalty("l2_penalty", {"keras-convention": "l2_penalty against keras.regularizers.L2 (no factor 1/2)"}),
        contract=("l2_penalty(weights, lam)", "**no** factor ½", "NumPy array or a TensorFlow tensor"),
        visible=("visible",),
    ),
    "test_elastic_net": Check(
        probe_elastic_net,
        judge_elastic_net,
        contract=("ElasticNet(l1=0.0, l2=0.0)", "get_config()", "raise `ValueError`", "so that gradients flow"),
        visible=("visible-value", "visible-config"),
    ),
}
