"""Loading the CUDA C sources of this folder, and the launch helpers their wrappers share.

Each ``*.cu`` file is compiled once per process, on first use, through CuPy's
``RawModule`` (NVRTC), and its kernels are memoised here; CuPy also keeps the
binaries in its on-disk cache, so a new process does not recompile. Every source
gets ``common.cuh`` pasted in front of it (see that file for why not ``#include``).

This module imports without CuPy (``cp`` is then None): the NVRTC compile test and
the registry of entry points below are usable on a machine with no GPU.
"""
from pathlib import Path

import numpy as np

try:  # CuPy is the optional GPU extra
    import cupy as cp
except Exception:  # ImportError, or a CUDA library that fails to load
    cp = None

SOURCE_DIR = Path(__file__).resolve().parent
PRELUDE = "common.cuh"

# Options for both CuPy and the CI compile check. FMA contraction is off so that
# a*b + c rounds as NumPy rounds it, which lets the tests hold the kernels to the
# reference at a few ulps; the elementwise kernels are memory-bound, so it costs
# nothing, and gemm.cu, the one compute-bound kernel, asks for its FMAs explicitly.
NVRTC_OPTIONS = ("--std=c++17", "--fmad=false")

# Every kernel a wrapper may ask for, by source file; each is compiled for float32
# (suffix _f32) and float64 (_f64). The compile test checks that each one is an
# entry point of the compiled PTX, so a renamed kernel fails in CI, not on a GPU.
ENTRY_POINTS = {
    "activation.cu": ("activation_forward", "activation_backward"),
    "conv.cu": ("im2col", "col2im", "rows_to_nchw", "nchw_to_rows", "bias_grad"),
    "gemm.cu": ("gemm", "gemm_reduce"),
    "pool.cu": ("max_pool_forward", "max_pool_backward", "avg_pool_forward",
                "avg_pool_backward"),
    "softmax_ce.cu": ("softmax_ce_forward", "softmax_ce_backward"),
    "optim.cu": ("sgd_update", "adam_update", "rmsprop_update", "adagrad_update"),
    "random.cu": ("dropout_mask",),
}

# The activation codes of common.cuh's activate() / activation_grad().
ACTIVATION_CODES = {None: 0, "relu": 1, "tanh": 2, "sigmoid": 3}

DTYPE_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}

BLOCK = 256            # threads per block for every launch here
MAX_GRID_X = 1 << 16   # enough blocks to fill any GPU; grid-stride loops do the rest
MAX_GRID_Y = 65535     # the hardware limit of gridDim.y
INT_MAX = 2 ** 31 - 1

_modules = {}
_kernels = {}


def entry_names(source):
    """The full kernel names (with dtype suffixes) that ``source`` must define."""
    return [f"{base}_{suffix}" for base in ENTRY_POINTS[source]
            for suffix in DTYPE_SUFFIX.values()]


def source_text(source):
    """The text compiled for ``source``: the shared prelude, then the file itself."""
    prelude = (SOURCE_DIR / PRELUDE).read_text()
    body = (SOURCE_DIR / source).read_text()
    # #line keeps compiler messages pointing at the right line of the right file.
    return f'#line 1 "{PRELUDE}"\n{prelude}\n#line 1 "{source}"\n{body}'


def require_cupy():
    """CuPy, or a clear error saying it is needed."""
    if cp is None:
        raise RuntimeError("kernels.cuda needs CuPy and an NVIDIA GPU; install the GPU "
                           "extra matching your CUDA: pip install 'minigrad[cuda12]' or "
                           "'minigrad[cuda13]'")
    return cp


def kernel(source, base, dtype):
    """The compiled kernel ``base`` of ``source`` for ``dtype`` (memoised)."""
    key = (source, base, dtype)
    fn = _kernels.get(key)
    if fn is None:
        if base not in ENTRY_POINTS.get(source, ()):
            raise KeyError(f"{base!r} is not a registered kernel of {source!r}")
        module = _modules.get(source)
        if module is None:
            module = require_cupy().RawModule(code=source_text(source),
                                              options=NVRTC_OPTIONS)
            _modules[source] = module
        fn = module.get_function(f"{base}_{DTYPE_SUFFIX[np.dtype(dtype)]}")
        _kernels[key] = fn
    return fn


def float_dtype(what, *arrays):
    """The common float32/float64 dtype of ``arrays``; TypeError naming ``what`` otherwise."""
    dtype = arrays[0].dtype
    if dtype not in DTYPE_SUFFIX:
        raise TypeError(f"{what}: CUDA kernels take float32 or float64 arrays, got {dtype}")
    for other in arrays[1:]:
        if other.dtype != dtype:
            raise TypeError(f"{what}: all arrays must share one dtype, got {dtype} "
                            f"and {other.dtype}")
    return dtype


def check_int32(what, **sizes):
    """Raise a ValueError when a size the kernels index with a 32-bit int is too big."""
    for name, value in sizes.items():
        if value > INT_MAX:
            raise ValueError(f"{what}: {name} = {value} exceeds the 2**31 - 1 that the "
                             "CUDA kernels index with 32-bit integers")


def grid_2d(columns, rows):
    """Grid for the FOR_ROWS / FOR_COLUMNS convention of common.cuh."""
    return (min(-(-columns // BLOCK), MAX_GRID_X), min(rows, MAX_GRID_Y))


def grid_1d(count, per_block=BLOCK):
    """Grid for a grid-stride loop over ``count`` items, ``per_block`` per block."""
    return (min(-(-count // per_block), MAX_GRID_X),)


def device_time_ms(fn, repeats=3):
    """The fastest of ``repeats`` runs of ``fn()`` on the current stream, in ms, timed
    by CUDA events after one untimed run (which pays for first-call set-up). Waits
    for the GPU: for one-off choices, never inside a step that should stay async."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(start, stop))
    return best


def launch(fn, grid, args):
    """Launch on the current stream with BLOCK threads; nothing to do for an empty grid."""
    if min(grid) > 0:
        fn(grid, (BLOCK,), args)
