"""The CPU kernels' threads: minigrad spreads work over the cores itself, one Python
thread per core, each running whole slices of a batch (a convolution's transform or
im2col, its GEMMs, the back-transform; the row blocks of a large matrix product),
with OpenBLAS held to one thread.

Why: after every multi-threaded GEMM, OpenBLAS keeps its worker threads spin-waiting
for about 0.1 s (its THREAD_TIMEOUT, fixed when the library loads). A training step
calls a GEMM every few milliseconds, so those workers never slept and took the core
that a slice thread needed (benchmarks/README.md: "Design measurements",
openblas-spin, and the exercise step before and after). So while these kernels are
loaded, OpenBLAS runs on one thread and the parallelism is the slices': each core
does its own slices end to end and nothing spins. The Numba kernels release the GIL
(``nogil``) and so does ``np.matmul``.

``MINIGRAD_NUM_THREADS`` (read once, at import): threads for the slices (default: the
cores this process may use); 1 runs everything on the calling thread and leaves
OpenBLAS's thread count as it found it. ``set_num_threads`` changes it later. Only
OpenBLAS's thread count can be set here (found among the loaded libraries); with
another BLAS, or parallel Numba kernels (``MINIGRAD_CPU_PARALLEL=1``), the slices
always run on the calling thread.
"""
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
    """Threads for batch slices: ``MINIGRAD_NUM_THREADS`` or every usable core."""
    environ = os.environ if environ is None else environ
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    value = environ.get("MINIGRAD_NUM_THREADS", "").strip()
    if not value:
        return cores
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"MINIGRAD_NUM_THREADS={value!r}; use a positive integer")
    return int(value)


_BLAS = _find_openblas()
THREADS = 1
_blas_threads_found = None  # OpenBLAS's own count, given back when THREADS returns to 1
_executors = {}  # worker count -> its pool (made at first use)
_lock = threading.Lock()  # one sliced run at a time (a nested one runs serially)


def set_num_threads(threads):
    """Run the kernels' slices on ``threads`` threads; above 1, OpenBLAS is held to one
    thread (see the module's docstring), at 1 it gets back the count it had."""
    global THREADS, _blas_threads_found
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"set_num_threads: threads must be a positive integer, got {threads!r}")
    if PARALLEL or _BLAS is None:
        threads = 1
    if _BLAS is not None:
        get, put = _BLAS
        if threads > 1 and _blas_threads_found is None:
            _blas_threads_found = get()
            put(1)
        elif threads == 1 and _blas_threads_found is not None:
            put(_blas_threads_found)
            _blas_threads_found = None
    THREADS = threads


def get_num_threads():
    """Threads the kernels' slices run on."""
    return THREADS


set_num_threads(choose_threads())


def batch_slices(n, bytes_per_image, chunk_bytes):
    """(start, stop) slices of a batch of n images, each with at most about
    ``chunk_bytes`` of per-image data (at least one image; none for an empty batch),
    and at least one per thread where the batch has the images for it."""
    step = max(1, chunk_bytes // max(bytes_per_image, 1))
    step = min(step, -(-n // THREADS)) if n else step
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


def run_slices(work, slices):
    """Call ``work(lo, hi)`` for every (lo, hi) in ``slices``, on all threads at once
    when there are at least as many slices as threads (calls must touch disjoint
    data; scratch arrays from the pool are never shared, see ``_buffers``), else on
    the calling thread (one slice is all a one-image batch has)."""
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
