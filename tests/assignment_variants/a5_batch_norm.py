"""a5_batch_norm: correct alternatives and plausible mistakes."""

GRADED = {
    "my_batch_norm": "test_training",
}

# --------------------------------------------------------------- correct, written differently

# keras.ops throughout, keras.initializers objects, default training=False, rsqrt
_KERAS_OPS = '''
class MyBatchNormalization(keras.layers.Layer):
    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        n = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(n,), initializer=keras.initializers.Ones())
        self.beta = self.add_weight(name="beta", shape=(n,), initializer=keras.initializers.Zeros())
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(n,), initializer=keras.initializers.Zeros(), trainable=False)
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=(n,), initializer=keras.initializers.Ones(), trainable=False)

    def call(self, inputs, training=False):
        x = keras.ops.convert_to_tensor(inputs)
        axes = tuple(range(keras.ops.ndim(x) - 1))
        if training:
            mean = keras.ops.mean(x, axis=axes)
            var = keras.ops.var(x, axis=axes)
            m = self.momentum
            self.moving_mean.assign(m * self.moving_mean + (1 - m) * mean)
            self.moving_variance.assign(m * self.moving_variance + (1 - m) * var)
        else:
            mean, var = self.moving_mean, self.moving_variance
        scale = keras.ops.rsqrt(var + self.epsilon) * self.gamma
        return (x - mean) * scale + self.beta
'''

# flatten to (values, features), one-pass E[x²] − E[x]², assign_sub update, folded affine map
_FLATTEN_ONE_PASS = '''
class MyBatchNormalization(keras.layers.Layer):
    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = momentum, epsilon

    def build(self, input_shape):
        features = input_shape[-1]
        for name, init, trainable in [("gamma", "ones", True), ("beta", "zeros", True),
                                      ("moving_mean", "zeros", False), ("moving_variance", "ones", False)]:
            setattr(self, name, self.add_weight(shape=(features,), initializer=init, trainable=trainable, name=name))

    def call(self, inputs, training=None):
        inputs = tf.convert_to_tensor(inputs)
        if training:
            flat = tf.reshape(inputs, [-1, tf.shape(inputs)[-1]])
            mean = tf.reduce_mean(flat, axis=0)
            var = tf.reduce_mean(tf.square(flat), axis=0) - tf.square(mean)
            self.moving_mean.assign_sub((self.moving_mean - mean) * (1.0 - self.momentum))
            self.moving_variance.assign_sub((self.moving_variance - var) * (1.0 - self.momentum))
        else:
            mean = tf.convert_to_tensor(self.moving_mean)
            var = tf.convert_to_tensor(self.moving_variance)
        scale = self.gamma * tf.math.rsqrt(var + self.epsilon)
        return inputs * scale + (self.beta - mean * scale)
'''

# tf.nn.moments(keepdims=True), the statistics reshaped to the features, rank from the tensor
_TF_NN = '''
class MyBatchNormalization(keras.layers.Layer):
    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        shape = (input_shape[-1],)
        self.gamma = self.add_weight(shape=shape, initializer="ones")
        self.beta = self.add_weight(shape=shape, initializer="zeros")
        self.moving_mean = self.add_weight(shape=shape, initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(shape=shape, initializer="ones", trainable=False)

    def call(self, x, training=None):
        rank = x.shape.rank
        if training:
            mean, variance = tf.nn.moments(x, axes=list(range(rank - 1)), keepdims=True)
            batch_mean = tf.reshape(mean, [-1])
            batch_var = tf.reshape(variance, [-1])
            self.moving_mean.assign(self.moving_mean * self.momentum + batch_mean * (1 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + batch_var * (1 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return (x - mean) * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta
'''

# the same, handing the normalization itself to tf.nn.batch_normalization: off limits (see WRONG)
_TF_NN_DELEGATES = _TF_NN.replace(
    "        return (x - mean) * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta\n",
    "        return tf.nn.batch_normalization(x, mean, variance, offset=self.beta, scale=self.gamma,\n"
    "                                         variance_epsilon=self.epsilon)\n",
)
assert _TF_NN_DELEGATES != _TF_NN

# Keras' own layer, subclassed: off limits (see WRONG)
_KERAS_SUBCLASS = '''
class MyBatchNormalization(keras.layers.BatchNormalization):
    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(momentum=momentum, epsilon=epsilon, **kwargs)
'''

CORRECT = {
    "keras-ops": {"my_batch_norm": _KERAS_OPS},
    "flatten-one-pass-variance": {"my_batch_norm": _FLATTEN_ONE_PASS},
    "tf-nn-moments": {"my_batch_norm": _TF_NN},
}

# --------------------------------------------------------------- wrong: edits of a plain version

_BASE = '''
class MyBatchNormalization(keras.layers.Layer):
    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        n = input_shape[-1]
        self.gamma = self.add_weight(shape=(n,), initializer="ones", trainable=True)
        self.beta = self.add_weight(shape=(n,), initializer="zeros", trainable=True)
        self.moving_mean = self.add_weight(shape=(n,), initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(shape=(n,), initializer="ones", trainable=False)

    def call(self, inputs, training=None):
        axes = list(range(len(inputs.shape) - 1))
        if training:
            mean = tf.reduce_mean(inputs, axis=axes)
            var = tf.reduce_mean(tf.square(inputs - mean), axis=axes)
            self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)
            self.moving_variance.assign(self.momentum * self.moving_variance + (1 - self.momentum) * var)
        else:
            mean, var = self.moving_mean, self.moving_variance
        return self.gamma * (inputs - mean) / tf.sqrt(var + self.epsilon) + self.beta
'''

_GAMMA = '        self.gamma = self.add_weight(shape=(n,), initializer="ones", trainable=True)\n'
_BETA = '        self.beta = self.add_weight(shape=(n,), initializer="zeros", trainable=True)\n'
_MM = '        self.moving_mean = self.add_weight(shape=(n,), initializer="zeros", trainable=False)\n'
_MV = '        self.moving_variance = self.add_weight(shape=(n,), initializer="ones", trainable=False)\n'
_VAR = "            var = tf.reduce_mean(tf.square(inputs - mean), axis=axes)\n"
_UPDATES = (
    "            self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)\n"
    "            self.moving_variance.assign(self.momentum * self.moving_variance + (1 - self.momentum) * var)\n"
)
_OUTPUT = "        return self.gamma * (inputs - mean) / tf.sqrt(var + self.epsilon) + self.beta\n"


def _edit(*pairs):
    source = _BASE
    for old, new in pairs:
        assert old in source, old
        source = source.replace(old, new)
    assert source != _BASE
    return {"my_batch_norm": source}


_EVERY_CELL = ["test_build", "test_training", "test_inference", "test_gradients", "test_in_model"]

WRONG = {
    # the implementation policy: a ready-made batch normalization is not an implementation
    "subclasses-keras-batch-normalization": ({"my_batch_norm": _KERAS_SUBCLASS}, _EVERY_CELL),
    "delegates-to-tf-nn-batch-normalization": (
        {"my_batch_norm": _TF_NN_DELEGATES},
        _EVERY_CELL,
    ),
    # ddof=1 in both the output and the moving variance
    "unbiased-variance": (
        _edit((_VAR, "            n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], inputs.dtype)\n"
                     "            var = tf.reduce_sum(tf.square(inputs - mean), axis=axes) / (n - 1)\n")),
        ["test_training"],
    ),
    # the Keras 2 / TF 1 fused-kernel convention: biased for the output, unbiased for the moving average
    "unbiased-moving-variance": (
        _edit(("(1 - self.momentum) * var)",
               "(1 - self.momentum) * var * n / (n - 1))"),
              (_VAR, _VAR + "            n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], inputs.dtype)\n")),
        ["test_training"],
    ),
    "momentum-swapped": (
        _edit(("self.momentum * self.moving_mean + (1 - self.momentum) * mean",
               "(1 - self.momentum) * self.moving_mean + self.momentum * mean"),
              ("self.momentum * self.moving_variance + (1 - self.momentum) * var",
               "(1 - self.momentum) * self.moving_variance + self.momentum * var")),
        ["test_training"],
    ),
    # normalizes each example over its features (layer normalization); moving statistics still per feature
    "per-sample-normalization": (
        _edit(("            mean = tf.reduce_mean(inputs, axis=axes)\n" + _VAR + _UPDATES,
               _UPDATES.replace("* mean)", "* tf.reduce_mean(inputs, axis=axes))")
                       .replace("* var)", "* tf.math.reduce_variance(inputs, axis=axes))")
               + "            mean = tf.reduce_mean(inputs, axis=-1, keepdims=True)\n"
                 "            var = tf.math.reduce_variance(inputs, axis=-1, keepdims=True)\n")),
        ["test_training"],
    ),
    # reduces over the batch axis only: right for 2-D inputs, wrong for images
    "batch-axis-only": (
        _edit(("axes = list(range(len(inputs.shape) - 1))", "axes = [0]")),
        ["test_training"],
    ),
    # one formula serves training and inference: charged once, in the training cell (the inference cell
    # compares with the layer's own formula given the moving statistics)
    "epsilon-outside-sqrt": (
        _edit((_OUTPUT, "        return self.gamma * (inputs - mean) / (tf.sqrt(var) + self.epsilon) + self.beta\n")),
        ["test_training"],
    ),
    # in model.fit Keras warns on stderr that gamma and beta get no gradient: the model cell fails as stock
    # nbgrader fails any test cell with stderr (a real symptom: the layer's weights are never trained;
    # STDERR_LOSSES below)
    # the formula is right in training and wrong at inference only: the inference cell's to charge
    "epsilon-outside-sqrt-at-inference-only": (
        _edit(("            mean, var = self.moving_mean, self.moving_variance\n",
               "            mean, var = self.moving_mean, self.moving_variance\n"
               "            return self.gamma * (inputs - mean) / (tf.sqrt(var) + self.epsilon) + self.beta\n")),
        ["test_inference"],
    ),
    "ignores-gamma-beta": (
        _edit((_OUTPUT, "        return (inputs - mean) / tf.sqrt(var + self.epsilon)\n")),
        ["test_training", "test_in_model"],
    ),
    "moving-stats-never-updated": (
        _edit((_UPDATES, "")),
        ["test_training"],
    ),
    "inference-uses-batch-statistics": (
        _edit(("            mean, var = self.moving_mean, self.moving_variance\n",
               "            mean = tf.reduce_mean(inputs, axis=axes)\n" + _VAR)),
        ["test_inference"],
    ),
    # batch statistics computed and averaged on every call; output right in both modes
    "updates-at-inference-too": (
        _edit(("        if training:\n            mean = tf.reduce_mean(inputs, axis=axes)\n" + _VAR + _UPDATES,
               "        batch_mean = tf.reduce_mean(inputs, axis=axes)\n"
               "        batch_var = tf.reduce_mean(tf.square(inputs - batch_mean), axis=axes)\n"
               "        self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * batch_mean)\n"
               "        self.moving_variance.assign(self.momentum * self.moving_variance + (1 - self.momentum) * batch_var)\n"
               "        if training:\n            mean, var = batch_mean, batch_var\n")),
        ["test_inference"],
    ),
    "training-none-is-training": (
        _edit(("        if training:\n", "        if training is not False:\n")),
        ["test_inference"],
    ),
    "training-defaults-to-true": (
        _edit(("def call(self, inputs, training=None):", "def call(self, inputs, training=True):")),
        ["test_inference"],
    ),
    "beta-created-before-gamma": (
        _edit((_GAMMA + _BETA, _BETA + _GAMMA)),
        ["test_build"],
    ),
    "moving-variance-created-before-moving-mean": (
        _edit((_MM + _MV, _MV + _MM)),
        ["test_build"],
    ),
    "gamma-beta-not-trainable": (
        _edit((_GAMMA, _GAMMA.replace("trainable=True", "trainable=False")),
              (_BETA, _BETA.replace("trainable=True", "trainable=False"))),
        ["test_build"],
    ),
    # "the statistics are constants": no gradient through the batch mean and variance
    "stop-gradient-through-statistics": (
        _edit(("        return self.gamma", "        mean, var = tf.stop_gradient(mean), tf.stop_gradient(var)\n"
                                            "        return self.gamma")),
        ["test_gradients"],
    ),
    # NumPy inside call: right numbers in eager mode, but no gradient and no graph (model.fit)
    "numpy-in-call": (
        {"my_batch_norm": _BASE.split("    def call")[0] + '''    def call(self, inputs, training=None):
        x = np.asarray(inputs)
        axes = tuple(range(x.ndim - 1))
        if training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            self.moving_mean.assign(self.momentum * self.moving_mean.numpy() + (1 - self.momentum) * mean)
            self.moving_variance.assign(self.momentum * self.moving_variance.numpy() + (1 - self.momentum) * var)
        else:
            mean, var = self.moving_mean.numpy(), self.moving_variance.numpy()
        out = self.gamma.numpy() * (x - mean) / np.sqrt(var + self.epsilon) + self.beta.numpy()
        return tf.constant(out.astype(x.dtype))
'''},
        ["test_gradients", "test_in_model"],
    ),
    # a fifth variable (a step counter): the layer must hold exactly gamma, beta, moving_mean, moving_variance
    "extra-step-counter-variable": (
        _edit((_MV, _MV + '        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False)\n'),
              (_UPDATES, _UPDATES + "            self.steps.assign_add(1.0)\n")),
        ["test_build"],
    ),
    # variables forced to float32: the layer breaks under the float64 dtype policy of the gradient check
    "forced-float32-variables": (
        _edit(*[(line, line.replace("trainable=", 'dtype="float32", trainable=')) for line in (_GAMMA, _BETA, _MM, _MV)]),
        ["test_gradients"],
    ),
}

#: Cells a wrong variant loses through stderr, not through the judge: the in-process judge test leaves them out.
STDERR_LOSSES = {"ignores-gamma-beta": ["test_in_model"]}


#: Every wrong variant that loses more than one cell, and why that is not one mistake charged twice
#: (test_assignments.py checks that the list is exactly those variants).
SEVERAL_CELLS = {
    "subclasses-keras-batch-normalization": "the implementation policy: every cell whose probe runs Keras' layer",
    "delegates-to-tf-nn-batch-normalization": "the implementation policy: every cell whose probe runs "
                                              "tf.nn.batch_normalization",
    "ignores-gamma-beta": "two symptoms of the contract: the training output, and Keras' warning on stderr in "
                          "model.fit that gamma and beta get no gradient (a layer whose weights never train)",
    "numpy-in-call": "two behaviours: gradients that flow, and a layer that model.fit can trace",
}
