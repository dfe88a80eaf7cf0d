"""cuBLAS GEMMs that a CUDA graph can capture, called past CuPy's capture guard.

CuPy raises ``NotImplementedError`` for ``cupy.matmul`` while the current stream is
capturing, but cuBLAS itself supports stream capture: the product is recorded as the
kernels cuBLAS launches, provided that

- the handle's stream is the capturing stream;
- cuBLAS does not allocate while capturing. Without a workspace of the user's,
  cuBLAS takes its scratch memory itself: before CUDA 12.2 a new workspace per
  captured graph (memory that grew with every capture: PyTorch issue #83461), since
  then with ``cudaMallocAsync``, which a capture records as memory nodes of the
  graph, memory outside CuPy's pool. PyTorch gives every handle a workspace of its
  own allocator for that reason (its ``CublasHandlePool.cpp``). So here too: a fixed
  workspace per handle (``cublasSetWorkspace``), made before any capture and kept
  for the process;
- alpha and beta are host values (``CUBLAS_POINTER_MODE_HOST``): cuBLAS reads them at
  the call, so a graph holds the constants 1 and 0 it was captured with.

Why a handle of our own, called through ``ctypes``, rather than CuPy's handle
(``cupy.cuda.device.get_cublas_handle()``) through ``cupy_backends.cuda.libs.cublas``:
``cublasSetStream`` puts a handle's workspace back to cuBLAS's own pool (cuBLAS
documentation of ``cublasSetStream``), and CuPy's wrappers (``sgemm``, ``dgemm``,
``gemmEx``) call ``cublasSetStream`` before every product once any stream other than
the default one has been made current - always the case inside a capture. A workspace
set before the call would be dropped by the wrapper itself. CuPy's handle is also
shared with every eager ``cupy.matmul``, which moves its stream and workspace. Here,
the handle is touched by nothing else, its stream is set (then its workspace, in that
order) only when the stream changes, and the GEMM is ``cublasSgemm_v2`` /
``cublasDgemm_v2`` called directly. The functions come from the libcublas that CuPy
itself loaded (found in ``/proc/self/maps``; the environment variable
``MINIGRAD_CUBLAS_LIBRARY`` names another), so the process needs no second cuBLAS.

Math mode is ``CUBLAS_DEFAULT_MATH``: float32 products stay float32 (no TF32), as
``cupy.matmul`` computes them by default; :func:`set_tf32` is the explicit opt-in
(``CUBLAS_TF32_TENSOR_OP_MATH``) that ``gemm.set_tf32`` turns on with CuPy's own.

One handle and one workspace per device, for the thread that uses minigrad: graphs
that use them must run one after another on one stream (as ``minigrad.cuda`` replays
them, on the current stream), never concurrently on different streams.
"""
import ctypes
import ctypes.util
import os
import re

import numpy as np

from .compile import cp

# The size cuBLAS's documentation of cublasSetWorkspace recommends for Hopper (4 MiB
# for older GPUs), allocated once per device.
WORKSPACE_BYTES = 32 << 20

CUBLAS_OP_N = 0
CUBLAS_OP_T = 1
CUBLAS_POINTER_MODE_HOST = 0
CUBLAS_DEFAULT_MATH = 0
CUBLAS_TF32_TENSOR_OP_MATH = 3

STATUS_NAMES = {
    0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED",
    3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
    8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
    13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR",
    15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

_P = ctypes.c_void_p
_I = ctypes.c_int
# The C entry points used, with their parameter types (cublas_api.h). The ``_v2``
# names are the handle-based API that cublas_v2.h maps the plain names to; the
# unsuffixed cublasSgemm is the legacy API, with no handle.
_GEMM_ARGS = [_P, _I, _I, _I, _I, _I, _P, _P, _I, _P, _I, _P, _P, _I]
_L = ctypes.c_longlong
_BATCHED_ARGS = [_P, _I, _I, _I, _I, _I, _P, _P, _I, _L, _P, _I, _L, _P, _P, _I, _L, _I]
FUNCTIONS = {
    "cublasCreate_v2": [ctypes.POINTER(_P)],
    "cublasGetVersion_v2": [_P, ctypes.POINTER(_I)],
    "cublasSetStream_v2": [_P, _P],
    "cublasSetWorkspace_v2": [_P, _P, ctypes.c_size_t],
    "cublasSetPointerMode_v2": [_P, _I],
    "cublasSetMathMode": [_P, _I],
    "cublasSgemm_v2": _GEMM_ARGS,
    "cublasDgemm_v2": _GEMM_ARGS,
    "cublasSgemmStridedBatched": _BATCHED_ARGS,
    "cublasDgemmStridedBatched": _BATCHED_ARGS,
}
_GEMM_NAMES = {np.dtype(np.float32): "cublasSgemm_v2", np.dtype(np.float64): "cublasDgemm_v2"}
_BATCHED_NAMES = {np.dtype(np.float32): "cublasSgemmStridedBatched",
                  np.dtype(np.float64): "cublasDgemmStridedBatched"}

# alpha = 1 and beta = 0 as host values; read by cuBLAS during each call.
_ALPHA = {np.dtype(np.float32): ctypes.c_float(1.0), np.dtype(np.float64): ctypes.c_double(1.0)}
_BETA = {np.dtype(np.float32): ctypes.c_float(0.0), np.dtype(np.float64): ctypes.c_double(0.0)}

_library = None
_handles = {}  # device id -> _DeviceHandle
_math_mode = CUBLAS_DEFAULT_MATH  # of every handle, present and future (set_tf32)


class CublasLibrary:
    """The cuBLAS C functions used here, bound with ctypes to one shared library."""

    def __init__(self, path):
        self.path = path
        try:
            self._dll = ctypes.CDLL(path)
        except OSError as exc:
            raise RuntimeError(f"cannot load the cuBLAS library {path!r}: {exc}") from exc
        for name, argtypes in FUNCTIONS.items():
            try:
                function = getattr(self._dll, name)
            except AttributeError:
                raise RuntimeError(f"the cuBLAS library {path!r} has no {name}; it is "
                                   "not a cuBLAS of CUDA 11 or later") from None
            function.restype = ctypes.c_int
            function.argtypes = argtypes
            setattr(self, name, function)

    def version(self, handle):
        """cuBLAS's version number (e.g. 130100 for 13.1.0)."""
        value = ctypes.c_int()
        check(self.cublasGetVersion_v2(handle, ctypes.byref(value)), "cublasGetVersion")
        return value.value


class _DeviceHandle:
    """A cuBLAS handle, its workspace (kept alive here) and the stream it is set to."""

    def __init__(self, handle, workspace):
        self.handle = handle
        self.workspace = workspace
        self.workspace_address = address(workspace)
        self.workspace_bytes = int(workspace.nbytes)
        self.stream = None  # set on first use


def check(status, what):
    """Raise a RuntimeError naming the call and cuBLAS's status unless it succeeded."""
    if status != 0:
        name = STATUS_NAMES.get(status, f"status {status}")
        raise RuntimeError(f"{what} failed: {name} ({status})")


def address(array):
    """The address of an array's first element (CuPy device memory, or host memory
    for the NumPy arrays of the CPU emulation in the tests)."""
    data = array.data
    return int(data.ptr) if hasattr(data, "ptr") else int(array.ctypes.data)


def loaded_cublas_paths(maps_text=None):
    """Paths of the libcublas files mapped into this process (from /proc/self/maps)."""
    if maps_text is None:
        try:
            with open("/proc/self/maps") as maps:
                maps_text = maps.read()
        except OSError:  # not Linux
            return []
    paths = []
    for line in maps_text.splitlines():
        match = re.search(r"(/\S*/libcublas\.so[.\w]*)\s*$", line)
        if match and match.group(1) not in paths:
            paths.append(match.group(1))
    return paths


def preferred_path(paths, cuda_major):
    """Of the loaded libcublas ``paths``, the one of CuPy's CUDA major version, if any
    (PyTorch, imported in the same process, may have brought another), else the first."""
    if cuda_major is not None:
        for path in paths:
            if re.search(rf"libcublas\.so\.{cuda_major}(\.|$)", path):
                return path
    return paths[0] if paths else None


def _cupy_cuda_major():
    try:
        return cp.cuda.runtime.runtimeGetVersion() // 1000
    except Exception:
        return None


def find_library():
    """Path or name of the libcublas to bind: the one CuPy loaded, else the loader's."""
    try:  # CuPy loads its cuBLAS when it makes its own handle
        cp.cuda.device.get_cublas_handle()
    except Exception:
        pass
    major = _cupy_cuda_major()
    loaded = preferred_path(loaded_cublas_paths(), major)
    if loaded:
        return loaded
    names = [f"libcublas.so.{major}"] if major is not None else []
    names += [ctypes.util.find_library("cublas"), "libcublas.so"]
    for name in names:
        if not name:
            continue
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return name
    raise RuntimeError("cannot find the cuBLAS library (libcublas.so) that CuPy uses; "
                       "capture the training step with the custom GEMM instead "
                       "(graphed_step(..., gemm='custom') or MINIGRAD_CAPTURE_GEMM=custom)")


def library():
    """The bound cuBLAS library (found and loaded on first use)."""
    global _library
    if _library is None:
        _library = CublasLibrary(os.environ.get("MINIGRAD_CUBLAS_LIBRARY") or find_library())
    return _library


def _device_id():
    try:
        return cp.cuda.Device().id
    except AttributeError:  # the emulated cupy of the tests has no devices
        return 0


def prepare():
    """Make the current device's handle and workspace, if not made yet; returns nothing.

    Call this before a stream begins capturing: the workspace must not come from a
    graph's private memory pool (it outlives every graph), and ``cublasCreate``
    allocates device memory, which a capture in global mode forbids. Later calls only
    make the next GEMM set the handle's stream (and workspace) afresh, even if the
    stream's handle value looks the same: a new capture stream may reuse the address
    of a destroyed one.
    """
    _prepared().stream = None


def _prepared():
    key = _device_id()
    state = _handles.get(key)
    if state is None:
        lib = library()
        workspace = cp.empty(WORKSPACE_BYTES, dtype=np.uint8)
        handle = ctypes.c_void_p()
        check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        check(lib.cublasSetPointerMode_v2(handle.value, CUBLAS_POINTER_MODE_HOST),
              "cublasSetPointerMode")
        check(lib.cublasSetMathMode(handle.value, _math_mode), "cublasSetMathMode")
        state = _handles[key] = _DeviceHandle(handle.value, workspace)
    return state


def set_tf32(enabled):
    """Let float32 GEMMs here round their inputs to TF32 on tensor cores (True) or keep
    them float32 (False, the default), on every handle made or to be made."""
    global _math_mode
    mode = CUBLAS_TF32_TENSOR_OP_MATH if enabled else CUBLAS_DEFAULT_MATH
    for state in _handles.values():
        check(library().cublasSetMathMode(state.handle, mode), "cublasSetMathMode")
    _math_mode = mode


def is_prepared():
    """True when the current device already has its handle and workspace."""
    return _device_id() in _handles


def describe():
    """What the GEMMs here run on (for benchmarks and error reports): a dict."""
    state = _prepared()
    lib = library()
    return {"library": lib.path, "version": lib.version(state.handle),
            "workspace_bytes": state.workspace_bytes,
            "tf32": _math_mode == CUBLAS_TF32_TENSOR_OP_MATH,
            "cublas_libraries_loaded": loaded_cublas_paths()}


def _handle_on(stream, capturing):
    """The current device's handle, set to ``stream`` (a CUDA stream handle value)."""
    state = _handles.get(_device_id())
    if state is None:
        if capturing:
            raise RuntimeError(
                "cuBLAS GEMM inside a CUDA graph capture, but this device has no cuBLAS "
                "handle and workspace yet: call kernels.cuda.cublas_capture.prepare() "
                "before the stream begins capturing (making them inside the capture "
                "would allocate from the graph's memory)")
        state = _prepared()
    if state.stream != stream:
        lib = library()
        check(lib.cublasSetStream_v2(state.handle, stream), "cublasSetStream")
        # cublasSetStream has just put the handle back on cuBLAS's own workspace pool.
        check(lib.cublasSetWorkspace_v2(state.handle, state.workspace_address,
                                        state.workspace_bytes), "cublasSetWorkspace")
        state.stream = stream
    return state.handle


def gemm(dtype, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, *, stream, capturing):
    """Column-major ``C = op(A) @ op(B)`` (BLAS's gemm with alpha 1, beta 0) by cuBLAS.

    ``a``, ``b``, ``c`` are device addresses; C is m x n with leading dimension ``ldc``,
    op(A) is m x k, op(B) is k x n, ``op(X)`` is ``X`` or, with ``trans_x``, ``X^T``.
    Queued on ``stream`` (a CUDA stream handle value: the current stream), which may
    be capturing: ``capturing`` says so, and then :func:`prepare` must have run.
    """
    _call(_GEMM_NAMES, dtype, trans_a, trans_b, m, n, k, (a, lda, b, ldb), (c, ldc),
          stream=stream, capturing=capturing)


def gemm_strided_batched(dtype, trans_a, trans_b, m, n, k, a, lda, stride_a, b, ldb,
                         stride_b, c, ldc, stride_c, batch, *, stream, capturing):
    """``batch`` column-major GEMMs ``C_i = op(A_i) @ op(B_i)`` in one cuBLAS call, the
    matrices ``stride_x`` elements apart (0: one matrix shared by all); otherwise as
    :func:`gemm`."""
    _call(_BATCHED_NAMES, dtype, trans_a, trans_b, m, n, k,
          (a, lda, stride_a, b, ldb, stride_b), (c, ldc, stride_c, batch),
          stream=stream, capturing=capturing)


def _call(names, dtype, trans_a, trans_b, m, n, k, before_beta, after_beta, *, stream,
          capturing):
    """Call the GEMM of ``names`` for ``dtype``: (handle, ops, m, n, k, alpha,
    *before_beta, beta, *after_beta), raising on any status but success."""
    dtype = np.dtype(dtype)
    name = names.get(dtype)
    if name is None:
        raise TypeError(f"cuBLAS gemm: float32 or float64 only, got {dtype}")
    handle = _handle_on(stream, capturing)
    status = getattr(library(), name)(
        handle, CUBLAS_OP_T if trans_a else CUBLAS_OP_N, CUBLAS_OP_T if trans_b else CUBLAS_OP_N,
        m, n, k, ctypes.addressof(_ALPHA[dtype]), *before_beta, ctypes.addressof(_BETA[dtype]),
        *after_beta)
    if status != 0:  # the message only when it is needed: this runs on every product
        # Each operand's leading dimension follows its address; B's address starts the
        # second half of before_beta (after A's address, lda and, batched, its stride).
        lda, ldb, ldc = before_beta[1], before_beta[len(before_beta) // 2 + 1], after_beta[1]
        check(status, f"{name}(transa={int(bool(trans_a))}, transb={int(bool(trans_b))}, "
                      f"m={m}, n={n}, k={k}, lda={lda}, ldb={ldb}, ldc={ldc})")
