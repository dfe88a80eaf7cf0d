"""The micro-measurements behind design choices that comments in kernels/ point to.

Each measurement times two ways of doing one thing, the one the code takes and the
one it avoids, on the shapes the comment talks about; see "Design measurements" in
benchmarks/README.md for what each one decided. CPU only (NumPy and Numba)::

    python benchmarks/design_measurements.py              # all of them
    python benchmarks/design_measurements.py relu tanh-exp --repeat 21 --json out.json

Times are per call: the median and the fastest of ``--repeat`` calls after one
warm-up call (which also compiles the Numba loops).
"""
import argparse
import contextlib
import math
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model, emit_json  # noqa: E402  (puts the checkout on sys.path)

import numpy as np  # noqa: E402

# The exercise CNN's first activation: batch 32, 32 channels, 80x80, float32 (26 MB).
ACTIVATION_SHAPE = (32, 32, 80, 80)


def _times(call, repeat):
    call()  # warm-up: compiles Numba, faults in reused buffers
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {"median_ms": round(1e3 * statistics.median(times), 4),
            "min_ms": round(1e3 * min(times), 4)}


def relu(repeat):
    """ReLU forward and backward on the 26 MB activation: NumPy's fresh outputs (and a
    boolean temporary backward) against the CPU kernels' one pass into a reused buffer."""
    from kernels.cpu.activation import backward_into, forward_into
    rng = np.random.default_rng(0)
    x = rng.standard_normal(ACTIVATION_SHAPE, dtype=np.float32).reshape(-1)
    g = rng.standard_normal(x.shape, dtype=np.float32)
    y, out = np.maximum(x, 0), np.empty_like(x)
    return {
        "numpy forward maximum(x, 0)": _times(lambda: np.maximum(x, 0), repeat),
        "kernel forward_into (reused out)": _times(lambda: forward_into("relu", x, out), repeat),
        "numpy backward g * (y > 0)": _times(lambda: g * (y > 0), repeat),
        "kernel backward_into (reused out)": _times(
            lambda: backward_into("relu", g, y, out), repeat),
    }


def relu_in_place(repeat):
    """The Numba ReLU loop on a cache-resident slice (1 MiB), out of place against in
    place: with one array as input and output LLVM's overlap check picks the scalar loop."""
    from kernels.cpu.activation import _relu
    x = np.random.default_rng(1).standard_normal(1 << 18, dtype=np.float32)
    out = np.empty_like(x)
    work = x.copy()
    return {"separate out": _times(lambda: _relu(x, out), repeat * 20),
            "in place (x is out)": _times(lambda: _relu(work, work), repeat * 20)}


def tanh_exp(repeat):
    """tanh and exp on the 26 MB activation: a Numba loop (scalar libm calls) against
    NumPy's SIMD ufuncs, both into a reused output."""
    from numba import njit

    @njit(cache=False)
    def numba_tanh(x, out):
        for i in range(x.size):
            out[i] = np.tanh(x[i])

    @njit(cache=False)
    def numba_exp(x, out):
        for i in range(x.size):
            out[i] = np.exp(x[i])

    x = np.random.default_rng(2).standard_normal(ACTIVATION_SHAPE, dtype=np.float32)
    x = x.reshape(-1) * np.float32(0.5)
    out = np.empty_like(x)
    return {"numba tanh loop": _times(lambda: numba_tanh(x, out), repeat),
            "numpy tanh(out=)": _times(lambda: np.tanh(x, out=out), repeat),
            "numba exp loop": _times(lambda: numba_exp(x, out), repeat),
            "numpy exp(out=)": _times(lambda: np.exp(x, out=out), repeat)}


def gemm_fresh_output(repeat):
    """A batched GEMM of conv2's size (32 images, 64 x 288 @ 288 x 1600: a 13 MB
    output) into fresh memory against a reused output (conv_general's _pooled)."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((64, 288), dtype=np.float32)
    cols = rng.standard_normal((32, 288, 1600), dtype=np.float32)
    out = np.empty((32, 64, 1600), np.float32)
    return {"fresh output": _times(lambda: np.matmul(w, cols), repeat),
            "reused output (out=)": _times(lambda: np.matmul(w, cols, out=out), repeat)}


def matmul_transposed(repeat):
    """The reference conv1d's input-gradient product (32 images, a 96 x 64 weight, 1000
    positions): the transposed weight view broadcast over the images against a
    contiguous copy of it (kernels/reference/conv.py)."""
    rng = np.random.default_rng(4)
    wg = rng.standard_normal((1, 64, 96), dtype=np.float32)
    gy = rng.standard_normal((32, 1, 64, 1000), dtype=np.float32)
    return {"transposed view": _times(lambda: np.matmul(wg.transpose(0, 2, 1), gy), repeat),
            "contiguous copy": _times(
                lambda: np.matmul(np.ascontiguousarray(wg.transpose(0, 2, 1)), gy), repeat)}


def shape_product(repeat):
    """The element count of a 4-d shape, as the buffer pool takes one per array: np.prod
    against math.prod (times per call in microseconds x 1000 calls)."""
    shape = ACTIVATION_SHAPE
    return {"np.prod x1000": _times(lambda: [np.prod(shape) for _ in range(1000)], repeat),
            "math.prod x1000": _times(lambda: [math.prod(shape) for _ in range(1000)], repeat)}


# conv2 of the exercise at batch 32 (32 -> 64 channels, 40x40, padding 1), float32.
CONV2 = ((32, 32, 40, 40), (64, 32, 3, 3))


def _conv2_arrays(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(CONV2[0], dtype=np.float32)
    w = rng.standard_normal(CONV2[1], dtype=np.float32) * 0.1
    return x, w, np.zeros(CONV2[1][0], np.float32)


def _im2col_pass(conv, x, w, b):
    y, cache = conv._im2col_forward(x, w, b, (1, 1), (1, 1), "relu", x.dtype)
    conv._im2col_backward(y, cache, True)


def conv_slices(repeat):
    """conv2's im2col forward + backward on one thread, in slices of CHUNK_BYTES of
    columns (the GEMM reads what im2col just wrote, from the cache) against the whole
    batch in one pass (kernels/cpu/conv.py, CHUNK_BYTES)."""
    from kernels.cpu import _threads, conv
    x, w, b = _conv2_arrays(5)
    threads, chunk = _threads.get_num_threads(), conv.CHUNK_BYTES
    _threads.set_num_threads(1)
    try:
        sliced = _times(lambda: _im2col_pass(conv, x, w, b), repeat)
        conv.CHUNK_BYTES = 1 << 40
        whole = _times(lambda: _im2col_pass(conv, x, w, b), repeat)
    finally:
        conv.CHUNK_BYTES = chunk
        _threads.set_num_threads(threads)
    return {f"slices of {chunk >> 20} MiB": sliced, "whole batch": whole}


def weight_grad_orientation(repeat):
    """conv2's weight-gradient GEMMs on one OpenBLAS thread: cols[n] @ gy[n].T per
    image (what kernels/cpu/conv.py runs), gy[n] @ cols[n].T, and one GEMM with
    K = N*OH*OW over the batch laid side by side."""
    rng = np.random.default_rng(6)
    cols = rng.standard_normal((32, 289, 1600), dtype=np.float32)
    gy = rng.standard_normal((32, 64, 1600), dtype=np.float32)
    gy_wide = np.ascontiguousarray(gy.transpose(1, 0, 2)).reshape(64, -1)
    cols_wide = np.ascontiguousarray(cols.transpose(1, 0, 2)).reshape(289, -1)
    with _one_blas_thread():
        return {"cols @ gy.T per image": _times(
                    lambda: np.matmul(cols, gy.transpose(0, 2, 1)), repeat),
                "gy @ cols.T per image": _times(
                    lambda: np.matmul(gy, cols.transpose(0, 2, 1)), repeat),
                "one GEMM, K = N*OH*OW": _times(lambda: gy_wide @ cols_wide.T, repeat)}


def openblas_spin(repeat):
    """What OpenBLAS's spinning workers cost the slice threads: a dense-layer GEMM
    (32 x 12800 @ 12800 x 128) then conv3's Winograd forward + backward on the kernels'
    threads, with OpenBLAS held to one thread throughout (what kernels/cpu/_threads.py
    does) against OpenBLAS on two threads for the GEMM, whose workers then spin
    through the convolution."""
    from kernels.cpu import _threads, winograd
    if _threads._BLAS is None or _threads.get_num_threads() < 2:
        return {"skipped": "needs OpenBLAS and at least two kernel threads"}
    get_blas, put_blas = _threads._BLAS
    rng = np.random.default_rng(7)
    a = rng.standard_normal((32, 12800), dtype=np.float32)
    dense = rng.standard_normal((12800, 128), dtype=np.float32)
    x = rng.standard_normal((32, 64, 20, 20), dtype=np.float32)
    w = rng.standard_normal((128, 64, 3, 3), dtype=np.float32) * 0.1
    b = np.zeros(128, np.float32)

    def step(gemm_threads):
        put_blas(gemm_threads)
        a @ dense
        put_blas(1)
        y, cache = winograd.conv2d_forward(x, w, b, (1, 1), "relu", np.float32)
        winograd.conv2d_backward(y, cache, True)
    held = get_blas()
    try:
        return {"OpenBLAS held to 1 thread": _times(lambda: step(1), repeat),
                "OpenBLAS on 2 threads for the GEMM": _times(lambda: step(2), repeat)}
    finally:
        put_blas(held)


def matmul_split(repeat):
    """The fast table's matmul (kernels/cpu/linalg.py) split over the kernels' threads
    against one thread, on the dense layer's product (32 x 12800 @ 12800 x 128, 52M
    multiply-adds) and a large one (256 x 51200 @ 51200 x 128, 1.7G)."""
    from kernels.cpu import linalg
    rng = np.random.default_rng(8)
    result = {}
    for name, (m, k, n) in {"dense": (32, 12800, 128), "large": (256, 51200, 128)}.items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        limit = linalg.PARALLEL_MIN_WORK
        linalg.PARALLEL_MIN_WORK = 1  # split whatever the size
        try:
            result[f"{name}: split over threads"] = _times(lambda: linalg.matmul(a, b), repeat)
        finally:
            linalg.PARALLEL_MIN_WORK = limit
        with _one_blas_thread():
            result[f"{name}: one thread"] = _times(lambda: np.matmul(a, b), repeat)
    return result


@contextlib.contextmanager
def _one_blas_thread():
    """OpenBLAS held to one thread for the block (as the kernels' slices run it)."""
    from kernels.cpu import _threads
    if _threads._BLAS is None:
        yield
        return
    get_blas, put_blas = _threads._BLAS
    before = get_blas()
    put_blas(1)
    try:
        yield
    finally:
        put_blas(before)


MEASUREMENTS = {"relu": relu, "relu-in-place": relu_in_place, "tanh-exp": tanh_exp,
                "gemm-fresh-output": gemm_fresh_output, "matmul-transposed": matmul_transposed,
                "shape-product": shape_product, "conv-slices": conv_slices,
                "weight-grad-orientation": weight_grad_orientation, "openblas-spin": openblas_spin,
                "matmul-split": matmul_split}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"which to run (default all): {', '.join(MEASUREMENTS)}")
    parser.add_argument("--repeat", type=int, default=11, help="timed calls (default 11)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown measurement {unknown[0]!r}; choose from {', '.join(MEASUREMENTS)}")
    names = args.names or list(MEASUREMENTS)
    result = {"cpu": cpu_model(), "numpy": np.__version__, "python": platform.python_version(),
              "repeat": args.repeat}
    for name in names:
        result[name] = MEASUREMENTS[name](args.repeat)
    emit_json(result, args.json)


if __name__ == "__main__":
    main()
