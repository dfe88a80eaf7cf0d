"""Optimizers against plain textbook formulas, torch.optim (when installed), and each other.

Each optimizer runs several steps on the same parameter and gradient sequence; the
result must match a second, functional formulation of the algorithm written here
(not the kernels' in-place code). Both kernel tables run: ``reference`` (the NumPy
kernels) and ``fast`` (Numba kernels where they exist).
"""
import json

import numpy as np
import pytest

from minigrad import backend, nn, optim
from minigrad.io import load_tree, save_tree

N_STEPS = 6
SHAPE = (3, 4)


def problem(seed=0, n_steps=N_STEPS, shape=SHAPE):
    """A starting parameter and a sequence of gradients (of mixed signs and sizes)."""
    rng = np.random.default_rng(seed)
    p0 = rng.normal(size=shape)
    grads = [rng.normal(size=shape) * rng.uniform(0.1, 2.0) for _ in range(n_steps)]
    return p0, grads


def run(name, p0, grads, dtype=np.float64, **kwargs):
    """Step optimizer ``name`` through ``grads`` on a Parameter starting at ``p0``."""
    param = nn.Parameter(p0.astype(dtype))
    opt = optim.get(name, [param], **kwargs)
    for grad in grads:
        param.grad = grad.astype(dtype)
        opt.step()
    return param, opt


# ----------------------------------------------------------- plain formulations
def plain_sgd(p, grads, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
    velocity = None
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            velocity = d if velocity is None else momentum * velocity + (1 - dampening) * d
            d = d + momentum * velocity if nesterov else velocity
        p = p - lr * d
    return p


def plain_adam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
               decoupled_weight_decay=False):
    b1, b2 = betas
    m = v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled_weight_decay:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def plain_adamw(p, grads, weight_decay=1e-2, **kwargs):
    return plain_adam(p, grads, weight_decay=weight_decay, decoupled_weight_decay=True, **kwargs)


def plain_rmsprop(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                  centered=False):
    mean_square = mean = buf = np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        mean_square = alpha * mean_square + (1 - alpha) * g ** 2
        variance = mean_square
        if centered:
            mean = alpha * mean + (1 - alpha) * g
            variance = mean_square - mean ** 2
        scaled = g / (np.sqrt(variance) + eps)
        if momentum:
            buf = momentum * buf + scaled
            p = p - lr * buf
        else:
            p = p - lr * scaled
    return p


def plain_adagrad(p, grads, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                  eps=1e-10):
    total = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        total = total + g ** 2
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(total) + eps)
    return p


PLAIN = {"sgd": plain_sgd, "adam": plain_adam, "adamw": plain_adamw,
         "rmsprop": plain_rmsprop, "adagrad": plain_adagrad}

CONFIGS = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.05}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"lr": 0.1, "momentum": 0.8, "nesterov": True}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("adam", {}),
    ("adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6}),
    ("adam", {"lr": 0.05, "weight_decay": 0.1}),
    ("adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamw", {"lr": 0.05}),
    ("adamw", {"lr": 0.05, "weight_decay": 0.3, "betas": (0.5, 0.9)}),
    ("rmsprop", {}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop", {"lr": 0.01, "centered": True}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.8, "centered": True, "momentum": 0.5,
                 "weight_decay": 0.05, "eps": 1e-4}),
    ("adagrad", {}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.5}),
    ("adagrad", {"lr": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.3, "eps": 1e-3}),
]
CONFIG_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
              for name, kw in CONFIGS]
# One setting per optimizer class, with its state-carrying options on: for the tests that
# check what a state holds (saving it, moving it between devices) rather than the numbers.
ONE_PER_OPTIMIZER = [
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("adam", {"lr": 0.05}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("adagrad", {"lr": 0.1}),
]
ONE_PER_OPTIMIZER_IDS = [name for name, _ in ONE_PER_OPTIMIZER]


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_matches_plain_formula(kernel_mode, name, kwargs):
    p0, grads = problem()
    param, _ = run(name, p0, grads, **kwargs)
    expected = PLAIN[name](p0, grads, **kwargs)
    np.testing.assert_allclose(param.data, expected, rtol=1e-10, atol=1e-12)
    assert not np.allclose(param.data, p0)  # the steps did move the parameter


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_update_in_place_grad_untouched(kernel_mode, name, kwargs, dtype):
    p0, grads = problem()
    param = nn.Parameter(p0.astype(dtype))
    data = param.data
    opt = optim.get(name, [param], **kwargs)
    for grad in grads:
        param.grad = grad.astype(dtype)
        given = param.grad.copy()
        opt.step()
        np.testing.assert_array_equal(param.grad, given)
    assert param.data is data  # updated in place: references held elsewhere stay valid
    assert param.data.dtype == dtype
    for value in opt.state[param].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == dtype
    expected = PLAIN[name](p0, grads, **kwargs)
    tolerance = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(param.data, expected, rtol=tolerance, atol=tolerance)


def test_adamw_differs_from_adam_with_l2():
    p0, grads = problem()
    adam, _ = run("adam", p0, grads, lr=0.05, weight_decay=0.2)
    adamw, _ = run("adamw", p0, grads, lr=0.05, weight_decay=0.2)
    assert np.abs(adam.data - adamw.data).max() > 1e-3
    np.testing.assert_allclose(adamw.data, plain_adamw(p0, grads, lr=0.05, weight_decay=0.2),
                               rtol=1e-10)


def test_defaults_are_pytorchs():
    param = nn.Parameter(np.zeros(2))
    groups = {name: cls([param]).param_groups[0] for name, cls in optim.OPTIMIZERS.items()}
    assert {k: groups["sgd"][k] for k in ("lr", "momentum", "dampening", "weight_decay",
                                          "nesterov")} == \
        {"lr": 1e-3, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False}
    assert groups["adam"]["lr"] == 1e-3 and groups["adam"]["betas"] == (0.9, 0.999)
    assert groups["adam"]["eps"] == 1e-8 and groups["adam"]["weight_decay"] == 0
    assert groups["adamw"]["weight_decay"] == 1e-2
    assert groups["adamw"]["decoupled_weight_decay"] is True
    assert {k: groups["rmsprop"][k] for k in ("lr", "alpha", "eps", "momentum", "centered")} == \
        {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "momentum": 0, "centered": False}
    assert {k: groups["adagrad"][k] for k in ("lr", "lr_decay", "initial_accumulator_value",
                                              "eps")} == \
        {"lr": 1e-2, "lr_decay": 0, "initial_accumulator_value": 0, "eps": 1e-10}


# ------------------------------------------------------------ groups, None grads
def test_param_groups_with_their_own_hyper_parameters(kernel_mode):
    p0, grads = problem()
    q0, qgrads = problem(seed=1)
    a, b = nn.Parameter(p0.copy()), nn.Parameter(q0.copy())
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.01, "momentum": 0.5}],
                    lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.01
    for g, qg in zip(grads, qgrads):
        a.grad, b.grad = g, qg
        opt.step()
    np.testing.assert_allclose(a.data, plain_sgd(p0, grads, lr=0.1, momentum=0.9), rtol=1e-12)
    np.testing.assert_allclose(b.data, plain_sgd(q0, qgrads, lr=0.01, momentum=0.5),
                               rtol=1e-12)


def test_changing_group_lr_between_steps_takes_effect():
    p0, grads = problem()
    param = nn.Parameter(p0.copy())
    opt = optim.SGD([param], lr=0.1)
    expected = p0.copy()
    for step, grad in enumerate(grads):
        opt.param_groups[0]["lr"] = lr = 0.1 / (step + 1)
        param.grad = grad
        opt.step()
        expected = expected - lr * grad
    np.testing.assert_allclose(param.data, expected, rtol=1e-12)


def test_parameters_without_grad_are_skipped(kernel_mode):
    p0, grads = problem()
    frozen, late = nn.Parameter(p0.copy()), nn.Parameter(p0.copy())
    opt = optim.Adam([frozen, late], lr=0.05)
    for step, grad in enumerate(grads):
        late.grad = grad if step >= 2 else None
        opt.step()
    np.testing.assert_array_equal(frozen.data, p0)
    assert frozen not in opt.state
    # Adam's bias correction counts only the steps this parameter took.
    assert opt.state[late]["step"] == len(grads) - 2
    np.testing.assert_allclose(late.data, plain_adam(p0, grads[2:], lr=0.05), rtol=1e-10)


def test_zero_grad():
    a, b = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=0.1)
    a.grad, b.grad = np.full(3, 2.0), None
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, np.zeros(3))
    assert b.grad is None
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_step_returns_the_closure_loss():
    param = nn.Parameter(np.array([3.0]))
    opt = optim.SGD([param], lr=0.25)

    def closure():
        param.grad = 2 * param.data  # d/dp of p**2
        return float(param.data[0] ** 2)

    assert opt.step(closure) == 9.0
    np.testing.assert_allclose(param.data, [1.5])


def test_updates_go_through_the_kernel_table(monkeypatch):
    calls = []
    lookup = backend.kernel

    def spy(name, device):
        calls.append((name, device))
        return lookup(name, device)

    monkeypatch.setattr(backend, "kernel", spy)
    p0, grads = problem(n_steps=1)
    for name in optim.OPTIMIZERS:
        run(name, p0, grads)
    assert calls == [("sgd_update", "cpu"), ("adam_update", "cpu"), ("adam_update", "cpu"),
                     ("rmsprop_update", "cpu"), ("adagrad_update", "cpu")]


# -------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name, kwargs", [
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adam", {"lr": 0.05, "betas": (0.8, 0.9)}),
    ("adamw", {"lr": 0.05, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.2}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_state_dict_round_trip_through_npz_continues_identically(tmp_path, name, kwargs):
    p0, grads = problem(n_steps=8)
    q0, qgrads = problem(seed=3, n_steps=8)
    a, b = nn.Parameter(p0.copy()), nn.Parameter(q0.copy())
    original = optim.get(name, [{"params": [a]}, {"params": [b], "lr": 0.02}], **kwargs)
    for g, qg in zip(grads[:4], qgrads[:4]):
        a.grad, b.grad = g, qg
        original.step()
    original.param_groups[0]["lr"] = 0.03  # as a scheduler would; must survive the trip
    save_tree(tmp_path / "opt.npz", original.state_dict())

    a2, b2 = nn.Parameter(a.data.copy()), nn.Parameter(b.data.copy())
    resumed = optim.get(name, [{"params": [a2]}, {"params": [b2]}], lr=0.5)
    first_group = resumed.param_groups[0]
    resumed.load_state_dict(load_tree(tmp_path / "opt.npz"))
    assert first_group["lr"] == 0.03 and resumed.param_groups[1]["lr"] == 0.02
    assert type(resumed.param_groups[0].get("betas", ())) is tuple
    for g, qg in zip(grads[4:], qgrads[4:]):
        a.grad, b.grad, a2.grad, b2.grad = g, qg, g.copy(), qg.copy()
        original.step()
        resumed.step()
    np.testing.assert_array_equal(a2.data, a.data)
    np.testing.assert_array_equal(b2.data, b.data)


def test_state_dict_holds_numpy_copies_and_step_counts():
    p0, grads = problem(n_steps=3)
    param, opt = run("adam", p0, grads, lr=0.1)
    saved = opt.state_dict()
    entry = saved["state"][0]
    assert entry["step"] == 3
    assert isinstance(entry["exp_avg"], np.ndarray)
    assert entry["exp_avg"] is not opt.state[param]["exp_avg"]
    before = entry["exp_avg"].copy()
    param.grad = grads[0]
    opt.step()
    np.testing.assert_array_equal(entry["exp_avg"], before)  # later steps leave it alone
    assert saved["param_groups"][0]["params"] == [0]
    assert saved["param_groups"][0]["lr"] == 0.1


def test_load_state_dict_casts_state_to_the_parameter_dtype():
    p0, grads = problem(n_steps=3)
    _, opt64 = run("rmsprop", p0, grads, momentum=0.5)
    param32 = nn.Parameter(p0.astype(np.float32))
    opt32 = optim.RMSprop([param32], momentum=0.5)
    opt32.load_state_dict(opt64.state_dict())
    state = opt32.state[param32]
    assert state["square_avg"].dtype == np.float32
    assert state["momentum_buffer"].dtype == np.float32
    assert state["step"] == 3


def test_load_state_dict_rejects_a_mismatch_and_changes_nothing():
    p0, grads = problem(n_steps=2)
    _, source = run("adam", p0, grads)
    saved = source.state_dict()

    target = nn.Parameter(np.zeros((2, 2)))
    opt = optim.Adam([target], lr=0.5)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(saved)
    assert opt.state == {} and opt.param_groups[0]["lr"] == 0.5

    two = optim.Adam([{"params": [nn.Parameter(p0.copy())]},
                      {"params": [nn.Parameter(p0.copy())]}])
    with pytest.raises(ValueError, match="group"):
        two.load_state_dict(saved)
    pair = optim.Adam([nn.Parameter(p0.copy()), nn.Parameter(p0.copy())])
    with pytest.raises(ValueError, match="parameter"):
        pair.load_state_dict(saved)
    with pytest.raises(ValueError, match="missing key 'state'"):
        opt.load_state_dict({"param_groups": saved["param_groups"]})
    bad_lr = {"state": {}, "param_groups": [dict(saved["param_groups"][0], lr=-1.0)]}
    with pytest.raises(ValueError, match="lr"):
        optim.Adam([nn.Parameter(p0.copy())]).load_state_dict(bad_lr)


# --------------------------------------------- state keyed by the parameter
STATE_KEYS = [  # what torch.optim keeps per parameter after a step, for the same settings
    ("sgd", {"lr": 0.1}, set()),
    ("sgd", {"lr": 0.1, "momentum": 0.9}, {"momentum_buffer"}),
    ("adam", {"lr": 0.1}, {"step", "exp_avg", "exp_avg_sq"}),
    ("adamw", {"lr": 0.1}, {"step", "exp_avg", "exp_avg_sq"}),
    ("rmsprop", {"lr": 0.1}, {"step", "square_avg"}),
    ("rmsprop", {"lr": 0.1, "momentum": 0.5, "centered": True},
     {"step", "square_avg", "momentum_buffer", "grad_avg"}),
    ("adagrad", {"lr": 0.1}, {"step", "sum"}),
]
STATE_KEY_IDS = [f"{name}-{'-'.join(kw) or 'plain'}" for name, kw, _ in STATE_KEYS]


@pytest.mark.parametrize("name, kwargs, keys", STATE_KEYS, ids=STATE_KEY_IDS)
def test_state_is_indexed_by_the_parameter_itself(name, kwargs, keys):
    p0, grads = problem(n_steps=2)
    param, idle = nn.Parameter(p0.copy()), nn.Parameter(p0.copy())
    opt = optim.get(name, [param, idle], **kwargs)
    for grad in grads:
        param.grad = grad
        opt.step()
    assert set(opt.state.get(param, {})) == keys
    assert idle not in opt.state  # never had a gradient
    assert all(key is param for key in opt.state)
    if "step" in keys:
        assert opt.state[param]["step"] == 2
    if "exp_avg" in keys:  # the running mean of the gradient, by hand
        beta1 = 0.9
        expected = (1 - beta1) * (beta1 * grads[0] + grads[1])
        np.testing.assert_allclose(opt.state[param]["exp_avg"], expected, rtol=1e-12)
    if "sum" in keys:
        np.testing.assert_allclose(opt.state[param]["sum"], grads[0] ** 2 + grads[1] ** 2,
                                   rtol=1e-12)


@pytest.mark.parametrize("name, kwargs, keys", STATE_KEYS, ids=STATE_KEY_IDS)
def test_state_keys_match_torch(name, kwargs, keys):
    torch = pytest.importorskip("torch")
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[name]
    param = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = cls([param], foreach=False, **kwargs)
    param.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    assert set(opt.state.get(param, {})) == keys


def test_equal_valued_parameters_have_separate_state(monkeypatch):
    """Dict lookups must go by identity: Tensor.__eq__ is elementwise and must never run."""
    from minigrad.tensor import Tensor

    def no_elementwise_eq(self, other):
        raise AssertionError("the optimizer compared two parameters with Tensor.__eq__")

    monkeypatch.setattr(Tensor, "__eq__", no_elementwise_eq)
    n = 64  # many entries, so that the dict has plenty of hash-bucket neighbours
    params = [nn.Parameter(np.zeros(SHAPE)) for _ in range(n)]
    opt = optim.Adam(params, lr=0.1)
    rng = np.random.default_rng(5)
    grads = [rng.normal(size=SHAPE) for _ in range(n)]
    for _ in range(2):
        for param, grad in zip(params, grads):
            param.grad = grad
        opt.step()
    assert len(opt.state) == n
    assert len({id(opt.state[p]["exp_avg"]) for p in params}) == n  # no shared buffers
    for param, grad in zip(params, grads):
        np.testing.assert_allclose(opt.state[param]["exp_avg"], (1 - 0.9 ** 2) * grad,
                                   rtol=1e-12)
    copies = [nn.Parameter(np.array(p.data)) for p in params]
    resumed = optim.Adam(copies, lr=0.1)
    resumed.load_state_dict(opt.state_dict())
    for param, copy in zip(params, copies):
        np.testing.assert_array_equal(resumed.state[copy]["exp_avg_sq"],
                                      opt.state[param]["exp_avg_sq"])


def test_unhashable_parameter_is_refused():
    class ValueParameter(nn.Parameter):
        __slots__ = ()

        def __eq__(self, other):  # without __hash__: unhashable, as Python makes it
            return self.data is getattr(other, "data", None)

    with pytest.raises(TypeError, match="parameter 0 .*unhashable"):
        optim.SGD([ValueParameter(np.zeros(2))], lr=0.1)


@pytest.mark.parametrize("name, kwargs", ONE_PER_OPTIMIZER, ids=ONE_PER_OPTIMIZER_IDS)
def test_state_dict_round_trip_is_bit_exact(tmp_path, name, kwargs):
    p0, grads = problem(n_steps=3)
    q0, qgrads = problem(seed=4, n_steps=3)
    a, b = nn.Parameter(p0.astype(np.float32)), nn.Parameter(q0.astype(np.float32))
    opt = optim.get(name, [{"params": [a]}, {"params": [b], "lr": 0.02}], **kwargs)
    for g, qg in zip(grads, qgrads):
        a.grad, b.grad = g.astype(np.float32), qg.astype(np.float32)
        opt.step()
    save_tree(tmp_path / "opt.npz", opt.state_dict())
    a2, b2 = nn.Parameter(a.data.copy()), nn.Parameter(b.data.copy())
    resumed = optim.get(name, [{"params": [a2]}, {"params": [b2]}], **kwargs)
    resumed.load_state_dict(load_tree(tmp_path / "opt.npz"))
    for old, new in ((a, a2), (b, b2)):
        assert set(resumed.state[new]) == set(opt.state[old])
        for key, value in opt.state[old].items():
            if isinstance(value, np.ndarray):
                assert resumed.state[new][key].dtype == value.dtype
                assert resumed.state[new][key] is not value
                np.testing.assert_array_equal(resumed.state[new][key], value)
            else:
                assert resumed.state[new][key] == value
    again = resumed.state_dict()
    assert again["param_groups"] == opt.state_dict()["param_groups"]
    assert sorted(again["state"]) == [0, 1]


def old_format_adam_file(path, entries, lr, maximize=None):
    """An Adam state file written by hand, byte layout as ``save_tree(opt.state_dict())``
    wrote it before the state was keyed by parameter: a ``__tree__`` JSON skeleton with
    integer parameter indices, the buffers as ``.npz`` members it names.

    ``entries`` is a list of ``(step, exp_avg, exp_avg_sq)``, one per parameter of
    the single group. ``maximize`` None leaves that hyper-parameter and ``amsgrad``
    out, as files written before they existed do. Returns the skeleton.
    """
    arrays, state = {}, []
    for index, (step, exp_avg, exp_avg_sq) in enumerate(entries):
        names = [f"a{len(arrays)}", f"a{len(arrays) + 1}"]
        arrays.update(zip(names, (exp_avg, exp_avg_sq)))
        state.append([index, {"__dict__": [["step", step],
                                           ["exp_avg", {"__array__": names[0]}],
                                           ["exp_avg_sq", {"__array__": names[1]}]]}])
    hyperparameters = [["lr", lr], ["betas", {"__tuple__": [0.9, 0.999]}], ["eps", 1e-08],
                       ["weight_decay", 0]]
    if maximize is not None:
        hyperparameters += [["amsgrad", False], ["maximize", maximize]]
    hyperparameters.append(["decoupled_weight_decay", False])
    tree = {"__dict__": [
        ["state", {"__dict__": state}],
        ["param_groups", [{"__dict__": hyperparameters + [
            ["params", list(range(len(entries)))]]}]]]}
    header = json.dumps({"format": "minigrad-tree", "version": 1, "tree": tree})
    np.savez(path, __tree__=np.frombuffer(header.encode("utf-8"), dtype=np.uint8), **arrays)
    return tree


def adam_moments(grads, betas=(0.9, 0.999)):
    """Adam's two running means after ``grads`` (no weight decay), written out plainly."""
    m = v = np.zeros_like(grads[0])
    for g in grads:
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
    return m, v


def test_a_file_saved_before_state_was_keyed_by_parameter_still_loads(tmp_path):
    p0, grads = problem(n_steps=6)
    q0, qgrads = problem(seed=2, n_steps=6)
    done = 4  # steps taken before the save; b took one fewer (no gradient at first)
    path = tmp_path / "old_adam.npz"
    old_format_adam_file(path, [(done, *adam_moments(grads[:done])),
                                (done - 1, *adam_moments(qgrads[1:done]))], lr=0.05)

    a = nn.Parameter(plain_adam(p0, grads[:done], lr=0.05))
    b = nn.Parameter(plain_adam(q0, qgrads[1:done], lr=0.05))
    opt = optim.Adam([a, b], lr=0.5)
    opt.load_state_dict(load_tree(path))
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert opt.state[a]["step"] == done and opt.state[b]["step"] == done - 1
    np.testing.assert_array_equal(opt.state[b]["exp_avg"], adam_moments(qgrads[1:done])[0])
    for g, qg in zip(grads[done:], qgrads[done:]):
        a.grad, b.grad = g, qg
        opt.step()
    # As if never interrupted: the bias correction used the restored step counts.
    np.testing.assert_allclose(a.data, plain_adam(p0, grads, lr=0.05), rtol=1e-10)
    np.testing.assert_allclose(b.data, plain_adam(q0, qgrads[1:], lr=0.05), rtol=1e-10)


def test_saved_file_layout_is_unchanged(tmp_path):
    """What save_tree(opt.state_dict()) writes today is the layout written by hand above
    (plus the amsgrad and maximize flags, which older files lack)."""
    p0, grads = problem(n_steps=3)
    q0, qgrads = problem(seed=2, n_steps=3)
    a, b = nn.Parameter(p0.copy()), nn.Parameter(q0.copy())
    opt = optim.Adam([a, b], lr=0.05)
    a.grad = grads[0]
    opt.step()  # b has no gradient yet: it gets its state one step later
    for g, qg in zip(grads[1:], qgrads[1:]):
        a.grad, b.grad = g, qg
        opt.step()
    save_tree(tmp_path / "new.npz", opt.state_dict())
    by_hand = old_format_adam_file(tmp_path / "old.npz",
                                   [(3, *adam_moments(grads)), (2, *adam_moments(qgrads[1:]))],
                                   lr=0.05, maximize=False)
    with np.load(tmp_path / "new.npz") as new, np.load(tmp_path / "old.npz") as old:
        assert json.loads(new["__tree__"].tobytes())["tree"] == by_hand
        assert sorted(new.files) == sorted(old.files)
        for member in old.files:
            if member != "__tree__":
                np.testing.assert_allclose(new[member], old[member], rtol=1e-12)


# ----------------------------------------------- state follows Module.to
class _OtherDeviceArray(np.ndarray):
    """Stands in for a CuPy array on the CPU: another array type, which the test reports
    as on 'cuda', and which ``.get()`` copies to a NumPy array as CuPy does."""

    def get(self):
        return np.array(self.view(np.ndarray))


def test_state_left_on_another_device_follows_its_parameter(monkeypatch):
    """What ``model.to("cpu")`` leaves after GPU steps: the parameter's data on the host,
    the optimizer's buffers still on the device. The next step brings them over."""
    device_of = backend.device_of
    monkeypatch.setattr(backend, "device_of", lambda array: (
        "cuda" if isinstance(array, _OtherDeviceArray) else device_of(array)))
    p0, grads = problem()
    param = nn.Parameter(p0.copy())
    opt = optim.RMSprop([param], lr=0.01, momentum=0.9, centered=True)
    for grad in grads[:3]:
        param.grad = grad
        opt.step()
    state = opt.state[param]
    for key in ("square_avg", "momentum_buffer", "grad_avg"):
        state[key] = state[key].view(_OtherDeviceArray)
    for grad in grads[3:]:
        param.grad = grad
        opt.step()
    assert {key: type(value) for key, value in state.items()} == {
        "step": int, "square_avg": np.ndarray, "momentum_buffer": np.ndarray,
        "grad_avg": np.ndarray}
    np.testing.assert_allclose(param.data, plain_rmsprop(p0, grads, lr=0.01, momentum=0.9,
                                                         centered=True), rtol=1e-10)


def test_new_data_on_the_same_device_leaves_the_state_alone():
    p0, grads = problem()
    param = nn.Parameter(p0.copy())
    opt = optim.Adam([param], lr=0.05)
    param.grad = grads[0]
    opt.step()
    buffers = dict(opt.state[param])
    param.data = param.data.copy()  # what Module.to does for a parameter already there
    for grad in grads[1:]:
        param.grad = grad
        opt.step()
    assert all(opt.state[param][key] is buffers[key] for key in ("exp_avg", "exp_avg_sq"))
    np.testing.assert_allclose(param.data, plain_adam(p0, grads, lr=0.05), rtol=1e-10)


class _Holder(nn.Module):
    """A module with one parameter, to move with Module.to."""

    def __init__(self, data):
        super().__init__()
        self.weight = nn.Parameter(data)


@pytest.mark.gpu
@pytest.mark.parametrize("name, kwargs", ONE_PER_OPTIMIZER, ids=ONE_PER_OPTIMIZER_IDS)
def test_state_follows_module_to_between_devices(name, kwargs):
    if not backend.cuda_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    xp = backend.xp_for("cuda")
    p0, grads = problem()
    cpu, _ = run(name, p0, grads, dtype=np.float32, **kwargs)
    model = _Holder(p0.astype(np.float32))
    param = model.weight
    opt = optim.get(name, model.parameters(), **kwargs)
    for step, grad in enumerate(grads):
        if step == 2:
            model.to("cuda")
        if step == 4:
            model.to("cpu")
        on_gpu = 2 <= step < 4
        param.grad = xp.asarray(grad.astype(np.float32)) if on_gpu else grad.astype(np.float32)
        opt.step()
        for value in opt.state[param].values():
            if not isinstance(value, int):
                assert backend.device_of(value) == ("cuda" if on_gpu else "cpu")
    np.testing.assert_allclose(param.numpy(), cpu.data, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------- registry and errors
def test_registry():
    param = nn.Parameter(np.zeros(2))
    assert type(optim.get("ADAMW", [param], lr=0.1)) is optim.AdamW
    assert optim.get("RMSprop", [param], alpha=0.5).param_groups[0]["alpha"] == 0.5
    for name, cls in [("sgd", optim.SGD), ("adam", optim.Adam), ("adamw", optim.AdamW),
                      ("rmsprop", optim.RMSprop), ("adagrad", optim.Adagrad)]:
        assert isinstance(optim.get(name, [param]), cls)
    with pytest.raises(ValueError, match="adagrad, adam, adamw, rmsprop, sgd"):
        optim.get("lbfgs", [param])
    with pytest.raises(TypeError):
        optim.get(optim.SGD, [param])


@pytest.mark.parametrize("name, kwargs, message", [
    ("sgd", {"lr": -0.1}, "lr"),
    ("sgd", {"momentum": -0.5}, "momentum"),
    ("sgd", {"weight_decay": -1}, "weight_decay"),
    ("sgd", {"nesterov": True}, "nesterov"),
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
    ("adam", {"lr": -1e-3}, "lr"),
    ("adam", {"lr": float("nan")}, "lr"),
    ("adam", {"betas": (1.0, 0.999)}, r"betas\[0\]"),
    ("adamw", {"betas": (0.9, -0.1)}, r"betas\[1\]"),
    ("adam", {"betas": (0.9,)}, "betas"),
    ("adam", {"eps": -1e-8}, "eps"),
    ("adamw", {"weight_decay": -0.01}, "weight_decay"),
    ("rmsprop", {"alpha": 1.5}, "alpha"),
    ("rmsprop", {"momentum": -0.1}, "momentum"),
    ("adagrad", {"lr_decay": -0.1}, "lr_decay"),
    ("adagrad", {"initial_accumulator_value": -1}, "initial_accumulator_value"),
])
def test_bad_hyper_parameters_name_the_culprit(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.get(name, [nn.Parameter(np.zeros(2))], **kwargs)


def test_bad_group_override_is_caught_too():
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([{"params": [nn.Parameter(np.zeros(2))], "lr": -1.0}], lr=0.1)


def test_bad_params():
    param = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([])
    with pytest.raises(TypeError, match="single parameter"):
        optim.SGD(param)
    with pytest.raises(TypeError, match="set"):
        optim.SGD({param})
    with pytest.raises(TypeError, match="mix"):
        optim.SGD([param, {"params": [nn.Parameter(np.zeros(1))]}])
    with pytest.raises(TypeError, match="not a parameter"):
        optim.SGD([np.zeros(2)])
    with pytest.raises(TypeError, match="floating"):
        optim.SGD([nn.Parameter(np.zeros(2, dtype=np.int64))])
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": [param]}, {"params": [param]}])
    param.grad = np.zeros(3)
    with pytest.raises(ValueError, match="grad has shape"):
        optim.SGD([param]).step()


# ------------------------------------------------------------------- oracles
def torch_run(torch, name, p0, grads, groups=None, dtype=None, **kwargs):
    """The same run with torch.optim (float64 unless ``dtype`` says otherwise)."""
    dtype = dtype or torch.float64
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[name]
    param = torch.tensor(p0, dtype=dtype, requires_grad=True)
    opt = cls([param], foreach=False, **kwargs)
    for grad in grads:
        param.grad = torch.tensor(grad, dtype=dtype)
        opt.step()
    return param.detach().numpy()


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_matches_torch(kernel_mode, name, kwargs):
    torch = pytest.importorskip("torch")
    p0, grads = problem(n_steps=10)
    ours, _ = run(name, p0, grads, **kwargs)
    np.testing.assert_allclose(ours.data, torch_run(torch, name, p0, grads, **kwargs),
                               rtol=1e-10, atol=1e-12)
    ours32, _ = run(name, p0, grads, dtype=np.float32, **kwargs)
    theirs32 = torch_run(torch, name, p0, grads, dtype=torch.float32, **kwargs)
    np.testing.assert_allclose(ours32.data, theirs32, rtol=2e-5, atol=2e-6)


def test_param_groups_match_torch():
    torch = pytest.importorskip("torch")
    p0, grads = problem()
    q0, qgrads = problem(seed=1)
    a, b = nn.Parameter(p0.copy()), nn.Parameter(q0.copy())
    ta = torch.tensor(p0, requires_grad=True)
    tb = torch.tensor(q0, requires_grad=True)
    ours = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.2, "weight_decay": 0.1}],
                      lr=0.05)
    theirs = torch.optim.Adam([{"params": [ta]}, {"params": [tb], "lr": 0.2,
                                                  "weight_decay": 0.1}], lr=0.05, foreach=False)
    for g, qg in zip(grads, qgrads):
        a.grad, b.grad = g, qg
        ta.grad, tb.grad = torch.tensor(g), torch.tensor(qg)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(a.data, ta.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(b.data, tb.detach().numpy(), rtol=1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_cuda_matches_cpu(name, kwargs):
    if not backend.cuda_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    p0, grads = problem()
    cpu, _ = run(name, p0, grads, dtype=np.float32, **kwargs)
    param = nn.Parameter(p0.astype(np.float32)).to("cuda")
    xp = backend.xp_for("cuda")
    opt = optim.get(name, [param], **kwargs)
    for grad in grads:
        param.grad = xp.asarray(grad.astype(np.float32))
        opt.step()
    assert backend.device_of(param.data) == "cuda"
    np.testing.assert_allclose(param.numpy(), cpu.data, rtol=1e-5, atol=1e-6)
    saved = opt.state_dict()  # host copies of device state
    for entry in saved["state"].values():
        assert all(isinstance(v, (int, np.ndarray)) for v in entry.values())
    opt.load_state_dict(saved)
    for value in opt.state[param].values():
        assert isinstance(value, int) or backend.device_of(value) == "cuda"
