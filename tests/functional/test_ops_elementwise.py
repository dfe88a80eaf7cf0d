"""Elementwise ops with torch's names: finite-difference gradients (float64), torch as
the oracle for values, dtypes, edge cases and gradients, and CuPy (gpu-marked)."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from tests.helpers.gradcheck import check_gradients
from tests.helpers.torch_oracle import check_against_torch

R = np.random.default_rng(3)
A = R.standard_normal((3, 4))
B = R.standard_normal((3, 4))
POSITIVE = R.uniform(0.2, 3.0, (3, 4))

# name -> (inputs, torch call, minigrad call)
UNARY = {
    "abs": (A, lambda t: t.abs(), lambda t: t.abs()),
    "sign": (A, lambda t: t.sign(), lambda t: t.sign()),
    "sin": (A, lambda t: t.sin(), lambda t: t.sin()),
    "cos": (A, lambda t: t.cos(), lambda t: t.cos()),
    "exp": (A, lambda t: t.exp(), lambda t: t.exp()),
    "exp2": (A, lambda t: t.exp2(), lambda t: t.exp2()),
    "log": (POSITIVE, lambda t: t.log(), lambda t: t.log()),
    "log2": (POSITIVE, lambda t: t.log2(), lambda t: t.log2()),
    "log10": (POSITIVE, lambda t: t.log10(), lambda t: t.log10()),
    "sqrt": (POSITIVE, lambda t: t.sqrt(), lambda t: t.sqrt()),
    "rsqrt": (POSITIVE, lambda t: t.rsqrt(), lambda t: t.rsqrt()),
    "erf": (3 * A, lambda t: t.erf(), lambda t: t.erf()),
    "clamp_numbers": (A, lambda t: t.clamp(-0.5, 0.7), lambda t: t.clamp(-0.5, 0.7)),
    "clamp_min": (A, lambda t: t.clamp(min=0.1), lambda t: t.clamp(min=0.1)),
    "clip_max": (A, lambda t: t.clip(max=0.2), lambda t: t.clip(max=0.2)),
    "floordiv_number": (A, lambda t: t // 0.7, lambda t: t // 0.7),
    "mod_number": (3 * A, lambda t: t % 1.3, lambda t: t % 1.3),
    "rmod_number": (POSITIVE, lambda t: 5.0 % t, lambda t: 5.0 % t),
    "neg_mod": (3 * A, lambda t: t % -1.3, lambda t: t % -1.3),
}
BINARY = {
    "maximum": (lambda t, u: torch_fn("maximum")(t, u), lambda t, u: mg.maximum(t, u)),
    "minimum": (lambda t, u: torch_fn("minimum")(t, u), lambda t, u: t.minimum(u)),
    "max_other": (lambda t, u: t.max(u), lambda t, u: t.max(u)),
    "remainder": (lambda t, u: t % u, lambda t, u: t % u),
    "clamp_tensors": (lambda t, u: t.clamp(u - 0.3, u + 0.3), lambda t, u: t.clamp(u - 0.3, u + 0.3)),
    "clamp_crossed": (lambda t, u: t.clamp(u, u - 0.5), lambda t, u: t.clamp(u, u - 0.5)),
    "clamp_min_tensor": (lambda t, u: t.clamp(min=u), lambda t, u: t.clamp(min=u)),
    "where": (lambda t, u: torch_fn("where")(t > u, t, u), lambda t, u: mg.where(t > u, t, u)),
    "where_number": (lambda t, u: torch_fn("where")(t > 0, t * u, 0.5),
                     lambda t, u: mg.where(t > 0, t * u, 0.5)),
}
NON_DIFFERENTIABLE = {"sign", "floordiv_number"}
# torch: floor_divide has no derivative, nor has remainder with a number as dividend
FORWARD_ONLY_IN_TORCH = {"floordiv_number", "rmod_number"}


def torch_fn(name):
    return getattr(pytest.importorskip("torch"), name)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_agrees_with_torch(name):
    data, t_fn, m_fn = UNARY[name]
    check_against_torch([data], t_fn, m_fn, grad=name not in FORWARD_ONLY_IN_TORCH)


@pytest.mark.parametrize("name", sorted(set(UNARY) - NON_DIFFERENTIABLE))
def test_unary_gradient_matches_finite_differences(name):
    data, _, m_fn = UNARY[name]
    check_gradients(m_fn, data)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_agrees_with_torch_and_broadcasts(name):
    t_fn, m_fn = BINARY[name]
    check_against_torch([A, B], t_fn, m_fn)
    check_against_torch([A, B[:1]], t_fn, m_fn)  # (3, 4) with (1, 4)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradient_matches_finite_differences(name):
    check_gradients(BINARY[name][1], A, B + 0.05)  # no exact ties at the kinks


def test_ties_share_the_gradient_in_maximum_and_minimum_as_torch():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0])
    for name in ("maximum", "minimum"):
        check_against_torch([a, b], torch_fn(name), getattr(mg, name))


def test_clamp_at_the_bounds_and_nan_as_torch():
    a = np.array([-1.0, -0.5, 0.0, 0.7, 2.0, np.nan])
    check_against_torch([a], lambda t: t.clamp(-0.5, 0.7), lambda t: t.clamp(-0.5, 0.7))
    check_against_torch([np.array([1, 5, -3])], lambda t: t.clamp(0.5, 2.5),
                        lambda t: t.clamp(0.5, 2.5))  # int -> float32, as torch


def test_floor_divide_and_remainder_follow_pythons_sign_rule_as_torch():
    ints = np.array([7, -7, 7, -7, 0])
    divisors = np.array([2, 2, -2, -2, 3])
    check_against_torch([ints, divisors], lambda t, u: t // u, lambda t, u: t // u)
    check_against_torch([ints, divisors], lambda t, u: t % u, lambda t, u: t % u)
    check_against_torch([ints], lambda t: 9 // t.clamp(min=1), lambda t: 9 // t.clamp(min=1))
    floats = np.array([7.5, -7.5, 7.5, -7.5, 0.0, -0.0])
    fdiv = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.0])
    check_against_torch([floats, fdiv], lambda t, u: t // u, lambda t, u: t // u, grad=False)
    check_against_torch([floats, fdiv], lambda t, u: t % u, lambda t, u: t % u)
    assert not (mg.tensor(floats, requires_grad=True) // 2).requires_grad  # as torch: no gradient
    with pytest.raises(ZeroDivisionError, match="floor_divide"):
        mg.tensor(ints) // 0
    with pytest.raises(ZeroDivisionError, match="remainder"):
        mg.tensor(ints) % mg.tensor(np.zeros(5, np.int64))


def test_erf_is_accurate_to_float64_against_math_erf():
    grid = np.concatenate([np.linspace(-7, 7, 20001), [0.0, -0.0, 2.5, -2.5, 6.0, 1e-300,
                                                       np.inf, -np.inf, np.nan]])
    got = F.erf(mg.tensor(grid)).numpy()
    expected = np.array([math.erf(v) for v in grid])
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15, equal_nan=True)
    assert F.erf(mg.tensor(grid.astype(np.float32))).dtype == np.float32


def test_isnan_isinf_isfinite_as_torch():
    a = np.array([0.0, np.nan, np.inf, -np.inf, -1.0])
    for name in ("isnan", "isinf", "isfinite"):
        check_against_torch([a], lambda t: getattr(t, name)(), lambda t: getattr(t, name)())
        assert getattr(mg, name)(mg.tensor(a)).dtype == np.bool_


def test_edge_values_of_float_ops_as_torch():
    edges = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-300])
    for name in ("sqrt", "rsqrt", "log", "log2", "log10", "exp", "exp2", "sin", "abs", "sign"):
        check_against_torch([edges], lambda t: getattr(t, name)(), lambda t: getattr(t, name)())


def test_where_takes_a_numpy_mask_and_checks_its_arguments():
    x = mg.tensor(A)
    assert mg.where(A > 0, x, 0.0).shape == (3, 4)
    with pytest.raises(TypeError, match="bool"):
        mg.where(mg.tensor(A), x, 0.0)
    with pytest.raises(ValueError, match="broadcast"):
        mg.where(np.ones(5, bool), x, 0.0)
    with pytest.raises(ValueError, match="min, max or both"):
        x.clamp()


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_on_gpu_agrees_with_torch(name):
    if not mg.cuda_available():
        pytest.skip("needs CuPy and a GPU")
    data, t_fn, m_fn = UNARY[name]
    check_against_torch([data], t_fn, m_fn, grad=name not in FORWARD_ONLY_IN_TORCH,
                        device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_on_gpu_agrees_with_torch(name):
    if not mg.cuda_available():
        pytest.skip("needs CuPy and a GPU")
    check_against_torch([A, B], *BINARY[name], device="cuda")
