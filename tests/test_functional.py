"""Every op: float64 finite-difference gradient checks, stability, and PyTorch agreement."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from gradcheck import check_gradients

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


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)),
                                    ((4,), (4, 3)), ((3, 4), (4,))])
def test_matmul(shapes):
    out = check_gradients(F.matmul, randn(*shapes[0]), randn(*shapes[1]))
    assert out.shape == np.matmul(np.ones(shapes[0]), np.ones(shapes[1])).shape


def test_matmul_shape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        mg.tensor(np.ones((3, 4))) @ mg.tensor(np.ones((5, 2)))


# ------------------------------------------------------------ reductions and shapes
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                           (-1, True)])
def test_sum_mean_max(axis, keepdims):
    x = randn(2, 3, 4)
    check_gradients(lambda t: F.sum(t, axis, keepdims), x)
    check_gradients(lambda t: F.mean(t, axis, keepdims), x)
    check_gradients(lambda t: F.max(t, axis, keepdims), x)


def test_max_ties_share_the_gradient():
    x = mg.tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0, 0.5, 0.5])


def test_reshape_transpose_flatten_getitem():
    x = randn(2, 3, 4)
    check_gradients(lambda t: t.reshape(4, 6), x)
    check_gradients(lambda t: t.transpose(1, 2, 0), x)
    check_gradients(lambda t: F.flatten(t, 1), x)
    check_gradients(lambda t: t[1, :, 1:3], x)
    check_gradients(lambda t: t[np.array([0, 2, 2]), 1], randn(3, 4))  # repeats add up
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(5, 5\)"):
        mg.tensor(x).reshape(5, 5)


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


# ------------------------------------------------------------ PyTorch as a second oracle
def test_ops_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, w, b = randn(2, 3, 9, 8), randn(4, 3, 3, 3), randn(4)
    ours = F.conv2d(mg.tensor(x), mg.tensor(w), mg.tensor(b), 2, 1).numpy()
    theirs = tf.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1)
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-10)
    for ours, theirs in [(F.max_pool2d(mg.tensor(x), 3, 2, 1), tf.max_pool2d(torch.tensor(x), 3, 2, 1)),
                         (F.avg_pool2d(mg.tensor(x), 3, 2, 1), tf.avg_pool2d(torch.tensor(x), 3, 2, 1)),
                         (F.log_softmax(mg.tensor(x), 1), tf.log_softmax(torch.tensor(x), 1)),
                         (F.leaky_relu(mg.tensor(x), 0.2), tf.leaky_relu(torch.tensor(x), 0.2))]:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-10)
