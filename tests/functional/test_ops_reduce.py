"""Reductions with torch's names: finite-difference gradients (float64), torch as the
oracle for values, dtypes and gradients, and the same on CuPy (gpu-marked)."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from tests.helpers.gradcheck import check_gradients
from tests.helpers.torch_oracle import check_against_torch

R = np.random.default_rng(7)
X = R.standard_normal((3, 4, 5))

# name -> (torch call, minigrad call), each on one tensor
REDUCTIONS = {
    "sum_dim": (lambda t: t.sum(dim=(0, 2)), lambda t: t.sum(dim=(0, 2))),
    "mean_keep": (lambda t: t.mean(1, keepdim=True), lambda t: t.mean(1, keepdim=True)),
    "amax": (lambda t: t.amax((1, 2)), lambda t: t.amax((1, 2))),
    "amin": (lambda t: t.amin(-1, keepdim=True), lambda t: t.amin(-1, keepdim=True)),
    "max_dim": (lambda t: t.max(1), lambda t: t.max(1)),
    "min_dim": (lambda t: t.min(dim=2, keepdim=True), lambda t: t.min(dim=2, keepdim=True)),
    "max_all": (lambda t: t.max(), lambda t: t.max()),
    "min_all": (lambda t: t.min(), lambda t: t.min()),
    "argmax": (lambda t: t.argmax(1), lambda t: t.argmax(1)),
    "argmin_keep": (lambda t: t.argmin(2, keepdim=True), lambda t: t.argmin(2, keepdim=True)),
    "argmax_all": (lambda t: t.argmax(), lambda t: t.argmax()),
    "prod_dim": (lambda t: t.prod(1), lambda t: t.prod(1)),
    "prod_all": (lambda t: t.prod(), lambda t: t.prod()),
    "var": (lambda t: t.var(), lambda t: t.var()),
    "var_dim": (lambda t: t.var(1, keepdim=True), lambda t: t.var(1, keepdim=True)),
    "var_correction0": (lambda t: t.var(dim=(0, 2), correction=0),
                        lambda t: t.var(dim=(0, 2), correction=0)),
    "var_unbiased_false": (lambda t: t.var(2, unbiased=False), lambda t: t.var(2, unbiased=False)),
    "std": (lambda t: t.std(0), lambda t: t.std(0)),
    "std_correction2": (lambda t: t.std(1, correction=2), lambda t: t.std(1, correction=2)),
    "logsumexp": (lambda t: t.logsumexp(1), lambda t: t.logsumexp(1)),
    "logsumexp_two": (lambda t: t.logsumexp((0, 2), keepdim=True),
                      lambda t: t.logsumexp((0, 2), keepdim=True)),
    "cumsum": (lambda t: t.cumsum(1), lambda t: t.cumsum(1)),
    "cumsum_last": (lambda t: t.cumsum(dim=-1), lambda t: t.cumsum(dim=-1)),
    "norm": (lambda t: t.norm(), lambda t: t.norm()),
    "norm_fro_dim": (lambda t: t.norm("fro", dim=(1, 2)), lambda t: t.norm("fro", dim=(1, 2))),
    "norm_1": (lambda t: t.norm(1, dim=1), lambda t: t.norm(1, dim=1)),
    "norm_inf": (lambda t: t.norm(math.inf, dim=2, keepdim=True),
                 lambda t: t.norm(math.inf, dim=2, keepdim=True)),
    "norm_3": (lambda t: t.norm(3, dim=0), lambda t: t.norm(3, dim=0)),
    "any": (lambda t: (t > 1).any(1), lambda t: (t > 1).any(1)),
    "all": (lambda t: (t > -1).all(), lambda t: (t > -1).all()),
    "all_keep": (lambda t: (t > -1).all(dim=2, keepdim=True),
                 lambda t: (t > -1).all(dim=2, keepdim=True)),
}
DIFFERENTIABLE = [n for n in REDUCTIONS if not n.startswith(("arg", "any", "all"))]


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_agrees_with_torch(name):
    check_against_torch([X], *REDUCTIONS[name])


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_reduction_gradient_matches_finite_differences(name):
    mg_fn = REDUCTIONS[name][1]
    check_gradients(lambda t: mg_fn(t)[0] if isinstance(mg_fn(t), tuple) else mg_fn(t), X[:2, :3])


def test_prod_gradient_with_zeros_as_torch():
    # no zero, one zero, two zeros in a row: the gradient is the product of the others
    a = np.array([[1.5, 2.0, -3.0, 0.5], [1.5, 0.0, -3.0, 0.5], [0.0, 2.0, 0.0, 0.5]])
    check_against_torch([a], lambda t: t.prod(1), lambda t: t.prod(1))
    check_against_torch([a[1]], lambda t: t.prod(), lambda t: t.prod())
    check_gradients(lambda t: t.prod(1), a)


def test_norm_and_std_have_zero_gradient_at_zero_as_torch():
    check_against_torch([np.zeros((2, 3))], lambda t: t.norm(dim=1), lambda t: t.norm(dim=1))
    check_against_torch([np.zeros((2, 3))], lambda t: t.std(1), lambda t: t.std(1))


def test_logsumexp_is_stable_and_handles_infinities_as_torch():
    a = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0]])
    check_against_torch([a], lambda t: t.logsumexp(1), lambda t: t.logsumexp(1), grad=False)
    check_against_torch([a[:1]], lambda t: t.logsumexp(1), lambda t: t.logsumexp(1))


def test_integer_and_bool_reductions_keep_torchs_dtypes():
    ints = np.arange(1, 7).reshape(2, 3)
    for fn in (lambda t: t.sum(1), lambda t: t.prod(0), lambda t: t.cumsum(1),
               lambda t: t.amax(1), lambda t: t.max(1), lambda t: (t > 2).sum()):
        check_against_torch([ints], fn, fn)
    check_against_torch([ints.astype(np.int32)], lambda t: t.cumsum(0), lambda t: t.cumsum(0))


def test_var_with_too_few_elements_is_nan_or_inf_as_torch():
    check_against_torch([np.ones((1, 3))], lambda t: t.var(0), lambda t: t.var(0), grad=False)


def test_reductions_of_float32_stay_float32():
    x = mg.tensor(X.astype(np.float32))
    for out in (x.var(1), x.std(), x.logsumexp(0), x.norm(), x.prod(1), x.cumsum(2), x.amax()):
        assert out.dtype == np.float32


def test_reduction_argument_errors_are_clear():
    x = mg.tensor(X)
    with pytest.raises(TypeError, match="correction= or unbiased="):
        x.var(0, unbiased=True, correction=1)
    with pytest.raises(ValueError, match="p must be"):
        x.norm("nuc")
    with pytest.raises(RuntimeError, match="more than once"):
        x.sum((1, -2))
    with pytest.raises(TypeError, match="dim must be"):
        x.sum(1.5)
    with pytest.raises(IndexError, match="empty"):
        mg.tensor(np.zeros((0,))).argmax()


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_on_gpu_agrees_with_torch(name):
    if not mg.cuda_available():
        pytest.skip("needs CuPy and a GPU")
    check_against_torch([X], *REDUCTIONS[name], device="cuda")


def test_functional_spellings_match_the_methods():
    x = mg.tensor(X)
    np.testing.assert_allclose(F.var(x, 1).numpy(), x.var(1).numpy())
    np.testing.assert_allclose(mg.logsumexp(x, 0).numpy(), x.logsumexp(0).numpy())
    np.testing.assert_allclose(F.norm(x, 1).numpy(), np.abs(X).sum())
    assert mg.max(x, 1).indices.shape == (3, 5)
