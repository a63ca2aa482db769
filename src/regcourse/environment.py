"""The environment every process of the course that runs TensorFlow starts with.

    python -m regcourse.environment COMMAND [ARG ...]   runs COMMAND with it

The book's regression results, the assignments' reference values and the
capstone's thresholds are exact numbers, so the same code must compute the
same bits on every machine that builds the book or grades. TensorFlow reads
these variables once, when it loads, before any notebook code could set them:
the book's executor, the tests and the course's ``nbgrader_config.py`` (stock
nbgrader, and the kernels ``regcourse grade`` starts) all set them from here.

Why each, measured with TensorFlow 2.21 on two-core x86 machines:

- ``ONEDNN_MAX_CPU_ISA``: even with oneDNN's graph rewrites off, TensorFlow's
  x86 wheels multiply matrices with oneDNN's GEMM, which picks its kernel for
  the processor: AVX-512 where there is one, AVX2 elsewhere. Their sums round
  differently, and training amplifies a last-bit difference: chapter 6's plain
  SGD at learning rate 0.5 reached 0.846 validation accuracy on an AVX-512
  machine and 0.760 on an AVX2 one (CI drew one). Capped at AVX2, which every
  x86 machine of the last ten years has, both compute the AVX2 bits.
- ``TF_NUM_INTRAOP_THREADS``: a product with a short output and a long inner
  dimension (1,000 digits times 784 pixels into 4 units) is split along the
  inner dimension between the threads, so the rounding depends on their
  number, which TensorFlow takes from the core count. Two, the course's
  reference machine, on every machine.
- ``OPENBLAS_NUM_THREADS``: NumPy's and SciPy's OpenBLAS split a long dot
  product between their threads in the same way (two vectors of 2,000,000
  doubles: one thread and two give other bits). Their number comes from the
  core count, or from the shell (``OMP_NUM_THREADS=1`` is common in
  containers, and this variable overrides it): two, as TensorFlow's. OpenBLAS
  runs no more threads than there are cores, so a one-core machine still
  computes its own bits there.
- ``OPENBLAS_CORETYPE``: NumPy's and SciPy's OpenBLAS choose their kernels
  by processor too (SkylakeX on AVX-512, Haswell on AVX2): Haswell on every
  x86 processor with AVX2 (read from Linux's ``/proc/cpuinfo``); elsewhere
  OpenBLAS does not know the name or could not run the kernels.
- ``NPY_DISABLE_CPU_FEATURES``: NumPy picks its kernels by processor as
  well, and its AVX-512 ones round otherwise: the natural logarithm of
  200,000 doubles between 0.5 and 2 has other bits with them than with its
  AVX2 ones (on an Intel Sapphire Rapids). Its AVX-512 targets are turned off,
  so every x86 machine runs the kernels an AVX2 machine runs. Turning off a
  target the processor lacks changes nothing, so this is safe anywhere; the
  counterpart ``NPY_ENABLE_CPU_FEATURES`` is unset (:data:`UNSET`): NumPy
  refuses to start with both.
- ``KERAS_BACKEND`` and ``KERAS_HOME``: Keras takes its backend from the
  shell (Keras 3 users often export ``KERAS_BACKEND=jax``) or from the
  ``keras.json`` in their home, which also sets the default float type,
  epsilon and image layout. The course runs on TensorFlow with Keras'
  defaults whoever runs it: its Keras home is a folder of this package whose
  ``keras.json`` holds exactly those defaults. Any other ``TF_``,
  ``KERAS_`` or ``XLA_`` variable is removed (:data:`OWNED_PREFIXES`): Keras'
  debugging caps ``KERAS_MAX_EPOCHS`` and ``KERAS_MAX_STEPS_PER_EPOCH`` would
  cut every training short, ``TF_XLA_FLAGS`` could compile it with XLA.
- ``TF_ENABLE_ONEDNN_OPTS``: no oneDNN graph rewrites, whose round-off
  depends on the processor model.
- ``TF_CPP_MIN_LOG_LEVEL``: no C++ start-up lines on stderr ("failed call to
  cuInit" on a machine without a GPU): nbgrader scores any stderr in a test
  cell as a failure.
- ``PYTHONHASHSEED``: set iteration order, the same in every process.

Values are forced, not defaulted: a caller's ``TF_NUM_INTRAOP_THREADS=8``
must not change a result or a grade.

What no variable reaches: Eigen, under TensorFlow's CPU kernels, cuts a long
sum (784 pixels into a unit) into slices sized to the processor's first-level
data cache, which it reads from the processor itself. A processor with 48 KiB
of it (Intel's Ice Lake and later) sums in other slices than one with 32 KiB
(most others), and three chapters print other digits (chapter 6's batch
normalization with batches of 4: 0.878 validation accuracy, against 0.866).
:func:`numerics_class` names what decides the bits, so that results reviewed
on one kind of processor are compared with runs on the same kind.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386", "x86")


def cpu_flags() -> frozenset[str]:
    """The processor's feature flags, as Linux reports them (elsewhere: none known)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            line = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


def _has_avx2() -> bool:
    return "avx2" in cpu_flags()


def l1_data_cache_kib() -> int | None:
    """The first-level data cache per core in KiB, as the processor reports it (``None``: not known).

    glibc reads it with CPUID, as Eigen does; Linux's sysfs is the fallback."""
    try:
        size = os.sysconf("SC_LEVEL1_DCACHE_SIZE")
    except (ValueError, OSError):
        size = 0
    if size and size > 0:
        return size // 1024
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "1" and (index / "type").read_text().strip() == "Data":
                text = (index / "size").read_text().strip().upper()
                return int(text[:-1]) if text.endswith("K") else int(text) // 1024
        except (OSError, ValueError):
            continue
    return None


def numerics_class() -> str:
    """What decides the bits TensorFlow computes here, beyond :data:`ENVIRONMENT`, as a name.

    The architecture, the vector instructions oneDNN may use (AVX2 at most, by
    the cap) and the L1 data cache that Eigen sizes its slices of a sum by: for
    example ``x86_64-avx2-l1d-32k``. Two machines with the same name computed
    the same bits wherever we compared them; results reviewed on one name are
    compared with runs on that name only.
    """
    machine = platform.machine().lower() or "unknown"
    if _X86:
        machine += "-avx2" if _has_avx2() else "-below-avx2"
    l1d = l1_data_cache_kib()
    return f"{machine}-l1d-{l1d}k" if l1d else f"{machine}-l1d-unknown"


#: Keras' home for every process of the course: its ``keras.json`` holds Keras' defaults.
KERAS_HOME = Path(__file__).resolve().parent / "keras_home"

#: NumPy's dispatch targets above AVX2 (NumPy 2.4's names): AVX-512 in three generations.
NUMPY_ABOVE_AVX2 = "X86_V4 AVX512_ICL AVX512_SPR"

#: Variable -> value, for every process that may load TensorFlow. OpenBLAS is told its kernels
#: only where they can run: Haswell's on a processor without AVX2 would stop at the first
#: product with an illegal instruction. oneDNN's cap is safe anywhere: below it, oneDNN takes
#: the best the processor has.
ENVIRONMENT: dict[str, str] = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_NUM_INTRAOP_THREADS": "2",
    "PYTHONHASHSEED": "0",
    **({"ONEDNN_MAX_CPU_ISA": "AVX2"} if _X86 else {}),
    "OPENBLAS_NUM_THREADS": "2",
    **({"OPENBLAS_CORETYPE": "Haswell"} if _X86 and _has_avx2() else {}),
    **({"NPY_DISABLE_CPU_FEATURES": NUMPY_ABOVE_AVX2} if _X86 else {}),
    "KERAS_BACKEND": "tensorflow",
    "KERAS_HOME": str(KERAS_HOME),
}
#: Families of variables of which a process keeps only those set here: TensorFlow, Keras and XLA read dozens
#: (``TF_XLA_FLAGS`` can switch the XLA compiler on, ``KERAS_MAX_EPOCHS`` caps every training), and none of a
#: caller's may change a result.
OWNED_PREFIXES = ("TF_", "KERAS_", "XLA_")
#: Other variables removed: a shell's Matplotlib backend (``MPLBACKEND=Agg``, common on servers, keeps every
#: figure out of an executed notebook: its kernel no longer draws inline) and a caller's choice of NumPy's
#: kernels (NumPy will not start with it beside ``NPY_DISABLE_CPU_FEATURES``).
UNSET: tuple[str, ...] = ("MPLBACKEND", *(("NPY_ENABLE_CPU_FEATURES",) if _X86 else ()))


def removed(environ) -> list[str]:
    """The variables of ``environ`` that :func:`apply` removes."""
    return sorted(name for name in environ
                  if name in UNSET or name.startswith(OWNED_PREFIXES) and name not in ENVIRONMENT)


def apply(environ=None) -> None:
    """Set :data:`ENVIRONMENT` in ``environ`` (this process's environment by default), overriding, and remove
    what :func:`removed` names."""
    environ = os.environ if environ is None else environ
    for name in removed(environ):
        del environ[name]
    environ.update(ENVIRONMENT)


def main(argv: list[str] | None = None) -> int:
    """Run a command with the course's environment (``make book`` runs Jupyter Book so)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__.splitlines()[0])
        for name, value in ENVIRONMENT.items():
            print(f"{name}={value}")
        print(f"# unset: {', '.join(UNSET + tuple(p + '* other than these' for p in OWNED_PREFIXES))}")
        print(f"# this processor's numerics class: {numerics_class()}")
        return 0
    apply()
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        print(f"regcourse.environment: cannot run {argv[0]!r}: {error.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
