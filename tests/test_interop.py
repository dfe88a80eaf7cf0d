"""Interop: weights in safetensors with PyTorch's key names (both ways), ONNX export
checked in ONNX Runtime against minigrad's own outputs."""
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


def _cnn():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dense(4 * 4 * 4, 8), nn.Tanh(),
                         nn.Dense(8, 3))


def _torch_cnn(torch):
    t = torch.nn
    return t.Sequential(t.Conv2d(3, 4, 3, padding=1), t.BatchNorm2d(4), t.ReLU(),
                        t.MaxPool2d(2), t.Flatten(), t.Linear(4 * 4 * 4, 8), t.Tanh(),
                        t.Linear(8, 3))


def _images(n=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3, 8, 8)).astype(np.float32)


def _trained_statistics(model):
    """Give BatchNorm non-trivial running statistics (one training-mode pass)."""
    model.train()
    model(mg.tensor(_images(16, 9) * 2 + 1))
    return model.eval()


# --------------------------------------------------------------------------- weight files
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_and_load_round_trip_every_entry(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    model = _trained_statistics(_cnn())
    path = tmp_path / f"m{suffix}"
    model.save(path)
    state = mg.load(path)
    assert set(state) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert state[key].dtype == value.dtype and state[key].shape == value.shape
        np.testing.assert_array_equal(state[key], value)
    fresh = _cnn().eval()
    keys = fresh.load(path)  # torch's missing/unexpected keys
    assert not keys.missing_keys and not keys.unexpected_keys
    np.testing.assert_array_equal(fresh(mg.tensor(_images())).numpy(),
                                  model(mg.tensor(_images())).numpy())
    mg.save({"w": mg.tensor(np.arange(3.0))}, tmp_path / f"t{suffix}")
    np.testing.assert_array_equal(mg.load(tmp_path / f"t{suffix}")["w"], np.arange(3.0))


def test_a_file_name_without_a_known_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"'\.h5'.*\.npz, \.safetensors"):
        _cnn().save(tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()
    with pytest.raises(ValueError, match=r"'\.bin'.*\.npz, \.safetensors"):
        mg.load(tmp_path / "weights.bin")


def test_a_torch_models_safetensors_file_loads_into_the_same_minigrad_model(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    reference = _torch_cnn(torch)
    reference.train()
    reference(torch.from_numpy(_images(16, 9) * 2 + 1))  # running statistics of its own
    reference.eval()
    safetensors_torch.save_file(reference.state_dict(), str(tmp_path / "torch.safetensors"))
    model = _cnn().eval()
    model.load(tmp_path / "torch.safetensors")
    x = _images()
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(mg.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    # ... and back: minigrad's file loads into torch with strict key checking.
    model.save(tmp_path / "minigrad.safetensors")
    back = _torch_cnn(torch).eval()
    back.load_state_dict(safetensors_torch.load_file(str(tmp_path / "minigrad.safetensors")))
    np.testing.assert_allclose(back(torch.from_numpy(x)).detach().numpy(), expected,
                               rtol=1e-5, atol=1e-6)


def test_safetensors_files_carry_the_metadata_pytorch_files_carry(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    _cnn().save(tmp_path / "m.safetensors")
    with safetensors.safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}
        assert "1.num_batches_tracked" in f.keys()


def test_without_safetensors_saving_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"minigrad\[safetensors\]"):
        _cnn().save(tmp_path / "m.safetensors")


# --------------------------------------------------------------------------- ONNX
def _run_onnx(path, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _check_export(model, example, other, tmp_path, atol=1e-5):
    pytest.importorskip("onnx")
    modes = [m.training for m in model.modules()]
    path = mg.onnx.export(model, example, tmp_path / "m.onnx")
    assert [m.training for m in model.modules()] == modes  # evaluation mode only inside
    model.eval()
    for x in (example, other):  # the batch axis is free in the file
        np.testing.assert_allclose(_run_onnx(path, x), model(mg.tensor(x)).numpy(),
                                   rtol=1e-5, atol=atol)


def test_onnx_export_of_every_layer_matches_minigrad_in_onnxruntime(tmp_path):
    mg.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 2, padding="same", activation="tanh"), nn.Sigmoid(),
        nn.AvgPool2d(2, padding=1), nn.Flatten(), nn.Dropout(0.3), nn.Dense(6 * 3 * 3, 8),
        nn.LeakyReLU(0.1), nn.Linear(8, 3), nn.Softmax())
    _trained_statistics(model)
    model.train()
    _check_export(model, _images(2), _images(7, 1), tmp_path)


def test_onnx_export_of_dense_layers_on_other_ranks_and_nested_sequentials(tmp_path):
    mg.manual_seed(1)
    model = nn.Sequential(nn.Sequential(nn.Flatten(start_dim=2), nn.Dense(16, 5)), nn.ReLU(),
                          nn.Dense(5, 2))
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 4)).astype(np.float32)
    _check_export(model, x, x[:1], tmp_path)


def test_onnx_export_of_a_flatten_that_keeps_trailing_axes(tmp_path):
    """Flatten(1, 2) of (N, 3, 4, 4) keeps the last axis: a Reshape to (N, 12, 4)."""
    mg.manual_seed(3)
    model = nn.Sequential(nn.Flatten(1, 2), nn.Dense(4, 5), nn.ReLU(), nn.Flatten(1, 2))
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 4)).astype(np.float32)
    _check_export(model, x, x[:1], tmp_path)


def test_onnx_export_builds_lazy_layers_from_the_example(tmp_path):
    mg.manual_seed(2)
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.ReLU(), nn.Flatten(), nn.Dense(3))
    _check_export(model, _images(1), _images(3), tmp_path)


def test_onnx_export_refuses_a_layer_it_cannot_express(tmp_path):
    pytest.importorskip("onnx")

    class Doubler(nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(TypeError, match="no ONNX form for Doubler; exportable layers: "
                                        "AvgPool2d, BatchNorm2d, Conv2d"):
        mg.onnx.export(nn.Sequential(nn.Flatten(), Doubler()), _images(1), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_onnx_export_without_onnx_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"minigrad\[onnx\]"):
        mg.onnx.export(_cnn(), _images(1), tmp_path / "m.onnx")
