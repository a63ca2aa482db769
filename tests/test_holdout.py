"""The capstone's grading holdout (``regcourse.grading.holdout``) and a6's judge of it.

Where the digits come from (the instructor's ``grading/holdout.npz``, else the
default reserved digits; the inputs first from ``REGCOURSE_HOLDOUT_INPUTS``),
clear errors for a bad file, and the split of work: the probe records
predictions on the inputs and reads no label; the judge reads the labels,
checks that the kernel scored the same digits, and computes the accuracy.
No model is trained here: the judge is fed records, or an untrained model.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from regcourse import data as data_module
from regcourse.grading import holdout, judge
from regcourse.grading.checks import a6_capstone

ROOT = Path(__file__).resolve().parents[1]
CELL = "test_capstone_holdout"


@pytest.fixture(autouse=True)
def no_inputs_variable(monkeypatch):
    monkeypatch.delenv(holdout.INPUTS_VARIABLE, raising=False)


def _course(folder: Path, x=None, y=None, **arrays) -> Path:
    """A course folder (``nbgrader_config.py``), with ``grading/holdout.npz`` if arrays are given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbgrader_config.py").write_text("c = get_config()\n")
    if x is not None or y is not None or arrays:
        (folder / "grading").mkdir(exist_ok=True)
        given = {k: v for k, v in dict(x=x, y=y, **arrays).items() if v is not None}
        np.savez(folder / holdout.INSTRUCTOR_FILE, **given)
    return folder


def _digits(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, 784)), rng.integers(0, 10, size=n)


# -- where the digits come from ------------------------------------------------------------------

def test_the_default_is_the_reserved_bundled_digits(tmp_path, monkeypatch):
    monkeypatch.chdir(_course(tmp_path / "course"))
    _, (x_reserved, y_reserved) = data_module._bundled_pool_and_reserved()
    x, y = holdout.holdout_inputs(), holdout.holdout_labels()
    assert x.shape == (1000, 784) and x.dtype == np.float32
    np.testing.assert_array_equal(x, x_reserved)
    np.testing.assert_array_equal(y, y_reserved)
    np.testing.assert_array_equal(np.bincount(y), [100] * 10)
    assert "default" in holdout.holdout_source()


def test_outside_any_course_folder_the_default_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a sandboxed kernel's view: no nbgrader_config.py above
    np.testing.assert_array_equal(holdout.holdout_inputs(), data_module._bundled_pool_and_reserved()[1][0])


def test_an_instructor_file_replaces_the_default(tmp_path, monkeypatch):
    x, y = _digits()
    course = _course(tmp_path / "course", x=x, y=y.astype(np.int32))
    (course / "autograded" / "someone").mkdir(parents=True)
    monkeypatch.chdir(course / "autograded" / "someone")  # found from below, as nbgrader's kernels run
    np.testing.assert_array_equal(holdout.holdout_inputs(), x.astype(np.float32))
    assert holdout.holdout_inputs().dtype == np.float32
    np.testing.assert_array_equal(holdout.holdout_labels(), y)
    assert holdout.holdout_labels().dtype == np.int64
    assert holdout.holdout_source() == "the instructor's grading/holdout.npz (30 digits)"
    assert holdout.holdout_fingerprint() == holdout.fingerprint(holdout.holdout_inputs())
    # rewritten in place: read again
    x2, y2 = _digits(12, seed=1)
    np.savez(course / holdout.INSTRUCTOR_FILE, x=x2, y=y2)
    np.testing.assert_array_equal(holdout.holdout_labels(), y2)


def test_the_inputs_variable_comes_first_and_carries_no_labels(tmp_path, monkeypatch):
    x, y = _digits()
    course = _course(tmp_path / "course", x=x, y=y)
    exported = holdout.export_inputs(tmp_path / "inputs.npy", root=course)
    np.testing.assert_array_equal(np.load(exported), x.astype(np.float32))  # one array: the inputs
    kernel = tmp_path / "kernel"
    kernel.mkdir()
    monkeypatch.chdir(kernel)  # cannot see the course
    monkeypatch.setenv(holdout.INPUTS_VARIABLE, str(exported))
    np.testing.assert_array_equal(holdout.holdout_inputs(), x.astype(np.float32))
    assert holdout.fingerprint(holdout.holdout_inputs()) == holdout.holdout_fingerprint(course)
    # the labels never come from the variable: the course's, or (no course in sight) the default's
    np.testing.assert_array_equal(holdout.holdout_labels(course), y)
    assert len(holdout.holdout_labels()) == 1000


@pytest.mark.parametrize("isolate", [True, False], ids=["sandboxed", "unconfined"])
def test_the_engine_hands_a_judged_capstone_kernel_the_inputs_alone(tmp_path, monkeypatch, isolate):
    from regcourse.grading import engine
    from regcourse.grading.model import Limits, SubmissionRef

    x, y = _digits()
    course = _course(tmp_path / "course", x=x, y=y)
    monkeypatch.setenv(holdout.INPUTS_VARIABLE, "/the/caller's/own.npy")  # never the caller's
    job = engine._Job(root=tmp_path / "job", run=tmp_path / "job" / "run", references=tmp_path / "refs.json")
    job.run.mkdir(parents=True)
    spec = engine._spec(course, SubmissionRef("s1", "a6_capstone"), Limits(), job, isolate)
    exported = Path(spec["env"][holdout.INPUTS_VARIABLE])
    assert exported.parent == job.root and not exported.is_relative_to(course)
    loaded = np.load(exported, allow_pickle=False)  # one array, no labels
    np.testing.assert_array_equal(loaded, x.astype(np.float32))
    if isolate:
        assert json.loads(spec["env"]["REGCOURSE_SANDBOX"])["read_only"] == [str(exported)]
    other = engine._spec(course, SubmissionRef("s1", "a2_penalties"), Limits(), job, isolate)
    assert holdout.INPUTS_VARIABLE not in other["env"]  # only assignments whose probes read it


def _save_npy_as_npz(path, **_):
    path.parent.mkdir(exist_ok=True)
    with open(path, "wb") as stream:
        np.save(stream, np.zeros((3, 784)))


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(x=np.zeros((3, 28, 28)), y=np.zeros(3, int)), r"flatten the digits to \(n, 784\)"),
        (dict(x=np.zeros((3, 100)), y=np.zeros(3, int)), r"expected \(n, 784\)"),
        (dict(x=np.zeros((0, 784)), y=np.zeros(0, int)), r"n >= 1"),
        (dict(x=np.full((3, 784), 255, np.uint8), y=np.zeros(3, int)), "divide by 255"),
        (dict(x=np.full((3, 784), 255.0), y=np.zeros(3, int)), r"expected values in \[0, 1\].*divide by 255"),
        (dict(x=np.full((3, 784), np.nan), y=np.zeros(3, int)), "NaN or infinite"),
        (dict(x=np.zeros((3, 784)), y=np.zeros(4, int)), "one label per digit"),
        (dict(x=np.zeros((3, 784)), y=np.zeros(3)), "expected integers 0-9"),
        (dict(x=np.zeros((3, 784)), y=np.array([0, 10, 1])), "labels from 0 to 10, expected 0-9"),
        (dict(x=np.zeros((3, 784))), "no array named y"),
        (dict(x=np.zeros((3, 784)), y=np.array([0, "a", None], dtype=object)), "object arrays are not allowed"),
    ],
    ids=["images", "width", "empty", "uint8", "0-255", "nan", "length", "float-labels", "label-10", "no-y", "object"],
)
def test_a_bad_instructor_file_stops_with_a_clear_error(tmp_path, arrays, message):
    course = _course(tmp_path / "course", **arrays)
    with pytest.raises(holdout.HoldoutError, match=message):
        holdout.holdout_labels(course)


def test_a_file_that_is_no_archive_stops_with_a_clear_error(tmp_path):
    course = _course(tmp_path / "course")
    (course / "grading").mkdir()
    (course / holdout.INSTRUCTOR_FILE).write_text("x,y\n")
    with pytest.raises(holdout.HoldoutError, match=r"not a readable \.npz archive"):
        holdout.holdout_labels(course)
    _save_npy_as_npz(course / holdout.INSTRUCTOR_FILE)
    with pytest.raises(holdout.HoldoutError, match="a single array"):
        holdout.holdout_labels(course)


def test_a_bad_inputs_variable_stops_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(holdout.INPUTS_VARIABLE, str(tmp_path / "missing.npy"))
    with pytest.raises(holdout.HoldoutError, match="REGCOURSE_HOLDOUT_INPUTS=.*no such file"):
        holdout.holdout_inputs()
    np.save(tmp_path / "images.npy", np.zeros((2, 28, 28), np.float32))
    monkeypatch.setenv(holdout.INPUTS_VARIABLE, str(tmp_path / "images.npy"))
    with pytest.raises(holdout.HoldoutError, match="flatten"):
        holdout.holdout_inputs()


# -- a6's probe and judge -----------------------------------------------------------------------------

def _record(probabilities, inputs=None) -> dict:
    rec = judge.Recorder()
    rec.value("model", a6_capstone.KERAS_MODEL)
    rec.value("inputs", holdout.fingerprint(holdout.holdout_inputs() if inputs is None else inputs))
    rec.value("holdout", probabilities)
    return rec.entries


def _one_hot(labels, wrong: int = 0) -> np.ndarray:
    """Probabilities that put the first ``wrong`` digits in the wrong class."""
    predicted = labels.copy()
    predicted[:wrong] = (predicted[:wrong] + 1) % 10
    return np.eye(10, dtype=np.float32)[predicted]


def test_the_judge_computes_the_accuracy_against_the_threshold(tmp_path, monkeypatch):
    monkeypatch.chdir(_course(tmp_path / "course"))
    labels = holdout.holdout_labels()
    assert judge.judge("a6_capstone", CELL, _record(_one_hot(labels)), {}) == []
    assert judge.judge("a6_capstone", CELL, _record(_one_hot(labels, wrong=85)), {}) == []  # 0.915: passes
    assert judge.judge("a6_capstone", CELL, _record(_one_hot(labels, wrong=86)), {}) == [
        "accuracy on the 1,000 hidden digits 0.914 is below 0.915"]
    assert judge.judge("a6_capstone", CELL, _record(_one_hot(labels)[:999]), {}) == [
        "capstone_model.predict on the 1,000 hidden digits: shape (999, 10), expected (1000, 10)"]


def test_the_judge_fails_predictions_on_other_digits(tmp_path, monkeypatch):
    x, y = _digits()
    monkeypatch.chdir(_course(tmp_path / "course", x=x, y=y))
    # a kernel that saw the default digits (the grader exported nothing), with the right answers for them
    record = _record(_one_hot(data_module._bundled_pool_and_reserved()[1][1]),
                     inputs=data_module._bundled_pool_and_reserved()[1][0])
    [failure] = judge.judge("a6_capstone", CELL, record, {})
    assert "scored on other digits" in failure and "grading set-up" in failure
    assert judge.judge("a6_capstone", CELL, _record(_one_hot(y.astype(np.int64)), inputs=x), {}) == []


def test_a_record_without_a_model_fails_every_cell_even_against_the_graders_reference():
    """The reference the grader computes (definitions only) has no model: the judges do not read it."""
    ns = judge.reference_namespace(ROOT / "solutions" / "a6_capstone" / "a6_capstone.ipynb")
    assert "capstone_model" not in ns
    for cell in judge.checks_for("a6_capstone"):
        reference = judge.probe("a6_capstone", cell, ns, reference=True)
        assert judge.judge("a6_capstone", cell, reference, reference) == [a6_capstone.MISSING], cell


def test_the_probe_reads_no_label_and_the_judge_checks_which_digits_were_scored(tmp_path, monkeypatch):
    """An untrained model in a kernel that cannot see the course, fed through REGCOURSE_HOLDOUT_INPUTS."""
    import keras

    x, y = _digits(50)
    course = _course(tmp_path / "course", x=x, y=y)
    kernel = tmp_path / "kernel"
    kernel.mkdir()
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])

    def kernel_record():
        def refuse(*args, **kwargs):
            raise AssertionError("the probe read the holdout's labels")

        with monkeypatch.context() as m:
            m.chdir(kernel)
            for name in ("holdout_labels", "holdout_fingerprint", "_load"):
                m.setattr(holdout, name, refuse)
            return judge.probe("a6_capstone", CELL, {"capstone_model": model})

    monkeypatch.setenv(holdout.INPUTS_VARIABLE, str(holdout.export_inputs(tmp_path / "inputs.npy", root=course)))
    record = kernel_record()
    assert set(record) == {"model", "inputs", "holdout"} and isinstance(record["inputs"], str)
    monkeypatch.chdir(course)
    [failure] = judge.judge("a6_capstone", CELL, record, {})
    assert failure.startswith("accuracy on the 50 hidden digits ") and failure.endswith("is below 0.915")
    # the grader forgot to export: the kernel scores the default digits, and the judge says so
    monkeypatch.delenv(holdout.INPUTS_VARIABLE)
    record = kernel_record()
    [failure] = judge.judge("a6_capstone", CELL, record, {})
    assert "scored on other digits" in failure


def test_no_probe_names_a_label_a_threshold_or_an_accuracy():
    for probe in (a6_capstone.probe_contract, a6_capstone.probe_validation, a6_capstone.probe_holdout):
        source = inspect.getsource(probe)
        for word in ("label", "y_val", "THRESHOLD", "accuracy", "argmax"):
            assert word not in source, (probe.__name__, word)
