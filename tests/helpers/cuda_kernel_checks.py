"""Checks of the kernels.cuda table against kernels.reference, shared by two test files.

``tests/kernels/test_kernels_cuda.py`` runs them on a real GPU (CuPy arrays) and
``tests/kernels/test_kernels_cuda_emulated.py`` on the CPU emulation of the same CUDA C
(NumPy arrays). Each check takes a ``Device``: how to move arrays there and back,
and the tolerance its arithmetic earns (cuBLAS and CUDA's exp/log round
differently from NumPy's).
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from kernels.reference import KERNELS as REFERENCE


@dataclass
class Device:
    """Where the CUDA table runs: array transfer functions and its kernel table."""

    table: dict
    to_device: Callable
    to_host: Callable

    def put(self, *arrays):
        return tuple(None if a is None else self.to_device(a) for a in arrays)


def tolerance(dtype):
    """rtol/atol for comparing against the reference: a few ulps of the sums involved."""
    if dtype == np.float16:  # NumPy and CuPy may round float16 sums differently
        return {"rtol": 2e-3, "atol": 2e-3}
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-11,
                                                                      "atol": 1e-12}


def assert_close(device, actual, expected, what, dtype):
    actual = device.to_host(actual)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, err_msg=what, **tolerance(dtype))


# (batch, channels, height, width, out_channels, (kh, kw), stride, padding, bias)
CONV_CASES = [
    (1, 1, 5, 5, 1, (3, 3), (1, 1), (0, 0), True),      # batch 1, single channel
    (2, 3, 7, 5, 4, (3, 3), (1, 1), (1, 1), True),      # odd, non-square input
    (3, 2, 9, 8, 5, (3, 2), (2, 1), (1, 0), False),     # non-square kernel, mixed stride
    (2, 4, 6, 7, 3, (1, 1), (2, 2), (0, 0), True),      # 1x1, strided
    (1, 3, 11, 10, 2, (5, 4), (3, 2), (2, 1), True),    # big kernel, stride > 1, padding
    (2, 2, 4, 4, 3, (2, 2), (3, 3), (0, 0), False),     # stride larger than the kernel
    (2, 3, 1, 9, 2, (1, 3), (1, 2), (0, 1), True),      # a one-row image
]

# Shapes with nothing in them: an empty batch, and no input channels (the output is
# then the bias alone).
CONV_EMPTY_CASES = [
    (0, 3, 8, 8, 4, (3, 3), (1, 1), (1, 1), True),
    (0, 2, 5, 6, 3, (3, 2), (2, 1), (0, 1), False),
    (2, 0, 5, 5, 3, (3, 3), (1, 1), (1, 1), True),
]

# (batch, channels, height, width, (kh, kw), stride, padding)
POOL_CASES = [
    (1, 1, 4, 4, (2, 2), (2, 2), (0, 0)),
    (2, 3, 7, 5, (2, 2), (2, 2), (0, 0)),     # odd sizes: the last row/column is dropped
    (2, 2, 7, 7, (3, 3), (2, 2), (1, 1)),     # overlapping windows with padding
    (1, 3, 6, 9, (3, 2), (1, 2), (1, 1)),     # non-square window, mixed stride
    (3, 1, 5, 6, (3, 3), (1, 1), (1, 0)),     # stride 1: every pixel in up to 9 windows
    (1, 2, 5, 5, (1, 1), (2, 2), (0, 0)),     # 1x1 window, strided
]

# (rows, classes)
SOFTMAX_CASES = [(1, 1), (1, 4), (7, 4), (33, 37), (5, 1000), (64, 2)]


def check_conv2d(device, rng, case, dtype, activation=None):
    n, c, h, w, o, (kh, kw), stride, padding, has_bias = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if has_bias else None
    y_ref, cache_ref = REFERENCE["conv2d_forward"](x, wt, b, stride, padding, activation)
    y, cache = device.table["conv2d_forward"](*device.put(x, wt, b), stride, padding,
                                              activation)
    assert_close(device, y, y_ref, "conv2d_forward y", dtype)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    gx_ref, gw_ref, gb_ref = REFERENCE["conv2d_backward"](gy, cache_ref, True)
    gx, gw, gb = device.table["conv2d_backward"](device.to_device(gy), cache, True)
    assert_close(device, gx, gx_ref, "conv2d_backward gx", dtype)
    assert_close(device, gw, gw_ref, "conv2d_backward gw", dtype)
    if has_bias:
        assert_close(device, gb, gb_ref, "conv2d_backward gb", dtype)
    else:
        assert gb is None
    gx2, gw2, _ = device.table["conv2d_backward"](device.to_device(gy), cache, False)
    assert gx2 is None
    # The gathers use no atomics: the same inputs give the same bits.
    np.testing.assert_array_equal(device.to_host(gw2), device.to_host(gw))


def check_conv2d_casts_the_bias(device, rng, dtype, bias_dtype):
    """A bias of another float dtype is cast: y and the gradients take x and w's dtype."""
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    wt = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(bias_dtype)
    y_ref, cache_ref = REFERENCE["conv2d_forward"](x, wt, b, (1, 1), (1, 1))
    y, cache = device.table["conv2d_forward"](*device.put(x, wt, b), (1, 1), (1, 1))
    assert_close(device, y, y_ref, "conv2d_forward y", dtype)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    grads_ref = REFERENCE["conv2d_backward"](gy, cache_ref, True)
    grads = device.table["conv2d_backward"](device.to_device(gy), cache, True)
    for what, g, g_ref in zip(("gx", "gw", "gb"), grads, grads_ref):
        assert_close(device, g, g_ref, f"conv2d_backward {what}", dtype)


# (x dtype, w dtype) the CPU table takes: promoted as NumPy promotes them, float32 and
# float64 on the fast kernels, float16 (and integers) on the reference kernel.
CONV_DTYPE_CASES = [(np.uint8, np.float32), (np.float64, np.float32),
                    (np.float32, np.float64), (np.float16, np.float16)]


def small_integers(rng, shape, dtype):
    """Small integers as ``dtype`` (non-negative for unsigned types): every product and
    sum the checks below make stays an exact integer in float16 and up, so the fast
    kernels, the reference and the GPU's libraries must agree to the bit."""
    low = 0 if np.dtype(dtype).kind == "u" else -3
    return rng.integers(low, 4, shape).astype(dtype)


def assert_same(device, actual, expected, what):
    actual = device.to_host(actual)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_array_equal(actual, expected, err_msg=what)


def check_conv2d_promotes_dtypes(device, rng, x_dtype, w_dtype):
    """Mixed or non-float32/64 inputs: NumPy's result type, as the reference gives it
    (the CUDA kernels after a cast, or the reference kernel itself), both ways."""
    x = small_integers(rng, (2, 3, 6, 5), x_dtype)
    wt = small_integers(rng, (4, 3, 3, 3), w_dtype)
    b = small_integers(rng, 4, w_dtype)
    y_ref, cache_ref = REFERENCE["conv2d_forward"](x, wt, b, (1, 1), (1, 1), "relu")
    assert y_ref.dtype == np.result_type(x_dtype, w_dtype)
    y, cache = device.table["conv2d_forward"](*device.put(x, wt, b), (1, 1), (1, 1), "relu")
    assert_same(device, y, y_ref, "conv2d_forward y")
    gy = small_integers(rng, y_ref.shape, y_ref.dtype)
    grads_ref = REFERENCE["conv2d_backward"](gy, cache_ref, True)
    grads = device.table["conv2d_backward"](device.to_device(gy), cache, True)
    for what, g, g_ref in zip(("gx", "gw", "gb"), grads, grads_ref):
        assert_same(device, g, g_ref, f"conv2d_backward {what}")


def check_conv2d_casts_the_gradient(device, rng, dtype, grad_dtype):
    """A gradient of another dtype is cast to the forward's (the CPU table's rule):
    the gradients come out in the forward's dtype."""
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    wt = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y_ref, cache_ref = REFERENCE["conv2d_forward"](x, wt, b, (1, 1), (1, 1))
    _, cache = device.table["conv2d_forward"](*device.put(x, wt, b), (1, 1), (1, 1))
    gy = rng.standard_normal(y_ref.shape).astype(grad_dtype)
    grads_ref = REFERENCE["conv2d_backward"](gy.astype(dtype), cache_ref, True)
    grads = device.table["conv2d_backward"](device.to_device(gy), cache, True)
    for what, g, g_ref in zip(("gx", "gw", "gb"), grads, grads_ref):
        assert_close(device, g, g_ref, f"conv2d_backward {what}", dtype)


# (pooling, input dtype, case): integer images and float16, which the reference
# kernel pools on every device, forward and backward.
POOL_DTYPE_CASES = [("max", np.uint8, POOL_CASES[1]), ("max", np.int32, POOL_CASES[2]),
                    ("avg", np.float16, POOL_CASES[1]), ("avg", np.float16, POOL_CASES[2])]


def check_pool2d_of_other_dtypes(device, rng, kind, dtype, case):
    n, c, h, w, kernel, stride, padding = case
    forward, backward = f"{kind}_pool2d_forward", f"{kind}_pool2d_backward"
    x = small_integers(rng, (n, c, h, w), dtype)
    y_ref, cache_ref = REFERENCE[forward](x, kernel, stride, padding)
    y, cache = device.table[forward](device.to_device(x), kernel, stride, padding)
    assert_close(device, y, y_ref, forward, y_ref.dtype)
    # An integer image's gradient is a float one (float32 here); float16 keeps its own.
    gy = small_integers(rng, y_ref.shape, np.float16 if dtype == np.float16 else np.float32)
    gx_ref = REFERENCE[backward](gy, cache_ref)
    gx = device.table[backward](device.to_device(gy), cache)
    assert_close(device, gx, gx_ref, backward, gx_ref.dtype)


def check_softmax_cross_entropy_of_float16(device, rng):
    """float16 logits go to the reference kernel, and keep the CUDA kernel's contract:
    a label outside [0, classes) gives NaN, not an error or another class's loss."""
    logits = rng.standard_normal((6, 5)).astype(np.float16)
    labels = rng.integers(0, 5, 6)
    losses_ref, cache_ref = REFERENCE["softmax_cross_entropy_forward"](logits, labels)
    losses, cache = device.table["softmax_cross_entropy_forward"](*device.put(logits, labels))
    assert_close(device, losses, losses_ref, "softmax_cross_entropy_forward", np.float16)
    gloss = rng.standard_normal(6).astype(np.float16)
    g_ref = REFERENCE["softmax_cross_entropy_backward"](gloss, cache_ref)
    g = device.table["softmax_cross_entropy_backward"](device.to_device(gloss), cache)
    assert_close(device, g, g_ref, "softmax_cross_entropy_backward", np.float16)
    bad = labels.copy()
    bad[[1, 4]] = [5, -1]
    losses, _ = device.table["softmax_cross_entropy_forward"](*device.put(logits, bad))
    losses = device.to_host(losses)
    assert losses.dtype == np.float16
    assert np.isnan(losses[[1, 4]]).all()
    keep = [0, 2, 3, 5]
    np.testing.assert_allclose(losses[keep], losses_ref[keep], **tolerance(np.float16))


def check_activation(device, rng, name, shape, dtype):
    """activation_forward/backward against the reference, on a transposed
    (non-contiguous) input, with values around zero and far out in both tails, and
    non-finite upstream gradients there (ReLU passes nothing where y <= 0, even inf)."""
    x = (rng.standard_normal(shape[::-1]) * 4).astype(dtype).T
    x.flat[:3] = np.array([0.0, 60.0, -60.0], dtype)[:min(3, x.size)]
    y_ref = REFERENCE["activation_forward"](name, x)
    y = device.table["activation_forward"](name, device.to_device(x))
    assert_close(device, y, y_ref, f"{name} forward", dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    gy.flat[:3] = np.array([np.inf, np.nan, -np.inf], dtype)[:min(3, gy.size)]
    with np.errstate(invalid="ignore"):  # tanh's -inf * (1 - 1) is NaN, as on the device
        gx_ref = REFERENCE["activation_backward"](name, gy, y_ref)
    gx = device.table["activation_backward"](name, device.to_device(gy), y)
    assert_close(device, gx, gx_ref, f"{name} backward", dtype)


def check_max_pool2d(device, rng, case, dtype, ties=False, minus_inf=False):
    """Max pooling against the reference; ``ties``: few distinct values, so the first
    maximum in window order must win; ``minus_inf``: whole planes and corners of -inf,
    so windows of -inf touch the padding, which must never win (the gradient goes to
    the window's first element inside the input)."""
    n, c, h, w, kernel, stride, padding = case
    if ties:
        x = rng.integers(0, 3, (n, c, h, w)).astype(dtype)
    else:
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
    if minus_inf:
        x[0, 0] = -np.inf
        x[-1, -1, :2, :2] = -np.inf
    y_ref, cache_ref = REFERENCE["max_pool2d_forward"](x, kernel, stride, padding)
    y, cache = device.table["max_pool2d_forward"](device.to_device(x), kernel, stride,
                                                  padding)
    np.testing.assert_array_equal(device.to_host(y), y_ref)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    gx_ref = REFERENCE["max_pool2d_backward"](gy, cache_ref)
    gx = device.table["max_pool2d_backward"](device.to_device(gy), cache)
    assert_close(device, gx, gx_ref, "max_pool2d_backward gx", dtype)


def check_avg_pool2d(device, rng, case, dtype):
    n, c, h, w, kernel, stride, padding = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y_ref, cache_ref = REFERENCE["avg_pool2d_forward"](x, kernel, stride, padding)
    y, cache = device.table["avg_pool2d_forward"](device.to_device(x), kernel, stride,
                                                  padding)
    assert_close(device, y, y_ref, "avg_pool2d_forward y", dtype)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    gx_ref = REFERENCE["avg_pool2d_backward"](gy, cache_ref)
    gx = device.table["avg_pool2d_backward"](device.to_device(gy), cache)
    assert_close(device, gx, gx_ref, "avg_pool2d_backward gx", dtype)


def check_softmax_cross_entropy(device, rng, case, dtype, scale=1.0):
    rows, classes = case
    logits = (scale * rng.standard_normal((rows, classes))).astype(dtype)
    labels = rng.integers(0, classes, rows)
    losses_ref, cache_ref = REFERENCE["softmax_cross_entropy_forward"](logits, labels)
    losses, cache = device.table["softmax_cross_entropy_forward"](*device.put(logits, labels))
    assert np.all(np.isfinite(device.to_host(losses)))
    assert_close(device, losses, losses_ref, "softmax_cross_entropy_forward", dtype)
    gloss = rng.standard_normal(rows).astype(dtype)
    g_ref = REFERENCE["softmax_cross_entropy_backward"](gloss, cache_ref)
    g = device.table["softmax_cross_entropy_backward"](device.to_device(gloss), cache)
    assert_close(device, g, g_ref, "softmax_cross_entropy_backward", dtype)


# (kernel name, state buffer names, hyperparameter sets) - every flag on and off.
OPTIMIZER_CASES = [
    ("sgd_update", ("momentum_buffer",), [
        dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0),
        dict(lr=0.05, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0),
        dict(lr=0.05, momentum=0.9, dampening=0.3, nesterov=False, weight_decay=1e-2),
        dict(lr=0.05, momentum=0.8, dampening=0.0, nesterov=True, weight_decay=1e-3),
    ]),
    ("adam_update", ("exp_avg", "exp_avg_sq"), [
        dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
             decoupled_weight_decay=False),
        dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=1e-2,
             decoupled_weight_decay=False),
        dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2,
             decoupled_weight_decay=True),
    ]),
    ("rmsprop_update", ("square_avg", "momentum_buffer", "grad_avg"), [
        dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False),
        dict(lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=1e-2, momentum=0.9, centered=False),
        dict(lr=1e-3, alpha=0.95, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=True),
        dict(lr=1e-3, alpha=0.95, eps=1e-8, weight_decay=1e-3, momentum=0.5, centered=True),
    ]),
    ("adagrad_update", ("state_sum",), [
        dict(lr=1e-2, eps=1e-10, weight_decay=0.0, lr_decay=0.0),
        dict(lr=1e-1, eps=1e-10, weight_decay=1e-2, lr_decay=1e-2),
    ]),
]


def _optimizer_state(name, hyper, shape, dtype, rng):
    """Fresh state buffers as the optimizers make them; None where one is unused."""
    zeros = lambda: np.zeros(shape, dtype=dtype)  # noqa: E731
    if name == "sgd_update":
        return [zeros() if hyper["momentum"] != 0 else None]
    if name == "adam_update":
        return [zeros(), zeros()]
    if name == "rmsprop_update":
        return [zeros(), zeros() if hyper["momentum"] > 0 else None,
                zeros() if hyper["centered"] else None]
    return [np.full(shape, 0.1, dtype=dtype)]  # Adagrad's initial_accumulator_value


def check_optimizer(device, rng, name, hyper, dtype, shape=(5, 7), steps=3):
    """Several steps of one update, param and state held to the reference each step."""
    param_ref = rng.standard_normal(shape).astype(dtype)
    state_ref = _optimizer_state(name, hyper, shape, dtype, rng)
    (param,) = device.put(param_ref.copy())
    state = list(device.put(*(None if s is None else s.copy() for s in state_ref)))
    for step in range(1, steps + 1):
        grad = rng.standard_normal(shape).astype(dtype)
        grad_before = grad.copy()
        (grad_dev,) = device.put(grad)
        extra = {}
        if name == "sgd_update":
            extra["first_step"] = step == 1
        if name in ("adam_update", "adagrad_update"):
            extra["step"] = step
        REFERENCE[name](param_ref, grad, *state_ref, **hyper, **extra)
        result = device.table[name](param, grad_dev, *state, **hyper, **extra)
        assert result is None  # in place, like the reference
        np.testing.assert_array_equal(device.to_host(grad_dev), grad_before,
                                      err_msg=f"{name} wrote to grad")
        assert_close(device, param, param_ref, f"{name} param, step {step}", dtype)
        for i, (s, s_ref) in enumerate(zip(state, state_ref)):
            if s_ref is not None:
                assert_close(device, s, s_ref, f"{name} state {i}, step {step}", dtype)


def check_device_step(device, rng, name, to_step_array, dtype=np.float32):
    """A step count read on the device gives the same update as a host step count."""
    hyper = (OPTIMIZER_CASES[1][2][2] if name == "adam_update" else OPTIMIZER_CASES[3][2][1])
    shape = (33,)
    param0 = rng.standard_normal(shape).astype(dtype)
    grad = device.to_device(rng.standard_normal(shape).astype(dtype))
    results = []
    for step in (4, to_step_array(4.0)):
        state = [device.to_device(s) for s in _optimizer_state(name, hyper, shape, dtype, rng)]
        (param,) = device.put(param0.copy())
        device.table[name](param, grad, *state, **hyper, step=step)
        results.append(device.to_host(param))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=0)


# (shape, p, seed, offset)
DROPOUT_CASES = [
    ((1,), 0.5, 0, 0),
    ((7, 13), 0.5, 1, 0),
    ((3, 5, 33), 0.1, 12345, 1000),
    ((4, 257), 0.9, 2 ** 40 + 3, 2 ** 33 + 11),  # counters past 32 bits
    ((2, 3), 0.0, 7, 5),                         # keep everything
    ((3, 3), 1.0, 7, 5),                         # drop everything
    ((600,), 0.3, -1, 0),                        # a negative seed wraps like the reference
]


def check_dropout_mask(device, case, dtype):
    shape, p, seed, offset = case
    expected = REFERENCE["dropout_mask"](shape, p, seed, offset, dtype)
    mask = device.table["dropout_mask"](shape, p, seed, offset, dtype)
    actual = device.to_host(mask)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)  # same hash: identical masks


# ------------------------------------------------------------ the shared test suite
DTYPES = [np.float32, np.float64]


def case_id(case):
    return "-".join(str(v).replace(" ", "") for v in case)


class KernelTableSuite:
    """Every CUDA kernel against the reference, written once.

    A test module subclasses it as ``Test...`` and provides a ``device`` fixture
    (a :class:`Device`) and ``device_array(values, dtype)``, which puts a small array
    where that device's kernels expect device arrays (CuPy on a GPU, NumPy under the
    CPU emulation).
    """

    @staticmethod
    def device_array(values, dtype):
        raise NotImplementedError

    @pytest.fixture
    def rng(self):
        return np.random.default_rng(20240611)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
    def test_conv2d(self, device, rng, case, dtype):
        check_conv2d(device, rng, case, dtype)

    @pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", CONV_CASES[:5], ids=case_id)
    def test_conv2d_with_fused_activation(self, device, rng, case, dtype, activation):
        check_conv2d(device, rng, case, dtype, activation)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", CONV_EMPTY_CASES, ids=case_id)
    def test_conv2d_of_empty_shapes(self, device, rng, case, dtype):
        check_conv2d(device, rng, case, dtype)

    @pytest.mark.parametrize("dtype, bias_dtype", [(np.float32, np.float64),
                                                   (np.float64, np.float32)])
    def test_conv2d_casts_the_bias_to_the_input_dtype(self, device, rng, dtype, bias_dtype):
        check_conv2d_casts_the_bias(device, rng, dtype, bias_dtype)

    @pytest.mark.parametrize("x_dtype, w_dtype", CONV_DTYPE_CASES,
                             ids=lambda dtype: np.dtype(dtype).name)
    def test_conv2d_promotes_dtypes_as_the_cpu_table_does(self, device, rng, x_dtype,
                                                          w_dtype):
        check_conv2d_promotes_dtypes(device, rng, x_dtype, w_dtype)

    @pytest.mark.parametrize("dtype, grad_dtype", [(np.float32, np.float64),
                                                   (np.float64, np.float32),
                                                   (np.float32, np.float16)],
                             ids=lambda dtype: np.dtype(dtype).name)
    def test_conv2d_backward_casts_the_gradient_to_the_forward_dtype(self, device, rng,
                                                                     dtype, grad_dtype):
        check_conv2d_casts_the_gradient(device, rng, dtype, grad_dtype)

    @pytest.mark.parametrize("kind, dtype, case", POOL_DTYPE_CASES,
                             ids=[f"{kind}-{np.dtype(dtype).name}-{case_id(case)}"
                                  for kind, dtype, case in POOL_DTYPE_CASES])
    def test_pooling_of_integer_and_float16_inputs(self, device, rng, kind, dtype, case):
        check_pool2d_of_other_dtypes(device, rng, kind, dtype, case)

    def test_softmax_cross_entropy_of_float16_logits(self, device, rng):
        check_softmax_cross_entropy_of_float16(device, rng)

    @pytest.mark.parametrize("shape", [(), (1,), (7, 5), (2, 3, 33, 3)], ids=str)
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
    def test_activation(self, device, rng, name, shape, dtype):
        check_activation(device, rng, name, shape, dtype)

    def test_conv2d_rejects_an_unknown_activation(self, device, rng):
        x, w = device.put(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 1, 1), np.float32))
        with pytest.raises(ValueError, match="elu"):
            device.table["conv2d_forward"](x, w, None, (1, 1), (0, 0), "elu")

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
    def test_max_pool2d(self, device, rng, case, dtype):
        check_max_pool2d(device, rng, case, dtype)

    @pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
    def test_max_pool2d_ties_go_to_the_first_maximum(self, device, rng, case):
        check_max_pool2d(device, rng, case, np.float32, ties=True)

    @pytest.mark.parametrize("case", [c for c in POOL_CASES if c[-1] != (0, 0)]
                             + [(1, 2, 3, 4, (1, 1), (1, 1), (1, 1))], ids=case_id)
    def test_max_pool2d_padding_never_wins_over_minus_inf(self, device, rng, case):
        check_max_pool2d(device, rng, case, np.float32, minus_inf=True)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
    def test_avg_pool2d(self, device, rng, case, dtype):
        check_avg_pool2d(device, rng, case, dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", SOFTMAX_CASES, ids=case_id)
    def test_softmax_cross_entropy(self, device, rng, case, dtype):
        check_softmax_cross_entropy(device, rng, case, dtype)

    def test_softmax_cross_entropy_is_stable_for_huge_logits(self, device, rng):
        check_softmax_cross_entropy(device, rng, (9, 6), np.float32, scale=1e4)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("name,state,hypers", OPTIMIZER_CASES,
                             ids=[c[0] for c in OPTIMIZER_CASES])
    def test_optimizer_updates(self, device, rng, name, state, hypers, dtype):
        for hyper in hypers:
            check_optimizer(device, rng, name, hyper, dtype)

    @pytest.mark.parametrize("name,state,hypers", OPTIMIZER_CASES,
                             ids=[c[0] for c in OPTIMIZER_CASES])
    def test_optimizer_updates_of_float16_parameters(self, device, rng, name, state, hypers):
        """No kernel is built for float16: the reference update runs, as on the CPU.
        (Adam's eps of 1e-8 is 0 in float16, so a zero gradient divides 0 by 0 there
        as on the CPU: the warning is the reference's own.)"""
        with np.errstate(divide="ignore", invalid="ignore"):
            for hyper in hypers:
                check_optimizer(device, rng, name, hyper, np.float16)

    @pytest.mark.parametrize("name", ["adam_update", "adagrad_update"])
    def test_optimizer_step_count_on_the_device(self, device, rng, name):
        check_device_step(device, rng, name, lambda v: self.device_array([v], np.float64))

    @pytest.mark.parametrize("dtype", DTYPES + [np.float16])  # float16: the float32 pattern
    @pytest.mark.parametrize("case", DROPOUT_CASES, ids=case_id)
    def test_dropout_mask_matches_the_numpy_hash(self, device, case, dtype):
        check_dropout_mask(device, case, dtype)

    def test_dropout_mask_offset_on_the_device(self, device):
        dropout_mask = device.table["dropout_mask"]
        host = dropout_mask((5, 9), 0.4, 3, 77, np.float32)
        on_device = dropout_mask((5, 9), 0.4, 3, self.device_array([77], np.uint64), np.float32)
        np.testing.assert_array_equal(device.to_host(on_device), device.to_host(host))
