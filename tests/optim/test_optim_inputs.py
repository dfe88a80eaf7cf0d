"""Optimizers given what a PyTorch user might hand them: checked, or refused by name.

Gradients that are no array (a Tensor, a list), of the wrong dtype, shape or device;
read-only, broadcast or borrowed gradients under ``zero_grad(set_to_none=False)``;
another optimizer's state dict, and torch-style ones; PyTorch's extra keywords
(``amsgrad``, ``foreach``, ``maximize``), its 0/1 flags and NumPy numbers, and wrongly
typed hyper-parameters; ``model.named_parameters()``.
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


def assert_steps_alike(opt, twin_opt, grads):
    """Step two one-parameter optimizers on the same gradients: their parameters must
    end bit for bit equal."""
    param, twin = opt.param_groups[0]["params"][0], twin_opt.param_groups[0]["params"][0]
    assert param is not twin
    for grad in grads:
        param.grad, twin.grad = grad, grad.copy()
        opt.step()
        twin_opt.step()
    np.testing.assert_array_equal(param.data, twin.data)


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


def test_zero_grad_replaces_a_writable_broadcast_grad():
    """A stride-0 view CuPy (or np.broadcast_arrays) leaves writable: zeroing it in
    place would write one element many times, and into an array of another shape."""
    param = nn.Parameter(np.arange(3.0))
    opt = optim.SGD([param], lr=0.1)
    one = np.ones(1)
    param.grad = np.lib.stride_tricks.as_strided(one, shape=(3,), strides=(0,))
    assert param.grad.flags.writeable
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(one, [1.0])
    assert param.grad.strides == (8,) and not param.grad.any()


def test_zero_grad_zeroes_a_view_in_place_as_torch():
    """torch's zero_grad(set_to_none=False) is p.grad.zero_(): the array a .grad
    view shares memory with sees the zeros, and .grad stays the same object."""
    param = nn.Parameter(np.zeros(3))
    opt = optim.SGD([param], lr=0.1)
    callers = np.ones(6)
    view = param.grad = callers[::2]
    opt.zero_grad(set_to_none=False)
    assert param.grad is view
    np.testing.assert_array_equal(callers, [0, 1, 0, 1, 0, 1])


def test_zero_grad_zeroes_backwards_gradients_in_place_conv_weight_too():
    """A convolution's weight gradient is the one view of a fresh array; a caller
    holding it sees it zeroed, as with any other gradient backward leaves."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Dense(4 * 4 * 4, 2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    model(mg.tensor(np.random.default_rng(0).random((2, 3, 6, 6), np.float32))).sum().backward()
    held = [param.grad for param in model.parameters()]
    assert not held[0].flags.owndata  # the conv weight: a view
    opt.zero_grad(set_to_none=False)
    for param, grad in zip(model.parameters(), held):
        assert param.grad is grad and not grad.any()


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


# An entry another optimizer keeps and this one does not, and who keeps it.
ANOTHERS_ENTRY = {"sgd": ("exp_avg", "Adam, AdamW"), "adam": ("sum", "Adagrad"),
                  "adamw": ("momentum_buffer", "SGD, RMSprop"),
                  "rmsprop": ("exp_avg_sq", "Adam, AdamW"), "adagrad": ("square_avg", "RMSprop")}


@pytest.mark.parametrize("name, kwargs", ONE_EACH, ids=ONE_EACH_IDS)
def test_state_entries_of_another_optimizer_are_refused(name, kwargs):
    saved = stepped(name, kwargs, [nn.Parameter(np.ones(3))]).state_dict()
    entry = saved["state"][0]
    opt = optim.get(name, [nn.Parameter(np.ones(3))], **kwargs)
    key, owners = ANOTHERS_ENTRY[name]
    with pytest.raises(ValueError, match=rf"state of parameter 0 .*\(another optimizer's: "
                                         rf"\['{key} \({owners}\)'\]\).*another optimizer's"):
        opt.load_state_dict(dict(saved, state={0: dict(entry, **{key: np.ones(3)})}))
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
    assert_steps_alike(adamw, reference, grads)

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


def test_a_users_group_key_loads_into_an_optimizer_built_without_it():
    """As torch: every saved group key but params comes back, known or not."""
    param = nn.Parameter(np.ones(2))
    saved = optim.SGD([{"params": [param], "tag": "head"}], lr=0.1, momentum=0.9).state_dict()
    opt = optim.SGD([nn.Parameter(np.ones(2))], lr=0.5, momentum=0.9)
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["tag"] == "head" and opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("entry", ["note", "acc_delta", "mu_product"])
def test_a_state_entry_this_optimizer_does_not_keep_is_refused(entry):
    """torch's Adadelta (acc_delta) or NAdam (mu_product) state, or anything else:
    never carried into an optimizer that would ignore it, and nothing changes."""
    saved = stepped("adam", {}, [nn.Parameter(np.ones(3))]).state_dict()
    saved["state"][0][entry] = np.full(3, 7.0)
    param = nn.Parameter(np.ones(3))
    opt = optim.Adam([param])
    with pytest.raises(ValueError, match=rf"not Adam's: \['{entry}'\]"):
        opt.load_state_dict(saved)
    assert opt.state == {}


def test_an_unknown_group_key_loads_with_a_warning_naming_it():
    saved = stepped("adam", {}, [nn.Parameter(np.ones(3))]).state_dict()
    saved["param_groups"][0]["betass"] = (0.5, 0.5)
    opt = optim.Adam([nn.Parameter(np.ones(3))])
    with pytest.warns(UserWarning, match=r"\['betass'\] that Adam does not use"):
        opt.load_state_dict(saved)
    assert opt.param_groups[0]["betass"] == (0.5, 0.5)


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_pytorchs_own_group_flags_load_and_change_nothing(name):
    """foreach, fused, capturable and differentiable choose how torch computes a step;
    amsgrad=False is Adam's default. A torch-style state dict carries them all."""
    rng = np.random.default_rng(4)
    p0, grads = rng.normal(size=3), [rng.normal(size=3) for _ in range(3)]
    plain = stepped(name, {"lr": 0.1}, [nn.Parameter(p0.copy())], steps=1)
    saved = plain.state_dict()
    flags = {"foreach": None, "fused": None, "capturable": False, "differentiable": False}
    if name.startswith("adam"):
        flags["amsgrad"] = False
    saved["param_groups"][0].update(flags)
    param = nn.Parameter(plain.param_groups[0]["params"][0].data.copy())
    opt = optim.get(name, [param])
    opt.load_state_dict(saved)
    assert_steps_alike(opt, plain, grads)
    with pytest.raises(TypeError, match="fused must be True or False"):
        opt.load_state_dict(dict(saved, param_groups=[dict(saved["param_groups"][0],
                                                           fused="yes")]))


def test_amsgrad_true_in_a_loaded_group_starts_its_maximum():
    saved = stepped("adam", {}, [nn.Parameter(np.ones(3))]).state_dict()
    saved["param_groups"][0]["amsgrad"] = True
    opt = optim.Adam([nn.Parameter(np.ones(3))])
    opt.load_state_dict(saved)
    param = opt.param_groups[0]["params"][0]
    param.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(opt.state[param]["max_exp_avg_sq"],
                                  opt.state[param]["exp_avg_sq"])


def test_another_optimizers_hyper_parameter_is_named_with_its_owners():
    saved = stepped("sgd", {"lr": 0.1, "momentum": 0.9}, [nn.Parameter(np.ones(3))]).state_dict()
    saved["state"] = {}
    del saved["param_groups"][0]["nesterov"], saved["param_groups"][0]["dampening"]
    with pytest.raises(ValueError, match=r"Adam\.load_state_dict: group 0 .*"
                                         r"\['momentum \(SGD, RMSprop\)'\]"):
        optim.Adam([nn.Parameter(np.ones(3))]).load_state_dict(saved)


def test_a_pytorch_state_dict_loads_and_steps_as_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    p0, grads = rng.normal(size=(2, 3)), [rng.normal(size=(2, 3)) for _ in range(4)]
    theirs = torch.tensor(p0, requires_grad=True)
    theirs_opt = torch.optim.Adam([theirs], lr=0.1, foreach=False)
    theirs.grad = torch.tensor(grads[0])
    theirs_opt.step()

    def as_numpy(value):
        return value.detach().numpy().copy() if isinstance(value, torch.Tensor) else value
    saved = theirs_opt.state_dict()
    saved = {"param_groups": saved["param_groups"],
             "state": {i: {k: as_numpy(v) for k, v in entry.items()}
                       for i, entry in saved["state"].items()}}
    ours = nn.Parameter(theirs.detach().numpy().copy())
    opt = optim.Adam([ours])
    opt.load_state_dict(saved)
    for grad in grads[1:]:
        ours.grad, theirs.grad = grad, torch.tensor(grad)
        opt.step()
        theirs_opt.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-15)


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
    assert optim.AdamW(params, amsgrad=True).param_groups[0]["amsgrad"] is True
    with pytest.raises(TypeError, match="AdamW: amsgrad must be True or False"):
        optim.AdamW(params, amsgrad="yes")


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
    ("rmsprop", {"centered": 2}, r"RMSprop: centered must be True or False \(or 1 or 0\), "
                                 "got 2"),
    ("sgd", {"lr": np.array([0.1])}, "SGD: lr must be a number"),
    ("sgd", {"lr": np.bool_(True)}, "SGD: lr must be a number"),
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


@pytest.mark.parametrize("name, kwargs, want", [
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": 1}, {"nesterov": True}),
    ("sgd", {"lr": np.array(0.1), "momentum": np.float32(0.5), "dampening": np.int64(0)},
     {"lr": 0.1, "momentum": 0.5, "dampening": 0.0}),
    ("sgd", {"lr": 0.1, "maximize": np.array(0)}, {"maximize": False}),
    ("adam", {"lr": np.float64(0.01), "betas": (np.array(0.8), np.float32(0.5)),
              "amsgrad": 0}, {"lr": 0.01, "betas": (0.8, 0.5)}),
    ("rmsprop", {"centered": 1, "alpha": np.array(0.9)}, {"centered": True, "alpha": 0.9}),
    ("adagrad", {"maximize": np.bool_(True), "eps": np.array(1e-10)},
     {"maximize": True, "eps": 1e-10}),
], ids=["nesterov-1", "sgd-numpy-numbers", "maximize-0-d", "adam-numpy", "rmsprop", "adagrad"])
def test_pytorchs_flag_ints_and_numpy_numbers_are_taken_as_python_values(name, kwargs, want):
    """torch takes nesterov=1 and lr=np.array(0.1); the group then holds Python bools
    and floats, so the kernels see one type whatever the caller passed."""
    group = optim.get(name, [nn.Parameter(np.zeros(2))], **kwargs).param_groups[0]
    for key, value in want.items():
        assert group[key] == value and type(group[key]) is type(value), key
        if isinstance(value, tuple):
            assert all(type(v) is float for v in group[key])


def test_a_group_loaded_with_numpy_numbers_holds_python_values():
    saved = stepped("sgd", {"lr": 0.1, "momentum": 0.9}, [nn.Parameter(np.ones(3))]).state_dict()
    saved["param_groups"][0].update(lr=np.array(0.25), nesterov=np.int64(1), dampening=0)
    opt = optim.SGD([nn.Parameter(np.ones(3))], momentum=0.9)
    opt.load_state_dict(saved)
    group = opt.param_groups[0]
    assert group["lr"] == 0.25 and type(group["lr"]) is float and group["nesterov"] is True


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


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_state_of_a_fortran_ordered_parameter_is_c_ordered(name):
    """The fused CUDA updates take C-contiguous state only; the CPU does not mind."""
    param = nn.Parameter(np.asfortranarray(np.arange(12.0).reshape(3, 4)))
    opt = stepped(name, {"lr": 0.1, **({"momentum": 0.9} if name in ("sgd", "rmsprop") else {})},
                  [param], steps=1)
    arrays = [v for v in opt.state[param].values() if isinstance(v, np.ndarray) and v.ndim]
    assert arrays and all(a.flags.c_contiguous for a in arrays)


def test_loaded_state_is_c_ordered_whatever_the_files_order():
    """A torch tensor's or a saved array's layout may be Fortran's; the CUDA updates
    take C-contiguous state only, so the loaded copy is C-ordered."""
    param = nn.Parameter(np.ones((3, 4)))
    saved = stepped("adam", {}, [nn.Parameter(np.ones((3, 4)))]).state_dict()
    for key in ("exp_avg", "exp_avg_sq"):
        saved["state"][0][key] = np.asfortranarray(saved["state"][0][key])
    opt = optim.Adam([param])
    opt.load_state_dict(saved)
    assert opt.state[param]["exp_avg"].flags.c_contiguous
    assert opt.state[param]["exp_avg_sq"].flags.c_contiguous
