"""a2_penalties: correct alternatives and plausible mistakes."""

GRADED = {
    "l1_penalty": "test_l1_penalty",
    "l2_penalty": "test_l2_penalty",
    "elastic_net": "test_elastic_net",
}

# Keras' L1 and L2 inside: off limits (see WRONG)
_ELASTIC_NET_KERAS = '''
class ElasticNet(keras.regularizers.Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        if not (np.isfinite(l1) and np.isfinite(l2)) or min(l1, l2) < 0:
            raise ValueError("strengths must be finite and non-negative")
        self.l1, self.l2 = l1, l2
        self._l1 = keras.regularizers.L1(l1) if l1 else None
        self._l2 = keras.regularizers.L2(l2) if l2 else None

    def __call__(self, x):
        total = tf.zeros((), dtype=x.dtype)
        if self._l1 is not None:
            total += tf.cast(self._l1(x), x.dtype)
        if self._l2 is not None:
            total += tf.cast(self._l2(x), x.dtype)
        return total

    def get_config(self):
        return dict(l1=self.l1, l2=self.l2)
'''

_ELASTIC_NET_OPS = '''
class ElasticNet(keras.regularizers.Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        l1, l2 = float(l1), float(l2)
        if math.isnan(l1) or math.isnan(l2) or math.isinf(l1) or math.isinf(l2):
            raise ValueError("non-finite strength")
        if l1 < 0 or l2 < 0:
            raise ValueError("negative strength")
        self.l1 = l1
        self.l2 = l2

    def __call__(self, x):
        x = keras.ops.convert_to_tensor(x)
        return self.l1 * keras.ops.sum(keras.ops.absolute(x)) + self.l2 * keras.ops.sum(x * x)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}
'''

# tf.norm of the flattened tensor; strengths checked with NumPy, kept as given (ints stay ints)
_ELASTIC_NET_NORMS = '''
class ElasticNet(keras.regularizers.Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        if not np.all(np.isfinite([l1, l2])) or l1 < 0 or l2 < 0:
            raise ValueError(f"strengths must be finite and >= 0, got l1={l1}, l2={l2}")
        self.l1, self.l2 = l1, l2

    def __call__(self, x):
        flat = tf.reshape(x, [-1])
        return self.l1 * tf.norm(flat, ord=1) + self.l2 * tf.square(tf.norm(flat))

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}
'''

CORRECT = {
    "numpy-and-keras-ops": {
        "l1_penalty": "def l1_penalty(weights, lam):\n    return float(lam * np.sum(np.abs(np.asarray(weights, dtype=np.float64))))",
        "l2_penalty": "def l2_penalty(weights, lam):\n    w = np.asarray(weights, dtype=np.float64).ravel()\n    return lam * float(w @ w)",
        "elastic_net": _ELASTIC_NET_OPS,
    },
    "tf-norms": {
        "l1_penalty": "def l1_penalty(weights, lam):\n    return lam * tf.norm(tf.reshape(weights, [-1]), ord=1)",
        "l2_penalty": "def l2_penalty(weights, lam):\n    return lam * tf.norm(tf.reshape(weights, [-1]), ord=2) ** 2",
        "elastic_net": _ELASTIC_NET_NORMS,
    },
}

WRONG = {
    # the implementation policy: Keras' own regularizers are not an implementation
    "elastic-net-wraps-keras-regularizers": ({"elastic_net": _ELASTIC_NET_KERAS}, ["test_elastic_net"]),
    "l2-via-keras-regularizer": (
        {"l2_penalty": "def l2_penalty(weights, lam):\n"
                       "    return keras.regularizers.L2(lam)(tf.convert_to_tensor(weights, tf.float32))"},
        ["test_l2_penalty"],
    ),
    "l1-without-abs": (
        {"l1_penalty": "def l1_penalty(weights, lam):\n    return lam * tf.reduce_sum(weights)"},
        ["test_l1_penalty"],
    ),
    "l1-mean-not-sum": (
        {"l1_penalty": "def l1_penalty(weights, lam):\n    return lam * tf.reduce_mean(tf.abs(weights))"},
        ["test_l1_penalty"],
    ),
    "l1-first-axis-only": (
        {"l1_penalty": "def l1_penalty(weights, lam):\n    return lam * tf.reduce_sum(tf.abs(weights), axis=0)"},
        ["test_l1_penalty"],
    ),
    "l2-with-half": (
        {"l2_penalty": "def l2_penalty(weights, lam):\n    return 0.5 * lam * tf.reduce_sum(tf.square(weights))"},
        ["test_l2_penalty"],
    ),
    "l2-norm-not-squared": (
        {"l2_penalty": "def l2_penalty(weights, lam):\n    return lam * tf.norm(tf.reshape(weights, [-1]))"},
        ["test_l2_penalty"],
    ),
    "l2-lambda-squared": (
        {"l2_penalty": "def l2_penalty(weights, lam):\n    return tf.reduce_sum(tf.square(lam * weights))"},
        ["test_l2_penalty"],
    ),
    "elastic-net-missing-config": (
        {"elastic_net": _ELASTIC_NET_OPS.replace("    def get_config(self):\n        return {\"l1\": self.l1, \"l2\": self.l2}\n", "")},
        ["test_elastic_net"],
    ),
    "elastic-net-swapped-strengths": (
        {"elastic_net": _ELASTIC_NET_OPS.replace(
            "self.l1 * keras.ops.sum(keras.ops.absolute(x)) + self.l2 * keras.ops.sum(x * x)",
            "self.l2 * keras.ops.sum(keras.ops.absolute(x)) + self.l1 * keras.ops.sum(x * x)")},
        ["test_elastic_net"],
    ),
    "elastic-net-accepts-nan": (
        {"elastic_net": _ELASTIC_NET_OPS.replace(
            "        if math.isnan(l1) or math.isnan(l2) or math.isinf(l1) or math.isinf(l2):\n            raise ValueError(\"non-finite strength\")\n", "")},
        ["test_elastic_net"],
    ),
    "elastic-net-numpy-no-gradient": (
        {"elastic_net": _ELASTIC_NET_OPS.replace(
            "x = keras.ops.convert_to_tensor(x)\n        return self.l1 * keras.ops.sum(keras.ops.absolute(x)) + self.l2 * keras.ops.sum(x * x)",
            "x = np.asarray(x)\n        return float(self.l1 * np.abs(x).sum() + self.l2 * (x * x).sum())")},
        ["test_elastic_net"],
    ),
}

#: No wrong variant loses more than one cell (test_assignments.py checks it).
SEVERAL_CELLS: dict[str, str] = {}
