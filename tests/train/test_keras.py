"""Keras-style model.compile / fit / evaluate / predict, lazy layers, summary without the
batch axis."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.train import evaluate, fit


def _blobs(n=150, seed=0):
    """Three Gaussian blobs in 2-D: an easy 3-class problem, as arrays."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    x = centres[labels] + rng.normal(0, 0.6, (n, 2))
    return x.astype(np.float32), labels


def _mlp():
    return nn.Sequential(nn.Dense(2, 16), nn.ReLU(), nn.Dense(16, 3))


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_fit_on_arrays_is_train_fit_on_a_loader():
    x, y = _blobs()
    mg.manual_seed(0)
    keras_model = _mlp().compile(optimizer="adam", loss="cross_entropy",
                                 metrics=["accuracy"], lr=0.05)
    history = keras_model.fit(x, y, epochs=3, batch_size=16, seed=7, verbose=0)
    mg.manual_seed(0)
    loop_model = _mlp()
    loader = DataLoader(TensorDataset(x, y.astype(np.int64)), 16, shuffle=True, seed=7)
    reference = fit(loop_model, loader, optimizer="adam", lr=0.05, epochs=3, verbose=0)
    assert history.history["loss"] == reference.history["loss"]
    for key, value in _weights(keras_model).items():
        np.testing.assert_array_equal(value, _weights(loop_model)[key])
    assert keras_model.history is history
    assert history["accuracy"][-1] > 0.9


def test_evaluate_returns_loss_and_accuracy_and_predict_an_array():
    x, y = _blobs()
    mg.manual_seed(0)
    model = _mlp().compile("sgd", "cross_entropy", ["accuracy"], lr=0.1, momentum=0.9)
    model.fit(x, y, epochs=2, verbose=0)
    scores = model.evaluate(x, y)
    assert set(scores) == {"loss", "accuracy"}
    reference = evaluate(model, DataLoader(TensorDataset(x, y.astype(np.int64)), 32))
    assert scores["loss"] == pytest.approx(reference.loss)
    assert scores["accuracy"] == reference.accuracy
    out = model.predict(x)
    assert isinstance(out, np.ndarray) and out.shape == (150, 3)
    np.testing.assert_allclose(out, model(mg.tensor(x)).numpy(), rtol=1e-6)
    assert np.mean(out.argmax(1) == y) == pytest.approx(scores["accuracy"])
    assert set(_mlp().compile(metrics=[]).evaluate(x, y)) == {"loss"}


def test_validation_split_takes_the_last_samples_before_shuffling():
    x, y = _blobs(100)
    mg.manual_seed(0)
    model = _mlp().compile(lr=0.01)
    history = model.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    tail = model.evaluate(x[75:], y[75:])
    assert history["val_loss"][0] == pytest.approx(tail["loss"])
    assert history["val_accuracy"][0] == pytest.approx(tail["accuracy"])
    mg.manual_seed(0)
    explicit = _mlp().compile(lr=0.01)
    other = explicit.fit(x[:75], y[:75], epochs=1, validation_data=(x[75:], y[75:]), verbose=0)
    assert other["val_loss"] == history["val_loss"]


def test_datasets_and_loaders_are_taken_as_they_are():
    x, y = _blobs()
    data = TensorDataset(x, y.astype(np.int64))
    mg.manual_seed(0)
    model = _mlp().compile(lr=0.05)
    model.fit(data, epochs=2, validation_data=DataLoader(data, 50), verbose=0)
    assert model.evaluate(DataLoader(data, 64))["accuracy"] > 0.8
    assert model.predict(data).shape == (150, 3)


def test_a_second_fit_continues_the_optimizer():
    x, y = _blobs()
    mg.manual_seed(0)
    model = _mlp().compile("adam", lr=0.01)
    model.fit(x, y, epochs=1, verbose=0)
    optimizer = model.compiled.built
    steps = optimizer.state[model.parameters()[0]]["step"]
    model.fit(x, y, epochs=1, verbose=0)
    assert model.compiled.built is optimizer
    assert optimizer.state[model.parameters()[0]]["step"] == 2 * steps


def test_float64_and_integer_inputs_become_the_models_dtype():
    x, y = _blobs()
    model = _mlp().compile()
    assert model.predict(x.astype(np.float64)).dtype == np.float32
    assert model.predict((x * 10).astype(np.int32)).dtype == np.float32


def test_bad_calls_say_what_is_wrong():
    x, y = _blobs()
    with pytest.raises(RuntimeError, match="compile"):
        _mlp().fit(x, y)
    with pytest.raises(ValueError, match="unknown optimizer 'nadam'"):
        _mlp().compile(optimizer="nadam")
    with pytest.raises(ValueError, match="unknown loss"):
        _mlp().compile(loss="focal")
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        _mlp().compile(metrics=["auc"])
    model = _mlp().compile()
    with pytest.raises(ValueError, match="need their targets"):
        model.fit(x)
    with pytest.raises(ValueError, match="150 samples"):
        model.fit(x, y[:10])
    with pytest.raises(ValueError, match="validation_split needs arrays"):
        model.fit(TensorDataset(x, y), validation_split=0.2)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\)"):
        model.fit(x, y, validation_split=1.5)


# --------------------------------------------------------------------------- lazy layers
def test_dense_with_one_argument_infers_its_input_size_as_the_eager_layer_would():
    x = mg.tensor(np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))
    mg.manual_seed(3)
    eager = nn.Dense(5, 3)
    mg.manual_seed(3)
    lazy = nn.Dense(3)
    assert lazy.in_features is None and isinstance(lazy.weight, nn.UninitializedParameter)
    np.testing.assert_array_equal(lazy(x).numpy(), eager(x).numpy())
    assert lazy.in_features == 5 and type(lazy.weight) is nn.Parameter
    with pytest.raises(ValueError, match="expected input with 5 features"):
        lazy(mg.tensor(np.zeros((2, 6), np.float32)))


def test_lazy_layers_become_plain_layers_like_torchs():
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.LazyConv2d(4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.LazyLinear(2))
    x = np.random.default_rng(1).normal(size=(2, 3, 6, 6)).astype(np.float32)
    out = model(mg.tensor(x)).numpy()
    assert type(model[0]) is nn.Conv2d and type(model[3]) is nn.Linear
    reference = torch.nn.Sequential(torch.nn.LazyConv2d(4, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.LazyLinear(2))
    reference(torch.from_numpy(x))
    assert type(reference[0]) is torch.nn.Conv2d and type(reference[3]) is torch.nn.Linear
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    np.testing.assert_allclose(out, reference(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_an_optimizer_over_unshaped_parameters_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Dense(4))
    with pytest.raises(ValueError, match="lazy layer .* run one forward pass"):
        optim.Adam(model.parameters())
    model(mg.tensor(np.zeros((1, 2, 3), np.float32)))
    optim.Adam(model.parameters())  # now it has shapes


def test_fit_builds_lazy_layers_before_its_optimizer():
    x, y = _blobs()
    mg.manual_seed(0)
    model = nn.Sequential(nn.Dense(16), nn.ReLU(), nn.Dense(3)).compile(lr=0.05)
    model.fit(x, y, epochs=3, verbose=0)
    assert model[0].weight.shape == (16, 2)
    assert model.evaluate(x, y)["accuracy"] > 0.9


def test_load_state_dict_gives_lazy_layers_their_shapes():
    source = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Dense(64, 2))
    target = nn.Sequential(nn.LazyConv2d(4, 3), nn.Flatten(), nn.Dense(2))
    target.load_state_dict(source.state_dict())
    x = mg.tensor(np.random.default_rng(2).normal(size=(1, 3, 6, 6)).astype(np.float32))
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    wrong = nn.Sequential(nn.LazyConv2d(4, 3), nn.Flatten(), nn.Dense(2))
    wrong.load_state_dict(source.state_dict())
    with pytest.raises(ValueError, match="needs"):
        wrong(mg.tensor(np.zeros((1, 5, 6, 6), np.float32)))


# --------------------------------------------------------------------------- summary
def test_summary_takes_the_input_shape_without_the_batch_axis():
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Dense(256, 2))
    with_batch = cnn.summary((1, 3, 8, 8), print_fn=None)
    assert cnn.summary((3, 8, 8), print_fn=None) == with_batch
    assert cnn.summary((None, 3, 8, 8), print_fn=None) == with_batch
    assert "Input shape: (1, 3, 8, 8)" in with_batch
    mlp = nn.Sequential(nn.ReLU(), nn.Dense(784, 10))
    assert "(1, 10)" in mlp.summary((784,), print_fn=None)
    lazy = nn.Sequential(nn.LazyConv2d(8, 3), nn.Flatten(), nn.Dense(10))
    text = lazy.summary((1, 12, 12), print_fn=None)
    assert "Total params: 8,090" in text  # 8*1*9+8 + 800*10+10
