"""a1_bias_variance: correct alternatives and plausible mistakes."""

GRADED = {
    "bias_variance": "test_bias_variance",
}

# TensorFlow throughout, returns 0-d float64 tensors.
_TF = '''
def bias_variance(predictions, targets):
    p = tf.cast(predictions, tf.float64)
    f = tf.cast(targets, tf.float64)
    if p.shape.rank != 2:
        raise ValueError("predictions must be 2-D")
    if f.shape.rank != 1 or f.shape[0] != p.shape[1]:
        raise ValueError("one target per column of predictions")
    bias_squared = tf.reduce_mean(tf.square(tf.reduce_mean(p, axis=0) - f))
    variance = tf.reduce_mean(tf.math.reduce_variance(p, axis=0))
    return bias_squared, variance
'''

# Another algorithm: explicit loops over points, and the variance obtained from the
# exact identity  mean squared error = bias² + variance  (holds with ddof = 0).
_LOOPS = '''
def bias_variance(predictions, targets):
    p = np.array(predictions, dtype=np.float64)
    f = np.array(targets, dtype=np.float64).reshape(-1)
    if len(p.shape) != 2:
        raise ValueError("expected (n_models, n_points)")
    n_models, n_points = p.shape
    if np.ndim(targets) != 1 or len(f) != n_points:
        raise ValueError("targets and predictions disagree")
    bias_terms, mse_terms = [], []
    for j in range(n_points):
        column = p[:, j]
        average = sum(column) / n_models
        bias_terms.append((average - f[j]) ** 2)
        mse_terms.append(sum((value - f[j]) ** 2 for value in column) / n_models)
    bias_squared = sum(bias_terms) / n_points
    variance = sum(mse_terms) / n_points - bias_squared
    return [bias_squared, max(variance, 0.0)]
'''

# keras.ops, float32 computation, returns NumPy scalars.
_KERAS_OPS = '''
import keras


def bias_variance(predictions, targets):
    if np.ndim(predictions) != 2:
        raise ValueError("predictions must have shape (n_models, n_points)")
    if np.shape(targets) != (np.shape(predictions)[1],):
        raise ValueError("targets must have shape (n_points,)")
    p = keras.ops.convert_to_tensor(predictions, dtype="float32")
    f = keras.ops.convert_to_tensor(targets, dtype="float32")
    centred = p - keras.ops.mean(p, axis=0, keepdims=True)
    variance = keras.ops.mean(keras.ops.mean(centred ** 2, axis=0))
    bias_squared = keras.ops.mean((keras.ops.mean(p, axis=0) - f) ** 2)
    return keras.ops.convert_to_numpy(bias_squared), keras.ops.convert_to_numpy(variance)
'''

_REFERENCE_STYLE = '''
def bias_variance(predictions, targets):
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if predictions.ndim != 2:
        raise ValueError("predictions must be 2-D")
    if targets.ndim != 1 or targets.shape[0] != predictions.shape[1]:
        raise ValueError("lengths disagree")
    average_model = predictions.mean(axis=0)
    bias_squared = np.mean((average_model - targets) ** 2)
    variance = np.mean(predictions.var(axis=0))
    return float(bias_squared), float(variance)
'''


def _mutate(old, new):
    assert old in _REFERENCE_STYLE, old
    return _REFERENCE_STYLE.replace(old, new)


CORRECT = {
    "tensorflow": {"bias_variance": _TF},
    "loops-and-mse-identity": {"bias_variance": _LOOPS},
    "keras-ops-float32": {"bias_variance": _KERAS_OPS},
}

WRONG = {
    "unbiased-variance-ddof1": (
        {"bias_variance": _mutate("predictions.var(axis=0)", "predictions.var(axis=0, ddof=1)")},
        ["test_bias_variance"],
    ),
    "variance-over-points-axis": (
        {"bias_variance": _mutate("predictions.var(axis=0)", "predictions.var(axis=1)")},
        ["test_bias_variance"],
    ),
    "variance-pooled-over-everything": (
        {"bias_variance": _mutate("np.mean(predictions.var(axis=0))", "np.var(predictions)")},
        ["test_bias_variance"],
    ),
    "std-instead-of-variance": (
        {"bias_variance": _mutate("predictions.var(axis=0)", "predictions.std(axis=0)")},
        ["test_bias_variance"],
    ),
    "squared-mean-error-not-mean-squared-bias": (
        {"bias_variance": _mutate("np.mean((average_model - targets) ** 2)", "np.mean(average_model - targets) ** 2")},
        ["test_bias_variance"],
    ),
    "bias-is-the-mse": (
        {"bias_variance": _mutate("np.mean((average_model - targets) ** 2)", "np.mean((predictions - targets) ** 2)")},
        ["test_bias_variance"],
    ),
    "swapped-return-order": (
        {"bias_variance": _mutate("return float(bias_squared), float(variance)", "return float(variance), float(bias_squared)")},
        ["test_bias_variance"],
    ),
    "no-validation-numpy": (
        {"bias_variance": _mutate(
            '    if predictions.ndim != 2:\n        raise ValueError("predictions must be 2-D")\n'
            '    if targets.ndim != 1 or targets.shape[0] != predictions.shape[1]:\n        raise ValueError("lengths disagree")\n',
            "")},
        ["test_bias_variance_errors"],
    ),
    "no-validation-tensorflow": (
        {"bias_variance": _TF.replace(
            '    if p.shape.rank != 2:\n        raise ValueError("predictions must be 2-D")\n'
            '    if f.shape.rank != 1 or f.shape[0] != p.shape[1]:\n        raise ValueError("one target per column of predictions")\n',
            "")},
        ["test_bias_variance_errors"],
    ),
    "checks-rank-but-not-lengths": (
        {"bias_variance": _mutate(
            '    if targets.ndim != 1 or targets.shape[0] != predictions.shape[1]:\n        raise ValueError("lengths disagree")\n',
            "")},
        ["test_bias_variance_errors"],
    ),
    "assert-instead-of-value-error": (
        {"bias_variance": _mutate(
            '    if predictions.ndim != 2:\n        raise ValueError("predictions must be 2-D")\n'
            '    if targets.ndim != 1 or targets.shape[0] != predictions.shape[1]:\n        raise ValueError("lengths disagree")\n',
            "    assert predictions.ndim == 2 and targets.shape == (predictions.shape[1],)\n")},
        ["test_bias_variance_errors"],
    ),
}

# Mistakes against the contract's edge cases, added with the judged hidden tests.
WRONG.update({
    "rejects-a-single-model": (
        {"bias_variance": _mutate(
            '    average_model = ',
            '    if predictions.shape[0] < 2:\n        raise ValueError("need at least two models")\n'
            '    average_model = ')},
        ["test_bias_variance"],
    ),
    "returns-the-mse-as-a-third-value": (
        {"bias_variance": _mutate(
            "return float(bias_squared), float(variance)",
            "return float(bias_squared), float(variance), float(bias_squared + variance)")},
        ["test_bias_variance"],
    ),
    "validates-numpy-arrays-only": (
        {"bias_variance": _TF.replace(
            "    if p.shape.rank != 2:",
            "    if isinstance(predictions, tf.Tensor):\n        pass\n    elif p.shape.rank != 2:").replace(
            "    if f.shape.rank != 1 or f.shape[0] != p.shape[1]:",
            "    if isinstance(targets, tf.Tensor):\n        pass\n    elif f.shape.rank != 1 or f.shape[0] != p.shape[1]:")},
        ["test_bias_variance_errors"],
    ),
    "lets-length-1-targets-broadcast": (
        {"bias_variance": _mutate(
            "targets.shape[0] != predictions.shape[1]",
            "targets.shape[0] not in (1, predictions.shape[1])")},
        ["test_bias_variance_errors"],
    ),
})

#: No wrong variant loses more than one cell (test_assignments.py checks it).
SEVERAL_CELLS: dict[str, str] = {}
