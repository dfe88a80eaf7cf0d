"""Adam/AdamW amsgrad against torch step by step, state keyed by the parameter with
torch's entry names, and nn.utils.clip_grad_norm_ / clip_grad_value_."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim

rng = np.random.default_rng(0)


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("name, kwargs", [
    ("Adam", {}), ("Adam", {"weight_decay": 0.1}), ("AdamW", {}),
    ("AdamW", {"weight_decay": 0.3, "betas": (0.8, 0.9), "maximize": True}),
])
def test_amsgrad_matches_torch_step_by_step(name, kwargs):
    torch = _torch()
    start = rng.standard_normal((3, 4))
    mine = nn.Parameter(start.copy())
    theirs = torch.tensor(start.copy(), requires_grad=True)
    opt = getattr(optim, name)([mine], lr=0.05, amsgrad=True, **kwargs)
    topt = getattr(torch.optim, name)([theirs], lr=0.05, amsgrad=True, **kwargs)
    # Gradients that shrink, so the running maximum differs from the running mean.
    for scale in (3.0, 2.0, 0.5, 0.1, 0.05, 1.0):
        grad = rng.standard_normal((3, 4)) * scale
        mine.grad, theirs.grad = grad.copy(), torch.tensor(grad)
        opt.step()
        topt.step()
        np.testing.assert_allclose(mine.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    state = opt.state[mine]  # keyed by the parameter itself, as torch
    assert set(state) == set(topt.state[theirs]) == {"step", "exp_avg", "exp_avg_sq",
                                                     "max_exp_avg_sq"}
    np.testing.assert_allclose(state["max_exp_avg_sq"],
                               topt.state[theirs]["max_exp_avg_sq"].numpy(), rtol=1e-12)


def test_amsgrad_state_dict_loads_from_torch_and_continues_alike():
    torch = _torch()
    start = rng.standard_normal(5)
    theirs = torch.tensor(start.copy(), requires_grad=True)
    topt = torch.optim.Adam([theirs], lr=0.1, amsgrad=True)
    for scale in (2.0, 0.1):
        theirs.grad = torch.tensor(rng.standard_normal(5) * scale)
        topt.step()
    mine = nn.Parameter(theirs.detach().numpy().copy())
    opt = optim.Adam([mine], lr=0.5)
    opt.load_state_dict(topt.state_dict())
    assert opt.param_groups[0]["amsgrad"] is True and opt.param_groups[0]["lr"] == 0.1
    for _ in range(3):
        grad = rng.standard_normal(5) * 0.01
        mine.grad, theirs.grad = grad.copy(), torch.tensor(grad)
        opt.step()
        topt.step()
    np.testing.assert_allclose(mine.data, theirs.detach().numpy(), rtol=1e-12)
    saved = opt.state_dict()
    assert sorted(saved["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]


def _params_with_grads(grads):
    params = []
    for g in grads:
        p = nn.Parameter(np.zeros(g.shape, g.dtype))
        p.grad = None if g is None else g.copy()
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = _torch()
    grads = [rng.standard_normal((3, 4)).astype(np.float32),
             rng.standard_normal(5).astype(np.float32)]
    params = _params_with_grads(grads) + [nn.Parameter(np.zeros(2, np.float32))]  # no grad
    tparams = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for t, g in zip(tparams, grads):
        t.grad = torch.tensor(g)
    total = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    assert isinstance(total, mg.Tensor) and total.shape == () and total.dtype == np.float32
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert params[-1].grad is None


def test_clip_grad_norm_edge_cases():
    assert nn.utils.clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0).item() == 0.0
    single = _params_with_grads([np.array([3.0, 4.0])])[0]
    assert nn.utils.clip_grad_norm_(single, 1.0).item() == pytest.approx(5.0)  # one tensor
    np.testing.assert_allclose(single.grad, [0.6, 0.8], rtol=1e-6)
    bad = _params_with_grads([np.array([1.0, np.inf])])
    with pytest.raises(RuntimeError, match="error_if_nonfinite=False"):
        nn.utils.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    with pytest.raises(TypeError, match="max_norm"):
        nn.utils.clip_grad_norm_(bad, "1")


def test_clip_grad_value_matches_torch():
    torch = _torch()
    grads = [rng.standard_normal((4, 3)) * 2]
    params = _params_with_grads(grads)
    t = torch.zeros(4, 3, requires_grad=True, dtype=torch.float64)
    t.grad = torch.tensor(grads[0])
    nn.utils.clip_grad_value_(params, 0.7)
    torch.nn.utils.clip_grad_value_([t], 0.7)
    np.testing.assert_array_equal(params[0].grad, t.grad.numpy())
    with pytest.raises(TypeError, match="clip_value"):
        nn.utils.clip_grad_value_(params, None)


@pytest.mark.gpu
def test_amsgrad_and_clipping_on_gpu_match_cpu():
    if not mg.cuda_available():
        pytest.skip("no CUDA device")
    start, grad = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6)
    results = []
    for device in ("cpu", "cuda"):
        p = nn.Parameter(start.copy())
        p.data = mg.tensor(start, device=device).data
        p.grad = mg.tensor(grad.astype(np.float32), device=device).data
        total = nn.utils.clip_grad_norm_([p], 0.5)
        optim.Adam([p], lr=0.1, amsgrad=True).step()
        results.append((mg.tensor(p.data).to("cpu").numpy(), total.to("cpu").item()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    assert results[0][1] == pytest.approx(results[1][1], rel=1e-6)
