"""a3_dropout: correct alternatives and plausible mistakes."""

GRADED = {
    "inverted_dropout": "test_dropout_training",
    "build_mlp": "test_build_mlp",
    "generalization_gap": "test_generalization_gap",
}

# ---------------------------------------------------------------- InvertedDropout
# The reference: keras.random.uniform with a SeedGenerator, tf.where.

# tf.random.Generator state, mask by multiplication, config without the base keys
_DROPOUT_TF_GENERATOR = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None):
        super().__init__()
        if rate < 0 or rate >= 1:
            raise ValueError("rate must be in [0, 1)")
        self.rate = rate
        self.seed = seed
        # an unseeded layer draws its generator's seed from NumPy's global stream
        start = seed if seed is not None else int(np.random.randint(2**31 - 1))
        self._generator = tf.random.Generator.from_seed(start)

    def call(self, inputs, training=None):
        if training is None or not training:
            return inputs
        inputs = tf.convert_to_tensor(inputs)
        keep = tf.cast(self._generator.uniform(tf.shape(inputs)) >= self.rate, inputs.dtype)
        return inputs * keep * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)

    def get_config(self):
        return {"rate": self.rate, "seed": self.seed}
'''

# tf.nn.dropout (already inverted) guarded by training; ops-level seed. A delegation: wrong (see WRONG)
_DROPOUT_TF_NN = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        if not (0 <= rate < 1):
            raise ValueError(f"bad rate {rate}")
        super().__init__(**kwargs)
        self.rate, self.seed = rate, seed

    def call(self, inputs, training=False):
        if training:
            return tf.nn.dropout(inputs, rate=self.rate, seed=self.seed)
        return inputs

    def get_config(self):
        base = super().get_config()
        return {**base, "rate": self.rate, "seed": self.seed}
'''

# keras.random.dropout with a SeedGenerator. A delegation: wrong (see WRONG)
_DROPOUT_KERAS_RANDOM = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        rate = float(rate)
        if rate < 0.0 or rate >= 1.0:
            raise ValueError("rate must satisfy 0 <= rate < 1")
        self.rate = rate
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed=seed)

    def call(self, inputs, training=None):
        if training and self.rate > 0:
            return keras.random.dropout(inputs, rate=self.rate, seed=self.generator)
        return inputs

    def get_config(self):
        config = super().get_config()
        config["rate"] = self.rate
        config["seed"] = self.seed
        return config
'''

# an own mask from keras.random.uniform and keras.ops.where, constructor checks on a float rate: the base of
# several mistakes below
_DROPOUT_OWN_MASK = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        rate = float(rate)
        if rate < 0.0 or rate >= 1.0:
            raise ValueError("rate must satisfy 0 <= rate < 1")
        self.rate = rate
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed=seed)

    def call(self, inputs, training=None):
        if training and self.rate > 0:
            keep = keras.random.uniform(keras.ops.shape(inputs), seed=self.generator) >= self.rate
            return keras.ops.where(keep, inputs / (1.0 - self.rate), keras.ops.zeros_like(inputs))
        return inputs

    def get_config(self):
        config = super().get_config()
        config["rate"] = self.rate
        config["seed"] = self.seed
        return config
'''

# Bernoulli mask from keras.random.binomial, explicit 1/(1-p) via keras.ops.divide
_DROPOUT_BINOMIAL = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError("0 <= rate < 1 required")
        self.rate = rate
        self.seed = seed
        self._seeds = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        x = keras.ops.convert_to_tensor(inputs)
        mask = keras.random.binomial(keras.ops.shape(x), counts=1, probabilities=1 - self.rate,
                                     seed=self._seeds, dtype=x.dtype)
        return keras.ops.divide(x * mask, keras.ops.cast(1 - self.rate, x.dtype))

    def get_config(self):
        return dict(super().get_config(), rate=self.rate, seed=self.seed)
'''

# an integer seed drawn through a SeedGenerator made once: a fresh mask on every call; keras.ops throughout,
# uniform draws in the input's dtype, the dynamic shape from keras.ops.shape
_DROPOUT_SEEDED_GENERATOR = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.seeds = keras.random.SeedGenerator(seed=1234 if seed is None else seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        x = keras.ops.convert_to_tensor(inputs)
        draws = keras.random.uniform(keras.ops.shape(x), dtype=x.dtype, seed=self.seeds)
        return keras.ops.where(draws >= self.rate, x / (1 - self.rate), keras.ops.zeros_like(x))

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config
'''

# the float32 draws compared with the rate, the boolean mask cast to the INPUT's dtype (float64 under a
# float64 policy) and multiplied in, the scale in that dtype too
_DROPOUT_CAST_MASK = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError("rate")
        self.rate, self.seed = rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        inputs = tf.convert_to_tensor(inputs)
        keep = keras.random.uniform(tf.shape(inputs), seed=self.seed_generator) >= self.rate
        scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return inputs * tf.cast(keep, inputs.dtype) * scale

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
'''

# ---------------------------------------------------------------- build_mlp
# Functional API, separate Activation layers, loss object, optimizer string
_MLP_FUNCTIONAL = '''
def build_mlp(dropout_rate):
    inputs = keras.Input(shape=(784,))
    h = keras.layers.Dense(128)(inputs)
    h = keras.layers.Activation("relu")(h)
    if dropout_rate:
        h = InvertedDropout(dropout_rate)(h)
    h = keras.layers.Dense(64)(h)
    h = keras.layers.Activation("relu")(h)
    if dropout_rate:
        h = InvertedDropout(dropout_rate)(h)
    outputs = keras.layers.Dense(10)(h)
    outputs = keras.layers.Softmax()(outputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    return model
'''

# Sequential.add, ReLU layers and tf.nn activations, loss function, metric object named "accuracy"
_MLP_ADD = '''
def build_mlp(dropout_rate):
    model = keras.Sequential()
    model.add(keras.layers.InputLayer(shape=(784,)))
    model.add(keras.layers.Dense(128, activation=tf.nn.relu))
    if dropout_rate != 0:
        model.add(InvertedDropout(rate=dropout_rate))
    model.add(keras.layers.Dense(64))
    model.add(keras.layers.ReLU())
    if dropout_rate != 0:
        model.add(InvertedDropout(rate=dropout_rate))
    model.add(keras.layers.Dense(10, activation=keras.activations.softmax))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.sparse_categorical_crossentropy,
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model
'''

_MLP_REFERENCE_LIKE = '''
def build_mlp(dropout_rate):
    layers = [keras.Input((784,))]
    for units in (128, 64):
        layers.append(keras.layers.Dense(units, activation="relu"))
        if dropout_rate > 0:
            layers.append(InvertedDropout(dropout_rate))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
'''

CORRECT = {
    "tf-generator-and-functional-mlp": {
        "inverted_dropout": _DROPOUT_TF_GENERATOR,
        "build_mlp": _MLP_FUNCTIONAL,
        "generalization_gap": (
            "def generalization_gap(history):\n"
            "    h = history.history\n"
            "    return float(np.asarray(h['accuracy'])[-1] - np.asarray(h['val_accuracy'])[-1])"
        ),
    },
    "own-mask-and-sequential-add": {
        "inverted_dropout": _DROPOUT_OWN_MASK,
        "build_mlp": _MLP_ADD,
        "generalization_gap": (
            "def generalization_gap(history):\n"
            "    import pandas as pd\n"
            "    last = pd.DataFrame(history.history).iloc[-1]\n"
            "    return tf.constant(last['accuracy'] - last['val_accuracy'])"
        ),
    },
    "keras-random-binomial": {"inverted_dropout": _DROPOUT_BINOMIAL},
    "seeded-seed-generator-keras-ops": {"inverted_dropout": _DROPOUT_SEEDED_GENERATOR},
    "mask-cast-to-input-dtype": {"inverted_dropout": _DROPOUT_CAST_MASK},
}

# ---------------------------------------------------------------- wrong variants
_NO_RESCALE = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError("rate")
        self.rate, self.seed = rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        keep = keras.random.uniform(tf.shape(inputs), seed=self.seed_generator) >= self.rate
        return tf.where(keep, inputs, tf.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
'''

# classic (non-inverted) dropout: drop without rescaling, multiply by (1 - rate) at inference
_SCALE_AT_INFERENCE = _NO_RESCALE.replace(
    "        if not training:\n            return inputs\n",
    "        if not training:\n            return inputs * (1.0 - self.rate)\n",
)

_RATE_AS_KEEP = _NO_RESCALE.replace(
    "keep = keras.random.uniform(tf.shape(inputs), seed=self.seed_generator) >= self.rate\n"
    "        return tf.where(keep, inputs, tf.zeros_like(inputs))",
    "keep = keras.random.uniform(tf.shape(inputs), seed=self.seed_generator) < self.rate\n"
    "        return tf.where(keep, inputs / self.rate, tf.zeros_like(inputs)) if self.rate > 0 else inputs",
)

# a seed generator re-created on every call: with a fixed seed every call draws the same mask
_SEED_EVERY_CALL = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError("rate")
        self.rate, self.seed = rate, seed

    def call(self, inputs, training=None):
        if not training:
            return inputs
        seed = self.seed if self.seed is not None else 1337
        keep = tf.random.stateless_uniform(tf.shape(inputs), seed=[seed, 0]) >= self.rate
        return tf.where(keep, inputs / (1.0 - self.rate), tf.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
'''

# a SeedGenerator made inside call: a new generator with the same seed, the same mask each call
_SEED_GENERATOR_IN_CALL = _DROPOUT_OWN_MASK.replace(
    "keras.random.uniform(keras.ops.shape(inputs), seed=self.generator)",
    "keras.random.uniform(keras.ops.shape(inputs), seed=keras.random.SeedGenerator(self.seed))",
)

# the mask is drawn once, when the layer is built, and reused
_MASK_IN_BUILD = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError("rate")
        self.rate, self.seed = rate, seed

    def build(self, input_shape):
        shape = [1 if d is None else d for d in input_shape]
        self.mask = tf.cast(tf.random.uniform(shape, seed=self.seed) >= self.rate, "float32")

    def call(self, inputs, training=None):
        if not training:
            return inputs
        return inputs * tf.cast(self.mask, inputs.dtype) / (1.0 - self.rate)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
'''

# whole rows (examples) dropped: noise_shape (batch, 1, ..., 1)
_DROP_ROWS = _DROPOUT_OWN_MASK.replace(
    "keras.random.uniform(keras.ops.shape(inputs), seed=self.generator)",
    "keras.random.uniform(tf.concat([tf.shape(inputs)[:1], tf.ones_like(tf.shape(inputs)[1:])], 0), seed=self.generator)",
)

# one mask over the features shared by every example: noise_shape (1, ..., features)
_DROP_COLUMNS = _DROPOUT_OWN_MASK.replace(
    "keras.random.uniform(keras.ops.shape(inputs), seed=self.generator)",
    "keras.random.uniform(tf.concat([tf.ones_like(tf.shape(inputs)[:-1]), tf.shape(inputs)[-1:]], 0), seed=self.generator)",
)

# `training is False` treats training=None (a plain layer(x) call) as training
_NONE_IS_TRAINING = _DROPOUT_OWN_MASK.replace(
    "        if training and self.rate > 0:\n",
    "        if training is not False and self.rate > 0:\n",
)

_NO_VALUE_ERROR = _DROPOUT_OWN_MASK.replace(
    '        if rate < 0.0 or rate >= 1.0:\n            raise ValueError("rate must satisfy 0 <= rate < 1")\n', ""
)

_CONFIG_WITHOUT_SEED = _DROPOUT_OWN_MASK.replace('        config["seed"] = self.seed\n', "")

# float32 mask multiplied into the input: breaks float64 inputs
_FLOAT32_MASK = _NO_RESCALE.replace(
    "return tf.where(keep, inputs, tf.zeros_like(inputs))",
    "return inputs * tf.cast(keep, tf.float32) / (1.0 - self.rate)",
)

# right in float32, but every call casts its input to float32: a float64 model gets float32 back
_CASTS_TO_FLOAT32 = _NO_RESCALE.replace(
    "        if not training:\n            return inputs\n",
    "        inputs = tf.cast(inputs, tf.float32)\n        if not training:\n            return inputs\n",
).replace("return tf.where(keep, inputs, tf.zeros_like(inputs))",
          "return tf.where(keep, inputs / (1.0 - self.rate), tf.zeros_like(inputs))")

# computes in float32 and casts back: a float64 model gets float64, with float32's precision
_COMPUTES_IN_FLOAT32 = _NO_RESCALE.replace(
    "return tf.where(keep, inputs, tf.zeros_like(inputs))",
    "x = tf.cast(inputs, tf.float32)\n"
    "        return tf.cast(tf.where(keep, x / (1.0 - self.rate), tf.zeros_like(x)), inputs.dtype)",
)

# NumPy randomness: frozen into the graph by tf.function; unknown batch size in model.fit
_NUMPY_MASK = '''
class InvertedDropout(keras.layers.Layer):
    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError("rate")
        self.rate, self.seed = rate, seed
        self.rng = np.random.default_rng(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        keep = (self.rng.random(tuple(inputs.shape)) >= self.rate).astype(np.float32)
        return inputs * keep / (1.0 - self.rate)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
'''

# an integer seed passed straight to keras.random.uniform: a fixed stateless draw, the same mask on every call
# (unseeded layers still get fresh masks from Keras' global generator)
_INTEGER_SEED_IN_UNIFORM = _NO_RESCALE.replace(
    "keep = keras.random.uniform(tf.shape(inputs), seed=self.seed_generator) >= self.rate\n"
    "        return tf.where(keep, inputs, tf.zeros_like(inputs))",
    "keep = keras.random.uniform(tf.shape(inputs), seed=self.seed) >= self.rate\n"
    "        return tf.where(keep, inputs / (1.0 - self.rate), tf.zeros_like(inputs))",
)

# the static shape: (None, ...) when Keras traces call with an unknown batch size inside model.fit
_STATIC_SHAPE = _NO_RESCALE.replace(
    "keep = keras.random.uniform(tf.shape(inputs), seed=self.seed_generator) >= self.rate\n"
    "        return tf.where(keep, inputs, tf.zeros_like(inputs))",
    "keep = keras.random.uniform(inputs.shape, seed=self.seed_generator) >= self.rate\n"
    "        return tf.where(keep, inputs / (1.0 - self.rate), tf.zeros_like(inputs))",
)

_RATE_ZERO_REJECTED = _DROPOUT_OWN_MASK.replace("if rate < 0.0 or rate >= 1.0:", "if rate <= 0.0 or rate >= 1.0:")

WRONG = {
    # the implementation policy: the built-in dropout, however it is reached, is not an implementation; it costs
    # every cell whose probe runs it (a training call at rate 0 and after-training inference calls included)
    "dropout-delegates-to-tf-nn-dropout": (
        {"inverted_dropout": _DROPOUT_TF_NN},
        ["test_dropout_inference", "test_dropout_training", "test_dropout_dtype", "test_dropout_in_model"],
    ),
    "dropout-delegates-to-keras-random-dropout": (
        {"inverted_dropout": _DROPOUT_KERAS_RANDOM},
        ["test_dropout_inference", "test_dropout_training", "test_dropout_dtype", "test_dropout_in_model"],
    ),
    "dropout-subclasses-keras-dropout": (
        {"inverted_dropout": '''
class InvertedDropout(keras.layers.Dropout):
    def __init__(self, rate, seed=None, **kwargs):
        if not 0 <= rate < 1:
            raise ValueError("rate")
        super().__init__(rate, seed=seed, **kwargs)
'''},
        ["test_dropout_construction", "test_dropout_inference", "test_dropout_training", "test_dropout_dtype", "test_dropout_in_model"],
    ),
    # InvertedDropout
    "dropout-no-rescaling": ({"inverted_dropout": _NO_RESCALE}, ["test_dropout_training"]),
    # two mistakes in one: no rescaling in training, scaling at inference. model.predict sees the layer at
    # inference as a direct call does: test_dropout_in_model does not charge it a second time
    "dropout-scales-at-inference": (
        {"inverted_dropout": _SCALE_AT_INFERENCE},
        ["test_dropout_inference", "test_dropout_training"],
    ),
    "dropout-rate-as-keep-probability": ({"inverted_dropout": _RATE_AS_KEEP}, ["test_dropout_training"]),
    "dropout-fixed-seed-every-call": ({"inverted_dropout": _SEED_EVERY_CALL}, ["test_dropout_training"]),
    # a variable created inside call also breaks every traced call (model.fit): "tf.function only supports
    # singleton tf.Variables created on the first call"
    "dropout-seed-generator-made-in-call": (
        {"inverted_dropout": _SEED_GENERATOR_IN_CALL},
        ["test_dropout_training", "test_dropout_in_model"],
    ),
    # the mask has the shape of the first input: a training call on another shape fails (the inference cell's
    # training calls in between too, which it leaves to the training cell)
    "dropout-mask-drawn-in-build": (
        {"inverted_dropout": _MASK_IN_BUILD},
        ["test_dropout_training"],
    ),
    "dropout-whole-rows": ({"inverted_dropout": _DROP_ROWS}, ["test_dropout_training"]),
    "dropout-whole-columns": ({"inverted_dropout": _DROP_COLUMNS}, ["test_dropout_training"]),
    "dropout-training-none-is-training": ({"inverted_dropout": _NONE_IS_TRAINING}, ["test_dropout_inference"]),
    "dropout-no-value-error": ({"inverted_dropout": _NO_VALUE_ERROR}, ["test_dropout_construction"]),
    "dropout-config-without-seed": ({"inverted_dropout": _CONFIG_WITHOUT_SEED}, ["test_dropout_construction"]),
    # accepting rate 0 is the construction cell's; the inference cell leaves out the rate-0 layers it could
    # not build (one mistake, one charge)
    "dropout-rate-zero-rejected": (
        {"inverted_dropout": _RATE_ZERO_REJECTED},
        ["test_dropout_construction"],
    ),
    # float64 training calls fail, rate 0 under the float64 policy (an identity the inference cell checks) too
    # the float64 dtype policy is its own cell: these are right in float32 and lose that cell only
    "dropout-float32-mask": ({"inverted_dropout": _FLOAT32_MASK}, ["test_dropout_dtype"]),
    "dropout-casts-to-float32": ({"inverted_dropout": _CASTS_TO_FLOAT32}, ["test_dropout_dtype"]),
    "dropout-computes-in-float32": ({"inverted_dropout": _COMPUTES_IN_FLOAT32}, ["test_dropout_dtype"]),
    # NumPy randomness: fixed masks in training, and no graph for model.fit: two behaviours of the contract
    "dropout-numpy-mask": (
        {"inverted_dropout": _NUMPY_MASK},
        ["test_dropout_training", "test_dropout_in_model"],
    ),
    "dropout-integer-seed-in-uniform": ({"inverted_dropout": _INTEGER_SEED_IN_UNIFORM}, ["test_dropout_training"]),
    "dropout-static-shape": ({"inverted_dropout": _STATIC_SHAPE}, ["test_dropout_in_model"]),
    # build_mlp
    "mlp-dropout-layers-at-rate-zero": (
        {"build_mlp": _MLP_REFERENCE_LIKE.replace("if dropout_rate > 0:", "if True:")},
        ["test_build_mlp"],
    ),
    "mlp-keras-dropout-not-inverted-dropout": (
        {"build_mlp": _MLP_REFERENCE_LIKE.replace("InvertedDropout(dropout_rate)", "keras.layers.Dropout(dropout_rate)")},
        ["test_build_mlp"],
    ),
    "mlp-dropout-on-inputs-not-after-second-layer": (
        {"build_mlp": '''
def build_mlp(dropout_rate):
    layers = [keras.Input((784,))]
    for units in (128, 64):
        if dropout_rate > 0:
            layers.append(InvertedDropout(dropout_rate))
        layers.append(keras.layers.Dense(units, activation="relu"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
'''},
        ["test_build_mlp"],
    ),
    "mlp-sgd-optimizer": (
        {"build_mlp": _MLP_REFERENCE_LIKE.replace('optimizer="adam"', 'optimizer="sgd"')},
        ["test_build_mlp"],
    ),
    "mlp-categorical-not-sparse-loss": (
        {"build_mlp": _MLP_REFERENCE_LIKE.replace(
            'loss="sparse_categorical_crossentropy"', 'loss="categorical_crossentropy"')},
        ["test_build_mlp"],
    ),
    "mlp-no-accuracy-metric": (
        {"build_mlp": _MLP_REFERENCE_LIKE.replace(', metrics=["accuracy"]', "")},
        ["test_build_mlp"],
    ),
    "mlp-sigmoid-hidden": (
        {"build_mlp": _MLP_REFERENCE_LIKE.replace('keras.layers.Dense(units, activation="relu")',
                                                  'keras.layers.Dense(units, activation="sigmoid")')},
        ["test_build_mlp"],
    ),
    # generalization_gap
    "gap-first-epoch": (
        {"generalization_gap": "def generalization_gap(history):\n"
                               "    return history.history['accuracy'][0] - history.history['val_accuracy'][0]"},
        ["test_generalization_gap"],
    ),
    "gap-validation-minus-train": (
        {"generalization_gap": "def generalization_gap(history):\n"
                               "    return history.history['val_accuracy'][-1] - history.history['accuracy'][-1]"},
        ["test_generalization_gap"],
    ),
    "gap-max-accuracies": (
        {"generalization_gap": "def generalization_gap(history):\n"
                               "    return max(history.history['accuracy']) - max(history.history['val_accuracy'])"},
        ["test_generalization_gap"],
    ),
    "gap-losses": (
        {"generalization_gap": "def generalization_gap(history):\n"
                               "    return history.history['loss'][-1] - history.history['val_loss'][-1]"},
        ["test_generalization_gap"],
    ),
    "gap-absolute-value": (
        {"generalization_gap": "def generalization_gap(history):\n"
                               "    return abs(history.history['accuracy'][-1] - history.history['val_accuracy'][-1])"},
        ["test_generalization_gap"],
    ),
    "gap-mean-over-epochs": (
        {"generalization_gap": "def generalization_gap(history):\n"
                               "    return float(np.mean(history.history['accuracy']) - np.mean(history.history['val_accuracy']))"},
        ["test_generalization_gap"],
    ),
}


#: Every wrong variant that loses more than one cell, and why that is not one mistake charged twice
#: (test_assignments.py checks that the list is exactly those variants).
SEVERAL_CELLS = {
    "dropout-delegates-to-tf-nn-dropout": "the implementation policy: every cell whose probe runs the built-in dropout",
    "dropout-delegates-to-keras-random-dropout": "the implementation policy: every cell whose probe runs the built-in "
                                                 "dropout",
    "dropout-subclasses-keras-dropout": "the implementation policy: every cell whose probe runs the built-in layer, "
                                        "construction included",
    "dropout-scales-at-inference": "two mistakes: no rescaling in training, and a scaling at inference",
    "dropout-seed-generator-made-in-call": "two behaviours: fresh masks, and a layer that model.fit can trace "
                                           "(a variable made in call cannot be)",
    "dropout-numpy-mask": "two behaviours: fresh masks in training, and a layer that model.fit can trace",
}
