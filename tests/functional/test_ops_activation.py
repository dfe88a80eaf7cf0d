"""torch's other activations, functional and as modules: gradients, torch's numbers, errors."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import nn
from tests.helpers.gradcheck import check_gradients, check_layer_gradients
from tests.helpers.torch_oracle import check_against_torch, load_torch_state

# Points away from the kinks (so finite differences are smooth) and beyond the
# thresholds and saturations, in float64.
X = np.array([-25.0, -6.5, -3.7, -2.1, -0.9, -0.3, 0.2, 0.7, 1.4, 2.6, 3.3, 7.1, 25.0])

CASES = [  # (name, kwargs)
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("elu", {}),
    ("elu", {"alpha": 0.5}), ("selu", {}), ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}), ("mish", {}), ("hardtanh", {}),
    ("hardtanh", {"min_val": -2.0, "max_val": 3.0}), ("relu6", {}), ("hardswish", {}),
    ("hardsigmoid", {}), ("logsigmoid", {}),
]
IDS = [f"{n}-{k}" if k else n for n, k in CASES]


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_gradient_matches_finite_differences(name, kwargs):
    check_gradients(lambda x: getattr(F, name)(x, **kwargs), X)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch(name, kwargs, dtype):
    torch = pytest.importorskip("torch")
    # The kinks too: torch's derivative at x = 0, +-3, 6 is what to match.
    x = np.concatenate([X, [-3.0, 0.0, 3.0, 6.0, -1.0, 1.0, 2.0]]).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    out, = check_against_torch([x], lambda t: getattr(torch.nn.functional, name)(t, **kwargs),
                               lambda t: getattr(F, name)(t, **kwargs), atol=tol, rtol=tol)
    assert out.dtype == dtype


def test_prelu_gradient_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4))
    for w in (np.array([0.25]), np.array([0.1, -0.2, 0.5])):
        check_gradients(F.prelu, x, w)
        check_against_torch([x, w], torch.nn.functional.prelu, F.prelu, atol=1e-12, rtol=1e-5)


def test_modules_match_functional_and_take_torch_arguments():
    x = mg.tensor(X)
    pairs = [(nn.GELU(), F.gelu(x)), (nn.GELU("tanh"), F.gelu(x, approximate="tanh")),
             (nn.SiLU(inplace=True), F.silu(x)), (nn.ELU(alpha=0.5), F.elu(x, 0.5)),
             (nn.SELU(), F.selu(x)), (nn.Softplus(beta=2, threshold=4), F.softplus(x, 2, 4)),
             (nn.Mish(), F.mish(x)), (nn.Hardtanh(-2, 2), F.hardtanh(x, -2, 2)),
             (nn.ReLU6(inplace=True), F.relu6(x)), (nn.Hardswish(), F.hardswish(x)),
             (nn.Hardsigmoid(), F.hardsigmoid(x)), (nn.LogSigmoid(), F.logsigmoid(x)),
             (nn.ReLU(inplace=True), F.relu(x))]
    for module, expected in pairs:
        np.testing.assert_array_equal(module(x).numpy(), expected.numpy(), err_msg=repr(module))
    assert "approximate='tanh'" in repr(nn.GELU("tanh"))
    assert isinstance(nn.activation("gelu"), nn.GELU)


def test_prelu_module_learns_its_slopes_and_loads_torch_weights():
    torch = pytest.importorskip("torch")
    layer = nn.PReLU(3, init=0.1)
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    np.testing.assert_allclose(layer.weight.data, [0.1] * 3)
    x = np.random.default_rng(1).standard_normal((4, 3, 2)).astype(np.float32)
    check_layer_gradients(nn.PReLU(3), x.astype(np.float64))
    theirs = torch.nn.PReLU(3)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor([0.3, -0.1, 0.7]))
    load_torch_state(layer, theirs)
    check_against_torch([x], theirs, layer, atol=1e-7)


def test_bad_arguments_are_clear_errors():
    x = mg.tensor(X)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="min_val"):
        F.hardtanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match="beta"):
        F.softplus(x, beta=0)
    with pytest.raises(TypeError, match="alpha"):
        F.elu(x, alpha="1")
    with pytest.raises(TypeError, match="floating-point"):
        F.silu(mg.tensor(np.arange(3)))
    with pytest.raises(ValueError, match="3 channels"):
        F.prelu(mg.tensor(np.ones((2, 3))), mg.tensor(np.ones(2)))
    with pytest.raises(ValueError, match="num_parameters"):
        nn.PReLU(0)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


@pytest.mark.gpu
def test_activations_on_gpu_match_cpu():
    if not mg.cuda_available():
        pytest.skip("no CUDA device")
    for name, kwargs in CASES:
        cpu = mg.tensor(X.astype(np.float32), requires_grad=True)
        gpu = mg.tensor(X.astype(np.float32), requires_grad=True, device="cuda")
        getattr(F, name)(cpu, **kwargs).sum().backward()
        getattr(F, name)(gpu, **kwargs).sum().backward()
        np.testing.assert_allclose(gpu.grad.get(), cpu.grad, atol=1e-6, err_msg=name)
