"""Warm kernel starts (issue 13): a kernel forked from the fork server is the kernel a cold start gives.

Each test grades submissions of the corpus' ``mini`` assignment with the
engine, warm and cold (``REGCOURSE_COLD_KERNELS``). The extra cells of the
``PROBE`` submission print what a kernel computes and what it sees: a seeded
Keras model's predictions and gradients (bit for bit, as hexadecimal floats),
Keras' configuration and home, the kernel's path, folder and environment, and
numbers drawn without a seed, which must differ between any two kernels. The
instructor notebooks themselves are compared warm against cold in
``test_assignments`` (their outputs, graded by stock nbgrader and by the
engine). The hostile corpus gives the same outcomes warm and cold in
``test_grading_e2e``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from grading_corpus import ASSIGNMENT, NOTEBOOK, student_notebook
from regcourse.environment import ENVIRONMENT
from regcourse.grading import engine, forkserver, report, warm_kernel
from regcourse.grading.model import Limits, Status, SubmissionRef

LIMITS = Limits(cell_timeout_s=60, notebook_timeout_s=180, memory_bytes=3 * 1024**3)

SEEDED = '''import json, os, random, resource, signal, sys, tempfile, threading
import keras
import tensorflow as tf
from keras.src.backend import config as keras_config

keras.utils.set_random_seed(3)
x = np.random.default_rng(4).normal(size=(64, 5)).astype("float32")
model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.3),
                          keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
history = model.fit(x, x[:, :1] * 2.0, epochs=3, batch_size=16, verbose=0)
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(model(x, training=True) ** 2)
gradients = tape.gradient(loss, model.trainable_variables)
print(json.dumps({
    "losses": [float(v).hex() for v in history.history["loss"]],
    "predictions": [float(v).hex() for v in model.predict(x, verbose=0).ravel()],
    "gradients": [float(v).hex() for g in gradients for v in np.ravel(g)],
    "seeded_numpy": float(np.random.random()).hex(),
}))'''

SEES = '''print(json.dumps({
    "keras": [keras_config.floatx(), keras_config.epsilon(), keras_config.backend(),
              keras_config.image_data_format(), keras_config.keras_home(),
              os.path.exists(os.path.join(keras_config.keras_home(), "keras.json"))],
    "path": sys.path, "cwd": os.getcwd(), "tmp": tempfile.gettempdir(),
    "env": {k: v for k, v in sorted(os.environ.items()) if k not in ("JPY_PARENT_PID",)},
    "session_leader": os.getsid(0) in (os.getpid(), os.getppid()),
    "hash": hash("regularization"),
    "signals": {s: str(signal.getsignal(s)) for s in range(1, signal.NSIG) if signal.getsignal(s) is not None},
    "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
    "umask": [line for line in open("/proc/self/status") if line.startswith("Umask")],
    "limits": {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")},
    "threads": threading.active_count(),
}))'''

UNSEEDED = '''np.random.seed(None); random.seed(None)
print(json.dumps({"numpy": float(np.random.random()).hex(), "python": random.random(),
                  "legacy_numpy_at_start": _legacy_numpy_at_start}))'''

#: Before anything seeds it: NumPy's legacy generator as the kernel got it (fresh entropy per kernel).
LEGACY_AT_START = "_legacy_numpy_at_start = float(np.random.random()).hex()"


def _probe(course: Path, student: str) -> SubmissionRef:
    nb = student_notebook(course)
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    extra = [nbformat.v4.new_code_cell(src) for src in (SEEDED, SEES, UNSEEDED)]
    nb.cells[first_code + 1:first_code + 1] = [nbformat.v4.new_code_cell(LEGACY_AT_START)]
    nb.cells.extend(extra)
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / NOTEBOOK)
    return SubmissionRef(student, ASSIGNMENT)


def _printed(course: Path, student: str) -> list[dict]:
    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / NOTEBOOK, 4)
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout" and out["text"].startswith("{"):
                found.append(json.loads(out["text"]))
    return found


@pytest.fixture(scope="module")
def graded(mini_course_template, tmp_path_factory):
    """Two probes graded warm (two workers: two forks at once), then one cold."""
    course = shutil.copytree(mini_course_template, tmp_path_factory.mktemp("warm") / "course")
    refs = [_probe(course, student) for student in ("warm-a", "warm-b", "cold")]
    warm = engine.grade_many(course, refs[:2], LIMITS, workers=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warm_kernel.COLD_VARIABLE, "1")
        cold = engine.grade_many(course, refs[2:], LIMITS, workers=1)
    return course, {o.student: o for o in warm + cold}


def test_warm_kernels_start_warm_and_grade_like_cold_ones(graded):
    _, outcomes = graded
    for student, outcome in outcomes.items():
        assert (outcome.status, outcome.score, outcome.flags) == (Status.GRADED, 3.0, []), (student, outcome)
    assert outcomes["warm-a"].kernel == outcomes["warm-b"].kernel == {"warm": True}
    assert outcomes["cold"].kernel == {}  # cold by choice: no provisioner, nothing to report
    notes = report.kernel_start_notes(list(outcomes.values()))
    assert notes == ["kernels started warm (forked after TensorFlow's import): 2 of 2"]


def test_a_forked_kernel_computes_bit_for_bit_what_a_cold_one_does(graded):
    course, _ = graded
    warm, cold = _printed(course, "warm-a"), _printed(course, "cold")
    assert len(warm) == len(cold) == 3
    assert warm[0] == cold[0]  # seeded training, predictions, gradients: the same bits
    assert warm[0] == _printed(course, "warm-b")[0]


def test_a_forked_kernel_sees_what_a_cold_one_sees(graded):
    course, _ = graded
    warm, cold = _printed(course, "warm-a")[1], _printed(course, "cold")[1]
    assert warm["keras"] == cold["keras"]  # Keras' settings, its home and whether a keras.json is there
    assert warm["keras"][4:] == [ENVIRONMENT["KERAS_HOME"], True]  # the course's home, whose keras.json both read
    for key in ("path", "tmp", "session_leader", "hash", "signals", "blocked", "umask", "limits", "threads"):
        assert warm[key] == cold[key], key
    assert warm["cwd"].endswith(f"/{ASSIGNMENT}") and cold["cwd"].endswith(f"/{ASSIGNMENT}")
    differ = sorted(k for k in set(warm["env"]) | set(cold["env"]) if warm["env"].get(k) != cold["env"].get(k))
    assert differ == [], {k: (warm["env"].get(k), cold["env"].get(k)) for k in differ}


def test_every_kernel_draws_fresh_random_numbers(graded):
    """Unseeded draws differ between kernels: P(two 53-bit draws collide) = 2**-53 per pair."""
    course, _ = graded
    draws = [_printed(course, s)[2] for s in ("warm-a", "warm-b", "cold")]
    for key in ("numpy", "python", "legacy_numpy_at_start"):
        values = [d[key] for d in draws]
        assert len(set(values)) == 3, (key, values)


def test_a_warm_start_that_cannot_be_had_falls_back_to_cold_with_the_reason(mini_course, tmp_path, monkeypatch):
    """The fork server's imports fail (a broken ``keras`` first on the path): every kernel starts cold."""
    broken = tmp_path / "broken"
    (broken / "keras").mkdir(parents=True)
    (broken / "keras" / "__init__.py").write_text("raise ImportError('this keras is broken on purpose')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken))
    folder = mini_course / "submitted" / "fallback" / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(student_notebook(mini_course), folder / NOTEBOOK)
    [outcome] = engine.grade_many(mini_course, [SubmissionRef("fallback", ASSIGNMENT)], LIMITS, workers=1)
    assert (outcome.status, outcome.score) == (Status.GRADED, 3.0), outcome
    assert outcome.kernel["warm"] is False
    assert "could not import" in outcome.kernel["reason"] and "broken on purpose" in outcome.kernel["reason"]
    [_, cold] = report.kernel_start_notes([outcome])
    assert cold.startswith("kernels started cold: 1: the fork server could not import")


def test_a_submitted_module_named_like_a_preloaded_one_gets_a_cold_kernel(mini_course):
    """In a cold kernel a submitted keras.py is what `import keras` finds: a warm kernel would ignore it."""
    folder = mini_course / "submitted" / "shadow" / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(student_notebook(mini_course), folder / NOTEBOOK)
    (folder / "keras.py").write_text("SHADOWED = True\n")
    [outcome] = engine.grade_many(mini_course, [SubmissionRef("shadow", ASSIGNMENT)], LIMITS, workers=1)
    assert (outcome.status, outcome.score) == (Status.GRADED, 3.0), outcome
    assert outcome.kernel["warm"] is False and "keras" in outcome.kernel["reason"], outcome.kernel
    assert any("keras.py" in flag for flag in outcome.flags), outcome.flags


def test_a_seed_refuses_a_kernel_whose_import_environment_differs(monkeypatch):
    monkeypatch.setitem(warm_kernel._server, "environment", {"TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONHASHSEED": "0"})
    same = {"TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONHASHSEED": "0", "HOME": "/elsewhere", "KERAS_HOME": "/k"}
    assert warm_kernel.mismatch(same) is None
    assert "TF_ENABLE_ONEDNN_OPTS" in warm_kernel.mismatch({**same, "TF_ENABLE_ONEDNN_OPTS": "1"})
    assert "OMP_NUM_THREADS" in warm_kernel.mismatch({**same, "OMP_NUM_THREADS": "1"})
    monkeypatch.setitem(warm_kernel._server, "environment", {"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert "hash seed" in warm_kernel.mismatch({"TF_ENABLE_ONEDNN_OPTS": "0"})


def test_a_fork_server_leaves_no_folder_behind_when_closed():
    """An idle server is killed at close (no exit handler of its own runs): its client removes its folder."""
    server = forkserver.ForkServer()
    folder = Path(server.folder)
    assert (folder / "keras").is_dir()  # Keras' home while the server imported it, not the grader's
    server.close()
    assert not server.alive() and not folder.exists()


def test_a_fork_server_whose_client_is_gone_removes_its_folder(monkeypatch):
    monkeypatch.setenv(warm_kernel.COLD_VARIABLE, "1")  # no imports needed to see the server leave
    server = forkserver.ForkServer()
    folder = Path(server.folder)
    server._proc.stdin.close()  # what the server sees when its client dies
    server._proc.wait(timeout=60)
    assert not folder.exists()
