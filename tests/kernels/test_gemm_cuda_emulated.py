"""The graph-safe GEMM (kernels/cuda/gemm.cu) and the other graph-capture hooks of
kernels.cuda, run on the CPU by tests/helpers/cuda_emulator.py.

The same CUDA C text NVRTC compiles, built for the host: tile index math, bounds on
odd sizes, every transpose combination, strided and batched operands, split-K and
its reduction, the dispatch between cuBLAS and the GEMM, the device learning rate of
the optimizer kernels and the device base of the dropout stream. The GPU runs them
for real in tests/test_cuda_graph_gpu.py.

The cuBLAS capture path (kernels/cuda/cublas_capture.py and gemm.matmul_cublas) runs
here against a stand-in libcublas built from the C++ below: the same ctypes bindings
and calls, a column-major reference GEMM that rejects what cuBLAS rejects, and a
handle that forgets its workspace on cublasSetStream, as cuBLAS's does.
"""
import ctypes
import ctypes.util
import subprocess

import numpy as np
import pytest

from kernels.reference import KERNELS as REFERENCE
from tests.helpers import cuda_kernel_checks as checks
from tests.helpers.cuda_emulator import (EmulatedModule, FakeCuda, FakeStream, compiler,
                                         use_fake_cupy)

# Slow (still run in CI): the CUDA kernels run in the CPU emulator.
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(compiler() is None,
                                 reason="no host C++ compiler (g++) to emulate CUDA with")]

DTYPES = [np.float32, np.float64]
TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.fixture
def gemm(monkeypatch):
    """kernels.cuda.gemm (and its neighbours) on NumPy + the CPU emulation."""
    from kernels.cuda import cublas_capture, gemm as gemm_module
    use_fake_cupy(monkeypatch, block=64)  # the reduce kernel's block; GEMM keeps 256
    # No cuBLAS in these tests unless one asks for the stand-in library (fake_cublas).
    monkeypatch.setattr(cublas_capture, "_library", None)
    monkeypatch.setattr(cublas_capture, "_handles", {})
    monkeypatch.delenv(gemm_module.CAPTURE_GEMM_VARIABLE, raising=False)
    # The tiled GEMM is what these tests drive, unless one asks for cuBLAS by name.
    monkeypatch.setattr(gemm_module, "DEFAULT_CAPTURE_GEMM", "custom")
    monkeypatch.setattr(FakeCuda, "current_stream", FakeStream())
    return gemm_module


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _launches(prefix):
    """(grid, block) of every emulated launch of kernels whose name starts with prefix."""
    return [launch for name, k in EmulatedModule.kernels_built if name.startswith(prefix)
            for launch in k.launches]


def _expected(a, b):
    """The product in float64, and a bound on float rounding: (k + 2) ulps of |a| @ |b|."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    k = a.shape[-1]
    eps = np.finfo(a.dtype).eps
    return np.matmul(a64, b64), (k + 2) * eps * np.matmul(np.abs(a64), np.abs(b64)) + 1e-30


def _assert_product(got, a, b, what=""):
    want, bound = _expected(a, b)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == a.dtype
    error = np.abs(got.astype(np.float64) - want)
    assert np.all(error <= bound), f"{what}: max error {error.max()} over bound {bound.min()}"


def _operand(rng, shape, dtype, transposed):
    """A (rows, cols) operand; when ``transposed``, a transposed view of a C array."""
    if transposed:
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    return rng.standard_normal(shape).astype(dtype)


# (m, n, k): odd sizes around the 64 x 64 x 16 tile, one-row/one-column products, K = 0
SHAPES = [(1, 1, 1), (5, 7, 3), (65, 63, 17), (64, 64, 16), (3, 130, 33), (70, 2, 1),
          (4, 5, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_every_transpose_combination_on_odd_shapes(gemm, rng, dtype, trans_a, trans_b):
    for m, n, k in SHAPES:
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        got = gemm.gemm(a, b, trans_a=trans_a, trans_b=trans_b, split_k=1)
        _assert_product(got, a.T if trans_a else a, b.T if trans_b else b, (m, n, k))
    launches = _launches("gemm_f")
    assert len(launches) == len(SHAPES) and all(block == (256,) for _, block in launches)


def test_operand_layouts_read_views_in_place(gemm):
    big = np.zeros((40, 30))
    array, transposed, ld, stride = gemm._matrix_operand(big[3:20, 2:9], ())
    assert (transposed, ld, stride) == (False, 30, 0) and np.shares_memory(array, big)
    array, transposed, ld, _ = gemm._matrix_operand(big[3:20, 2:9].T, ())
    assert (transposed, ld) == (True, 30) and np.shares_memory(array, big)
    array, transposed, ld, _ = gemm._matrix_operand(big[::-1, :7], ())  # copied
    assert (transposed, ld) == (False, 7) and not np.shares_memory(array, big)
    batched = np.zeros((3, 5, 4))
    array, transposed, ld, stride = gemm._matrix_operand(np.swapaxes(batched, -1, -2), (3,))
    assert (transposed, ld, stride) == (True, 4, 20) and np.shares_memory(array, batched)
    shared = np.zeros((5, 4))
    array, transposed, _, stride = gemm._matrix_operand(shared, (6,))
    assert (transposed, stride) == (False, 0) and np.shares_memory(array, shared)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_split_k_matches_and_repeats_bit_for_bit(gemm, rng, dtype, trans_a, trans_b):
    m, n, k = 37, 70, 300
    a = _operand(rng, (m, k), dtype, trans_a)
    b = _operand(rng, (k, n), dtype, trans_b)
    single = gemm.matmul_graph_safe(a, b)  # auto: 2 x 2 tiles, K 300 -> split
    forced = [gemm.gemm(np.ascontiguousarray(a), np.ascontiguousarray(b), split_k=s)
              for s in (1, 3, 7)]
    for got in [single] + forced:
        _assert_product(got, a, b)
    again = gemm.matmul_graph_safe(a, b)
    np.testing.assert_array_equal(again, single)  # no atomics: the same bits every time
    reduces = _launches("gemm_reduce")
    assert len(reduces) == 4  # auto (split), 3, 7, and auto again; split_k=1 has none


def test_split_k_slices_start_on_tile_boundaries(gemm):
    assert gemm.k_slices(300, 3) == (112, 3)
    assert gemm.k_slices(300, 7) == (48, 7)
    assert gemm.k_slices(20, 7) == (16, 2)  # too short for 7 slices: 2 non-empty ones
    assert gemm.k_slices(0, 5) == (1, 1)
    assert gemm.k_slices(1000, 1) == (1000, 1)


def test_split_k_heuristic_on_the_exercise_shapes(gemm):
    sms = 132
    # Dense forward 32x12800 @ 12800x128: 2 tiles; 100 slices of 128.
    assert gemm.split_k_for(32, 128, 12800, 1, sms) == 100
    # Its weight gradient 128x32 @ 32x12800 and input gradient: enough tiles, short K.
    assert gemm.split_k_for(128, 12800, 32, 1, sms) == 1
    assert gemm.split_k_for(32, 12800, 128, 1, sms) == 1
    # conv2's weight gradient 64x51200 @ 51200x288: 5 tiles -> 53 slices.
    assert gemm.split_k_for(64, 288, 51200, 1, sms) == 53
    # conv2 forward 64x288 @ 288x51200: 800 tiles fill the GPU.
    assert gemm.split_k_for(64, 51200, 288, 1, sms) == 1
    # The workspace cap: a huge output with few tiles would not split past it.
    assert gemm.split_k_for(4000, 4000, 1 << 20, 1, 10_000) <= \
        max(1, gemm.MAX_WORKSPACE_ELEMENTS // (4000 * 4000))


@pytest.mark.parametrize("dtype", DTYPES)
def test_accumulate_into_out_with_and_without_split(gemm, rng, dtype):
    a = rng.standard_normal((9, 200)).astype(dtype)
    b = rng.standard_normal((200, 11)).astype(dtype)
    start = rng.standard_normal((9, 11)).astype(dtype)
    for split in (1, 4):
        out = start.copy()
        result = gemm.gemm(a, b, out, accumulate=True, split_k=split)
        assert result is out
        want, bound = _expected(a, b)
        error = np.abs(out.astype(np.float64) - (want + start))
        assert np.all(error <= bound + 4 * np.finfo(dtype).eps * np.abs(start)), split


def test_strided_views_are_read_in_place_and_odd_ones_copied(gemm, rng):
    big = rng.standard_normal((40, 30))
    cases = [
        (big[3:20, 2:9], big[5:12, 1:25]),       # row pitch 30: read in place
        (big[3:20, 2:9].T, big[:17, 4:8]),       # a transposed window
        (big[::-1, :7][:13], big[:7, ::2]),      # negative and non-unit strides: copied
    ]
    for a, b in cases:
        got = gemm.matmul_graph_safe(a, b)
        _assert_product(got, a, b)


def test_batched_and_broadcast_operands_follow_numpy(gemm, rng):
    cases = [
        ((3, 5, 4), (3, 4, 6)),     # batched both sides
        ((2, 1, 5, 4), (3, 4, 6)),  # broadcast batch axes
        ((5, 4), (2, 4, 6)),        # a shared left matrix
        ((2, 5, 4), (4, 6)),        # a shared right matrix
        ((4,), (2, 4, 6)),          # 1-D operands
        ((3, 5, 4), (4,)),
        ((4,), (4,)),
    ]
    for shape_a, shape_b in cases:
        a = rng.standard_normal(shape_a)
        b = rng.standard_normal(shape_b)
        got = gemm.matmul_graph_safe(a, b)
        want = np.matmul(a, b)
        assert got.shape == want.shape, (shape_a, shape_b)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # A transposed batch (the linear layer's weight gradient of a 3-D input).
    x = rng.standard_normal((2, 7, 5))
    g = rng.standard_normal((2, 7, 3))
    np.testing.assert_allclose(gemm.matmul_graph_safe(np.swapaxes(g, -1, -2), x),
                               np.matmul(np.swapaxes(g, -1, -2), x), rtol=1e-12)


MIXED_OPERANDS = [(np.float64, np.float32), (np.float32, np.float64),
                  (np.int64, np.float32), (np.float32, np.int32)]


def _mixed_operands(rng, a_dtype, b_dtype):
    """A (5, 7) and a transposed-view (7, 3) operand of the given dtypes (small
    integers, so that every product is exact in float32)."""
    a = rng.integers(-4, 5, (5, 7)).astype(a_dtype)
    b = rng.integers(-4, 5, (3, 7)).astype(b_dtype).T
    return a, b


@pytest.mark.parametrize("a_dtype, b_dtype", MIXED_OPERANDS,
                         ids=[f"{np.dtype(a).name}-{np.dtype(b).name}"
                              for a, b in MIXED_OPERANDS])
def test_mixed_operands_are_promoted_as_cupy_matmul_promotes_them(gemm, rng, a_dtype,
                                                                  b_dtype):
    """The capture's GEMM computes what the eager product (cupy.matmul) does: in NumPy's
    result type of the two, here reached through the "matmul" entry as a warm-up step
    routes it (capture_gemm(..., eager=True))."""
    a, b = _mixed_operands(rng, a_dtype, b_dtype)
    want = np.matmul(a, b)
    with gemm.capture_gemm("custom", eager=True):
        got = gemm.matmul(a, b)
    assert got.dtype == want.dtype == np.result_type(a_dtype, b_dtype)
    np.testing.assert_array_equal(got, want)
    assert _launches("gemm_")  # the tiled GEMM, not NumPy's matmul


def test_empty_products(gemm):
    assert gemm.matmul_graph_safe(np.ones((0, 3)), np.ones((3, 4))).shape == (0, 4)
    np.testing.assert_array_equal(gemm.matmul_graph_safe(np.ones((2, 0)), np.ones((0, 3))),
                                  np.zeros((2, 3)))


def test_wrong_operands_are_named(gemm, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="do not line up"):
        gemm.matmul_graph_safe(a, a)
    with pytest.raises(TypeError, match="float32 or float64.*int64 and int64"):
        gemm.matmul_graph_safe(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64))
    with pytest.raises(TypeError, match="float16 and float16"):
        gemm.matmul_graph_safe(a.astype(np.float16), a.T.astype(np.float16))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        gemm.matmul_graph_safe(np.ones((2, 3, 4)), np.ones((5, 4, 2)))
    with pytest.raises(ValueError, match="needs an `out`"):
        gemm.gemm(a, a.T, accumulate=True)
    with pytest.raises(ValueError, match="overlap"):
        gemm.gemm(a[:, :3], a[:, 1:], _overlapping_out(a))
    with pytest.raises(ValueError, match="split_k"):
        gemm.gemm(a, a.T, split_k=0)
    with pytest.raises(ValueError, match="out has shape"):
        gemm.gemm(a, a.T, np.empty((4, 4), np.float32))


def _overlapping_out(a):
    """A (3, 3) out array that is a view into ``a``'s memory."""
    return a.reshape(-1)[:9].reshape(3, 3)


# ------------------------------------------------------------------ the dispatch
def test_matmul_uses_cublas_unless_the_stream_is_capturing(gemm, rng, monkeypatch):
    a = rng.standard_normal((6, 5)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    default = FakeStream()  # the legacy default stream: CUDA is not even asked
    monkeypatch.setattr(FakeCuda, "current_stream", default)
    gemm.matmul(a, b)
    assert default.queries == 0 and not _launches("gemm_")
    idle = FakeStream(ptr=0x7F00, capturing=False)  # a side stream that is not capturing
    monkeypatch.setattr(FakeCuda, "current_stream", idle)
    gemm.matmul(a, b)
    assert idle.queries == 1 and not _launches("gemm_")
    monkeypatch.setattr(FakeCuda, "current_stream", FakeStream(ptr=0x7F00, capturing=True))
    got = gemm.matmul(a, b)
    assert len(_launches("gemm_f32")) == 1
    _assert_product(got, a, b)


@pytest.mark.parametrize("case", [checks.CONV_CASES[1], checks.CONV_CASES[2],
                                  checks.CONV_CASES[4]], ids=lambda c: str(c[:5]))
def test_convolution_gemms_while_capturing(gemm, rng, monkeypatch, case):
    """The CUDA convolution's three GEMMs (two on transposed views) through gemm.cu."""
    import kernels.cuda as cuda_table
    monkeypatch.setattr(FakeCuda, "current_stream", FakeStream(ptr=0x7F00, capturing=True))
    device = checks.Device(table=cuda_table.KERNELS, to_device=np.array, to_host=np.asarray)
    checks.check_conv2d(device, rng, case, np.float64)
    assert len(_launches("gemm_f64")) == 1 + 2 + 1  # forward; backward with gx; without


def test_the_table_entries(gemm):
    import kernels.cuda as cuda_table
    assert cuda_table.KERNELS["matmul"] is gemm.matmul
    assert REFERENCE["matmul"](np.eye(2), np.arange(4.0).reshape(2, 2)).tolist() == \
        [[0.0, 1.0], [2.0, 3.0]]


# ------------------------------------------------------------------ device lr
@pytest.mark.parametrize("name,state,hypers", checks.OPTIMIZER_CASES,
                         ids=[c[0] for c in checks.OPTIMIZER_CASES])
def test_optimizer_learning_rate_on_the_device(gemm, rng, name, state, hypers):
    """A one-element float64 lr array gives the same update as the Python float."""
    from kernels.cuda import KERNELS
    hyper = dict(hypers[-1])
    shape = (29,)
    param0 = rng.standard_normal(shape).astype(np.float32)
    grad = rng.standard_normal(shape).astype(np.float32)
    results = []
    for lr in (hyper["lr"], np.array([hyper["lr"]])):
        state_arrays = [None if s is None else s.copy()
                        for s in checks._optimizer_state(name, hyper, shape, np.float32, rng)]
        param = param0.copy()
        extra = {"first_step": False} if name == "sgd_update" else {}
        if name in ("adam_update", "adagrad_update"):
            extra["step"] = 3
        KERNELS[name](param, grad, *state_arrays, **{**hyper, "lr": lr}, **extra)
        results.append(param)
    np.testing.assert_array_equal(results[1], results[0])


def test_adam_with_both_lr_and_step_on_the_device(gemm, rng):
    from kernels.cuda import KERNELS
    hyper = dict(checks.OPTIMIZER_CASES[1][2][2])  # AdamW with weight decay
    shape = (17,)
    param0 = rng.standard_normal(shape).astype(np.float32)
    grad = rng.standard_normal(shape).astype(np.float32)
    param_ref = param0.copy()
    REFERENCE["adam_update"](param_ref, grad, np.zeros(shape, np.float32),
                             np.zeros(shape, np.float32), **hyper, step=5)
    param = param0.copy()
    KERNELS["adam_update"](param, grad, np.zeros(shape, np.float32), np.zeros(shape, np.float32),
                           **{**hyper, "lr": np.array([hyper["lr"]])}, step=np.array([5.0]))
    np.testing.assert_allclose(param, param_ref, rtol=1e-6, atol=1e-7)


def test_a_device_lr_must_be_one_float64(gemm):
    from kernels.cuda import KERNELS
    p = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="device lr must be a one-element float64"):
        KERNELS["sgd_update"](p, p.copy(), None, lr=np.array([0.1], np.float32), momentum=0,
                              dampening=0, nesterov=False, weight_decay=0, first_step=True)


# ------------------------------------------------------------------ dropout base
def test_host_offsets_count_from_a_device_base_inside_the_context(gemm):
    from kernels.cuda import KERNELS, random
    base = np.array([1000], dtype=np.uint64)
    with random.offsets_on_device(base, origin=40):
        first = KERNELS["dropout_mask"]((4, 9), 0.3, 5, 40, np.float32)
        second = KERNELS["dropout_mask"]((7,), 0.3, 5, 76, np.float32)
        base += np.uint64(500)  # what a replayed graph does between steps
        moved = KERNELS["dropout_mask"]((7,), 0.3, 5, 76, np.float32)
    np.testing.assert_array_equal(first, REFERENCE["dropout_mask"]((4, 9), 0.3, 5, 1000,
                                                                   np.float32))
    np.testing.assert_array_equal(second, REFERENCE["dropout_mask"]((7,), 0.3, 5, 1036,
                                                                    np.float32))
    np.testing.assert_array_equal(moved, REFERENCE["dropout_mask"]((7,), 0.3, 5, 1536,
                                                                   np.float32))
    # Outside the context host offsets are positions again.
    np.testing.assert_array_equal(KERNELS["dropout_mask"]((7,), 0.3, 5, 76, np.float32),
                                  REFERENCE["dropout_mask"]((7,), 0.3, 5, 76, np.float32))
    with pytest.raises(ValueError, match="before the origin"):
        with random.offsets_on_device(base, origin=40):
            KERNELS["dropout_mask"]((2,), 0.3, 5, 39, np.float32)
    with pytest.raises(TypeError, match="one-element uint64"):
        with random.offsets_on_device(np.zeros(1, np.int64), origin=0):
            pass


# ------------------------------------------------------------------ cuBLAS, captured
# A stand-in for libcublas with the entry points cublas_capture binds. Its GEMM is the
# BLAS definition (column-major, op = N or T, C = alpha op(A) op(B) + beta C, beta 0
# never reading C) and refuses, as cuBLAS does, a leading dimension shorter than the
# stored column. cublasSetStream drops the workspace, as cuBLAS's does. The state each
# GEMM ran with is kept for fake_state().
FAKE_CUBLAS = r"""
#include <cstddef>
#include <algorithm>
struct FakeHandle {
    void* stream; void* workspace; size_t bytes; int pointer_mode, math_mode, magic;
};
static void* seen_stream; static void* seen_workspace; static size_t seen_bytes;
static int seen_pointer_mode, seen_math_mode, gemm_calls, set_stream_calls, batched_calls;
static double seen_alpha, seen_beta;

template <typename T>
static int gemm(void* h, int ta, int tb, int m, int n, int k, const T* alpha, const T* A,
                int lda, const T* B, int ldb, const T* beta, T* C, int ldc) {
    FakeHandle* f = (FakeHandle*)h;
    if (!f || f->magic != 0x5EED) return 1;                       // NOT_INITIALIZED
    if (ta < 0 || ta > 1 || tb < 0 || tb > 1 || m < 0 || n < 0 || k < 0) return 7;
    if (lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) ||
        ldc < std::max(1, m)) return 7;                             // INVALID_VALUE
    seen_stream = f->stream; seen_workspace = f->workspace; seen_bytes = f->bytes;
    seen_pointer_mode = f->pointer_mode; seen_math_mode = f->math_mode;
    seen_alpha = *alpha; seen_beta = *beta; ++gemm_calls;
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            T sum = 0;
            for (int p = 0; p < k; ++p)
                sum += (ta ? A[p + (long)i * lda] : A[i + (long)p * lda]) *
                       (tb ? B[j + (long)p * ldb] : B[p + (long)j * ldb]);
            T* c = C + i + (long)j * ldc;
            *c = *alpha * sum + (*beta == T(0) ? T(0) : *beta * *c);
        }
    return 0;
}

template <typename T>
static int batched(void* h, int ta, int tb, int m, int n, int k, const T* alpha, const T* A,
                   int lda, long long sa, const T* B, int ldb, long long sb, const T* beta,
                   T* C, int ldc, long long sc, int count) {
    if (count < 0) return 7;
    ++batched_calls;
    for (int i = 0; i < count; ++i) {
        int status = gemm<T>(h, ta, tb, m, n, k, alpha, A + i * sa, lda, B + i * sb, ldb,
                             beta, C + i * sc, ldc);
        --gemm_calls;  // counted as one batched call, not as GEMM calls
        if (status) return status;
    }
    return 0;
}
extern "C" {
int cublasCreate_v2(void** handle) {
    *handle = new FakeHandle{nullptr, nullptr, 0, 0, 0, 0x5EED};
    return 0;
}
int cublasGetVersion_v2(void* h, int* version) { *version = 424242; return h ? 0 : 1; }
int cublasSetStream_v2(void* h, void* stream) {
    FakeHandle* f = (FakeHandle*)h;
    f->stream = stream; f->workspace = nullptr; f->bytes = 0;  // back to cuBLAS's own pool
    ++set_stream_calls;
    return 0;
}
int cublasSetWorkspace_v2(void* h, void* workspace, size_t bytes) {
    FakeHandle* f = (FakeHandle*)h; f->workspace = workspace; f->bytes = bytes; return 0;
}
int cublasSetPointerMode_v2(void* h, int mode) { ((FakeHandle*)h)->pointer_mode = mode; return 0; }
int cublasSetMathMode(void* h, int mode) { ((FakeHandle*)h)->math_mode = mode; return 0; }
int cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha,
                   const float* A, int lda, const float* B, int ldb, const float* beta,
                   float* C, int ldc) {
    return gemm<float>(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
int cublasDgemm_v2(void* h, int ta, int tb, int m, int n, int k, const double* alpha,
                   const double* A, int lda, const double* B, int ldb, const double* beta,
                   double* C, int ldc) {
    return gemm<double>(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
int cublasSgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k,
                              const float* alpha, const float* A, int lda, long long sa,
                              const float* B, int ldb, long long sb, const float* beta,
                              float* C, int ldc, long long sc, int count) {
    return batched<float>(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc,
                          sc, count);
}
int cublasDgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k,
                              const double* alpha, const double* A, int lda, long long sa,
                              const double* B, int ldb, long long sb, const double* beta,
                              double* C, int ldc, long long sc, int count) {
    return batched<double>(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc,
                           sc, count);
}
void fake_state(void** stream, void** workspace, size_t* bytes, int* modes, double* scalars,
                int* counts) {
    *stream = seen_stream; *workspace = seen_workspace; *bytes = seen_bytes;
    modes[0] = seen_pointer_mode; modes[1] = seen_math_mode;
    scalars[0] = seen_alpha; scalars[1] = seen_beta;
    counts[0] = gemm_calls; counts[1] = set_stream_calls; counts[2] = batched_calls;
}
}
"""


@pytest.fixture(scope="module")
def fake_cublas_path(tmp_path_factory):
    """The stand-in libcublas, compiled once for this module."""
    folder = tmp_path_factory.mktemp("fake_cublas")
    source, library = folder / "fake_cublas.cpp", folder / "libcublas.so.99"
    source.write_text(FAKE_CUBLAS)
    result = subprocess.run([compiler(), "-std=c++17", "-O1", "-fPIC", "-shared", "-o",
                             str(library), str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return str(library)


class FakeCublasState:
    """What the stand-in's latest GEMM ran with, and how many calls it has seen."""

    def __init__(self, path):
        self._function = ctypes.CDLL(path).fake_state

    def read(self):
        stream, workspace = ctypes.c_void_p(), ctypes.c_void_p()
        size = ctypes.c_size_t()
        modes, counts = (ctypes.c_int * 2)(), (ctypes.c_int * 3)()
        scalars = (ctypes.c_double * 2)()
        self._function(ctypes.byref(stream), ctypes.byref(workspace), ctypes.byref(size),
                       modes, scalars, counts)
        return {"stream": stream.value or 0, "workspace": workspace.value or 0,
                "workspace_bytes": size.value, "pointer_mode": modes[0],
                "math_mode": modes[1], "alpha": scalars[0], "beta": scalars[1],
                "gemm_calls": counts[0], "set_stream_calls": counts[1],
                "batched_calls": counts[2]}


@pytest.fixture
def fake_cublas(gemm, monkeypatch, fake_cublas_path):
    """cublas_capture bound (through its own ctypes code) to the stand-in library."""
    from kernels.cuda import cublas_capture
    monkeypatch.setattr(cublas_capture, "_library", cublas_capture.CublasLibrary(fake_cublas_path))
    return FakeCublasState(fake_cublas_path)


def _capturing_stream(monkeypatch, ptr=0x7F00, capturing=True):
    stream = FakeStream(ptr=ptr, capturing=capturing)
    monkeypatch.setattr(FakeCuda, "current_stream", stream)
    return stream


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_cublas_products_on_odd_shapes_and_transposed_views(fake_cublas, gemm, rng, dtype,
                                                             trans_a, trans_b):
    """Row-major products through the column-major GEMM: operands swapped, views read
    in place with op = T, k = 0 filled with zeros without a call."""
    calls = fake_cublas.read()["gemm_calls"]
    for m, n, k in SHAPES:
        a = _operand(rng, (m, k), dtype, trans_a)
        b = _operand(rng, (k, n), dtype, trans_b)
        got = gemm.matmul_cublas(a, b)
        _assert_product(got, a, b, (m, n, k, trans_a, trans_b))
    assert fake_cublas.read()["gemm_calls"] - calls == len(SHAPES) - 1  # not for k = 0
    assert not _launches("gemm_")  # cuBLAS only, never the tiled kernel


def test_cublas_promotes_mixed_operands(fake_cublas, gemm, rng):
    for a_dtype, b_dtype in MIXED_OPERANDS:
        a, b = _mixed_operands(rng, a_dtype, b_dtype)
        got, want = gemm.matmul_cublas(a, b), np.matmul(a, b)
        assert got.dtype == want.dtype, (a_dtype, b_dtype)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="float16 and int8"):  # float16 is their type
        gemm.matmul_cublas(np.ones((2, 2), np.float16), np.ones((2, 2), np.int8))


def test_cublas_batched_broadcast_and_one_dimensional_operands(fake_cublas, gemm, rng):
    cases = [((3, 5, 4), (3, 4, 6)), ((2, 1, 5, 4), (3, 4, 6)), ((5, 4), (2, 4, 6)),
             ((2, 5, 4), (4, 6)), ((4,), (2, 4, 6)), ((3, 5, 4), (4,)), ((4,), (4,)),
             ((0, 5, 4), (4, 6)), ((3, 5, 0), (3, 0, 6))]
    for shape_a, shape_b in cases:
        a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
        got, want = gemm.matmul_cublas(a, b), np.matmul(a, b)
        assert got.shape == want.shape, (shape_a, shape_b)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12,
                                   err_msg=f"{shape_a} @ {shape_b}")
    before = fake_cublas.read()
    x, g = rng.standard_normal((2, 7, 5)), rng.standard_normal((2, 7, 3))
    np.testing.assert_allclose(gemm.matmul_cublas(np.swapaxes(g, -1, -2), x),
                               np.matmul(np.swapaxes(g, -1, -2), x), rtol=1e-12)
    after = fake_cublas.read()  # the batch is one strided-batched call
    assert (after["gemm_calls"], after["batched_calls"]) == (
        before["gemm_calls"], before["batched_calls"] + 1)


def test_cublas_operands_with_a_leading_dimension_blas_refuses_are_copied(fake_cublas, gemm,
                                                                          rng):
    base = rng.standard_normal(40)
    item = base.itemsize
    # Rows that overlap (row pitch 1 < 3 columns): no BLAS layout reads this in place.
    overlapping = np.lib.stride_tricks.as_strided(base, (6, 3), (item, item))
    array, transposed, ld, _ = gemm._matrix_operand(overlapping, ())
    assert (transposed, ld) == (False, 1)
    array, transposed, ld, _ = gemm._blas_operand(overlapping, ())
    assert (transposed, ld) == (False, 3) and not np.shares_memory(array, base)
    b = rng.standard_normal((3, 4))
    np.testing.assert_allclose(gemm.matmul_cublas(overlapping, b), overlapping @ b,
                               rtol=1e-12)
    np.testing.assert_allclose(gemm.matmul_cublas(b.T, overlapping.T), b.T @ overlapping.T,
                               rtol=1e-12)
    # Windows of a larger array keep their row pitch: read in place.
    big = rng.standard_normal((40, 30))
    for a, b in [(big[3:20, 2:9], big[5:12, 1:25]), (big[3:20, 2:9].T, big[:17, 4:8])]:
        np.testing.assert_allclose(gemm.matmul_cublas(a, b), a @ b, rtol=1e-12)


def test_cublas_handle_keeps_its_workspace_stream_and_host_scalars(fake_cublas, gemm, rng,
                                                                    monkeypatch):
    from kernels.cuda import cublas_capture
    a, b = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((4, 3))
    b = b.astype(np.float32)
    first = _capturing_stream(monkeypatch, ptr=0x7F00, capturing=False)
    gemm.matmul_cublas(a, b)  # not capturing: the handle is made on first use
    state = cublas_capture._handles[0]
    seen = fake_cublas.read()
    assert seen["stream"] == first.ptr
    # The workspace survives cublasSetStream because it is set again after it.
    assert (seen["workspace"], seen["workspace_bytes"]) == (
        cublas_capture.address(state.workspace), cublas_capture.WORKSPACE_BYTES)
    assert (seen["pointer_mode"], seen["math_mode"]) == (
        cublas_capture.CUBLAS_POINTER_MODE_HOST, cublas_capture.CUBLAS_DEFAULT_MATH)
    assert (seen["alpha"], seen["beta"]) == (1.0, 0.0)
    gemm.matmul_cublas(a, b)
    assert fake_cublas.read()["set_stream_calls"] == seen["set_stream_calls"]  # same stream
    second = _capturing_stream(monkeypatch, ptr=0x7F80, capturing=True)
    gemm.matmul_cublas(a, b)
    moved = fake_cublas.read()
    assert moved["stream"] == second.ptr
    assert moved["set_stream_calls"] == seen["set_stream_calls"] + 1
    assert moved["workspace"] == seen["workspace"] and moved["workspace_bytes"] > 0
    # Before a capture, prepare() makes the next GEMM set the stream again, even the same.
    cublas_capture.prepare()
    gemm.matmul_cublas(a, b)
    assert fake_cublas.read()["set_stream_calls"] == moved["set_stream_calls"] + 1
    assert cublas_capture._handles[0] is state
    info = cublas_capture.describe()
    assert (info["library"], info["version"], info["workspace_bytes"]) == (
        cublas_capture.library().path, 424242, cublas_capture.WORKSPACE_BYTES)


def test_a_capture_needs_the_cublas_handle_made_beforehand(fake_cublas, gemm, rng, monkeypatch):
    from kernels.cuda import cublas_capture
    a = rng.standard_normal((3, 3))
    _capturing_stream(monkeypatch, capturing=True)
    with pytest.raises(RuntimeError, match=r"call kernels\.cuda\.cublas_capture\.prepare\(\)"):
        gemm.matmul_cublas(a, a)
    assert not cublas_capture.is_prepared()
    gemm.prepare_capture("cublas", [np.float64])
    assert cublas_capture.is_prepared()
    np.testing.assert_allclose(gemm.matmul_cublas(a, a), a @ a, rtol=1e-12)
    assert not _launches("gemm_")  # preparing for cuBLAS compiles no tiled GEMM


def test_cublas_errors_name_the_call_and_the_status(fake_cublas, gemm):
    from kernels.cuda import cublas_capture
    a = np.zeros((4, 4), np.float32)
    at = cublas_capture.address(a)
    with pytest.raises(RuntimeError, match=r"cublasSgemm_v2\(transa=0, transb=0, m=4, n=4, "
                                           r"k=4, lda=2.*CUBLAS_STATUS_INVALID_VALUE \(7\)"):
        cublas_capture.gemm(np.float32, False, False, 4, 4, 4, at, 2, at, 4, at, 4,
                            stream=0, capturing=False)
    with pytest.raises(TypeError, match="float32 or float64 only"):
        cublas_capture.gemm(np.int32, False, False, 1, 1, 1, at, 1, at, 1, at, 1,
                            stream=0, capturing=False)
    with pytest.raises(RuntimeError, match="cannot load the cuBLAS library"):
        cublas_capture.CublasLibrary("/nonexistent/libcublas.so.99")


def test_the_capture_gemm_is_chosen_by_context_then_environment(fake_cublas, gemm, rng,
                                                                 monkeypatch):
    a = rng.standard_normal((6, 5)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    gemm.prepare_capture("cublas", [np.float32])

    def products():
        """(tiled GEMM launches, cuBLAS calls) made by one gemm.matmul."""
        launches, calls = len(_launches("gemm_f32")), fake_cublas.read()["gemm_calls"]
        _assert_product(gemm.matmul(a, b), a, b)
        return len(_launches("gemm_f32")) - launches, fake_cublas.read()["gemm_calls"] - calls

    assert products() == (0, 0)  # eager, not capturing: numpy's matmul stands in for cuBLAS
    _capturing_stream(monkeypatch, capturing=True)
    assert gemm.capture_gemm_choice() == "custom"
    assert products() == (1, 0)
    with gemm.capture_gemm("cublas") as name:
        assert name == "cublas" and products() == (0, 1)
        with gemm.capture_gemm("CUSTOM"):
            assert products() == (1, 0)
        assert products() == (0, 1)  # the inner block restored the outer choice
    monkeypatch.setenv(gemm.CAPTURE_GEMM_VARIABLE, "cublas")
    assert products() == (0, 1)
    with gemm.capture_gemm("custom"):  # an explicit choice beats the environment
        assert products() == (1, 0)
    monkeypatch.setenv(gemm.CAPTURE_GEMM_VARIABLE, "tf32")
    with pytest.raises(ValueError, match=r"MINIGRAD_CAPTURE_GEMM='tf32' is not a GEMM .*"
                                         r"\('custom', 'cublas'\)"):
        gemm.matmul(a, b)
    with pytest.raises(ValueError, match=r"gemm='fast' is not a GEMM"):
        gemm.resolve_capture_gemm("fast")


def test_eager_products_take_the_capture_gemm_only_when_asked(fake_cublas, gemm, rng):
    a = rng.standard_normal((6, 5))
    calls = fake_cublas.read()["gemm_calls"]
    gemm.matmul(a, a.T)
    assert fake_cublas.read()["gemm_calls"] == calls
    with gemm.capture_gemm("cublas", eager=True):
        np.testing.assert_allclose(gemm.matmul(a, a.T), a @ a.T, rtol=1e-12)
        assert fake_cublas.read()["gemm_calls"] == calls + 1
        with gemm.capture_gemm("custom"):  # not eager: back to cupy.matmul when eager
            gemm.matmul(a, a.T)
            assert not _launches("gemm_")
    gemm.matmul(a, a.T)
    assert fake_cublas.read()["gemm_calls"] == calls + 1 and not _launches("gemm_")


@pytest.mark.parametrize("case", [checks.CONV_CASES[1], checks.CONV_CASES[4]],
                         ids=lambda c: str(c[:5]))
def test_convolution_gemms_through_cublas_while_capturing(fake_cublas, gemm, rng, monkeypatch,
                                                          case):
    import kernels.cuda as cuda_table
    gemm.prepare_capture("cublas", [np.float64])
    _capturing_stream(monkeypatch, capturing=True)
    calls = fake_cublas.read()["gemm_calls"]
    device = checks.Device(table=cuda_table.KERNELS, to_device=np.array, to_host=np.asarray)
    with gemm.capture_gemm("cublas"):
        checks.check_conv2d(device, rng, case, np.float64)
    assert fake_cublas.read()["gemm_calls"] - calls == 1 + 2 + 1
    assert not _launches("gemm_")


def test_finding_the_loaded_cublas(gemm, monkeypatch, fake_cublas_path):
    from kernels.cuda import cublas_capture
    maps = ("7f00-7f10 r-xp 00000000 08:01 1 /usr/lib/libc.so.6\n"
            "7f10-7f20 r-xp 00000000 08:01 2 /opt/nvidia/cu13/lib/libcublasLt.so.13\n"
            "7f20-7f30 r-xp 00000000 08:01 3 /opt/nvidia/cu13/lib/libcublas.so.13\n"
            "7f30-7f40 r--p 00001000 08:01 3 /opt/nvidia/cu13/lib/libcublas.so.13\n"
            "7f40-7f50 rw-p 00000000 00:00 0 [heap]\n")
    assert cublas_capture.loaded_cublas_paths(maps) == ["/opt/nvidia/cu13/lib/libcublas.so.13"]
    # With PyTorch's cuBLAS 12 in the process too, CuPy's CUDA version picks.
    both = ["/site/torch/lib/libcublas.so.12.8.4.1", "/site/nvidia/cu13/lib/libcublas.so.13"]
    assert cublas_capture.preferred_path(both, 13) == both[1]
    assert cublas_capture.preferred_path(both, 12) == both[0]
    assert cublas_capture.preferred_path(both, None) == both[0]
    assert cublas_capture.preferred_path(["/x/libcublas.so.130", "/y/libcublas.so.13.1.0"],
                                         13) == "/y/libcublas.so.13.1.0"
    assert cublas_capture.preferred_path([], 13) is None
    monkeypatch.setenv("MINIGRAD_CUBLAS_LIBRARY", fake_cublas_path)
    assert cublas_capture.library().path == fake_cublas_path
    if ctypes.util.find_library("cublas") is None and not cublas_capture.loaded_cublas_paths():
        with pytest.raises(RuntimeError, match="gemm='custom'.*MINIGRAD_CAPTURE_GEMM=custom"):
            cublas_capture.find_library()


def test_graphed_step_checks_its_gemm_name_first(monkeypatch):
    import minigrad as mg
    import minigrad.cuda as mg_cuda
    from kernels.cuda import gemm as gemm_module
    from minigrad import nn, optim
    model = nn.Sequential(nn.Dense(3, 2))
    opt = optim.get("sgd", model.parameters(), lr=0.1)
    args = (model, mg.losses.get("cross_entropy"), opt, np.zeros((4, 3), np.float32),
            np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"gemm='cudnn' is not a GEMM .*\('custom', 'cublas'\)"):
        mg_cuda.graphed_step(*args, gemm="cudnn")
    monkeypatch.setenv(gemm_module.CAPTURE_GEMM_VARIABLE, "fastest")
    with pytest.raises(ValueError, match="MINIGRAD_CAPTURE_GEMM='fastest'"):
        mg_cuda.graphed_step(*args)
    with pytest.raises(ValueError, match="on 'cuda'"):  # a good name: then the device check
        mg_cuda.graphed_step(*args, gemm="cublas")


def test_a_failing_warm_up_step_is_explained_like_a_failing_capture(gemm, monkeypatch):
    """The warm-up step before a capture multiplies with the capture's GEMM; when that
    fails (the tiled GEMM takes no float16), the error keeps its type and gains a note
    saying so, and nothing is captured."""
    import minigrad.cuda as mg_cuda
    step = object.__new__(mg_cuda.GraphedStep)  # no GPU here: just what __call__ reads
    step.gemm, step._graph = "custom", None
    step._key = ((4, 3), np.dtype(np.float16), (4,), np.dtype(np.int64))
    weight = np.ones((3, 2), np.float16)

    def float16_step(x_data, y_data):  # the product of a float16 Dense layer's forward
        return gemm.matmul(x_data, weight)
    captures = []
    monkeypatch.setattr(step, "_eager", float16_step)
    monkeypatch.setattr(step, "_capture", lambda: captures.append(True))
    with pytest.raises(TypeError, match=r"matmul: .*float16 and float16") as raised:
        step(np.ones((4, 3), np.float16), np.zeros(4, np.int64))
    assert any("warm-up step" in note and "gemm='custom'" in note
               for note in raised.value.__notes__)
    assert not captures


def test_tf32_is_an_explicit_opt_in_for_cupy_and_the_cublas_handle(fake_cublas, gemm, rng,
                                                                    monkeypatch):
    """set_tf32 sets CuPy's float32 compute type and the math mode of minigrad's cuBLAS
    handle (made before or after), and turns both back off; float32 is the default."""
    import sys
    import types

    from kernels.cuda import cublas_capture
    monkeypatch.setattr(gemm, "_tf32", False)
    monkeypatch.setattr(cublas_capture, "_math_mode", cublas_capture.CUBLAS_DEFAULT_MATH)
    compute_types = []
    linalg = types.SimpleNamespace(
        COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7,
        set_compute_type=lambda dtype, kind: compute_types.append((np.dtype(dtype), kind)))
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", linalg)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((5, 4), (4, 3)))

    gemm.matmul_cublas(a, b)  # a handle made before the opt-in ...
    assert fake_cublas.read()["math_mode"] == cublas_capture.CUBLAS_DEFAULT_MATH
    assert not gemm.tf32_enabled()
    assert gemm.set_tf32(True) is False
    gemm.matmul_cublas(a, b)  # ... follows it
    assert fake_cublas.read()["math_mode"] == cublas_capture.CUBLAS_TF32_TENSOR_OP_MATH
    assert compute_types == [(np.dtype(np.float32), 7)] and gemm.tf32_enabled()
    monkeypatch.setattr(cublas_capture, "_handles", {})  # a handle made after it starts in TF32
    gemm.matmul_cublas(a, b)
    assert fake_cublas.read()["math_mode"] == cublas_capture.CUBLAS_TF32_TENSOR_OP_MATH
    assert cublas_capture.describe()["tf32"] is True
    assert gemm.set_tf32(False) is True
    gemm.matmul_cublas(a, b)
    assert fake_cublas.read()["math_mode"] == cublas_capture.CUBLAS_DEFAULT_MATH
    assert compute_types[-1] == (np.dtype(np.float32), 1) and not gemm.tf32_enabled()


@pytest.mark.parametrize("capture_gemm", ["cublas", "custom"])
@pytest.mark.parametrize("n,size,stride,padding", [(4, 10, 1, 1), (6, 16, 2, 1), (1, 12, 1, 0)])
def test_split_weight_gradient_matches_the_reference(fake_cublas, gemm, rng, monkeypatch,
                                                     capture_gemm, n, size, stride, padding):
    """MINIGRAD_CUDA_WGRAD=split: the weight gradient as slices of whole images, read in
    place through strided views (cuBLAS, or the tiled GEMM where captures use it), summed."""
    from kernels.cuda import conv
    from kernels.reference import KERNELS as REFERENCE
    monkeypatch.setenv(conv.WGRAD_VARIABLE, "split")
    x = rng.standard_normal((n, 3, size, size))
    w, b = rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    y_ref, cache_ref = REFERENCE["conv2d_forward"](x, w, b, (stride, stride), (padding,) * 2)
    gy = rng.standard_normal(y_ref.shape)
    want = REFERENCE["conv2d_backward"](gy, cache_ref, True)
    plane = y_ref.shape[2] * y_ref.shape[3]
    splits = conv.weight_grad_splits(n, 5, 27, plane)
    assert n % splits == 0 and (splits > 1) == (n > 1 and n * plane >= 256)
    before = fake_cublas.read()["batched_calls"]
    with gemm.capture_gemm(capture_gemm, eager=True):
        _, cache = conv.conv2d_forward(x, w, b, (stride, stride), (padding,) * 2)
        got = conv.conv2d_backward(gy, cache, True)
    for g, e, name in zip(got, want, ["gx", "gw", "gb"]):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10, err_msg=name)
    if capture_gemm == "cublas" and splits > 1:  # the split product was one batched call
        assert fake_cublas.read()["batched_calls"] == before + 1


def _conv_case(rng, n=4, size=10):
    """A convolution's forward inputs and the reference gradients of a random gy."""
    x = rng.standard_normal((n, 3, size, size))
    w, b = rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    y_ref, cache_ref = REFERENCE["conv2d_forward"](x, w, b, (1, 1), (1, 1))
    gy = rng.standard_normal(y_ref.shape)
    return x, w, b, gy, REFERENCE["conv2d_backward"](gy, cache_ref, True)


def _backward_with(conv, x, w, b, gy):
    _, cache = conv.conv2d_forward(x, w, b, (1, 1), (1, 1))
    return conv.conv2d_backward(gy, cache, True)


def test_auto_weight_gradient_times_each_choice_once_and_keeps_the_fastest(
        fake_cublas, gemm, rng, monkeypatch):
    """MINIGRAD_CUDA_WGRAD=auto: the first backward of a shape times one GEMM, the
    heuristic split and one slice per image; later ones reuse the fastest."""
    from kernels.cuda import conv
    monkeypatch.setenv(conv.WGRAD_VARIABLE, "auto")
    monkeypatch.setattr(conv, "_tuned", {})
    n, plane = 4, 100
    heuristic = conv.split_weight_grad_slices(n, 5, 27, plane)
    assert heuristic == 2  # so the three candidates differ: 1, 2 and 4
    # Made-up timings, so the choice is known: the heuristic's split is the fastest.
    fake_ms = {1: 3.0, heuristic: 1.0, n: 2.0}
    used, timed = [], []
    real = conv._sliced_weight_grad
    monkeypatch.setattr(conv, "_sliced_weight_grad",
                        lambda *args: used.append(args[-1]) or real(*args))

    def fake_timer(fn):
        fn()
        timed.append(used[-1])
        return fake_ms[used[-1]]
    monkeypatch.setattr(conv, "device_time_ms", fake_timer)

    x, w, b, gy, want = _conv_case(rng, n)
    assert conv.weight_grad_splits(n, 5, 27, plane, np.float64) == 1  # nothing timed yet
    got = _backward_with(conv, x, w, b, gy)
    assert timed == [1, 2, 4] and used[-1] == heuristic  # then computed the chosen way
    for g, e, name in zip(got, want, ["gx", "gw", "gb"]):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10, err_msg=name)
    assert conv.weight_grad_splits(n, 5, 27, plane, np.float64) == heuristic
    [entry] = conv.weight_grad_tuning()
    assert entry == {"dtype": "float64", "batch": n, "out_channels": 5, "rows": 27,
                     "plane": plane, "gemm": "cupy", "tf32": False, "splits": heuristic,
                     "ms": fake_ms}
    used.clear()
    _backward_with(conv, x, w, b, gy)
    assert timed == [1, 2, 4] and used == [heuristic]  # not timed again
    # The capture GEMM is another route with its own timings.
    with gemm.capture_gemm("cublas", eager=True):
        _backward_with(conv, x, w, b, gy)
    assert timed[3:] == [1, 2, 4]
    assert [e["gemm"] for e in conv.weight_grad_tuning()] == ["cupy", "cublas"]


def test_auto_weight_gradient_times_with_device_events(fake_cublas, gemm, rng, monkeypatch):
    """The real timer (CUDA events; the emulator's read the clock) gives every
    candidate a time, and the choice is one of them, the fastest."""
    from kernels.cuda import conv
    monkeypatch.setenv(conv.WGRAD_VARIABLE, "auto")
    monkeypatch.setattr(conv, "_tuned", {})
    x, w, b, gy, want = _conv_case(rng, n=2, size=8)
    got = _backward_with(conv, x, w, b, gy)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-10)
    [entry] = conv.weight_grad_tuning()
    assert set(entry["ms"]) == {1, 2} and all(t > 0 for t in entry["ms"].values())
    assert entry["ms"][entry["splits"]] == min(entry["ms"].values())


def test_auto_weight_gradient_tries_one_slice_per_image_only_where_it_fits(
        fake_cublas, gemm, rng, monkeypatch):
    """n partial gradients of O x C*kh*kw each must fit gemm's workspace cap."""
    from kernels.cuda import conv
    monkeypatch.setenv(conv.WGRAD_VARIABLE, "auto")
    x, w, b, gy, _ = _conv_case(rng, n=4)
    for cap, tried in [(4 * 5 * 27, {1, 2, 4}), (4 * 5 * 27 - 1, {1, 2})]:
        monkeypatch.setattr(conv, "_tuned", {})
        monkeypatch.setattr(conv, "MAX_WORKSPACE_ELEMENTS", cap)
        _backward_with(conv, x, w, b, gy)
        [entry] = conv.weight_grad_tuning()
        assert set(entry["ms"]) == tried


def test_auto_weight_gradient_of_a_batch_of_one_times_nothing(gemm, rng, monkeypatch):
    """One image leaves one choice: recorded, without a timing (and its GPU wait)."""
    from kernels.cuda import conv
    monkeypatch.setenv(conv.WGRAD_VARIABLE, "auto")
    monkeypatch.setattr(conv, "_tuned", {})
    monkeypatch.setattr(conv, "device_time_ms", lambda fn: pytest.fail("timed one choice"))
    x, w, b, gy, want = _conv_case(rng, n=1)
    got = _backward_with(conv, x, w, b, gy)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-10)
    [entry] = conv.weight_grad_tuning()
    assert entry["splits"] == 1 and entry["ms"] == {1: None}


def test_auto_weight_gradient_does_not_time_inside_a_capture(gemm, rng, monkeypatch):
    """A capture cannot wait for timings: an untimed shape takes one GEMM, unrecorded."""
    from kernels.cuda import conv
    monkeypatch.setenv(conv.WGRAD_VARIABLE, "auto")
    monkeypatch.setattr(conv, "_tuned", {})
    monkeypatch.setattr(conv, "device_time_ms", lambda fn: pytest.fail("timed in a capture"))
    x, w, b, gy, want = _conv_case(rng)
    _, cache = conv.conv2d_forward(x, w, b, (1, 1), (1, 1))
    _capturing_stream(monkeypatch)
    got = conv.conv2d_backward(gy, cache, True)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-10)
    assert conv.weight_grad_tuning() == []


def test_weight_gradient_mode_is_checked(gemm, monkeypatch):
    from kernels.cuda import conv
    monkeypatch.delenv(conv.WGRAD_VARIABLE, raising=False)
    assert conv.weight_grad_splits(256, 64, 288, 1600) == 1  # one GEMM unless asked
    monkeypatch.setenv(conv.WGRAD_VARIABLE, "split")
    splits = conv.weight_grad_splits(256, 64, 288, 1600)  # the exercise's conv2, batch 256
    assert 1 < splits <= 128 and 256 % splits == 0
    monkeypatch.setenv(conv.WGRAD_VARIABLE, "halves")
    with pytest.raises(ValueError, match="MINIGRAD_CUDA_WGRAD='halves'; choose one of"):
        conv.weight_grad_splits(4, 5, 27, 100)
    with pytest.raises(ValueError, match="'single', 'split', 'auto'"):
        conv.weight_grad_mode()
