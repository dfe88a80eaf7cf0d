"""Shape and indexing ops with torch's names: finite-difference gradients (float64),
torch as the oracle for shapes, values and gradients, and CuPy (gpu-marked)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from tests.helpers.gradcheck import check_gradients
from tests.helpers.torch_oracle import check_against_torch

R = np.random.default_rng(5)
X = R.standard_normal((2, 3, 4))
INDEX = np.array([[[0, 2, 2, 1], [1, 0, 0, 0]], [[2, 2, 1, 0], [0, 1, 2, 2]]])  # (2, 2, 4)


def torch():
    return pytest.importorskip("torch")


# name -> (torch call, minigrad call), each on X; a tuple result compares every part
SHAPES = {
    "squeeze_all": (lambda t: t[:, :1].squeeze(), lambda t: t[:, :1].squeeze()),
    "squeeze_dim": (lambda t: t[:, :1].squeeze(1), lambda t: t[:, :1].squeeze(1)),
    "squeeze_not_one": (lambda t: t.squeeze(0), lambda t: t.squeeze(0)),
    "squeeze_dims": (lambda t: t[:1, :1].squeeze((0, 1)), lambda t: t[:1, :1].squeeze((0, 1))),
    "unsqueeze": (lambda t: t.unsqueeze(1), lambda t: t.unsqueeze(1)),
    "unsqueeze_end": (lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
    "expand": (lambda t: t[:, :1].expand(5, 2, 3, 4), lambda t: t[:, :1].expand(5, 2, 3, 4)),
    "expand_keep": (lambda t: t[:, :1].expand(-1, 3, -1), lambda t: t[:, :1].expand(-1, 3, -1)),
    "flip": (lambda t: t.flip(0, 2), lambda t: t.flip(0, 2)),
    "flip_one": (lambda t: t.flip(-1), lambda t: t.flip(-1)),
    "cat": (lambda t: torch().cat([t, t[:, :1] * 2], 1), lambda t: mg.cat([t, t[:, :1] * 2], 1)),
    "cat_last": (lambda t: torch().cat([t, t.exp()], dim=-1), lambda t: mg.cat([t, t.exp()], dim=-1)),
    "stack": (lambda t: torch().stack([t, t * 3], 1), lambda t: mg.stack([t, t * 3], 1)),
    "stack_end": (lambda t: torch().stack([t, t], -1), lambda t: mg.stack([t, t], -1)),
    "split_size": (lambda t: t.split(2, 2), lambda t: t.split(2, 2)),
    "split_uneven": (lambda t: t.split(2, 1), lambda t: t.split(2, 1)),
    "split_sections": (lambda t: t.split([1, 3], -1), lambda t: t.split([1, 3], -1)),
    "chunk": (lambda t: t.chunk(2, 1), lambda t: t.chunk(2, 1)),
    "chunk_more": (lambda t: t.chunk(3, 2), lambda t: t.chunk(3, 2)),
    "repeat": (lambda t: t.repeat(2, 1, 3), lambda t: t.repeat(2, 1, 3)),
    "repeat_lead": (lambda t: t.repeat(2, 1, 2, 1), lambda t: t.repeat(2, 1, 2, 1)),
    "unflatten": (lambda t: t.unflatten(2, (2, 2)), lambda t: t.unflatten(2, (2, 2))),
    "unflatten_infer": (lambda t: t.unflatten(-1, (-1, 2)), lambda t: t.unflatten(-1, (-1, 2))),
    "gather": (lambda t: t.gather(1, torch().tensor(INDEX)), lambda t: t.gather(1, mg.tensor(INDEX, device=t.device))),
    "gather_last": (lambda t: t.gather(2, torch().tensor(INDEX[:, :, :3])),
                    lambda t: t.gather(2, mg.tensor(INDEX[:, :, :3], device=t.device))),
    "index_select": (lambda t: t.index_select(2, torch().tensor([3, 0, 3])),
                     lambda t: t.index_select(2, mg.tensor(np.array([3, 0, 3]), device=t.device))),
    "masked_fill": (lambda t: t.masked_fill(t > 0.5, -1.5), lambda t: t.masked_fill(t > 0.5, -1.5)),
    "masked_fill_broadcast": (lambda t: t.masked_fill(torch().tensor([True, False, True, False]), 2.0),
                              lambda t: t.masked_fill(mg.tensor(np.array([True, False, True, False]), device=t.device), 2.0)),
    "sort": (lambda t: t.sort(1), lambda t: t.sort(1)),
    "sort_descending": (lambda t: t.sort(dim=-1, descending=True),
                        lambda t: t.sort(dim=-1, descending=True)),
    "topk": (lambda t: t.topk(2), lambda t: t.topk(2)),
    "topk_smallest": (lambda t: t.topk(2, dim=1, largest=False),
                      lambda t: t.topk(2, dim=1, largest=False)),
    "getitem_mixed": (lambda t: t[1, :, [0, 3]], lambda t: t[1, :, [0, 3]]),
    "getitem_repeats": (lambda t: t[[0, 0, 1], 1:], lambda t: t[[0, 0, 1], 1:]),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_op_agrees_with_torch(name):
    check_against_torch([X], *SHAPES[name])


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_op_gradient_matches_finite_differences(name):
    mg_fn = SHAPES[name][1]

    def summed(t):  # a tuple result (split, sort): every part, in one tensor
        out = mg_fn(t)
        if not isinstance(out, tuple):
            return out
        floats = [o for o in out if o.dtype.kind == "f"]
        return mg.cat([o.reshape(-1) for o in floats], 0)
    check_gradients(summed, X)


def test_scatter_add_as_torch_with_repeated_indices():
    index = INDEX  # repeated targets along dim 1 add up
    check_against_torch([(2, 3, 4), (2, 2, 4)],  # torch's backward needs src shaped as index
                        lambda t, s: t.scatter_add(1, torch().tensor(index), s),
                        lambda t, s: t.scatter_add(1, mg.tensor(index), s))
    check_gradients(lambda t, s: t.scatter_add(1, mg.tensor(index), s), X, R.standard_normal((2, 2, 5)))
    check_gradients(lambda t, s: F.scatter_add(t, 0, mg.tensor(np.array([[0, 1], [0, 0]])), s),
                    R.standard_normal((2, 2)), R.standard_normal((2, 3)))


def test_masked_fill_with_a_tensor_value_sends_it_the_gradient():
    check_against_torch([X, np.array(0.25)], lambda t, v: t.masked_fill(t > 0, v),
                        lambda t, v: t.masked_fill(t > 0, v))


def test_one_hot_as_torch():
    labels = np.array([[0, 2], [1, 4]])
    check_against_torch([labels], lambda t: torch().nn.functional.one_hot(t),
                        lambda t: F.one_hot(t))
    check_against_torch([labels], lambda t: torch().nn.functional.one_hot(t, 6),
                        lambda t: F.one_hot(t, num_classes=6))
    with pytest.raises(ValueError, match="non-negative"):
        F.one_hot(mg.tensor(np.array([-1, 0])))
    with pytest.raises(ValueError, match="num_classes=3"):
        F.one_hot(mg.tensor(np.array([3])), 3)
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(mg.tensor(np.array([1.0])))


def test_sort_is_stable_and_puts_nan_last_as_torch():
    a = np.array([[3.0, 1.0, 3.0, np.nan, 1.0, 2.0]])
    for descending in (False, True):
        check_against_torch([a], lambda t: t.sort(dim=1, descending=descending, stable=True),
                            lambda t: t.sort(dim=1, descending=descending, stable=True))


def test_cat_promotes_dtypes_as_torch_and_checks_shapes():
    check_against_torch([np.arange(3), np.ones(2, np.float32)],
                        lambda a, b: torch().cat([a, b]), lambda a, b: mg.cat([a, b]), grad=False)
    with pytest.raises(ValueError, match="differ outside dim 0"):
        mg.cat([mg.tensor(np.ones((2, 3))), mg.tensor(np.ones((2, 4)))])
    with pytest.raises(ValueError, match="one shape"):
        mg.stack([mg.tensor(np.ones(2)), mg.tensor(np.ones(3))])
    with pytest.raises(TypeError, match="list or tuple of tensors"):
        mg.cat(mg.tensor(np.ones(2)))


def test_shape_argument_errors_are_clear():
    x = mg.tensor(X)
    with pytest.raises(ValueError, match="only dims of size 1 can grow"):
        x.expand(2, 5, 4)
    with pytest.raises(ValueError, match="at least 3"):
        x.repeat(2, 2)
    with pytest.raises(ValueError, match="add up to 4"):
        x.split([1, 2], 2)
    with pytest.raises(ValueError, match=r"sizes \(3, -1\)"):
        x.unflatten(2, (3, -1))
    with pytest.raises(ValueError, match="k must be"):
        x.topk(5)
    with pytest.raises(IndexError, match="index out of range"):
        x.gather(1, mg.tensor(np.full((2, 3, 4), 3)))
    with pytest.raises(IndexError, match="out of range"):
        x.index_select(0, mg.tensor(np.array([2])))
    with pytest.raises(TypeError, match="bool"):
        x.masked_fill(mg.tensor(np.ones(4)), 0.0)


def test_basic_indexing_backward_writes_and_advanced_adds():
    x = mg.tensor(np.zeros((3, 2)), requires_grad=True)
    (x[1:, 0].sum() + x[[0, 0, 2], 1].sum()).backward()
    np.testing.assert_array_equal(x.grad, [[0, 2], [1, 0], [1, 1]])


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_op_on_gpu_agrees_with_torch(name):
    if not mg.cuda_available():
        pytest.skip("needs CuPy and a GPU")
    check_against_torch([X], *SHAPES[name], device="cuda")


def test_an_index_on_another_device_is_a_clear_error(monkeypatch):
    x, index = mg.tensor(X), mg.tensor(INDEX)
    monkeypatch.setattr(mg.backend, "device_of", lambda a: "cuda" if a.dtype == np.int64 else "cpu")
    with pytest.raises(ValueError, match="gather: index is on cuda, the input on cpu"):
        x.gather(1, index)
