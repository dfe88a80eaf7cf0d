"""Pooling beyond the exercise (issue 13): ceil_mode, dilation, count_include_pad,
divisor_override, return_indices with max_unpool2d, 1-D and adaptive pooling, and
their layers, against finite differences and PyTorch."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import nn
from tests.helpers.gradcheck import check_gradients
from tests.helpers.torch_oracle import check_against_torch


EXACT = dict(atol=1e-12, rtol=1e-12)  # float64 throughout: torch's numbers to rounding


def _distinct(rng, *shape):
    """Values far enough apart that a finite difference never changes a maximum."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1


WINDOWS = [  # kernel, stride, padding, dilation, ceil_mode
    (3, 2, 1, 1, True), (2, 2, 0, 1, True), (3, 1, 1, 2, False), (3, 3, 1, 1, True),
    (2, 3, 1, 2, True), ((3, 2), (2, 1), (1, 0), (1, 2), False),
]


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", WINDOWS)
def test_max_pool2d_options(rng, kernel, stride, padding, dilation, ceil_mode):
    x = _distinct(rng, 1, 2, 7, 6)
    args = (kernel, stride, padding, dilation, ceil_mode)
    check_gradients(lambda t: F.max_pool2d(t, *args), x)
    torch = pytest.importorskip("torch")
    check_against_torch([rng.standard_normal((2, 3, 7, 9))],
                        lambda t: torch.nn.functional.max_pool2d(t, *args, return_indices=True),
                        lambda t: F.max_pool2d(t, *args, return_indices=True), **EXACT)


@pytest.mark.parametrize("kernel, stride, padding, _, ceil_mode", WINDOWS)
@pytest.mark.parametrize("count_include_pad, divisor_override", [(True, None), (False, None),
                                                                 (True, 5)])
def test_avg_pool2d_options(rng, kernel, stride, padding, _, ceil_mode, count_include_pad,
                            divisor_override):
    args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    check_gradients(lambda t: F.avg_pool2d(t, *args), rng.standard_normal((1, 1, 7, 6)))
    torch = pytest.importorskip("torch")
    check_against_torch([rng.standard_normal((2, 3, 7, 9))],
                        lambda t: torch.nn.functional.avg_pool2d(t, *args),
                        lambda t: F.avg_pool2d(t, *args), **EXACT)


def test_one_dimensional_pooling(rng):
    x = _distinct(rng, 2, 3, 11)
    check_gradients(lambda t: F.max_pool1d(t, 3, 2, 1, 2, True), x)
    check_gradients(lambda t: F.avg_pool1d(t, 4, 3, 2, True, False), x)
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    for args in [(3, 2, 1, 1, True, True), (2,)]:  # the first returns indices too
        check_against_torch([x], lambda t: tf.max_pool1d(t, *args),
                            lambda t: F.max_pool1d(t, *args), **EXACT)
    check_against_torch([x], lambda t: tf.avg_pool1d(t, 3, 2, 1, True, False),
                        lambda t: F.avg_pool1d(t, 3, 2, 1, True, False), **EXACT)


def test_padding_never_wins_and_nan_propagates(rng):
    x = np.full((1, 1, 3, 3), -np.inf)
    values, indices = F.max_pool2d(mg.tensor(x), 3, 2, 1, return_indices=True)
    assert indices.numpy().ravel().tolist() == [0, 1, 3, 4]  # the first inside element
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = np.nan
    values, indices = F.max_pool2d(mg.tensor(x), 2, ceil_mode=True, return_indices=True)
    assert np.isnan(values.numpy()[0, 0, 0, 1]) and indices.numpy()[0, 0, 0, 1] == 6


@pytest.mark.parametrize("kernel, stride, padding, output_size", [
    (2, None, 0, None), (3, 2, 1, (7, 9)), (3, 2, 1, (1, 1, 7, 9)), (2, 1, 0, None)])
def test_max_unpool2d_inverts_max_pool2d(rng, kernel, stride, padding, output_size):
    x = _distinct(rng, 2, 3, 7, 9) if output_size else _distinct(rng, 2, 3, 6, 8)
    values, indices = F.max_pool2d(mg.tensor(x), kernel, stride, padding, return_indices=True)
    # Overlapping windows can repeat an index: one value lands there and, as in torch,
    # every copy gets its gradient, which finite differences cannot see.
    planes = indices.numpy().reshape(6, -1)
    if all(len(set(plane)) == plane.size for plane in planes):
        check_gradients(lambda t: F.max_unpool2d(t, indices, kernel, stride, padding,
                                                 output_size), values.numpy())
    torch = pytest.importorskip("torch")
    t_idx = torch.tensor(indices.numpy())
    check_against_torch([values.numpy()],
                        lambda t: torch.nn.functional.max_unpool2d(t, t_idx, kernel, stride,
                                                                   padding, output_size),
                        lambda t: F.max_unpool2d(t, indices, kernel, stride, padding, output_size),
                        **EXACT)


@pytest.mark.parametrize("output_size", [1, (3, 4), (None, 2), (5, 7), (7, 9), (4, None)])
def test_adaptive_pooling(rng, output_size):
    check_gradients(lambda t: F.adaptive_avg_pool2d(t, output_size),
                    rng.standard_normal((1, 2, 7, 9)))
    check_gradients(lambda t: F.adaptive_max_pool2d(t, output_size), _distinct(rng, 1, 1, 7, 9))
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = rng.standard_normal((2, 3, 7, 9))
    check_against_torch([x], lambda t: tf.adaptive_avg_pool2d(t, output_size),
                        lambda t: F.adaptive_avg_pool2d(t, output_size), **EXACT)
    check_against_torch([x], lambda t: tf.adaptive_max_pool2d(t, output_size, True),  # + indices
                        lambda t: F.adaptive_max_pool2d(t, output_size, True), **EXACT)


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.max_pool2d(x, 2, padding=2), ValueError, "at most half the kernel"),
    (lambda x: F.max_pool2d(x, 3, dilation=3), ValueError, "smaller than"),
    (lambda x: F.max_pool2d(x, 2, dilation=0), ValueError, "dilation must be at least 1"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda x: F.avg_pool2d(x, 2, ceil_mode=True, stride=0), ValueError, "stride"),
    (lambda x: F.max_pool1d(x, 2), ValueError, "max_pool1d: expected a 3-D input"),
    (lambda x: F.adaptive_avg_pool2d(x, (2, 0)), ValueError, "positive ints"),
    (lambda x: F.adaptive_max_pool2d(x, (1, 2, 3)), ValueError, "int or a pair"),
    (lambda x: F.max_unpool2d(x, mg.tensor(np.full((1, 2, 5, 5), 100)), 2), IndexError,
     r"indices must lie in \[0, 100\)"),
    (lambda x: F.max_unpool2d(x, mg.tensor(np.zeros((1, 2, 5, 4), np.int64)), 2), ValueError,
     "indices of shape"),
    (lambda x: F.max_unpool2d(x, mg.tensor(np.zeros((1, 2, 5, 5))), 2), TypeError,
     "must be integers"),
    (lambda x: F.max_unpool2d(x, mg.tensor(np.zeros((1, 2, 5, 5), np.int64)), 2,
                              output_size=(20, 8)), ValueError, "within one stride"),
])
def test_pool_arguments_are_checked(call, error, match):
    with pytest.raises(error, match=match):
        call(mg.tensor(np.ones((1, 2, 5, 5))))


def test_pool_layers_match_pytorch(rng):
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True, return_indices=True),
         torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True, return_indices=True), 4),
        (nn.MaxPool2d(2, dilation=2), torch.nn.MaxPool2d(2, dilation=2), 4),
        (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
         torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), 4),
        (nn.AvgPool2d(3, 2, 1, divisor_override=2),
         torch.nn.AvgPool2d(3, 2, 1, divisor_override=2), 4),
        (nn.MaxPool1d(3, 2, 1, return_indices=True),
         torch.nn.MaxPool1d(3, 2, 1, return_indices=True), 3),
        (nn.AvgPool1d(3, 2, 1), torch.nn.AvgPool1d(3, 2, 1), 3),
        (nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None)), 4),
        (nn.AdaptiveMaxPool2d(4, return_indices=True),
         torch.nn.AdaptiveMaxPool2d(4, return_indices=True), 4),
    ]
    for ours, theirs, ndim in pairs:  # indices too where the layer returns them
        x = rng.standard_normal((2, 3, 8, 9)[:ndim - 1] + (9,))
        check_against_torch([x], theirs, ours, **EXACT)
        assert ours.state_dict() == {}


def test_unpool_layer_and_summary(rng):
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    x = mg.tensor(_distinct(rng, 1, 2, 4, 5))
    values, indices = pool(x)
    restored = unpool(values, indices, output_size=x.shape).numpy()
    kept = restored != 0
    np.testing.assert_array_equal(restored[kept], x.numpy()[kept])
    assert kept.sum() == values.size
    text = nn.Sequential(nn.MaxPool2d(2, return_indices=True)).summary((1, 2, 4, 4),
                                                                      print_fn=None)
    assert "((1, 2, 2, 2), (1, 2, 2, 2))" in text
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert "(1, 4, 1, 1)" in model.summary((1, 2, 6, 6), print_fn=None)
