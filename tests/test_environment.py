"""The course's environment (regcourse.environment) reaches TensorFlow, and makes its bits as machine-independent
as variables can; the numerics class names the rest."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from regcourse.environment import ENVIRONMENT, UNSET, apply, cpu_flags, l1_data_cache_kib, main, numerics_class, removed

#: A product that TensorFlow splits along its inner dimension (output 1,000 x 4, inner 784), once as
#: the course runs it, once with the processor's widest GEMM kernel and a different thread count.
PRODUCT = """
import hashlib, numpy as np, tensorflow as tf
a = np.random.default_rng(0).standard_normal((1000, 784)).astype(np.float32)
b = np.random.default_rng(1).standard_normal((784, 4)).astype(np.float32)
print(hashlib.sha256(tf.matmul(a, b).numpy().tobytes()).hexdigest())
"""


#: NumPy's own kernels: natural logarithms of doubles near 1, which its AVX-512 kernel rounds otherwise.
NUMPY_LOG = """
import hashlib, numpy as np
x = np.random.default_rng(0).uniform(0.5, 2.0, 200_000)
print(hashlib.sha256(np.log(x).tobytes()).hexdigest())
"""
#: A dot product OpenBLAS splits between its threads.
NUMPY_DOT = """
import hashlib, numpy as np
a = np.random.default_rng(0).standard_normal(2_000_000)
print(hashlib.sha256(np.dot(a, a).tobytes()).hexdigest())
"""
#: The NumPy dispatch targets this process runs.
NUMPY_TARGETS = """
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
print(" ".join(t for t in __cpu_dispatch__ if __cpu_features__.get(t)))
"""


def _product_digest(cores=None, script=PRODUCT, **overrides) -> str:
    """The product's digest (or what ``script`` prints) in a fresh process with the tests' environment changed
    by ``overrides`` (None: unset) and, with ``cores``, allowed to run on only that many cores (which
    TensorFlow counts)."""
    env = {**os.environ, **overrides}
    env = {k: v for k, v in env.items() if v is not None}
    allowed = sorted(os.sched_getaffinity(0))[:cores] if cores else None
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                          preexec_fn=(lambda: os.sched_setaffinity(0, allowed)) if allowed else None)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def course_digest():
    return _product_digest()


def test_apply_overrides_what_the_caller_set():
    env = {"TF_NUM_INTRAOP_THREADS": "8", "TF_CPP_MIN_LOG_LEVEL": "0", "HOME": "/h",
           "TF_XLA_FLAGS": "--tf_xla_auto_jit=2", "KERAS_MAX_EPOCHS": "1", "XLA_FLAGS": "--xla_cpu_enable_fast_math",
           **{name: "SSE2" for name in UNSET}}
    apply(env)
    assert env == {**ENVIRONMENT, "HOME": "/h"}


def test_the_tests_run_with_it():
    assert {name: os.environ.get(name) for name in ENVIRONMENT} == ENVIRONMENT
    assert removed(os.environ) == []


def test_the_command_form_runs_the_command_with_it():
    shown = subprocess.run([sys.executable, "-m", "regcourse.environment", sys.executable, "-c",
                            "import os, json; print(json.dumps(dict(os.environ)))"],
                           env={"PATH": os.environ["PATH"], "TF_NUM_INTRAOP_THREADS": "8",
                                "TF_XLA_FLAGS": "--tf_xla_auto_jit=2", **{name: "SSE2" for name in UNSET},
                                "MPLBACKEND": "Agg"},
                           capture_output=True, text=True, check=True)
    seen = json.loads(shown.stdout)
    assert {name: seen.get(name) for name in ENVIRONMENT} == ENVIRONMENT
    assert removed(seen) == []


def test_an_unknown_command_is_a_clear_error(capsys):
    assert main(["no-such-command-anywhere"]) == 127
    assert "cannot run 'no-such-command-anywhere'" in capsys.readouterr().err


def test_without_a_command_it_lists_the_variables(capsys):
    assert main([]) == 0
    assert "TF_NUM_INTRAOP_THREADS=2" in capsys.readouterr().out


def _flags_line() -> list[str]:
    """The processor's flags, read here independently of regcourse.environment."""
    try:
        return next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    except OSError:
        return []


def _has_avx512() -> bool:
    return "avx512f" in _flags_line()


def test_keras_runs_on_tensorflow_with_its_defaults_whatever_the_callers_keras_settings(tmp_path):
    """A shell that names another backend and caps training, and a home whose keras.json changes every default."""
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    (home / ".keras" / "keras.json").write_text(json.dumps(
        {"floatx": "float64", "epsilon": 0.1, "backend": "jax", "image_data_format": "channels_first"}))
    shown = subprocess.run(
        [sys.executable, "-m", "regcourse.environment", sys.executable, "-c",
         "import json, keras; from keras.src.backend import config; print(json.dumps([keras.backend.backend(), "
         "keras.config.floatx(), keras.config.epsilon(), keras.config.image_data_format(), config.max_epochs(), "
         "config.max_steps_per_epoch()]))"],
        env={"PATH": os.environ["PATH"], "HOME": str(home), "KERAS_BACKEND": "jax", "KERAS_MAX_EPOCHS": "1",
             "KERAS_MAX_STEPS_PER_EPOCH": "1"},
        capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout) == ["tensorflow", "float32", 1e-07, "channels_last", None, None]


def test_cpu_flags_are_whole_flags():
    """``avx2`` is a flag only where the processor reports it, not inside ``avx512_...`` or ``vavx2x``."""
    assert cpu_flags() == frozenset(_flags_line()[2:])  # "flags", ":" before them


def test_the_numerics_class_names_the_instructions_and_the_cache_that_slices_sums():
    name = numerics_class()
    assert name.startswith(platform.machine().lower() + "-")
    l1d = l1_data_cache_kib()
    assert name.endswith(f"-l1d-{l1d}k" if l1d else "-l1d-unknown")
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert ("-avx2-" in name) == ("avx2" in _flags_line())


@pytest.mark.skipif(not os.path.exists("/sys/devices/system/cpu/cpu0/cache/index0/size"), reason="Linux's sysfs cache list")
def test_the_l1_data_cache_is_the_size_linux_lists():
    from pathlib import Path

    caches = Path("/sys/devices/system/cpu/cpu0/cache")
    sizes = [(c / "size").read_text().strip() for c in caches.glob("index*")
             if (c / "level").read_text().strip() == "1" and (c / "type").read_text().strip() == "Data"]
    assert sizes == [f"{l1_data_cache_kib()}K"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to take one away")
def test_the_same_bits_on_fewer_cores(course_digest):
    """TensorFlow sizes its thread pool by the cores it may use; pinned, one core computes the same bits,
    and unpinned it does not (so the pin is what keeps them equal)."""
    course = course_digest
    assert _product_digest(cores=1) == course
    assert _product_digest(cores=1, TF_NUM_INTRAOP_THREADS=None) != course


@pytest.mark.skipif(not _has_avx512(), reason="only a processor with AVX-512 computes other bits uncapped")
def test_an_avx512_processor_computes_the_avx2_bits(course_digest):
    """Uncapped, this processor's AVX-512 GEMM rounds otherwise than the AVX2 one every x86 machine has
    (CI drew an AVX2 machine once and the book's numbers changed); capped, it computes the AVX2 bits."""
    assert ENVIRONMENT["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert _product_digest(ONEDNN_MAX_CPU_ISA=None) != course_digest


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS runs one thread on one core whatever it is told")
def test_numpys_blas_computes_the_same_bits_whatever_thread_count_the_caller_sets():
    course = _product_digest(script=NUMPY_DOT)
    assert _product_digest(script=NUMPY_DOT, OPENBLAS_NUM_THREADS=None, OMP_NUM_THREADS="1") != course  # it matters
    shell = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    forced = subprocess.run([sys.executable, "-m", "regcourse.environment", sys.executable, "-c", NUMPY_DOT],
                            env=shell, capture_output=True, text=True, check=True)
    assert forced.stdout.strip() == course


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="NumPy's x86 dispatch targets")
def test_numpy_runs_no_kernel_above_avx2():
    assert set(_product_digest(script=NUMPY_TARGETS).split()) <= {"X86_V3"}


@pytest.mark.skipif(not _has_avx512(), reason="only a processor with AVX-512 computes other bits uncapped")
def test_an_avx512_processor_computes_numpys_avx2_bits():
    """Uncapped, NumPy takes its AVX-512 kernels here, which round otherwise than the AVX2 ones."""
    assert "X86_V4" in _product_digest(script=NUMPY_TARGETS, NPY_DISABLE_CPU_FEATURES=None).split()
    assert _product_digest(script=NUMPY_LOG, NPY_DISABLE_CPU_FEATURES=None) != _product_digest(script=NUMPY_LOG)


def test_openblas_is_told_haswell_only_where_avx2_runs():
    """Haswell's kernels on a processor without AVX2 would stop at an illegal instruction."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert ("OPENBLAS_CORETYPE" in ENVIRONMENT) == (x86 and "avx2" in _flags_line())
