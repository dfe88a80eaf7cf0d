"""Every op: float64 finite-difference gradient checks, stability, and PyTorch agreement."""
import re

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from tests.helpers.gradcheck import check_gradients
from tests.helpers.torch_oracle import check_against_torch

R = np.random.default_rng(1)


def randn(*shape):
    return R.standard_normal(shape)


# ------------------------------------------------------------ elementwise + broadcasting
@pytest.mark.parametrize("op", [F.add, F.sub, F.mul, F.div])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)),
                                    ((1,), (2, 3))])
def test_binary_ops_with_broadcasting(op, shapes):
    a, b = randn(*shapes[0]), randn(*shapes[1])
    if op is F.div:
        b = np.abs(b) + 0.5
    out = check_gradients(op, a, b)
    expected = {F.add: a + b, F.sub: a - b, F.mul: a * b, F.div: a / (b if op is F.div else 1)}[op]
    np.testing.assert_allclose(out, expected)


def test_operators_match_the_functional_ops():
    check_gradients(lambda a, b: (a * b - a / (b * b + 1)) ** 2 + (-a), randn(3, 2), randn(3, 2))
    check_gradients(lambda a: 3.0 - 2.0 / (a * a + 1.0), randn(4))


@pytest.mark.parametrize("name", ["exp", "log", "abs", "neg", "relu", "tanh", "sigmoid",
                                  "leaky_relu"])
def test_unary_ops(name):
    x = randn(3, 5)
    if name == "log":
        x = np.abs(x) + 0.1
    if name in ("abs", "relu", "leaky_relu"):
        x = x + np.sign(x) * 0.05  # keep away from the kink at 0
    check_gradients(getattr(F, name), x)


def test_pow_constant_and_tensor_exponent():
    x = np.abs(randn(2, 3)) + 0.5
    check_gradients(lambda t: t ** 3, x)
    check_gradients(lambda t: t ** 0.5, x)
    check_gradients(lambda t, e: t ** e, x, randn(2, 3))


def test_pow_with_an_array_exponent_broadcasts_and_reduces_the_gradient():
    x = np.abs(randn(3)) + 0.5
    exponents = np.array([[1.0], [2.0]])
    out = check_gradients(lambda t: t ** exponents, x)
    np.testing.assert_allclose(out, x ** exponents)
    check_gradients(lambda t, e: t ** e, x, exponents)  # a broadcast Tensor exponent too


def test_pow_with_exponent_zero_has_zero_gradient_even_at_zero():
    for exponent in (0, 0.0, np.zeros(2), mg.tensor(np.zeros(2))):
        x = mg.tensor(np.array([0.0, 2.0]), requires_grad=True)
        (x ** exponent).sum().backward()
        np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_a_number_to_a_tensor_power():
    check_gradients(lambda e: 2.0 ** e, randn(3))
    check_gradients(lambda e: F.pow(np.array([1.5, 2.0, 3.0]), e), randn(3))


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)),
                                    ((4,), (4, 3)), ((3, 4), (4,))])
def test_matmul(shapes):
    out = check_gradients(F.matmul, randn(*shapes[0]), randn(*shapes[1]))
    assert out.shape == np.matmul(np.ones(shapes[0]), np.ones(shapes[1])).shape


@pytest.mark.parametrize("shapes", [((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3)),
                                    ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 5))])
def test_matmul_vector_and_batch_broadcast_cases(shapes):
    a, b = randn(*shapes[0]), randn(*shapes[1])
    out = check_gradients(F.matmul, a, b)
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-12)
    assert out.shape == np.matmul(a, b).shape


def test_vector_dot_vector_is_zero_dimensional():
    out = mg.tensor([1.0, 2.0]) @ mg.tensor([3.0, 4.0])
    assert out.shape == () and out.item() == 11.0


def test_matmul_shape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        mg.tensor(np.ones((3, 4))) @ mg.tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        mg.tensor(np.ones(3)) @ mg.tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"batch dimensions.*\(2, 3, 4\).*\(3, 4, 5\)"):
        mg.tensor(np.ones((2, 3, 4))) @ mg.tensor(np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match=r"at least one dimension.*\(\).*\(3,\)"):
        F.matmul(mg.tensor(2.0), mg.tensor(np.ones(3)))


# ------------------------------------------------------------ reductions and shapes
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                           (-1, True)])
def test_sum_mean_max(axis, keepdims):
    x = randn(2, 3, 4)
    check_gradients(lambda t: F.sum(t, axis, keepdims), x)
    check_gradients(lambda t: F.mean(t, axis, keepdims), x)
    check_gradients(lambda t: F.amax(t, axis, keepdims), x)  # max(dim) gives (values, indices)


def test_max_ties_share_the_gradient():
    x = mg.tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0, 0.5, 0.5])


def test_reshape_transpose_flatten_getitem():
    x = randn(2, 3, 4)
    check_gradients(lambda t: t.reshape(4, 6), x)
    check_gradients(lambda t: t.transpose(1, 2, 0), x)
    check_gradients(lambda t: t.transpose(-1, 0, 1), x)  # negative axes
    check_gradients(lambda t: t.transpose(-1, 1), x)      # torch's swap of two axes
    check_gradients(lambda t: t.permute(2, 0, 1), x)
    check_gradients(lambda t: F.flatten(t, 1), x)
    check_gradients(lambda t: t[1, :, 1:3], x)
    check_gradients(lambda t: t[np.array([0, 2, 2]), 1], randn(3, 4))  # repeats add up
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(5, 5\)"):
        mg.tensor(x).reshape(5, 5)


def test_flatten_needs_start_dim_inside_the_shape():
    with pytest.raises(IndexError, match=r"dim 1 is out of range.*1 dimensions"):
        F.flatten(mg.tensor(np.ones(5)), 1)
    assert F.flatten(mg.tensor(np.ones((0, 3, 4))), 1).shape == (0, 12)  # an empty batch
    assert F.flatten(mg.tensor(np.ones((2, 3, 4)))).shape == (24,)  # torch.flatten: from dim 0
    assert F.flatten(mg.tensor(np.ones((2, 3, 4))), -2).shape == (2, 12)
    assert mg.tensor(3.0).flatten().shape == (1,)


def test_cast_round_trips_the_gradient():
    x = mg.tensor(np.ones(3), requires_grad=True)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float64


# ------------------------------------------------------------ softmax family
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_and_log_softmax(axis):
    x = randn(3, 4)
    out = check_gradients(lambda t: F.softmax(t, axis), x)
    np.testing.assert_allclose(out.sum(axis=axis), 1)
    check_gradients(lambda t: F.log_softmax(t, axis), x)


def test_softmax_family_is_stable_at_huge_logits():
    x = mg.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32),
                  requires_grad=True)
    for out in (F.softmax(x), F.log_softmax(x), F.sigmoid(x)):
        assert np.all(np.isfinite(out.numpy()))
    loss = F.cross_entropy(x, mg.tensor([1, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx((2e4 + np.log(3)) / 2)
    assert np.all(np.isfinite(x.grad))
    bce = F.binary_cross_entropy_with_logits(mg.tensor(np.array([1e4, -1e4], np.float32)),
                                              mg.tensor(np.array([0.0, 0.0], np.float32)))
    assert bce.item() == pytest.approx(5e3)


# ------------------------------------------------------------ linear, conv, pooling
def test_linear():
    check_gradients(F.linear, randn(5, 3), randn(4, 3), randn(4))
    check_gradients(F.linear, randn(2, 5, 3), randn(4, 3))
    with pytest.raises(ValueError, match="3 features"):
        F.linear(mg.tensor(np.ones((2, 3))), mg.tensor(np.ones((4, 5))))


@pytest.mark.parametrize("weight,bias,match", [
    ((3,), None, r"linear: weight must be 2-D.*\(3,\)"),
    ((2, 3, 1), None, r"linear: weight must be 2-D"),
    ((4, 3), (3,), r"linear: bias must have shape \(4,\).*\(3,\)"),
])
def test_linear_rejects_bad_weight_and_bias_shapes(weight, bias, match):
    with pytest.raises(ValueError, match=match):
        F.linear(mg.tensor(np.ones((2, 3))), mg.tensor(np.ones(weight)),
                 None if bias is None else mg.tensor(np.ones(bias)))


CONV_CASES = [  # (N, C, H, W, O, k, stride, padding)
    (1, 1, 5, 5, 1, 3, 1, 0),
    (2, 3, 7, 6, 4, 3, 1, 1),
    (1, 2, 8, 7, 3, 3, 2, 1),
    (2, 2, 9, 9, 2, 5, 2, 2),
    (1, 3, 6, 5, 2, 1, 1, 0),
    (2, 2, 7, 8, 3, (3, 2), (2, 1), (1, 0)),
    (1, 2, 7, 7, 2, 3, 3, 2),
]


@pytest.mark.parametrize("n,c,h,w,o,k,stride,padding", CONV_CASES)
def test_conv2d(n, c, h, w, o, k, stride, padding):
    kh, kw = (k, k) if isinstance(k, int) else k
    check_gradients(lambda x, wt, b: F.conv2d(x, wt, b, stride, padding),
                    randn(n, c, h, w), randn(o, c, kh, kw), randn(o), atol=1e-5)


def test_conv2d_without_bias():
    check_gradients(lambda x, wt: F.conv2d(x, wt, None, 1, 1), randn(1, 2, 5, 5), randn(3, 2, 3, 3))


POOL_CASES = [  # (shape, kernel, stride, padding)
    ((1, 1, 4, 4), 2, None, 0),
    ((2, 3, 7, 5), 2, None, 0),
    ((1, 2, 7, 7), 3, 2, 1),
    ((2, 1, 6, 9), (2, 3), (1, 2), (1, 1)),
    ((1, 2, 5, 5), 3, 1, 0),
]


@pytest.mark.parametrize("shape,kernel,stride,padding", POOL_CASES)
def test_pooling(shape, kernel, stride, padding):
    # Distinct values so the max is unique and the finite difference is smooth.
    x = R.permutation(np.prod(shape)).reshape(shape) / 7.0
    check_gradients(lambda t: F.max_pool2d(t, kernel, stride, padding), x)
    check_gradients(lambda t: F.avg_pool2d(t, kernel, stride, padding), randn(*shape))


@pytest.mark.parametrize("kernel", [(3, 3), (1, 5), (2, 2), (4, 3), (2, 1)])
def test_conv2d_same_padding_keeps_the_size_and_pads_as_torch(kernel):
    x, w, b = randn(2, 2, 6, 5), randn(3, 2, *kernel), randn(3)
    out = check_gradients(lambda xt, wt, bt: F.conv2d(xt, wt, bt, 1, "same"), x, w, b,
                          atol=1e-5)
    assert out.shape == (2, 3, 6, 5)
    # torch's rule for an even kernel: one more zero row/column at the bottom/right.
    (ph, pw) = ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, kernel[0] - 1 - ph), (pw, kernel[1] - 1 - pw)))
    expected = F.conv2d(mg.tensor(padded), mg.tensor(w), mg.tensor(b)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(F.conv2d(mg.tensor(x), mg.tensor(w), None, 1, "valid").numpy(),
                                  F.conv2d(mg.tensor(x), mg.tensor(w), None, 1, 0).numpy())


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_conv2d_same_padding_agrees_with_pytorch():
    torch = pytest.importorskip("torch")
    x, w = randn(1, 2, 7, 6), randn(3, 2, 4, 3)
    check_against_torch([x, w], lambda *t: torch.nn.functional.conv2d(*t, padding="same"),
                        lambda *t: F.conv2d(*t, None, 1, "same"), atol=1e-12)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(stride=0), ValueError, "conv2d: stride must be at least 1, got 0"),
    (dict(stride=(1, -1)), ValueError, "conv2d: stride must be at least 1"),
    (dict(padding=-1), ValueError, "conv2d: padding must be at least 0, got -1"),
    (dict(stride=1.5), TypeError, "conv2d: stride must be an int or a pair"),
    (dict(padding=(1, 1, 1)), TypeError, "conv2d: padding must be an int or a pair"),
    (dict(padding="same", stride=2), ValueError, "padding='same' needs stride 1"),
    (dict(padding="full"), ValueError, "'valid' or 'same'.*'full'"),
])
def test_conv2d_rejects_bad_stride_and_padding(kwargs, error, match):
    with pytest.raises(error, match=match):
        F.conv2d(mg.tensor(np.ones((1, 1, 5, 5))), mg.tensor(np.ones((1, 1, 3, 3))), **kwargs)


@pytest.mark.parametrize("weight,bias,match", [
    ((1, 3, 3), None, r"conv2d: weight must be 4-D.*\(1, 3, 3\)"),
    ((1, 1, 0, 0), None, r"conv2d: weight of shape \(1, 1, 0, 0\) is empty"),
    ((2, 1, 3, 3), (3,), r"conv2d: bias must have shape \(2,\)"),
])
def test_conv2d_rejects_bad_weight_and_bias_shapes(weight, bias, match):
    with pytest.raises(ValueError, match=match):
        F.conv2d(mg.tensor(np.ones((1, 1, 5, 5))), mg.tensor(np.ones(weight)),
                 None if bias is None else mg.tensor(np.ones(bias)))


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel_size=0), "kernel_size must be at least 1, got 0"),
    (dict(kernel_size=2, stride=0), "stride must be at least 1, got 0"),
    (dict(kernel_size=3, padding=-1), "padding must be at least 0, got -1"),
])
def test_pooling_rejects_bad_window_arguments(pool, kwargs, match):
    with pytest.raises(ValueError, match=f"{pool.__name__}: {match}"):
        pool(mg.tensor(np.ones((1, 1, 4, 4))), **kwargs)


def test_conv_and_pool_reject_bad_shapes():
    with pytest.raises(ValueError, match="4-D"):
        F.conv2d(mg.tensor(np.ones((3, 5, 5))), mg.tensor(np.ones((2, 3, 3, 3))))
    with pytest.raises(ValueError, match="1 channels"):
        F.conv2d(mg.tensor(np.ones((1, 1, 5, 5))), mg.tensor(np.ones((2, 3, 3, 3))))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        F.conv2d(mg.tensor(np.ones((1, 3, 2, 2))), mg.tensor(np.ones((2, 3, 3, 3))))
    with pytest.raises(ValueError, match="padding"):
        F.max_pool2d(mg.tensor(np.ones((1, 1, 4, 4))), 2, 2, 2)


# ------------------------------------------------------------ dropout, batch norm
def test_dropout_scales_kept_and_is_identity_in_eval(rng):
    x = mg.tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.3, training=True)
    kept = y.numpy() != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.numpy())  # gradient is the same mask
    assert F.dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, 1.0)


def test_dropout_repeats_with_the_seed():
    x = mg.tensor(np.ones(100))
    mg.manual_seed(5)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    mg.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (5, 2)])
def test_batch_norm_training_gradients(shape):
    c = shape[1]
    check_gradients(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                    randn(*shape), randn(c), randn(c), atol=1e-5)


def test_batch_norm_training_needs_more_than_one_value_per_channel():
    running_var = np.ones(3)
    for shape in [(1, 3, 1, 1), (1, 3)]:
        with pytest.raises(ValueError, match=r"more than 1 value per channel.*" +
                           re.escape(str(shape))):
            F.batch_norm(mg.tensor(np.ones(shape)), np.zeros(3), running_var, training=True)
    np.testing.assert_array_equal(running_var, 1)  # left as it was
    y = F.batch_norm(mg.tensor(np.ones((1, 3, 1, 1))), np.zeros(3), running_var)  # eval: fine
    assert y.shape == (1, 3, 1, 1)


def test_batch_norm_eval_uses_running_statistics():
    mean, var = np.array([1.0, -1.0]), np.array([4.0, 0.25])
    check_gradients(lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False),
                    randn(3, 2, 2, 2), randn(2), randn(2))
    x = randn(3, 2, 2, 2)
    y = F.batch_norm(mg.tensor(x), mean, var, training=False).numpy()
    expected = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected)


def test_batch_norm_updates_running_statistics_like_pytorch():
    x = randn(6, 3, 4, 4)
    running_mean, running_var = np.zeros(3), np.ones(3)
    F.batch_norm(mg.tensor(x), running_mean, running_var, training=True, momentum=0.1)
    per_channel = x.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(running_mean, 0.1 * per_channel.mean(1))
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * per_channel.var(1, ddof=1))


@pytest.mark.parametrize("margin", [-0.5, -0.05, 0.0, 1.0])
def test_multi_margin_loss_sums_over_the_other_classes_only(margin):
    x, labels = randn(4, 3), np.array([0, 2, 1, 2])
    by_hand = np.mean([sum(max(0.0, margin - x[n, y] + x[n, i])
                           for i in range(3) if i != y) / 3
                       for n, y in enumerate(labels)])
    loss = F.multi_margin_loss(mg.tensor(x), mg.tensor(labels), margin=margin)
    assert loss.item() == pytest.approx(by_hand, rel=1e-12, abs=1e-15)


# ------------------------------------------------------------ edge cases, both kernel tables
@pytest.mark.parametrize("name, derivative", [("relu", 0.0), ("tanh", 1.0), ("sigmoid", 0.25)])
def test_activation_of_a_zero_dimensional_parameter(kernel_mode, name, derivative):
    """A scalar gate keeps its shape through the activation, and so does its gradient."""
    gate = mg.tensor(np.array(0.0, np.float32), requires_grad=True)
    y = getattr(F, name)(gate)
    assert y.shape == ()
    (mg.tensor(np.ones((4, 3), np.float32)) * y).sum().backward()
    assert gate.grad.shape == ()
    assert gate.grad == pytest.approx(12 * derivative)


def _conv_pool_and_loss_ops():
    """Ops whose backward reads the cache of their forward's kernel table."""
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = mg.tensor(rng.standard_normal(4), requires_grad=True)
    logits = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    labels = mg.tensor(np.array([0, 2, 1, 1, 0]))
    ops = {
        "conv2d": lambda: F.conv2d(x, w, b, padding=1),
        "conv2d+relu": lambda: F.conv2d(x, w, b, padding=1, activation="relu"),
        "max_pool2d": lambda: F.max_pool2d(x, 3, 2, 1),
        "avg_pool2d": lambda: F.avg_pool2d(x, 2),
        "sigmoid": lambda: F.sigmoid(x),
        "cross_entropy": lambda: F.cross_entropy(logits, labels, reduction="none"),
    }
    return ops, (x, w, b, logits)


@pytest.mark.parametrize("forward_mode, backward_mode", [("fast", "reference"),
                                                         ("reference", "fast")])
def test_changing_the_kernel_table_between_forward_and_backward(monkeypatch, forward_mode,
                                                                backward_mode):
    """Backward runs the kernel of the table its forward ran, whatever MINIGRAD_KERNELS
    says by then."""
    ops, leaves = _conv_pool_and_loss_ops()
    for name, op in ops.items():
        grads = {}
        for modes in [(forward_mode, forward_mode), (forward_mode, backward_mode)]:
            monkeypatch.setenv("MINIGRAD_KERNELS", modes[0])
            y = op()
            monkeypatch.setenv("MINIGRAD_KERNELS", modes[1])
            y.sum().backward()
            grads[modes] = [None if t.grad is None else t.grad.copy() for t in leaves]
            for t in leaves:
                t.grad = None
        for got, expected in zip(*grads.values()):
            if expected is None:
                assert got is None, name
            else:
                np.testing.assert_array_equal(got, expected, err_msg=name)


def test_an_empty_kernel_mode_means_the_default(monkeypatch):
    """MINIGRAD_KERNELS set to "" is the default (fast), as MINIGRAD_CPU_PARALLEL=""."""
    from minigrad import backend
    monkeypatch.setenv("MINIGRAD_KERNELS", "")
    assert backend.kernel_mode() == "fast"
    assert backend.kernel("conv2d_forward", "cpu") is backend.kernel_table("cpu", "fast")[
        "conv2d_forward"]


@pytest.mark.parametrize("activation", [None, "relu"])
def test_conv2d_of_an_empty_batch(kernel_mode, activation):
    """torch: output (0, 4, 8, 8), input gradient (0, 3, 8, 8), zero weight gradients."""
    x = mg.tensor(np.zeros((0, 3, 8, 8), np.float32), requires_grad=True)
    w = mg.tensor(np.ones((4, 3, 3, 3), np.float32), requires_grad=True)
    b = mg.tensor(np.ones(4, np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1, activation=activation)
    assert y.shape == (0, 4, 8, 8)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 8, 8)
    np.testing.assert_array_equal(w.grad, 0)
    np.testing.assert_array_equal(b.grad, 0)


def test_conv2d_output_dtype_is_the_inputs_whatever_the_bias(kernel_mode):
    x = mg.tensor(np.ones((1, 2, 4, 4), np.float32))
    w = mg.tensor(np.ones((3, 2, 3, 3), np.float32))
    b = mg.tensor(np.full(3, 0.5))  # float64
    y = F.conv2d(x, w, b, padding=1)
    assert y.dtype == np.float32
    assert y.numpy()[0, 0, 1, 1] == 18.5


def test_relu_gradient_is_zero_where_the_input_is_negative_even_for_inf(kernel_mode):
    x = mg.tensor(np.array([-1.0, 2.0, -3.0], np.float32), requires_grad=True)
    F.relu(x).backward(np.array([np.inf, 1.0, np.nan], np.float32))
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])


@pytest.mark.parametrize("name, expected", [
    ("sigmoid", 1 / (1 + np.exp([3.0, 0.0, -1.0, -2.0]))),
    ("tanh", np.tanh([-3.0, 0.0, 1.0, 2.0]))])
def test_sigmoid_and_tanh_of_an_integer_tensor_are_float32(kernel_mode, name, expected):
    y = getattr(F, name)(mg.tensor([-3, 0, 1, 2]))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)


def test_integer_max_pooling_with_padding(kernel_mode):
    x = mg.tensor(np.arange(16).reshape(1, 1, 4, 4) - 20)
    y = F.max_pool2d(x, 3, 1, 1)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y.numpy()[0, 0], [[-15, -14, -13, -13],
                                                    [-11, -10, -9, -9],
                                                    [-7, -6, -5, -5],
                                                    [-7, -6, -5, -5]])


@pytest.mark.parametrize("kernel, stride, padding, expected", [
    (2, 1, 1, [4, 2, 2, 1]),
    (3, 1, 1, [4, 0, 0, 0]),
    (2, 2, 0, [1, 0, 0, 0])])
def test_max_pool_gradient_of_minus_inf_windows_with_padding(kernel_mode, kernel, stride,
                                                             padding, expected):
    """A window of -inf sends its gradient to its first element inside the input, as
    torch does; never to the padding (torch's own numbers)."""
    x = mg.tensor(np.full((1, 1, 2, 2), -np.inf, np.float32), requires_grad=True)
    y = F.max_pool2d(x, kernel, stride, padding)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.ravel(), expected)


def test_edge_cases_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    check_against_torch([np.full((1, 1, 2, 2), -np.inf, np.float32)],
                        lambda t: tf.max_pool2d(t, 2, 1, 1), lambda t: F.max_pool2d(t, 2, 1, 1))
    check_against_torch([np.zeros((0, 3, 8, 8), np.float32), np.ones((4, 3, 3, 3), np.float32)],
                        lambda *t: tf.conv2d(*t, padding=1), lambda *t: F.conv2d(*t, padding=1))
    check_against_torch([np.array([-3, 0, 1, 2])], torch.sigmoid, F.sigmoid)  # float32 out


# ------------------------------------------------------------ PyTorch as a second oracle
def test_ops_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, w, b = randn(2, 3, 9, 8), randn(4, 3, 3, 3), randn(4)
    check_against_torch([x, w, b], lambda *t: tf.conv2d(*t, stride=2, padding=1),
                        lambda *t: F.conv2d(*t, 2, 1), atol=1e-10)
    for ours, theirs in [(lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: tf.max_pool2d(t, 3, 2, 1)),
                         (lambda t: F.avg_pool2d(t, 3, 2, 1), lambda t: tf.avg_pool2d(t, 3, 2, 1)),
                         (lambda t: F.log_softmax(t, 1), lambda t: tf.log_softmax(t, 1)),
                         (lambda t: F.leaky_relu(t, 0.2), lambda t: tf.leaky_relu(t, 0.2))]:
        check_against_torch([x], theirs, ours, atol=1e-10)


# ------------------------------------------------------------ class labels out of range
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss, F.multi_margin_loss])
@pytest.mark.parametrize("label", [-1, 3])
def test_a_label_out_of_range_is_an_error_on_the_cpu(loss, label):
    with pytest.raises(ValueError, match=rf"label {label} is outside \[0, 3\)"):
        loss(mg.tensor(randn(2, 3)), np.array([0, label]))


def test_bad_labels_make_the_loss_nan_on_a_gpu_without_a_host_check():
    """The device branch (run here on NumPy arrays, as the array-module code runs on
    CuPy): NaN exactly where a label is outside [0, C), dtype kept, gradient passed on."""
    losses = mg.tensor(np.arange(5, dtype=np.float32), requires_grad=True)
    labels = np.array([0, 3, -1, 2, 4])
    poisoned = F._nan_for_bad_labels(losses, labels, 4)
    assert poisoned.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(poisoned.numpy()),
                                  [False, False, True, False, True])
    np.testing.assert_array_equal(poisoned.numpy()[[0, 1, 3]], [0, 1, 3])
    poisoned.backward(np.full(5, 2.0, np.float32))
    np.testing.assert_array_equal(losses.grad, np.full(5, 2.0))


@pytest.mark.parametrize("loss", [F.nll_loss, F.multi_margin_loss])
def test_losses_on_a_gpu_never_read_the_labels_back(loss, monkeypatch):
    """On a GPU (NumPy standing in for CuPy here: it wraps label -1 round to the last
    class as CuPy's indexing wraps any bad label) a bad label gives a NaN loss instead
    of a host-side check, which would wait for the GPU every step."""
    from minigrad import backend
    logits = mg.tensor(randn(3, 4), requires_grad=True)
    monkeypatch.setattr(backend, "device_of", lambda array: "cuda")
    monkeypatch.setattr(backend, "xp_for", lambda device: np)
    monkeypatch.setenv("MINIGRAD_KERNELS", "reference")  # the xp code, not CUDA's kernels
    per_sample = loss(logits, np.array([0, -1, 2]), reduction="none").numpy()
    np.testing.assert_array_equal(np.isnan(per_sample), [False, True, False])
    assert np.isnan(loss(logits, np.array([0, -1, 2])).item())
    good = loss(logits, np.array([0, 3, 2]), reduction="none").numpy()
    np.testing.assert_array_equal(per_sample[[0, 2]], good[[0, 2]])
