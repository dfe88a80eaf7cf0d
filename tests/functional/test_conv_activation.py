"""Convolution with a fused activation: F.conv2d(activation=), Conv2d(activation=), and
Sequential's fusing of a Conv2d directly followed by an activation module."""
import numpy as np
import pytest
from tests.helpers.gradcheck import check_gradients

import minigrad as mg
import minigrad.functional as F
from minigrad import nn

ACTIVATIONS = ["relu", "tanh", "sigmoid"]
UNFUSED = {"relu": F.relu, "tanh": F.tanh, "sigmoid": F.sigmoid}


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("stride,padding,bias", [(1, 1, True), (2, 0, False), ((2, 1), (0, 2), True)])
def test_fused_conv2d_gradients_match_finite_differences(kernel_mode, activation, stride,
                                                         padding, bias):
    arrays = [randn(2, 3, 6, 7), randn(4, 3, 3, 2, seed=1)] + ([randn(4, seed=2)] if bias else [])

    def fused(x, w, b=None):
        return F.conv2d(x, w, b, stride, padding, activation=activation)
    check_gradients(fused, *arrays, atol=1e-5)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_conv2d_equals_conv2d_then_activation(kernel_mode, activation):
    x, w, b = randn(3, 2, 7, 5), randn(5, 2, 3, 3, seed=1), randn(5, seed=2)
    gy = randn(3, 5, 7, 5, seed=3).astype(np.float32)
    results = []
    for fused in (True, False):
        xt, wt, bt = (mg.tensor(a.astype(np.float32), requires_grad=True) for a in (x, w, b))
        if fused:
            y = F.conv2d(xt, wt, bt, 1, 1, activation=activation)
        else:
            y = UNFUSED[activation](F.conv2d(xt, wt, bt, 1, 1))
        (y * mg.tensor(gy)).sum().backward()
        results.append([y.numpy(), xt.grad, wt.grad, bt.grad])
    for got, want, what in zip(*results, ["y", "gx", "gw", "gb"]):
        if activation == "relu":  # the same operations in the same order: the same bits
            np.testing.assert_array_equal(got, want, err_msg=what)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


def test_unknown_activation_is_rejected_by_name():
    x, w = mg.tensor(randn(1, 1, 3, 3)), mg.tensor(randn(1, 1, 1, 1))
    with pytest.raises(ValueError, match="conv2d.*'elu'.*relu"):
        F.conv2d(x, w, activation="elu")
    with pytest.raises(ValueError, match="Conv2d.*'leaky_relu'"):
        nn.Conv2d(1, 1, 1, activation="leaky_relu")


def test_conv2d_layer_with_activation_is_keras_conv2d_with_activation():
    mg.manual_seed(0)
    layer = nn.Conv2d(2, 3, 3, padding=1, activation="tanh")
    x = mg.tensor(randn(1, 2, 5, 5).astype(np.float32))
    expected = F.tanh(F.conv2d(x, layer.weight, layer.bias, 1, 1)).numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-6, atol=1e-7)
    assert "activation='tanh'" in repr(layer)
    assert list(layer.state_dict()) == ["weight", "bias"]  # nothing new to save


def _model(activation_module=nn.ReLU):
    mg.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), activation_module(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), activation_module(), nn.Flatten(),
                         nn.Dense(6 * 4 * 4, 2))


def _calls_of(monkeypatch, name):
    calls = []
    original = getattr(F, name)

    def counting(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)
    monkeypatch.setattr(F, name, counting)
    return calls


def _forward_backward(layers, x):
    """Output and gradients, running ``layers`` one module at a time (never fused)."""
    out = x
    for layer in layers:
        out = layer(out)
    out.sum().backward()
    return out.numpy(), [p.grad.copy() for p in layers.parameters()]


@pytest.mark.parametrize("module,name", [(nn.ReLU, "relu"), (nn.Tanh, "tanh"),
                                         (nn.Sigmoid, "sigmoid")])
def test_sequential_fuses_conv_then_activation_with_the_same_numbers(kernel_mode, monkeypatch,
                                                                     module, name):
    x = mg.tensor(randn(2, 3, 8, 8).astype(np.float32))
    model = _model(module)
    calls = _calls_of(monkeypatch, name)
    y = model(x)
    y.sum().backward()
    assert calls == [], "the activation modules should have been fused into the convolutions"
    fused = [y.numpy()] + [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    out, grads = _forward_backward(model, x)
    assert len(calls) == 2  # run one by one, the modules did run
    for got, want in zip(fused, [out] + grads):
        if name == "relu":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_sequential_does_not_fuse_subclasses_or_an_already_activated_conv(monkeypatch):
    class LoudReLU(nn.ReLU):
        def forward(self, x):
            return F.relu(x) * 2

    class MyConv(nn.Conv2d):
        pass

    x = mg.tensor(randn(1, 3, 4, 4).astype(np.float32))
    calls = _calls_of(monkeypatch, "relu")
    mg.manual_seed(0)
    conv = nn.Conv2d(3, 2, 1)
    plain = F.relu(conv(x)).numpy()
    np.testing.assert_allclose(nn.Sequential(conv, LoudReLU())(x).numpy(), 2 * plain)
    mine = MyConv(3, 2, 1)
    mine.load_state_dict(conv.state_dict())
    nn.Sequential(mine, nn.ReLU())(x)
    activated = nn.Conv2d(3, 2, 1, activation="relu")
    activated.load_state_dict(conv.state_dict())
    np.testing.assert_array_equal(nn.Sequential(activated, nn.ReLU())(x).numpy(), plain)
    assert len(calls) == 4  # LoudReLU, after MyConv, and twice for the activated conv's ReLU


def test_summary_and_repr_show_the_fused_model_that_trains():
    """summary runs the model as it trains: each fused Conv2d+ReLU pair is one row, and
    both summary and repr list the pairs."""
    model = _model()
    assert model.fused_layers() == [("0", "1"), ("3", "4")]
    text = model.summary((1, 3, 8, 8), print_fn=lambda *_: None)
    # The table's body sits between its second and third rule lines: "index  Type  shape  n".
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    rows = [line.split() for line in lines[rules[1] + 1:rules[2]]]
    assert [row[0] for row in rows] == ["0+1", "2", "3+4", "5", "6"]
    assert [row[1] for row in rows] == ["Conv2d+ReLU", "MaxPool2d", "Conv2d+ReLU", "Flatten",
                                        "Dense"]
    assert rows[0][-1] == str(3 * 4 * 9 + 4)  # the pair's parameters: the convolution's
    assert "Fused (one kernel each, as trained): 0+1, 3+4" in text
    assert "Fused (one kernel each): 0+1, 3+4" in repr(model)
    unfused = nn.Sequential(nn.Conv2d(3, 2, 1, activation="relu"), nn.ReLU())
    assert unfused.fused_layers() == [] and "Fused" not in repr(unfused)
    assert "Conv2d+ReLU" not in unfused.summary((1, 3, 4, 4), print_fn=None)


def test_fused_model_trains_like_the_unfused_one():
    """Three SGD steps of the exercise-style model, fused vs module-by-module."""
    x = mg.tensor(randn(4, 3, 8, 8).astype(np.float32))
    labels = mg.tensor(np.array([0, 1, 1, 0]))
    params = []
    for fused in (True, False):
        model = _model()
        opt = mg.optim.get("sgd", model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            if fused:
                logits = model(x)
            else:
                logits = x
                for layer in model:
                    logits = layer(logits)
            F.cross_entropy(logits, labels).backward()
            opt.step()
        params.append([p.numpy() for p in model.parameters()])
    for a, b in zip(*params):
        np.testing.assert_array_equal(a, b)
