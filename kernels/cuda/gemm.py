"""Matrix products on the GPU: cuBLAS normally; inside a CUDA graph, one of two GEMMs.

CuPy raises ``NotImplementedError`` when ``cupy.matmul`` (cuBLAS) is called while the
current stream is capturing a CUDA graph, so a captured training step multiplies with
one of:

- ``"custom"``: ``gemm.cu``, our 64x64-tile kernel with split-K for skinny products
  (few output tiles, long K); about half of cuBLAS's speed on the convolution GEMMs;
- ``"cublas"``: cuBLAS itself, called directly past CuPy's guard through a handle with
  its own stream and workspace (``cublas_capture.py`` says why and how).

:func:`matmul` (the ``"matmul"`` entry of the CUDA kernel table) asks CUDA whether the
current stream is capturing and, if so, takes the GEMM named by :func:`capture_gemm`
(set by ``minigrad.cuda.graphed_step``) or else by the ``MINIGRAD_CAPTURE_GEMM``
environment variable, ``"cublas"`` (``DEFAULT_CAPTURE_GEMM``) when neither says.
Eager products stay ``cupy.matmul``.

float32 products are float32 unless :func:`set_tf32` opts in to TF32 tensor cores
(cuBLAS through CuPy and through our handle; the tiled GEMM stays float32).
"""
import contextlib
import importlib
import math
import os

import numpy as np

from . import cublas_capture
from .._xp import fast_dtype
from .compile import (INT_MAX, check_int32, cp, float_dtype, grid_2d, kernel, launch,
                      require_cupy)

_SOURCE = "gemm.cu"

# The tile shape compiled into gemm.cu.
TILE_M = TILE_N = 64
TILE_K = 16
THREADS = 256

# Split-K: aim for this many blocks per SM, give each K slice at least MIN_K_PER_SPLIT
# (below that the partial sums cost more than the parallelism saves), and cap the
# number of slices and the workspace they write.
BLOCKS_PER_SM = 2
MIN_K_PER_SPLIT = 128
MAX_SPLITS = 128
MAX_WORKSPACE_ELEMENTS = 1 << 25

DEFAULT_SM_COUNT = 132  # an H100 / H200; used only where the device cannot be asked
_sm_counts = {}


# The GEMMs a capture can use, and where the default choice comes from.
CAPTURE_GEMMS = ("custom", "cublas")
# cuBLAS through minigrad's own handle: the faster graphed step where measured
# (benchmarks/cuda_graph.py; its table in benchmarks/README.md, "GPU"); "custom"
# remains for libraries without a usable cuBLAS.
DEFAULT_CAPTURE_GEMM = "cublas"
CAPTURE_GEMM_VARIABLE = "MINIGRAD_CAPTURE_GEMM"

_capture_choice = None   # set inside capture_gemm(); None: the environment's choice
_route_eager = False     # capture_gemm(..., eager=True): eager products take it too


def matmul(a, b):
    """NumPy's ``matmul(a, b)``: cuBLAS through CuPy, or, while the stream is capturing
    a graph, the GEMM that :func:`capture_gemm_choice` names."""
    route = product_route()
    if route == "cupy":
        return cp.matmul(a, b)
    return matmul_cublas(a, b) if route == "cublas" else matmul_graph_safe(a, b)


def product_route():
    """The GEMM a product takes now: ``"cupy"`` (``cupy.matmul``) when eager, else
    the capture GEMM (``"cublas"`` or ``"custom"``), while the stream captures or
    :func:`capture_gemm` routes eager products there too."""
    if _route_eager or stream_is_capturing():
        return capture_gemm_choice()
    return "cupy"


_tf32 = False


def set_tf32(enabled):
    """Let float32 products use TF32 tensor cores (inputs rounded to 10-bit mantissas;
    several times faster on Ampere and later GPUs), or not (the default). Covers
    ``cupy.matmul`` (CuPy's compute type for float32) and cuBLAS through minigrad's
    handle; returns the previous setting."""
    global _tf32
    enabled = bool(enabled)
    require_cupy()
    # CuPy's compute type per dtype: where cupy.matmul's cuBLAS call takes its math from.
    linalg = importlib.import_module("cupy._core._routines_linalg")
    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if enabled
                            else linalg.COMPUTE_TYPE_DEFAULT)
    cublas_capture.set_tf32(enabled)
    previous, _tf32 = _tf32, enabled
    return previous


def tf32_enabled():
    """Whether :func:`set_tf32` has opted float32 products in to TF32."""
    return _tf32


def resolve_capture_gemm(name=None):
    """The capture GEMM ``name`` names, checked: ``"custom"`` or ``"cublas"``.

    None means the ``MINIGRAD_CAPTURE_GEMM`` environment variable, or
    ``DEFAULT_CAPTURE_GEMM`` (``"cublas"``) when it is unset or empty.
    """
    source = "gemm"
    if name is None:
        name = os.environ.get(CAPTURE_GEMM_VARIABLE, "").strip() or DEFAULT_CAPTURE_GEMM
        source = CAPTURE_GEMM_VARIABLE
    if not isinstance(name, str) or name.lower() not in CAPTURE_GEMMS:
        raise ValueError(f"{source}={name!r} is not a GEMM for CUDA graph captures; "
                         f"choose one of {CAPTURE_GEMMS}")
    return name.lower()


def capture_gemm_choice():
    """The GEMM that products captured now use: the innermost :func:`capture_gemm`,
    else the environment's choice (see :func:`resolve_capture_gemm`)."""
    return _capture_choice if _capture_choice is not None else resolve_capture_gemm()


@contextlib.contextmanager
def capture_gemm(name, *, eager=False):
    """Within the block, products captured in a CUDA graph use the GEMM ``name``.

    With ``eager=True`` the products that are not captured take it too: a warm-up
    step run that way makes every call (and, with cuBLAS, loads every kernel) that
    the capture will make, and a test can give eager and graphed steps the same
    arithmetic. Restores the previous choice on exit; blocks nest.
    """
    global _capture_choice, _route_eager
    name = resolve_capture_gemm(name)
    previous = _capture_choice, _route_eager
    _capture_choice, _route_eager = name, bool(eager)
    try:
        yield name
    finally:
        _capture_choice, _route_eager = previous


def prepare_capture(name, dtypes):
    """Load what capturing products of ``dtypes`` with the GEMM ``name`` needs.

    A capture must not compile or load a module, nor allocate a cuBLAS handle or its
    workspace: call this before the stream begins capturing.
    """
    name = resolve_capture_gemm(name)
    if name == "cublas":
        cublas_capture.prepare()
        return
    for dtype in dtypes:
        if np.dtype(dtype) in (np.float32, np.float64):
            load(dtype)


def stream_is_capturing():
    """True while the current CUDA stream is capturing a graph."""
    return _capturing(cp.cuda.get_current_stream())


def _capturing(stream):
    """Whether ``stream`` is capturing. CuPy never captures the legacy default stream
    (handles 0 and 1), so on that stream, the eager default, CUDA is not even asked."""
    return stream.ptr not in (0, 1) and bool(stream.is_capturing())


def matmul_views(a, b):
    """``matmul(a, b)`` for strided views that ``cupy.matmul`` would first copy (a
    matrix's rows a pitch apart, matrices an arbitrary stride apart): read in place by
    cuBLAS through minigrad's handle, or by the tiled GEMM where captures use it."""
    if product_route() == "custom":
        return matmul_graph_safe(a, b)
    return matmul_cublas(a, b)


def matmul_graph_safe(a, b):
    """NumPy's ``matmul(a, b)`` (batched, broadcast, 1-D operands) by the tiled GEMM.

    Operands of float32 or float64, or any two that NumPy promotes to one of them
    (float64 with float32, integers with float32: converted first, as ``cupy.matmul``
    does). Transposed views (``w.T``) are read in place, without a copy. Safe to
    capture in a CUDA graph.
    """
    a2, b2, out, batch_shape = _matmul_operands(a, b)
    _gemm(a2, b2, out, batch_shape, accumulate=False, split_k=None)
    return _matmul_result(out, a, b)


def matmul_cublas(a, b):
    """NumPy's ``matmul(a, b)`` by cuBLAS called directly (``cublas_capture``).

    What a step captured with ``gemm="cublas"`` multiplies with; safe to capture once
    ``cublas_capture.prepare()`` has run, and usable outside a capture too (on the
    current stream, with the same handle and workspace). Operands as for
    :func:`matmul_graph_safe`; transposed views are read in place.
    """
    a2, b2, out, batch_shape = _matmul_operands(a, b)
    _cublas_gemm(a2, b2, out, batch_shape)
    return _matmul_result(out, a, b)


def _matmul_operands(a, b):
    """Check ``matmul``'s operands: (a as 2-D+, b as 2-D+, an empty out, batch shape),
    both in NumPy's result type of the two (float32 or float64, else a TypeError)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one axis, got shapes "
                         f"{a.shape} and {b.shape}")
    dtype = fast_dtype(a, b)
    if dtype is None:
        raise TypeError(f"matmul: the CUDA GEMMs take float32 or float64 operands (or ones "
                        f"NumPy promotes to them), got {a.dtype} and {b.dtype}")
    # Mixed operands are promoted as cupy.matmul promotes them. astype keeps the
    # layout (a transposed view stays readable in place) and copies only to convert.
    a = a if a.dtype == dtype else a.astype(dtype)
    b = b if b.dtype == dtype else b.astype(dtype)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    m, k = a2.shape[-2:]
    k_b, n = b2.shape[-2:]
    if k != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not line up "
                         f"({k} != {k_b})")
    try:
        batch_shape = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    except ValueError:
        raise ValueError(f"matmul: the batch axes of shapes {a.shape} and {b.shape} "
                         "cannot be broadcast together") from None
    return a2, b2, cp.empty(batch_shape + (m, n), dtype=dtype), batch_shape


def _matmul_result(out, a, b):
    """Drop the axes that 1-D operands were given, as NumPy's matmul does."""
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def gemm(a, b, out=None, *, trans_a=False, trans_b=False, accumulate=False, split_k=None):
    """``out = op(a) @ op(b)``, or ``out += op(a) @ op(b)`` with ``accumulate=True``.

    ``op(x)`` is ``x`` or, with ``trans_x``, ``x`` with its last two axes swapped, so
    ``a`` is (M, K) or (K, M), optionally with leading batch axes (broadcast as in
    ``matmul``); likewise ``b``. ``out`` (made when None; required to accumulate) is
    a C-contiguous (..., M, N) array that does not overlap ``a`` or ``b``.
    ``split_k``: None picks the number of K slices from the shape, 1 turns split-K
    off, a larger integer asks for that many (fewer if K is too short). Returns ``out``.
    """
    dtype = float_dtype("gemm", a, b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"gemm: operands must be matrices (at least 2-D), got shapes "
                         f"{a.shape} and {b.shape}")
    a_op = cp.swapaxes(a, -1, -2) if trans_a else a
    b_op = cp.swapaxes(b, -1, -2) if trans_b else b
    (m, k), (k_b, n) = a_op.shape[-2:], b_op.shape[-2:]
    if k != k_b:
        raise ValueError(f"gemm: op(a) is {m}x{k} but op(b) is {k_b}x{n} "
                         f"(shapes {a.shape} and {b.shape}, trans_a={trans_a}, "
                         f"trans_b={trans_b})")
    try:
        batch_shape = tuple(np.broadcast_shapes(a_op.shape[:-2], b_op.shape[:-2]))
    except ValueError:
        raise ValueError(f"gemm: the batch axes of shapes {a.shape} and {b.shape} "
                         "cannot be broadcast together") from None
    if split_k is not None and (int(split_k) != split_k or split_k < 1):
        raise ValueError(f"gemm: split_k must be None or a positive integer, got {split_k!r}")
    expected = batch_shape + (m, n)
    if out is None:
        if accumulate:
            raise ValueError("gemm: accumulate=True needs an `out` array to add to")
        out = cp.empty(expected, dtype=dtype)
    else:
        if tuple(out.shape) != expected:
            raise ValueError(f"gemm: out has shape {out.shape}, the product has {expected}")
        if out.dtype != dtype:
            raise TypeError(f"gemm: out has dtype {out.dtype}, the operands {dtype}")
        if not out.flags.c_contiguous:
            raise ValueError("gemm: out must be C-contiguous (it is written in place)")
        if cp.may_share_memory(out, a) or cp.may_share_memory(out, b):
            raise ValueError("gemm: out must not overlap a or b")
    _gemm(a_op, b_op, out, batch_shape, accumulate=accumulate, split_k=split_k)
    return out


def split_k_for(m, n, k, batch, sm_count):
    """How many K slices to cut an (m x k) @ (k x n) product (times ``batch``) into.

    1 unless the output tiles alone would leave the GPU idle and K is long enough to
    share out: then enough slices for about BLOCKS_PER_SM blocks per SM, each slice
    at least MIN_K_PER_SPLIT deep, with at most MAX_SPLITS slices and a workspace of
    at most MAX_WORKSPACE_ELEMENTS.
    """
    tiles = batch * -(-m // TILE_M) * -(-n // TILE_N)
    target = BLOCKS_PER_SM * sm_count
    if tiles == 0 or tiles >= target or k < 2 * MIN_K_PER_SPLIT:
        return 1
    splits = min(-(-target // tiles), k // MIN_K_PER_SPLIT, MAX_SPLITS,
                 MAX_WORKSPACE_ELEMENTS // max(batch * m * n, 1))
    return max(splits, 1)


def k_slices(k, splits):
    """(slice depth, number of non-empty slices) for cutting K into ``splits`` slices.

    The depth is a whole number of TILE_K so each slice starts on a tile boundary.
    """
    if k == 0 or splits <= 1:
        return max(k, 1), 1
    depth = -(-k // splits)
    depth = -(-depth // TILE_K) * TILE_K
    return depth, -(-k // depth)


def load(dtype):
    """Compile/load the GEMM kernels for ``dtype`` and learn the SM count, ahead of time.

    A CUDA graph capture should not be the first to load a module: call this first.
    """
    kernel(_SOURCE, "gemm", dtype)
    kernel(_SOURCE, "gemm_reduce", dtype)
    sm_count()


def sm_count():
    """The current GPU's multiprocessor count (memoised per device)."""
    try:
        device = cp.cuda.Device()
        key = device.id
    except AttributeError:  # an emulated cupy without devices
        return DEFAULT_SM_COUNT
    count = _sm_counts.get(key)
    if count is None:
        properties = cp.cuda.runtime.getDeviceProperties(key)
        count = _sm_counts[key] = int(properties["multiProcessorCount"])
    return count


def _matrix_operand(x, batch_shape):
    """``x`` broadcast to ``batch_shape`` as (array, transposed, ld, batch stride).

    The array is (batch, rows, cols) with unit stride along cols (``transposed`` False,
    row pitch ``ld``) or along rows (``transposed`` True: the stored matrix is its
    transpose, row pitch ``ld``); anything else is copied to C order first. Strides
    are in elements; a batch stride of 0 shares one matrix across the batch.
    """
    rows, cols = x.shape[-2:]
    if batch_shape:
        x = cp.broadcast_to(x, batch_shape + (rows, cols)).reshape((-1, rows, cols))
    else:
        x = x[None]
    item = x.itemsize
    if any(s % item for s in x.strides):  # an odd view (as_strided): take a copy
        x = cp.ascontiguousarray(x)
    batch_stride, s0, s1 = (s // item for s in x.strides)
    if x.shape[0] == 1:
        batch_stride = 0
    if batch_stride >= 0:
        if (s1 == 1 or cols == 1) and (s0 > 0 or rows == 1):
            return x, False, (s0 if rows > 1 else max(cols, 1)), batch_stride
        if (s0 == 1 or rows == 1) and (s1 > 0 or cols == 1):
            return x, True, (s1 if cols > 1 else max(rows, 1)), batch_stride
    x = cp.ascontiguousarray(x)
    return x, False, max(cols, 1), (rows * cols if x.shape[0] > 1 else 0)


def _gemm(a_op, b_op, out, batch_shape, *, accumulate, split_k):
    """Launch the kernels for ``out (+)= a_op @ b_op`` (shapes already checked)."""
    m, k = a_op.shape[-2:]
    n = b_op.shape[-1]
    batch = math.prod(batch_shape)
    if m == 0 or n == 0 or batch == 0:
        return
    check_int32("gemm", rows=m, columns=n, inner=k, batch=batch)
    a3, trans_a, lda, stride_a = _matrix_operand(a_op, batch_shape)
    b3, trans_b, ldb, stride_b = _matrix_operand(b_op, batch_shape)
    tiles_m, tiles_n = -(-m // TILE_M), -(-n // TILE_N)
    if split_k is None:
        split_k = split_k_for(m, n, k, batch, sm_count())
    depth, splits = k_slices(k, int(split_k))
    blocks = batch * splits * tiles_m * tiles_n
    if blocks > INT_MAX:
        raise ValueError(f"gemm: {blocks} blocks exceed the grid limit of 2**31 - 1")
    dtype = out.dtype
    partials = cp.empty(batch * splits * m * n, dtype=dtype) if splits > 1 else out
    kernel(_SOURCE, "gemm", dtype)(
        (blocks,), (THREADS,),
        (a3, b3, out, partials, np.int32(m), np.int32(n), np.int32(k), np.int64(lda),
         np.int64(ldb), np.int64(n), np.int64(stride_a), np.int64(stride_b),
         np.int64(m * n), np.int32(trans_a), np.int32(trans_b),
         np.int32(bool(accumulate) and splits == 1), np.int32(splits), np.int32(depth),
         np.int32(tiles_m), np.int32(tiles_n)))
    if splits > 1:
        launch(kernel(_SOURCE, "gemm_reduce", dtype), grid_2d(n, batch * m),
               (partials, out, np.int32(m), np.int32(n), np.int64(n), np.int64(m * n),
                np.int32(batch), np.int32(splits), np.int32(bool(accumulate))))


def _blas_operand(x, batch_shape):
    """:func:`_matrix_operand`, with a copy where its leading dimension would not be
    one BLAS accepts (at least the stored rows' length, and a 32-bit int)."""
    array, transposed, ld, stride = _matrix_operand(x, batch_shape)
    rows, cols = x.shape[-2:]
    if ld < max(rows if transposed else cols, 1) or ld > INT_MAX:
        array = cp.ascontiguousarray(array)
        transposed, ld = False, max(cols, 1)
        stride = rows * cols if array.shape[0] > 1 else 0
    return array, transposed, ld, stride


def _cublas_gemm(a_op, b_op, out, batch_shape):
    """``out = a_op @ b_op`` by cuBLAS, one GEMM per batch matrix (shapes checked).

    cuBLAS is column-major: the row-major (M, N) ``out`` is, to it, the N x M matrix
    ``out^T = b_op^T @ a_op^T``, and a row-major operand read in place is its own
    transpose. So cuBLAS is given ``b`` first and ``a`` second, with M and N swapped,
    and an operand stored transposed (``w.T``) is given with op = T.
    """
    m, k = a_op.shape[-2:]
    n = b_op.shape[-1]
    batch = math.prod(batch_shape)
    if m == 0 or n == 0 or batch == 0:
        return
    if k == 0:  # an empty sum: zeros, without asking cuBLAS about a degenerate product
        out.fill(0)
        return
    check_int32("matmul", rows=m, columns=n, inner=k)
    a3, trans_a, lda, stride_a = _blas_operand(a_op, batch_shape)
    b3, trans_b, ldb, stride_b = _blas_operand(b_op, batch_shape)
    stream = cp.cuda.get_current_stream()
    capturing = _capturing(stream)
    a_at, b_at, out_at = (cublas_capture.address(x) for x in (a3, b3, out))
    if batch == 1:
        cublas_capture.gemm(out.dtype, trans_b, trans_a, n, m, k, b_at, ldb, a_at, lda,
                            out_at, n, stream=stream.ptr, capturing=capturing)
    else:  # one call for the batch, whatever the operands' strides between matrices
        cublas_capture.gemm_strided_batched(
            out.dtype, trans_b, trans_a, n, m, k, b_at, ldb, stride_b, a_at, lda, stride_a,
            out_at, n, m * n, batch, stream=stream.ptr, capturing=capturing)
