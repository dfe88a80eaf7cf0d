"""The seven defects of issue 13, each held against PyTorch's behaviour."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import nn
from tests.helpers.torch_oracle import check_against_torch


def ones(*shape):
    return mg.tensor(np.ones(shape))


# ------------------------------------------------------------ 1. dims out of range
AXIS_OPS = {
    "sum": lambda x, d: x.sum(d), "mean": lambda x, d: x.mean(d),
    "max": lambda x, d: x.max(d), "min": lambda x, d: x.min(d),
    "amax": lambda x, d: x.amax(d), "amin": lambda x, d: x.amin(d),
    "prod": lambda x, d: x.prod(d), "var": lambda x, d: x.var(d), "std": lambda x, d: x.std(d),
    "argmax": lambda x, d: x.argmax(d), "argmin": lambda x, d: x.argmin(d),
    "logsumexp": lambda x, d: x.logsumexp(d), "cumsum": lambda x, d: x.cumsum(d),
    "any": lambda x, d: x.any(d), "all": lambda x, d: x.all(d),
    "norm": lambda x, d: x.norm(dim=d),
    "softmax": lambda x, d: F.softmax(x, d), "log_softmax": lambda x, d: F.log_softmax(x, d),
    "flatten": lambda x, d: x.flatten(d), "flatten_end": lambda x, d: x.flatten(0, d),
    "swapaxes": lambda x, d: x.transpose(0, d), "squeeze": lambda x, d: x.squeeze(d),
    "unsqueeze": lambda x, d: x.unsqueeze(d + (1 if d > 0 else -1)),
    "flip": lambda x, d: x.flip(d), "split": lambda x, d: x.split(1, d),
    "chunk": lambda x, d: x.chunk(2, d), "unflatten": lambda x, d: x.unflatten(d, (1, -1)),
    "sort": lambda x, d: x.sort(d), "topk": lambda x, d: x.topk(1, d),
    "cat": lambda x, d: mg.cat([x, x], d), "stack": lambda x, d: mg.stack([x, x], d + (1 if d > 0 else -1)),
    "gather": lambda x, d: x.gather(d, mg.tensor(np.zeros((3, 4, 5, 6), np.int64))),
    "index_select": lambda x, d: x.index_select(d, mg.tensor(np.array([0]))),
}


@pytest.mark.parametrize("op", sorted(AXIS_OPS))
@pytest.mark.parametrize("dim", [4, 5, -5])
def test_a_dim_out_of_range_is_an_index_error(op, dim):
    with pytest.raises(IndexError, match=r"dim -?\d is out of range"):
        AXIS_OPS[op](ones(3, 4, 5, 6), dim)


def test_a_reduction_out_of_range_used_to_reduce_another_axis():
    x = ones(3, 4, 5, 6)
    with pytest.raises(IndexError):
        x.sum(axis=5)
    assert x.sum(axis=(1, -1)).shape == (3, 5)


# ------------------------------------------------------------ 2. 0-d reductions
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "prod", "logsumexp", "norm",
                                "any", "all", "argmax", "cumsum"])
@pytest.mark.parametrize("dim", [0, -1])
def test_a_0d_reduction_over_dim_0_or_minus_1_returns_the_value(op, dim):
    torch = pytest.importorskip("torch")

    def call(x, module):
        if op == "norm":
            return x.norm(dim=dim)
        return getattr(x, op)(dim)
    check_against_torch([np.array(2.5)], lambda t: call(t, torch), lambda t: call(t, mg))


def test_0d_max_over_a_dim_gives_value_and_index_and_dim_1_is_an_index_error():
    values, indices = mg.tensor(3.0).max(0)
    assert values.item() == 3.0 and indices.item() == 0 and indices.dtype == np.int64
    for op in ("sum", "mean", "max", "argmax"):
        with pytest.raises(IndexError, match="dim 1 is out of range"):
            getattr(mg.tensor(3.0), op)(1)


# ------------------------------------------------------------ 3. pow with a tensor exponent
def test_pow_gradients_at_the_edges_follow_torch():
    # every pair of (base, exponent) from these, gradients in both
    bases = [0.0, -0.0, 2.0, -2.0, math.inf, -math.inf, math.nan, 0.5]
    exponents = [0.0, 1.0, 2.0, -1.0, 0.5, -2.5, 3.0]
    b, e = np.meshgrid(np.array(bases), np.array(exponents), indexing="ij")
    check_against_torch([b.ravel(), e.ravel()], lambda x, y: x ** y, lambda x, y: x ** y)


def test_pow_base_gradient_is_zero_where_the_exponent_is_zero():
    x = mg.tensor(np.array([math.inf, -math.inf, math.nan, 0.0]), requires_grad=True)
    (x ** mg.tensor(np.zeros(4))).sum().backward()
    np.testing.assert_array_equal(x.grad, 0)


def test_pow_exponent_gradient_is_nan_for_negative_base_and_minus_inf_for_zero():
    e = mg.tensor(np.array([2.0, -1.0, 2.0]), requires_grad=True)
    (mg.tensor(np.array([-2.0, 0.0, 0.0])) ** e).sum().backward()
    assert np.isnan(e.grad[0]) and e.grad[1] == -math.inf and e.grad[2] == 0


# ------------------------------------------------------------ 4. float ops of integers
@pytest.mark.parametrize("op", ["exp", "log", "sqrt", "rsqrt", "sin", "cos", "log2", "log10",
                                "exp2", "erf", "mean"])
def test_float_ops_of_integer_tensors_give_float32(op):
    torch = pytest.importorskip("torch")
    data = np.array([1, 2, 3])
    if op == "mean":  # torch refuses an integer mean; minigrad gives float32 as its other ops
        assert mg.tensor(data).mean().dtype == np.float32
        return
    check_against_torch([data], lambda t: getattr(torch, op)(t),
                        lambda t: getattr(t, op)(), atol=1e-6)


# ------------------------------------------------------------ 5. mixed advanced indexing
MIXED_INDICES = [
    (0, slice(None), [1, 2]), ([0], slice(None), [1, 2]), (slice(None), 0, [1, 2]),
    (0, [1, 2], slice(None)), (0, [0, 1], [1, 2]), ([0, 1], 0, [1, 2]),
    (slice(None), [0, 2], 0), (Ellipsis, 1, [3, 0, 3]), (None, 1, slice(None), [2, 2]),
    (1, np.array([True, False, True])),
]


@pytest.mark.parametrize("index", MIXED_INDICES, ids=str)
def test_mixed_advanced_indexing_follows_torch_forward_and_backward(index):
    torch = pytest.importorskip("torch")
    as_torch = tuple(torch.tensor(i) if isinstance(i, (list, np.ndarray)) else i for i in index)
    check_against_torch([(2, 3, 4)], lambda t: t[as_torch], lambda t: t[index])


def test_integer_then_list_index_has_torchs_shape():
    assert mg.tensor(np.zeros((2, 3, 4)))[0, :, [1, 2]].shape == (3, 2)


# ------------------------------------------------------------ 6. layers take arrays
def test_a_layer_called_on_a_numpy_array_takes_it_as_a_constant():
    conv = nn.Conv2d(3, 2, 3)
    image = np.ones((1, 3, 8, 8), "f")
    out = conv(image)
    np.testing.assert_allclose(out.numpy(), conv(mg.tensor(image)).numpy())
    dense = nn.Dense(4, 2)
    y = dense(np.ones((2, 4), "f"))
    assert y.shape == (2, 2)
    y.sum().backward()
    assert dense.weight.grad is not None
    assert nn.Sequential(nn.Dense(4, 3), nn.ReLU())(np.ones((2, 4), "f")).shape == (2, 3)


# ------------------------------------------------------------ 7. torch's keywords
def test_dim_and_keepdim_keywords_work_with_numpy_aliases():
    x = mg.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert F.softmax(x, dim=1).shape == (2, 3, 4)
    assert x.softmax(dim=1).shape == x.log_softmax(dim=-1).shape == (2, 3, 4)
    assert x.sum(dim=1).shape == x.sum(axis=1).shape == (2, 4)
    assert x.sum(dim=1, keepdim=True).shape == x.sum(axis=1, keepdims=True).shape == (2, 1, 4)
    assert x.mean(dim=(0, 2)).shape == (3,)
    assert x.argmax(dim=1).shape == (2, 4) and x.argmax(dim=1, keepdim=True).shape == (2, 1, 4)
    assert F.sum(x, dim=0).shape == F.mean(x, axis=0).shape == (3, 4)
    with pytest.raises(TypeError, match="dim=1 and its alias axis=2"):
        x.sum(dim=1, axis=2)


def test_max_and_min_over_a_dim_return_values_and_indices_as_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((3, 5))
    for op in ("max", "min"):
        result = getattr(mg.tensor(a), op)(1)
        assert type(result).__name__ == "ValuesIndices" and result._fields == ("values", "indices")
        values, indices = result
        assert values.shape == (3,) and indices.dtype == np.int64
        assert getattr(mg.tensor(a), op)(dim=1, keepdim=True).values.shape == (3, 1)
        check_against_torch([a], lambda t: getattr(t, op)(1), lambda t: getattr(t, op)(1))
        check_against_torch([a], lambda t: getattr(t, op)(), lambda t: getattr(t, op)())
        assert getattr(mg.tensor(a), op)().shape == ()
        check_against_torch([(3, 5), (1, 5)], lambda t, u: getattr(t, op)(u),
                            lambda t, u: getattr(t, op)(u))


def test_max_over_a_dim_sends_the_gradient_to_the_first_maximum():
    x = mg.tensor(np.array([[1.0, 3.0, 3.0]]), requires_grad=True)
    x.max(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0]])


@pytest.mark.parametrize("start,end", [(0, -1), (1, -1), (0, 1), (1, 2), (-2, -1), (2, 2)])
def test_flatten_takes_start_and_end_dim_with_torchs_defaults(start, end):
    torch = pytest.importorskip("torch")
    check_against_torch([(2, 3, 4)], lambda t: torch.flatten(t, start, end),
                        lambda t: F.flatten(t, start, end))
    check_against_torch([(2, 3, 4)], lambda t: t.flatten(start, end),
                        lambda t: t.flatten(start, end))
    check_against_torch([(2, 3, 4)], torch.flatten, F.flatten)  # the defaults
    check_against_torch([(2, 3, 4)], torch.nn.Flatten(), nn.Flatten())
    with pytest.raises(ValueError, match="start_dim 2 comes after end_dim 1"):
        F.flatten(ones(2, 3, 4), 2, 1)
