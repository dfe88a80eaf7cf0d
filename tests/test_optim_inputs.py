"""Optimizers given what a PyTorch user might hand them: checked, or refused by name.

Gradients that are no array (a Tensor, a list), of the wrong dtype, shape or device;
read-only or borrowed gradients under ``zero_grad(set_to_none=False)``; another
optimizer's state dict; PyTorch's extra keywords (``amsgrad``, ``foreach``,
``maximize``) and wrongly typed hyper-parameters; ``model.named_parameters()``.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import backend, nn, optim
from minigrad.io import load_tree, save_tree
from minigrad.optim import lr_scheduler

ONE_EACH = [("sgd", {"lr": 0.1, "momentum": 0.9}), ("sgd", {"lr": 0.1}),
            ("adam", {"lr": 0.1}), ("adamw", {"lr": 0.1}),
            ("rmsprop", {"lr": 0.1, "momentum": 0.5, "centered": True}),
            ("adagrad", {"lr": 0.1})]
ONE_EACH_IDS = [f"{name}-{'-'.join(kw)}" for name, kw in ONE_EACH]


def stepped(name, kwargs, params, steps=2, seed=0):
    """An optimizer ``name`` over ``params`` after ``steps`` steps on random gradients."""
    opt = optim.get(name, params, **kwargs)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        for param in params:
            param.grad = rng.normal(size=param.data.shape)
        opt.step()
    return opt


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("name, kwargs", ONE_EACH, ids=ONE_EACH_IDS)
def test_a_tensor_grad_is_refused_and_nothing_changes(name, kwargs):
    param = nn.Parameter(np.arange(3.0))
    opt = optim.get(name, [param], **kwargs)
    param.grad = mg.tensor(np.ones(3))
    with pytest.raises(TypeError, match=r"parameter 0 of group 0 \(shape \(3,\)\) has a "
                                        r"minigrad Tensor as \.grad.*tensor\.data"):
        opt.step()
    np.testing.assert_array_equal(param.data, np.arange(3.0))
    assert opt.state == {}  # no step counted either


@pytest.mark.parametrize("grad, message", [
    ([1.0, 1.0, 1.0], "of type list"),
    (np.ones(3, dtype=np.int64), "dtype int64"),
    (np.ones(3, dtype=bool), "dtype bool"),
    (np.ones(3, dtype=np.complex128), "dtype complex128"),
], ids=["list", "int", "bool", "complex"])
def test_a_grad_that_is_no_float_array_is_refused(grad, message):
    param = nn.Parameter(np.arange(3.0))
    opt = optim.SGD([param], lr=0.1)
    param.grad = grad
    with pytest.raises(TypeError, match=f"SGD: parameter 0 of group 0.*{message}"):
        opt.step()
    np.testing.assert_array_equal(param.data, np.arange(3.0))


def test_a_wrongly_shaped_grad_names_its_group_and_both_shapes():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros((2, 3)))
    opt = optim.Adam([{"params": [a]}, {"params": [b]}])
    a.grad, b.grad = np.ones(2), np.ones((3, 2))
    with pytest.raises(ValueError, match=r"Adam: parameter 0 of group 1 \(shape \(2, 3\)\).*"
                                         r"grad has shape \(3, 2\)"):
        opt.step()


class _OtherDeviceArray(np.ndarray):
    """Stands in for a CuPy array on the CPU (reported as on 'cuda' by the test)."""


def test_a_grad_on_another_device_is_refused(monkeypatch):
    device_of = backend.device_of
    monkeypatch.setattr(backend, "device_of", lambda array: (
        "cuda" if isinstance(array, _OtherDeviceArray) else device_of(array)))
    param = nn.Parameter(np.zeros(3))
    opt = optim.SGD([param], lr=0.1)
    param.grad = np.ones(3).view(_OtherDeviceArray)
    with pytest.raises(ValueError, match=r"SGD: parameter 0 of group 0 \(shape \(3,\)\) is "
                                         r"on 'cpu' but its grad is on 'cuda'"):
        opt.step()
    np.testing.assert_array_equal(param.data, np.zeros(3))


@pytest.mark.gpu
def test_a_host_grad_on_a_gpu_parameter_is_refused():
    if not backend.cuda_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    param = nn.Parameter(np.zeros(3, dtype=np.float32)).to("cuda")
    opt = optim.Adam([param], lr=0.1)
    param.grad = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match="is on 'cuda' but its grad is on 'cpu'"):
        opt.step()


@pytest.mark.parametrize("name, kwargs", ONE_EACH, ids=ONE_EACH_IDS)
def test_a_grad_of_another_float_precision_is_rounded_to_the_parameters(kernel_mode, name,
                                                                          kwargs):
    """As if the caller had cast it: the same numbers as the float32 gradient gives."""
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)) for _ in range(3)]
    wide, narrow = nn.Parameter(p0.copy()), nn.Parameter(p0.copy())
    opt_wide = optim.get(name, [wide], **kwargs)
    opt_narrow = optim.get(name, [narrow], **kwargs)
    for grad in grads:
        wide.grad, narrow.grad = grad, grad.astype(np.float32)
        opt_wide.step()
        opt_narrow.step()
    assert wide.data.dtype == np.float32
    assert wide.grad.dtype == np.float64  # .grad itself is left as it was
    np.testing.assert_array_equal(wide.data, narrow.data)


def test_a_zero_dim_parameter_takes_a_numpy_scalar_grad():
    """NumPy arithmetic on 0-d arrays returns scalars, so a 0-d gradient may be one."""
    param = nn.Parameter(np.array(2.0, dtype=np.float32))
    opt = optim.Adam([param], lr=0.1)
    param.grad = np.float64(4.0)
    opt.step()
    assert isinstance(param.data, np.ndarray) and param.data.dtype == np.float32
    np.testing.assert_allclose(param.data, 1.9, rtol=1e-6)


# ------------------------------------------------------------------ zero_grad
def test_zero_grad_replaces_a_read_only_grad():
    param = nn.Parameter(np.arange(3.0))
    opt = optim.SGD([param], lr=0.1)
    param.grad = np.broadcast_to(np.float64(1.0), (3,))  # what a sum's backward may leave
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(param.grad, np.zeros(3))
    assert param.grad.flags.writeable and param.grad.dtype == param.data.dtype


def test_zero_grad_leaves_the_array_a_grad_is_a_view_of_alone():
    param = nn.Parameter(np.zeros(3))
    opt = optim.SGD([param], lr=0.1)
    callers = np.ones(6)
    param.grad = callers[::2]
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(callers, np.ones(6))
    np.testing.assert_array_equal(param.grad, np.zeros(3))


def test_zero_grad_zeroes_an_owned_grad_in_place_and_replaces_a_scalar_one():
    a, b = nn.Parameter(np.ones(3)), nn.Parameter(np.array(1.0))
    opt = optim.SGD([a, b], lr=0.1)
    own = np.full(3, 2.0)
    a.grad, b.grad = own, np.float64(3.0)
    opt.zero_grad(set_to_none=False)
    assert a.grad is own  # in place, as PyTorch's zero_()
    np.testing.assert_array_equal(own, np.zeros(3))
    assert isinstance(b.grad, np.ndarray) and b.grad.shape == () and b.grad == 0


# ------------------------------------------------ another optimizer's state
CROSS = [(source, target) for source in optim.OPTIMIZERS for target in optim.OPTIMIZERS
         if source != target and {source, target} != {"adam", "adamw"}]


@pytest.mark.parametrize("source, target", CROSS, ids=[f"{s}-into-{t}" for s, t in CROSS])
def test_another_optimizers_state_dict_is_refused_and_changes_nothing(source, target):
    kwargs = {"sgd": {"momentum": 0.9}, "rmsprop": {"momentum": 0.5, "centered": True}}
    saved = stepped(source, kwargs.get(source, {}), [nn.Parameter(np.ones(3))]).state_dict()
    param = nn.Parameter(np.ones(3))
    opt = optim.get(target, [param], lr=0.5)
    groups_before = [dict(group) for group in opt.param_groups]
    with pytest.raises(ValueError, match=rf"{type(opt).__name__}\.load_state_dict: group 0 "
                                         r".*another optimizer's state dict"):
        opt.load_state_dict(saved)
    assert opt.state == {} and opt.param_groups == groups_before


@pytest.mark.parametrize("name, kwargs", ONE_EACH, ids=ONE_EACH_IDS)
def test_state_entries_not_of_this_optimizer_are_refused(name, kwargs):
    saved = stepped(name, kwargs, [nn.Parameter(np.ones(3))]).state_dict()
    entry = saved["state"][0]
    opt = optim.get(name, [nn.Parameter(np.ones(3))], **kwargs)
    with pytest.raises(ValueError, match=r"state of parameter 0 .*\(unknown: \['exp_avg_sq2'\]"):
        opt.load_state_dict(dict(saved, state={0: dict(entry, exp_avg_sq2=np.ones(3))}))
    if "step" in entry:  # without it the first step would fail on a bare KeyError
        lacking = {key: value for key, value in entry.items() if key != "step"}
        with pytest.raises(ValueError, match=r"\(missing: \['step'\]\)"):
            opt.load_state_dict(dict(saved, state={0: lacking}))
    assert opt.state == {}


def test_adamw_stays_adamw_when_loading_an_adam_checkpoint():
    rng = np.random.default_rng(0)
    p0, grads = rng.normal(size=4), [rng.normal(size=4) for _ in range(4)]
    adam = stepped("adam", {"lr": 0.1, "weight_decay": 0.1}, [nn.Parameter(p0.copy())])
    param = nn.Parameter(p0.copy())
    adamw = optim.AdamW([param], lr=0.5, weight_decay=0.3)
    adamw.load_state_dict(adam.state_dict())
    group = adamw.param_groups[0]
    assert group["decoupled_weight_decay"] is True
    assert group["lr"] == 0.1 and group["weight_decay"] == 0.1  # the rest is loaded

    reference = optim.AdamW([nn.Parameter(p0.copy())], lr=0.1, weight_decay=0.1)
    reference.load_state_dict(adamw.state_dict())
    twin = reference.param_groups[0]["params"][0]
    for grad in grads:
        param.grad, twin.grad = grad, grad.copy()
        adamw.step()
        reference.step()
    np.testing.assert_array_equal(param.data, twin.data)

    # The other way round Adam takes the flag, as torch.optim.Adam does: Adam with
    # decoupled_weight_decay=True is AdamW.
    adam.load_state_dict(adamw.state_dict())
    assert adam.param_groups[0]["decoupled_weight_decay"] is True


def test_a_groups_own_keys_and_a_schedulers_initial_lr_still_load(tmp_path):
    def build():
        return optim.SGD([{"params": [nn.Parameter(np.ones(2))], "tag": "encoder"}], lr=0.1,
                         momentum=0.9)

    opt = build()
    lr_scheduler.StepLR(opt, step_size=1, gamma=0.5).step()
    save_tree(tmp_path / "opt.npz", opt.state_dict())
    resumed = build()  # its scheduler is made after the load, as a resume does it
    resumed.load_state_dict(load_tree(tmp_path / "opt.npz"))
    group = resumed.param_groups[0]
    assert group["tag"] == "encoder" and group["initial_lr"] == 0.1 and group["lr"] == 0.05


# ------------------------------------------- PyTorch's keywords, typed errors
def test_pytorch_keywords_amsgrad_foreach_maximize_are_taken():
    params = [nn.Parameter(np.zeros(2))]
    assert optim.Adam(params, amsgrad=False).param_groups[0]["maximize"] is False
    optim.AdamW(params, 1e-3, (0.9, 0.999), 1e-8, 1e-2, False)  # torch's positional order
    for name in optim.OPTIMIZERS:
        opt = optim.get(name, params, foreach=False, maximize=True)
        assert opt.param_groups[0]["maximize"] is True
        optim.get(name, params, foreach=True)
        optim.get(name, params, foreach=None)
    with pytest.raises(ValueError, match="amsgrad=True is not supported"):
        optim.Adam(params, amsgrad=True)
    with pytest.raises(ValueError, match="AdamW: amsgrad"):
        optim.AdamW(params, amsgrad=True)
    with pytest.raises(ValueError, match="amsgrad"):
        optim.Adam([{"params": params, "amsgrad": True}])


@pytest.mark.parametrize("name, kwargs, message", [
    ("adam", {"betas": 0.9}, r"Adam: betas must be a pair \(beta1, beta2\), got 0\.9"),
    ("adam", {"betas": (0.9, None)}, r"Adam: betas\[1\] must be a number, got None"),
    ("adam", {"lr": None}, "Adam: lr must be a number, got None"),
    ("adamw", {"eps": "1e-8"}, "AdamW: eps must be a number"),
    ("sgd", {"lr": None}, "SGD: lr must be a number"),
    ("sgd", {"momentum": "0.9"}, "SGD: momentum must be a number"),
    ("sgd", {"dampening": None}, "SGD: dampening must be a number"),
    ("sgd", {"momentum": 0.9, "nesterov": "yes"}, "SGD: nesterov must be True or False"),
    ("rmsprop", {"alpha": None}, "RMSprop: alpha must be a number"),
    ("rmsprop", {"centered": 1}, "RMSprop: centered must be True or False"),
    ("adagrad", {"lr_decay": [0.1]}, "Adagrad: lr_decay must be a number"),
    ("adagrad", {"maximize": "no"}, "Adagrad: maximize must be True or False"),
    ("adam", {"foreach": "yes"}, "Adam: foreach must be True or False"),
    ("adam", {"amsgrad": None}, "Adam: amsgrad must be True or False"),
])
def test_wrongly_typed_hyper_parameters_are_type_errors_naming_them(name, kwargs, message):
    with pytest.raises(TypeError, match=message):
        optim.get(name, [nn.Parameter(np.zeros(2))], **kwargs)


@pytest.mark.parametrize("name, kwargs", ONE_EACH, ids=ONE_EACH_IDS)
def test_maximize_climbs_exactly_as_descending_the_negated_gradient(kernel_mode, name, kwargs):
    rng = np.random.default_rng(2)
    p0, grads = rng.normal(size=(3, 4)), [rng.normal(size=(3, 4)) for _ in range(4)]
    up, down = nn.Parameter(p0.copy()), nn.Parameter(p0.copy())
    opt_up = optim.get(name, [up], maximize=True, **kwargs)
    opt_down = optim.get(name, [down], **kwargs)
    for grad in grads:
        up.grad, down.grad = grad.copy(), -grad
        opt_up.step()
        opt_down.step()
        np.testing.assert_array_equal(up.grad, grad)  # the gradient itself is not touched
    np.testing.assert_array_equal(up.data, down.data)


@pytest.mark.parametrize("name, kwargs", ONE_EACH, ids=ONE_EACH_IDS)
def test_maximize_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    p0, grads = rng.normal(size=(3, 4)), [rng.normal(size=(3, 4)) for _ in range(5)]
    ours = nn.Parameter(p0.copy())
    opt = optim.get(name, [ours], maximize=True, **kwargs)
    theirs = torch.tensor(p0, requires_grad=True)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[name]
    theirs_opt = cls([theirs], maximize=True, foreach=False, **kwargs)
    for grad in grads:
        ours.grad, theirs.grad = grad, torch.tensor(grad)
        opt.step()
        theirs_opt.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-15)


# -------------------------------------------------------- named parameters
def test_named_parameters_are_taken_and_name_the_parameter_in_errors(tmp_path):
    model = nn.Sequential(nn.Dense(3, 2), nn.ReLU(), nn.Dense(2, 1))
    names = [name for name, _ in model.named_parameters()]
    opt = optim.Adam(model.named_parameters(), lr=0.1)
    group = opt.param_groups[0]
    assert group["params"] == model.parameters() and group["param_names"] == names
    for param in model.parameters():
        param.grad = np.ones_like(param.data)
    opt.step()
    assert all(opt.state[param]["step"] == 1 for param in model.parameters())
    save_tree(tmp_path / "opt.npz", opt.state_dict())
    assert opt.state_dict()["param_groups"][0]["param_names"] == names  # as torch saves them

    # The checkpoint loads into an optimizer built either way; names are not loaded.
    optim.Adam(model.parameters()).load_state_dict(load_tree(tmp_path / "opt.npz"))
    optim.Adam([{"params": model.named_parameters(), "lr": 0.2}]).load_state_dict(
        load_tree(tmp_path / "opt.npz"))

    model.parameters()[2].grad = np.ones(3)
    with pytest.raises(ValueError, match=r"Adam: parameter 2 '2\.weight' of group 0"):
        opt.step()
    with pytest.raises(TypeError, match="not a mix"):
        optim.SGD([("w", nn.Parameter(np.zeros(1))), nn.Parameter(np.zeros(1))])
