"""The CUDA kernel table (kernels.cuda) against the reference, on a real GPU.

Marked ``gpu``: skipped where CuPy or a GPU is missing. The same checks run on the
CPU emulation of the CUDA C in tests/kernels/test_kernels_cuda_emulated.py; here they run
on the GPU, through NVRTC, cuBLAS and CUDA's own math library, plus what only a
GPU can show: the exercise's full-size shapes, repeatability of the gathers, and
replay of the kernels inside a captured CUDA graph.
"""
import numpy as np
import pytest

from tests.helpers import cuda_kernel_checks as checks

pytestmark = pytest.mark.gpu

cp = pytest.importorskip("cupy", reason="CuPy is not installed")
try:
    _gpus = cp.cuda.runtime.getDeviceCount()
except Exception as exc:  # no driver, or a CUDA library that fails to load
    pytest.skip(f"CuPy finds no usable GPU ({exc})", allow_module_level=True)
if _gpus == 0:
    pytest.skip("CuPy finds no GPU", allow_module_level=True)

from kernels.cuda import KERNELS  # noqa: E402  (after the skips: needs a GPU to mean anything)
from kernels.reference import KERNELS as REFERENCE  # noqa: E402


@pytest.fixture
def device():
    return checks.Device(table=KERNELS, to_device=cp.asarray, to_host=cp.asnumpy)


# ------------------------------------------------------------ every kernel vs reference
class TestKernelTableOnTheGpu(checks.KernelTableSuite):
    @staticmethod
    def device_array(values, dtype):
        return cp.asarray(values, dtype=dtype)


def test_softmax_cross_entropy_takes_labels_of_any_integer_type():
    rng = np.random.default_rng(20240611)
    logits = cp.asarray(rng.standard_normal((6, 5)).astype(np.float32))
    labels = rng.integers(0, 5, 6)
    expected, _ = KERNELS["softmax_cross_entropy_forward"](logits, cp.asarray(labels))
    for labels_in in (cp.asarray(labels, dtype=cp.int32), labels.astype(np.int16)):
        losses, _ = KERNELS["softmax_cross_entropy_forward"](logits, labels_in)
        np.testing.assert_array_equal(cp.asnumpy(losses), cp.asnumpy(expected))


def test_the_cuda_device_table_uses_these_kernels():
    from minigrad import backend
    table = backend.kernel_table("cuda", "fast")
    for name, function in KERNELS.items():
        assert table[name] is function, name
    assert backend.kernel_table("cuda", "reference")["conv2d_forward"] is \
        REFERENCE["conv2d_forward"]


# ------------------------------------------------------------ the exercise's real sizes
def _normal(gen, shape, scale=1.0):
    """A float32 standard-normal CuPy array drawn on the host (NumPy's generator)."""
    return cp.asarray((scale * gen.standard_normal(shape)).astype(np.float32))


def _close_on_gpu(actual, expected, what, rtol=1e-4):
    """float32 sums of hundreds of terms, in different orders: relative to the scale."""
    scale = float(cp.abs(expected).max()) or 1.0
    np.testing.assert_allclose(cp.asnumpy(actual), cp.asnumpy(expected), rtol=rtol,
                               atol=rtol * scale, err_msg=what)


@pytest.mark.parametrize("shape", [(32, 3, 80, 80, 32), (32, 32, 40, 40, 64),
                                   (32, 64, 20, 20, 128), (256, 3, 80, 80, 32)],
                         ids=lambda s: "x".join(map(str, s)))
def test_exercise_conv_layers_match_the_cupy_reference(shape):
    """Full-size grids, against the reference run by CuPy on the same GPU."""
    n, c, h, w, o = shape
    gen = np.random.default_rng(1)
    x = _normal(gen, (n, c, h, w))
    wt = _normal(gen, (o, c, 3, 3)) * 0.1
    b = _normal(gen, o)
    y_ref, cache_ref = REFERENCE["conv2d_forward"](x, wt, b, (1, 1), (1, 1))
    y, cache = KERNELS["conv2d_forward"](x, wt, b, (1, 1), (1, 1))
    _close_on_gpu(y, y_ref, "y")
    gy = _normal(gen, y_ref.shape)
    for got, want, what in zip(KERNELS["conv2d_backward"](gy, cache, True),
                               REFERENCE["conv2d_backward"](gy, cache_ref, True),
                               ("gx", "gw", "gb")):
        _close_on_gpu(got, want, what)


def test_exercise_pool_and_loss_match_the_cupy_reference():
    gen = np.random.default_rng(2)
    x = _normal(gen, (32, 32, 80, 80))
    y_ref, cache_ref = REFERENCE["max_pool2d_forward"](x, (2, 2), (2, 2), (0, 0))
    y, cache = KERNELS["max_pool2d_forward"](x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(cp.asnumpy(y), cp.asnumpy(y_ref))
    gy = _normal(gen, y.shape)
    np.testing.assert_array_equal(cp.asnumpy(KERNELS["max_pool2d_backward"](gy, cache)),
                                  cp.asnumpy(REFERENCE["max_pool2d_backward"](gy, cache_ref)))
    logits = _normal(gen, (256, 1000)) * 5
    labels = cp.asarray(np.random.default_rng(3).integers(0, 1000, 256))
    losses_ref, ce_cache_ref = REFERENCE["softmax_cross_entropy_forward"](logits, labels)
    losses, ce_cache = KERNELS["softmax_cross_entropy_forward"](logits, labels)
    _close_on_gpu(losses, losses_ref, "losses", rtol=1e-5)
    gloss = cp.full(256, 1 / 256, dtype=cp.float32)
    _close_on_gpu(KERNELS["softmax_cross_entropy_backward"](gloss, ce_cache),
                  REFERENCE["softmax_cross_entropy_backward"](gloss, ce_cache_ref),
                  "glogits", rtol=1e-5)


def test_exercise_dense_weight_adam_steps_match_the_cupy_reference():
    gen = np.random.default_rng(4)
    shape = (128, 12800)
    start = _normal(gen, shape)
    params = [start.copy(), start.copy()]
    states = [[cp.zeros(shape, cp.float32), cp.zeros(shape, cp.float32)] for _ in range(2)]
    hyper = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False)
    for step in (1, 2, 3):
        grad = _normal(gen, shape)
        REFERENCE["adam_update"](params[0], grad, *states[0], step=step, **hyper)
        KERNELS["adam_update"](params[1], grad, *states[1], step=step, **hyper)
    _close_on_gpu(params[1], params[0], "param", rtol=1e-6)


def test_conv_backward_repeats_bit_for_bit():
    """Gathers with no atomics: two backward passes give identical bits."""
    gen = np.random.default_rng(5)
    x = _normal(gen, (8, 16, 33, 31))
    wt = _normal(gen, (24, 16, 3, 3))
    y, cache = KERNELS["conv2d_forward"](x, wt, None, (2, 1), (1, 1))
    gy = _normal(gen, y.shape)
    first = KERNELS["conv2d_backward"](gy, cache, True)
    second = KERNELS["conv2d_backward"](gy, cache, True)
    for a, b in zip(first[:2], second[:2]):
        np.testing.assert_array_equal(cp.asnumpy(a), cp.asnumpy(b))


# ------------------------------------------------------------ CUDA graph replay
def _capture(stream, body):
    """Capture ``body()`` on ``stream`` into a CUDA graph (CuPy stream capture)."""
    with stream:
        stream.begin_capture()
        try:
            body()
        finally:
            graph = stream.end_capture()
    return graph


def test_adam_with_a_device_step_replays_in_a_cuda_graph():
    gen = np.random.default_rng(6)
    shape = (1000,)
    grad = _normal(gen, shape)
    start = _normal(gen, shape)
    hyper = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2,
                 decoupled_weight_decay=True)
    eager = [start.copy(), cp.zeros(shape, cp.float32), cp.zeros(shape, cp.float32)]
    for step in (1, 2, 3):
        KERNELS["adam_update"](eager[0], grad, eager[1], eager[2], step=step, **hyper)

    graphed = [start.copy(), cp.zeros(shape, cp.float32), cp.zeros(shape, cp.float32)]
    step = cp.zeros(1, dtype=cp.float64)
    KERNELS["adam_update"](cp.zeros(shape, cp.float32), grad, cp.zeros(shape, cp.float32),
                           cp.zeros(shape, cp.float32), step=1, **hyper)  # load the module
    stream = cp.cuda.Stream(non_blocking=True)

    def one_step():
        cp.add(step, 1, out=step)
        KERNELS["adam_update"](graphed[0], grad, graphed[1], graphed[2], step=step, **hyper)
    graph = _capture(stream, one_step)
    for _ in range(3):
        graph.launch(stream)
    stream.synchronize()
    assert float(step[0]) == 3.0
    np.testing.assert_allclose(cp.asnumpy(graphed[0]), cp.asnumpy(eager[0]), rtol=1e-6)


def test_dropout_with_a_device_offset_draws_new_masks_in_a_cuda_graph():
    shape, p, seed = (17, 9), 0.3, 11
    size = 17 * 9
    offset = cp.zeros(1, dtype=cp.uint64)
    KERNELS["dropout_mask"](shape, p, seed, offset, np.float32)  # load the module
    stream = cp.cuda.Stream(non_blocking=True)
    masks = []

    def draw():
        masks.append(KERNELS["dropout_mask"](shape, p, seed, offset, np.float32))
        cp.add(offset, np.uint64(size), out=offset)
    graph = _capture(stream, draw)
    for replay in range(3):
        graph.launch(stream)
        stream.synchronize()
        expected = REFERENCE["dropout_mask"](shape, p, seed, replay * size, np.float32)
        np.testing.assert_array_equal(cp.asnumpy(masks[0]), expected)
