"""Matrix products on the CPU: NumPy's ``matmul``, with large float products split
into blocks of rows (or of columns, when there are more of them) that run on the
kernels' threads, since OpenBLAS itself is held to one thread (see ``_threads``)."""
import numpy as np

from . import _threads

# Below this many multiply-adds a product runs whole on the calling thread: handing a
# block to another thread costs about 50 us, as much as the product itself around 8M
# (benchmarks/README.md, "Design measurements": matmul-split).
PARALLEL_MIN_WORK = 1 << 24


def matmul(a, b):
    """``np.matmul(a, b)``; a float32/float64 product of an (..., M, K) array with a
    (K, N) matrix is computed in row or column blocks on the kernels' threads."""
    if not _splittable(a, b):
        return np.matmul(a, b)
    lead, k = a.shape[:-1], a.shape[-1]
    rows = a.reshape(-1, k)  # a view for the usual contiguous input
    out = np.empty((rows.shape[0], b.shape[1]), np.result_type(a, b))
    m, n = out.shape
    if m >= n:
        blocks = _blocks(m)

        def work(lo, hi):
            np.matmul(rows[lo:hi], b, out=out[lo:hi])
    else:  # few rows (a small batch through a wide layer): split the columns
        blocks = _blocks(n)

        def work(lo, hi):
            np.matmul(rows, b[:, lo:hi], out=out[:, lo:hi])
    _threads.run_slices(work, blocks)
    return out.reshape(*lead, n)


def _splittable(a, b):
    threads = _threads.THREADS
    if threads == 1 or a.ndim < 2 or b.ndim != 2 or a.shape[-1] != b.shape[0]:
        return False
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        return False
    m = a.size // max(a.shape[-1], 1)
    return max(m, b.shape[1]) >= threads and m * a.shape[-1] * b.shape[1] >= PARALLEL_MIN_WORK


def _blocks(length):
    """One (start, stop) block of ``length`` per thread."""
    return _threads.batch_slices(length, 1, length)
