"""How the CPU kernels are compiled: Numba, cached on disk, serial unless asked.

Why serial: the cores are shared out by batch slices on Python threads (``_threads``),
each slice's Numba loops and GEMMs on one core, so a kernel that made threads of its
own would only compete with the other slices. Before the slices, parallel Numba
kernels were measured against OpenBLAS's multi-threaded GEMMs and lost: OpenBLAS
keeps its workers spin-waiting for about 0.1 s after every GEMM, so a parallel loop
always shared a core with a spinning thread and ran 3-5x slower than its serial
version (benchmarks/README.md, "Design measurements": openblas-spin shows what the
spinning costs the slices).

``MINIGRAD_CPU_PARALLEL=1`` (read once, at import) compiles the kernels with
``parallel=True`` instead, for machines where that measures faster; they then use
``NUMBA_NUM_THREADS`` threads, as Numba always does.
"""
import os
import types

import numba


def choose_parallel(environ=None):
    """Whether kernels compile with ``parallel=True``: ``MINIGRAD_CPU_PARALLEL`` is 1."""
    environ = os.environ if environ is None else environ
    value = environ.get("MINIGRAD_CPU_PARALLEL", "0").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"MINIGRAD_CPU_PARALLEL={value!r}; use 1 (parallel) or 0 (serial)")


PARALLEL = choose_parallel()


# NumPy's error model: a float division by zero gives inf/nan, as in the reference,
# instead of Python's ZeroDivisionError, whose per-element check also kept LLVM from
# vectorising every loop that divides (the fused Adam step ran several times slower;
# figures in benchmarks/README.md).
# nogil: the convolutions run batch slices on several Python threads (_threads).
_OPTIONS = {"cache": True, "error_model": "numpy", "nogil": True}


def serial_kernel(function):
    """``@njit(cache=True)`` with NumPy's error model, for small loops that never pay
    for threads."""
    return numba.njit(**_OPTIONS)(function)


def cpu_kernel(function):
    """``@njit(cache=True)``, parallel or serial as chosen for this process.

    The two builds get different names because Numba's on-disk cache keys on the
    function's name and signature, not on the ``parallel`` flag: without the
    rename a process of one mode would load the other mode's machine code.
    """
    if PARALLEL:
        return numba.njit(parallel=True, **_OPTIONS)(function)
    serial = types.FunctionType(function.__code__, function.__globals__,
                                function.__name__ + "_serial", function.__defaults__,
                                function.__closure__)
    serial.__qualname__ = function.__qualname__ + "_serial"
    serial.__doc__ = function.__doc__
    serial.__module__ = function.__module__
    return numba.njit(**_OPTIONS)(serial)

