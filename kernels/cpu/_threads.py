"""Batch slices of a convolution on all cores: one Python thread per core, each
running whole slices (transform or im2col, its GEMMs, the back-transform) with
OpenBLAS held to one thread meanwhile.

Why (measured on the 2-core development machine, see benchmarks/README.md): with
OpenBLAS's own threads the GEMMs use both cores but every Numba loop between them
runs on one (parallel Numba loops lose to OpenBLAS's spinning threads, see
``_jit``); the Winograd transforms are half of a convolution's work, so one core
idled for half of it. Here each core does its own slices end to end and nothing
spins. The Numba kernels release the GIL (``nogil``) and so does ``np.matmul``.

``MINIGRAD_CONV_THREADS``: threads for this (default: the cores this process may
use); 1 runs the slices on the calling thread with OpenBLAS's threads, as before.
Only OpenBLAS's thread count can be set here (found among the loaded libraries);
with another BLAS, or parallel Numba kernels (``MINIGRAD_CPU_PARALLEL=1``), the
slices always run on the calling thread.
"""
import contextlib
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy  # noqa: F401  (loads OpenBLAS, which _find_openblas looks for)

from ._jit import PARALLEL


def _find_openblas():
    """(get, set) of the loaded OpenBLAS's global thread count, or None."""
    try:
        with open("/proc/self/maps") as maps:
            fields = [line.split() for line in maps]
    except OSError:
        return None
    paths = sorted({f[-1] for f in fields if len(f) >= 6
                    and "openblas" in os.path.basename(f[-1]).lower()
                    and ".so" in os.path.basename(f[-1])})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", "_64", ""):
            for prefix in ("scipy_openblas", "openblas"):
                try:
                    get = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                    put = getattr(lib, f"{prefix}_set_num_threads{suffix}")
                except AttributeError:
                    continue
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                return get, put
    return None


def choose_threads(environ=None, cores=None):
    """Threads for batch slices: ``MINIGRAD_CONV_THREADS`` or every usable core."""
    environ = os.environ if environ is None else environ
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    value = environ.get("MINIGRAD_CONV_THREADS", "").strip()
    if not value:
        return cores
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"MINIGRAD_CONV_THREADS={value!r}; use a positive integer")
    return int(value)


_BLAS = _find_openblas()
THREADS = 1 if PARALLEL or _BLAS is None else choose_threads()
_executors = {}  # worker count -> its pool (made at first use)
_lock = threading.Lock()  # one sliced run at a time sets OpenBLAS's thread count


@contextlib.contextmanager
def _one_blas_thread():
    if _BLAS is None:  # THREADS set by hand (tests) without OpenBLAS: nothing to hold
        yield
        return
    get, put = _BLAS
    before = get()
    put(1)
    try:
        yield
    finally:
        put(before)


def batch_slices(n, bytes_per_image, chunk_bytes):
    """(start, stop) slices of a batch of n images, each with about ``chunk_bytes`` of
    per-image data (at least one image; none for an empty batch)."""
    step = max(1, chunk_bytes // max(bytes_per_image, 1))
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


def run_slices(work, slices):
    """Call ``work(lo, hi)`` for every (lo, hi) in ``slices``, on all threads at once
    when there are at least as many slices as threads (calls must touch disjoint
    data; scratch arrays from the pool are never shared, see ``_buffers``), else on
    the calling thread, OpenBLAS multi-threaded: one slice is all a small batch has."""
    threads = THREADS
    if threads == 1 or len(slices) < threads or not _lock.acquire(blocking=False):
        for lo, hi in slices:
            work(lo, hi)
        return

    pending = iter(slices)  # shared: each thread takes the next slice when it is free

    def share(_):
        for lo, hi in pending:  # next() on a list iterator is atomic under the GIL
            work(lo, hi)
    try:
        executor = _executors.get(threads)
        if executor is None:
            executor = _executors[threads] = ThreadPoolExecutor(threads - 1)
        with _one_blas_thread():
            futures = [executor.submit(share, k) for k in range(1, threads)]
            error = None
            try:
                share(0)
            except BaseException as exc:  # wait for the others before raising
                error = exc
            for future in futures:
                exc = future.exception()
                error = error or exc
            if error is not None:
                raise error
    finally:
        _lock.release()
