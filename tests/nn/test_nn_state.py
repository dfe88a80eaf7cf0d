"""Module registration rules, state-dict keys/order/values, summary modes, ModuleList."""
import types

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend, nn


def _keys(module):
    return list(module.state_dict())


def _names(module):
    return [n for n, _ in module.named_parameters()]


# ------------------------------------------------------------ assignment keeps registrations
def test_assigning_an_array_to_a_buffer_keeps_it_a_buffer():
    bn = nn.BatchNorm2d(2)
    keys = _keys(bn)
    bn.running_mean = np.full(2, 3.0, np.float32)
    assert _keys(bn) == keys  # still saved, in its place
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], [3, 3])
    bn.eval()
    y = bn(mg.tensor(np.full((1, 2, 1, 1), 3.0, np.float32)))  # normalised by the new mean
    np.testing.assert_allclose(y.numpy(), 0, atol=1e-6)
    bn.running_mean = None  # a buffer slot stays, unsaved, as in torch
    assert "running_mean" not in bn.state_dict()
    bn.running_mean = np.zeros(2, np.float32)
    assert _keys(bn) == keys
    with pytest.raises(TypeError, match=r"BatchNorm2d\.running_var.*list.*array or None"):
        bn.running_var = [1.0, 1.0]


def test_assigning_a_plain_tensor_to_a_parameter_is_a_type_error():
    lin = nn.Linear(2, 3)
    weight = lin.weight
    with pytest.raises(TypeError, match=r"Dense\.weight.*Tensor.*Parameter or None"):
        lin.weight = mg.tensor(np.zeros((3, 2), np.float32), requires_grad=True)
    assert lin.weight is weight and _names(lin) == ["weight", "bias"]
    lin.bias = None  # no bias: unsaved, and the layer works without it
    assert _keys(lin) == ["weight"]
    np.testing.assert_allclose(lin(mg.tensor(np.ones((1, 2), np.float32))).numpy(),
                               weight.numpy().sum(axis=1, keepdims=True).T, rtol=1e-6)
    lin.bias = nn.Parameter(np.zeros(3, np.float32))
    assert _names(lin) == ["weight", "bias"]  # back in its place


def test_a_parameter_replaces_a_plain_attribute_of_the_same_name():
    lin = nn.Dense(2, 3, bias=False)  # bias is a plain None attribute
    bias = nn.Parameter(np.ones(3, np.float32))
    lin.bias = bias
    assert lin.bias is bias and _names(lin) == ["weight", "bias"]


def test_replacing_a_submodule_keeps_its_place_and_rejects_non_modules():
    model = nn.Sequential(nn.Dense(2, 3), nn.ReLU(), nn.Dense(3, 1))
    model.__setattr__("0", nn.Dense(2, 3))
    assert _keys(model) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with pytest.raises(TypeError, match=r"Sequential\.2.*str.*Module or None"):
        setattr(model, "2", "dense")


def test_register_buffer_refuses_a_name_in_use():
    lin = nn.Dense(2, 2)
    with pytest.raises(KeyError, match="weight"):
        lin.register_buffer("weight", np.zeros(2))
    with pytest.raises(TypeError, match="buffer"):
        lin.register_buffer("scale", 2.0)


# ------------------------------------------------------------ state-dict keys and order
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.scale = nn.Parameter(np.ones(1, np.float32))  # own parameter after children


def test_state_dict_goes_module_by_module_as_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), Block())
    assert _keys(model) == [
        "0.weight", "0.bias",
        "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "2.scale", "2.conv.weight", "2.conv.bias",
        "2.bn.weight", "2.bn.bias", "2.bn.running_mean", "2.bn.running_var",
        "2.bn.num_batches_tracked"]
    # named_parameters keeps registration order too, without the buffers
    assert _names(model) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.scale",
                             "2.conv.weight", "2.conv.bias", "2.bn.weight", "2.bn.bias"]


def test_module_registered_twice_is_saved_under_both_names_but_trained_once():
    shared = nn.Dense(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert _keys(model) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(model.parameters()) == 2 and model.num_parameters() == 6
    state = model.state_dict()
    model.load_state_dict(state)  # round trip, strict
    del state["2.bias"]
    model.load_state_dict(state)  # "0.bias" is the same parameter
    del state["0.bias"]
    with pytest.raises(KeyError, match=r"\['0\.bias', '2\.bias'\]"):
        model.load_state_dict(state)


class Tied(nn.Module):
    """A shared module (``dec`` is ``enc``) and a weight tied across two modules."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Dense(3, 3)
        self.dec = self.enc
        self.head = nn.Dense(3, 3, bias=False)
        self.out = nn.Dense(3, 3, bias=False)
        self.out.weight = self.head.weight
        self.bn = nn.BatchNorm2d(3)
        self.bn_again = self.bn


def test_a_file_from_before_shared_modules_had_every_name_still_loads():
    model = Tied()
    assert _keys(model) == [
        "enc.weight", "enc.bias", "dec.weight", "dec.bias", "head.weight", "out.weight",
        "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
        "bn_again.weight", "bn_again.bias", "bn_again.running_mean", "bn_again.running_var",
        "bn_again.num_batches_tracked"]
    # The old format, built by hand: each parameter once under its first name, then each
    # module's buffers once.
    rng = np.random.default_rng(0)
    old = {"enc.weight": rng.normal(size=(3, 3)), "enc.bias": rng.normal(size=3),
           "head.weight": rng.normal(size=(3, 3)), "bn.weight": rng.normal(size=3),
           "bn.bias": rng.normal(size=3), "bn.running_mean": rng.normal(size=3),
           "bn.running_var": rng.uniform(1, 2, size=3), "bn.num_batches_tracked": 7}
    model.load_state_dict(old)
    state = model.state_dict()
    for key, value in old.items():
        alias = key.replace("enc.", "dec.").replace("head.", "out.").replace("bn.", "bn_again.")
        np.testing.assert_allclose(state[key], value, rtol=1e-6)
        np.testing.assert_array_equal(state[alias], state[key])
    Tied().load_state_dict(state)  # the new format (every name) loads too


def test_a_shared_parameter_missing_under_every_name_or_misshapen_is_refused():
    model = Tied()
    state = model.state_dict()
    del state["head.weight"], state["out.weight"]
    with pytest.raises(KeyError, match=r"missing key\(s\) \['head.weight', 'out.weight'\]"):
        model.load_state_dict(state)
    state = model.state_dict()
    del state["dec.bias"]
    state["enc.bias"] = np.zeros(4, np.float32)
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"'enc.bias' has shape \(4,\).*\(3,\)"):
        model.load_state_dict(state)
    for key, value in model.state_dict().items():  # nothing half-loaded
        np.testing.assert_array_equal(value, before[key])


def test_state_dict_matches_pytorch_keys_and_loads_its_tensors():
    torch = pytest.importorskip("torch")
    tshared = torch.nn.Linear(8, 8)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(8, 8), tshared, tshared)
    shared = nn.Linear(8, 8)
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
                         nn.Linear(8, 8), shared, shared)
    assert _keys(ours) == list(theirs.state_dict())
    theirs[1].num_batches_tracked += 4
    ours.load_state_dict(theirs.state_dict())  # torch tensors as values
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())


# ------------------------------------------------------------ loading values of any kind
def test_load_state_dict_takes_tensors_lists_and_numbers():
    bn = nn.BatchNorm2d(2)
    state = dict(bn.state_dict(), weight=mg.tensor([2.0, 3.0]), bias=[0.5, -0.5],
                 num_batches_tracked=5)
    bn.load_state_dict(state)
    np.testing.assert_array_equal(bn.weight.numpy(), [2, 3])
    np.testing.assert_array_equal(bn.bias.numpy(), [0.5, -0.5])
    assert bn.num_batches_tracked == 5 and bn.num_batches_tracked.dtype == np.int64
    assert bn.weight.dtype == np.float32


@pytest.mark.parametrize("bad", [{"a": 1}, "weights", [[1.0], [2.0, 3.0]], None])
def test_load_state_dict_names_the_key_whose_value_is_not_an_array(bad):
    bn = nn.BatchNorm2d(2)
    before = bn.state_dict()
    state = dict(before, running_mean=np.ones(2), bias=bad)
    with pytest.raises(TypeError, match=r"key 'bias'"):
        bn.load_state_dict(state)
    for key, value in bn.state_dict().items():  # nothing half-loaded
        np.testing.assert_array_equal(value, before[key])


def test_to_numpy_takes_arrays_and_array_likes(monkeypatch):
    array = np.arange(3)
    assert backend.to_numpy(array) is array
    np.testing.assert_array_equal(backend.to_numpy([1, 2]), [1, 2])
    assert backend.to_numpy(5).shape == ()

    class DeviceArray:  # stands in for cupy.ndarray: only it is copied with .get()
        def get(self):
            return np.ones(2)
    monkeypatch.setattr(backend, "_load_cupy", lambda: types.SimpleNamespace(ndarray=DeviceArray))
    np.testing.assert_array_equal(backend.to_numpy(DeviceArray()), [1, 1])
    np.testing.assert_array_equal(backend.to_numpy((4, 5)), [4, 5])


# ------------------------------------------------------------ summary
def test_summary_restores_each_modules_own_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.1)))
    model[1].eval()
    before = [m.training for m in model.modules()]
    assert before == [True, True, False, True, True]
    model.summary((1, 2), print_fn=None)
    assert [m.training for m in model.modules()] == before
    model.eval()
    model[2][0].train()
    model.summary((1, 2), print_fn=None)
    assert [m.training for m in model.modules()] == [False, False, False, False, True]


# ------------------------------------------------------------ ModuleList
class Tower(nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Dense(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x):
        for block in self.blocks:
            x = block(x).relu()
        return x


def test_module_list_registers_indexes_and_saves_as_pytorch():
    tower = Tower([4, 3, 2])
    blocks = tower.blocks
    assert len(blocks) == 2 and blocks[-1] is list(blocks)[1]
    assert _keys(tower) == ["blocks.0.weight", "blocks.0.bias",
                            "blocks.1.weight", "blocks.1.bias"]
    assert tower.num_parameters() == 4 * 3 + 3 + 3 * 2 + 2
    assert tower(mg.tensor(np.ones((5, 4), np.float32))).shape == (5, 2)
    assert blocks.append(nn.Dense(2, 2)) is blocks and len(blocks) == 3
    blocks[0] = nn.Dense(4, 3)  # replaced in place: keys keep their order
    assert _keys(blocks)[:2] == ["0.weight", "0.bias"]
    part = blocks[1:]
    assert isinstance(part, nn.ModuleList) and _keys(part)[0] == "0.weight"
    with pytest.raises(TypeError, match="ModuleList holds Modules only"):
        blocks.append([nn.ReLU()])
    with pytest.raises(IndexError, match="index 7"):
        blocks[7]


def test_module_list_keys_match_pytorch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.BatchNorm2d(2)])
    ours = nn.ModuleList([nn.Linear(2, 2), nn.BatchNorm2d(2)])
    assert _keys(ours) == list(theirs.state_dict())


# ------------------------------------------------------------ weight files and key reports
def _small():
    return nn.Sequential(nn.Dense(3, 4), nn.ReLU(), nn.Dense(4, 2))


def test_load_state_dict_reports_missing_and_unexpected_keys_as_pytorch_does():
    model = _small()
    state = model.state_dict()
    assert model.load_state_dict(state) == ([], [])
    assert repr(model.load_state_dict(state)) == "<All keys matched successfully>"
    kept = model.state_dict()["2.bias"].copy()
    partial = {k: v + 1 for k, v in state.items() if k != "2.bias"}
    partial["head.weight"] = np.zeros((2, 4), np.float32)
    result = model.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["head.weight"]
    np.testing.assert_array_equal(model.state_dict()["2.bias"], kept)  # left as it was
    np.testing.assert_array_equal(model.state_dict()["0.weight"], state["0.weight"] + 1)
    with pytest.raises(KeyError, match=r"missing key\(s\) \['2.bias'\]"):
        model.load_state_dict(partial)


def test_load_state_dict_keys_match_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    ours = _small()
    state = {k: v for k, v in theirs.state_dict().items() if k != "0.bias"}
    state["extra"] = torch.zeros(1)
    expected = theirs.load_state_dict(state, strict=False)
    got = ours.load_state_dict({k: v.numpy() for k, v in state.items()}, strict=False)
    assert (got.missing_keys, got.unexpected_keys) == (expected.missing_keys,
                                                       expected.unexpected_keys)


def test_save_writes_the_format_the_suffix_names_or_refuses(tmp_path):
    model = _small()
    for name in ("m.npz", "M.NPZ", "plain"):
        model.save(tmp_path / name)
        with np.load(tmp_path / name) as archive:  # an .npz whatever the name's case
            assert sorted(archive.files) == sorted(model.state_dict())
        assert _small().load(tmp_path / name) == ([], [])
    for name in ("m.h5", "m.pt", "m.keras"):
        with pytest.raises(ValueError, match=r"cannot save weights as '\.\w+'.*\.npz"):
            model.save(tmp_path / name)
        assert not (tmp_path / name).exists()
    (tmp_path / "w.h5").write_bytes(b"HDF")
    with pytest.raises(ValueError, match="cannot load weights as '.h5'"):
        model.load(tmp_path / "w.h5")


def test_load_with_strict_false_takes_a_file_with_other_keys(tmp_path):
    bigger = nn.Sequential(nn.Dense(3, 4), nn.ReLU(), nn.Dense(4, 2), nn.Dense(2, 2))
    bigger.save(tmp_path / "b.npz")
    model = _small()
    result = model.load(tmp_path / "b.npz", strict=False)
    assert result.unexpected_keys == ["3.weight", "3.bias"] and result.missing_keys == []
    np.testing.assert_array_equal(model.state_dict()["2.weight"],
                                  bigger.state_dict()["2.weight"])
