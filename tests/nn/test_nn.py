"""Modules and layers: registration, state dicts, summaries, gradients, bad input."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.models import exercise_cnn
from tests.helpers.gradcheck import check_layer_gradients

R = np.random.default_rng(3)


class TwoConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.extra = 5  # plain attributes are not registered
        self.head = nn.Sequential(nn.Flatten(), nn.Dense(2 * 3 * 3, 3))
        self.conv1_again = self.conv1  # shared: counted once

    def forward(self, x):
        return self.head(self.conv1(x).relu())


# ------------------------------------------------------------ registration and state
def test_registration_order_and_pytorch_names():
    model = TwoConv()
    assert [n for n, _ in model.named_parameters()] == \
        ["conv1.weight", "conv1.bias", "head.1.weight", "head.1.bias"]
    assert model.num_parameters() == 2 * 9 + 2 + 18 * 3 + 3


def test_state_dict_shapes_follow_pytorch_layouts():
    state = exercise_cnn().state_dict()
    assert state["0.weight"].shape == (32, 3, 3, 3)
    assert state["10.weight"].shape == (128, 12800)
    assert all(isinstance(v, np.ndarray) for v in state.values())


def test_exercise_cnn_summary_counts_parameters():
    text = exercise_cnn().summary((1, 3, 80, 80), print_fn=None)
    assert "Total params: 1,732,292" in text
    assert "(1, 128, 10, 10)" in text and "(1, 12800)" in text


def test_save_load_round_trip_is_exact(tmp_path):
    mg.manual_seed(1)
    a = exercise_cnn(3)
    a.save(tmp_path / "m.npz")
    mg.manual_seed(2)
    b = exercise_cnn(3)
    b.load(tmp_path / "m.npz")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
    assert not list(tmp_path.glob("*.tmp"))


def test_load_state_dict_names_the_bad_key():
    model = TwoConv()
    state = model.state_dict()
    missing = dict(state)
    del missing["head.1.bias"]
    with pytest.raises(KeyError, match="head.1.bias"):
        model.load_state_dict(missing)
    wrong = dict(state, **{"conv1.weight": np.zeros((2, 1, 5, 5))})
    before = model.conv1.bias.numpy().copy()
    with pytest.raises(ValueError, match=r"conv1.weight.*\(2, 1, 5, 5\).*\(2, 1, 3, 3\)"):
        model.load_state_dict(wrong)
    np.testing.assert_array_equal(model.conv1.bias.numpy(), before)  # nothing half-loaded
    with pytest.raises(KeyError, match="unexpected.*stray"):
        model.load_state_dict(dict(state, stray=np.zeros(1)))


def test_default_initialisation_matches_pytorch_bounds(rng):
    dense = nn.Dense(400, 50)
    bound = 1 / np.sqrt(400)
    assert np.abs(dense.weight.numpy()).max() <= bound
    assert np.abs(dense.weight.numpy()).max() > 0.95 * bound
    assert np.abs(dense.bias.numpy()).max() <= bound
    conv = nn.Conv2d(8, 4, 3)
    assert np.abs(conv.weight.numpy()).max() <= 1 / np.sqrt(72)
    assert dense.weight.dtype == np.float32


def test_he_and_glorot_schemes(rng):
    w = nn.Parameter(np.zeros((300, 200), np.float32))
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(np.sqrt(2 / 200), rel=0.05)
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= np.sqrt(6 / 500)
    assert w.numpy().std() == pytest.approx(np.sqrt(2 / 500), rel=0.05)
    nn.init.he_uniform_(w, nonlinearity="relu")
    assert np.abs(w.numpy()).max() <= np.sqrt(6 / 200)


def test_seeded_initialisation_repeats():
    mg.manual_seed(7)
    a = nn.Dense(5, 3).weight.numpy()
    mg.manual_seed(7)
    np.testing.assert_array_equal(nn.Dense(5, 3).weight.numpy(), a)


def test_sequential_add_index_and_table():
    model = nn.Sequential()
    model.add(nn.Dense(4, 8)).add(nn.ReLU()).add(nn.Dense(8, 2))
    assert len(model) == 3 and isinstance(model[1], nn.ReLU)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    table = repr(model)
    assert "Dense(in_features=4, out_features=8" in table and "Total params: 58" in table
    with pytest.raises(TypeError, match="Module"):
        model.add("relu")


def test_train_eval_propagate():
    model = nn.Sequential(nn.Dropout(0.5), nn.Sequential(nn.BatchNorm2d(2)))
    model.eval()
    assert not model[1][0].training
    model.train()
    assert model[0].training and model[1][0].training


# ------------------------------------------------------------ layer gradients (float64)
@pytest.mark.parametrize("layer,shape", [
    (lambda: nn.Dense(5, 3), (1, 5)),
    (lambda: nn.Dense(4, 2, bias=False), (3, 4)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1), (1, 2, 5, 4)),
    (lambda: nn.Conv2d(2, 2, (3, 2), stride=(2, 1), padding=(0, 1)), (2, 2, 7, 5)),
    (lambda: nn.Conv2d(1, 2, 5, stride=2, padding=2, bias=False), (1, 1, 7, 7)),
    (lambda: nn.AvgPool2d(3, 2, 1), (2, 2, 5, 5)),
    (lambda: nn.Flatten(), (2, 3, 2)),
    (lambda: nn.Tanh(), (3, 4)),
    (lambda: nn.Sigmoid(), (3, 4)),
    (lambda: nn.Softmax(dim=1), (3, 4)),
    (lambda: nn.BatchNorm2d(3), (4, 3, 2, 3)),
])
def test_layer_gradients(layer, shape):
    check_layer_gradients(layer(), R.standard_normal(shape), atol=1e-5)


@pytest.mark.parametrize("layer", [nn.ReLU, lambda: nn.LeakyReLU(0.1)])
def test_kinked_activation_gradients(layer):
    x = R.standard_normal((3, 4))
    check_layer_gradients(layer(), x + np.sign(x) * 0.05)


def test_maxpool_layer_gradients():
    x = R.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) / 5.0
    check_layer_gradients(nn.MaxPool2d(2), x)
    check_layer_gradients(nn.MaxPool2d(3, stride=2, padding=1), x)


def test_small_cnn_end_to_end_gradients():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Dense(3 * 2 * 2, 2))
    check_layer_gradients(model, R.standard_normal((2, 2, 4, 5)), atol=1e-5)


def test_batchnorm_running_stats_and_eval_mode():
    bn = nn.BatchNorm2d(2)
    x = mg.tensor(R.standard_normal((8, 2, 3, 3)) * 3 + 1)
    bn(x)
    assert bn.num_batches_tracked == 1
    assert np.all(bn.running_mean != 0)
    bn.eval()
    mean_before = bn.running_mean.copy()
    bn(x)
    np.testing.assert_array_equal(bn.running_mean, mean_before)
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var",
                                    "num_batches_tracked"}


def test_dropout_layer_active_only_in_training(rng):
    drop = nn.Dropout(0.5)
    x = mg.tensor(np.ones((10, 10)))
    assert (drop(x).numpy() == 0).any()
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())


# ------------------------------------------------------------ bad input
def test_conv_given_wrong_channels_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 32.*\(N, 3, H, W\).*\(2, 1, 80, 80\)"):
        exercise_cnn()(mg.tensor(np.zeros((2, 1, 80, 80), np.float32)))


def test_dense_given_wrong_features_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Dense\(in_features=12800.*\(2, 8192\)"):
        exercise_cnn()(mg.tensor(np.zeros((2, 3, 64, 64), np.float32)))


def test_wrong_rank_is_named():
    with pytest.raises(ValueError, match=r"MaxPool2d.*\(3, 4\)"):
        nn.MaxPool2d(2)(mg.tensor(np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4.*\(2, 3, 5, 5\)"):
        nn.BatchNorm2d(4)(mg.tensor(np.zeros((2, 3, 5, 5))))


def test_model_to_cuda_without_gpu_is_clear():
    if mg.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CuPy|GPU"):
        nn.Dense(2, 2).to("cuda")


def test_activation_by_name():
    assert isinstance(nn.activation("TANH"), nn.Tanh)
    with pytest.raises(ValueError, match="relu"):
        nn.activation("swish")


# ------------------------------------------------------------ bad arguments, named
@pytest.mark.parametrize("make,error,message", [
    (lambda: nn.Conv2d(1, 1, 3, padding=-1), ValueError, r"Conv2d\(1, 1, kernel_size=3\): padding"),
    (lambda: nn.Conv2d(1, 1, 3, stride=0), ValueError, r"Conv2d\(1, 1, kernel_size=3\): stride"),
    (lambda: nn.Conv2d(1, 1, (3, 3), stride=(1, 0)), ValueError, r"Conv2d\(.*\): stride"),
    (lambda: nn.Conv2d(1, 1, 0), ValueError, r"Conv2d\(1, 1, kernel_size=0\): kernel_size"),
    (lambda: nn.Conv2d(0, 1, 3), ValueError, r"Conv2d\(0, 1, kernel_size=3\): in_channels"),
    (lambda: nn.Conv2d(1, -2, 3), ValueError, r"Conv2d\(1, -2, .*\): out_channels"),
    (lambda: nn.Conv2d(1, 1, 2.5), TypeError, r"Conv2d\(1, 1, kernel_size=2\.5\): kernel_size"),
    (lambda: nn.Conv2d(1, 1, 3, padding="full"), ValueError, r"Conv2d\(1, 1, .*'full'"),
    (lambda: nn.Conv2d(1, 1, 3, stride=2, padding="same"), ValueError, r"Conv2d\(.*same.*stride"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, r"MaxPool2d\(kernel_size=2\): stride"),
    (lambda: nn.MaxPool2d(0), ValueError, r"MaxPool2d\(kernel_size=0\): kernel_size"),
    (lambda: nn.AvgPool2d(2, padding=-1), ValueError, r"AvgPool2d\(kernel_size=2\): padding"),
])
def test_conv_and_pool_constructors_reject_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_conv_same_and_valid_padding():
    x = mg.tensor(R.standard_normal((2, 1, 5, 6)).astype(np.float32))
    same = nn.Conv2d(1, 2, 3, padding="same")
    explicit = nn.Conv2d(1, 2, 3, padding=1)
    explicit.load_state_dict(same.state_dict())
    np.testing.assert_array_equal(same(x).numpy(), explicit(x).numpy())
    assert "padding='same'" in repr(same)
    assert nn.Conv2d(1, 2, (2, 4), padding="same")(x).shape == (2, 2, 5, 6)
    assert nn.Conv2d(1, 2, 3, padding="valid")(x).shape == (2, 2, 3, 4)


def test_forward_errors_from_ops_name_the_layer():
    small = mg.tensor(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"^Conv2d\(1, 1, kernel_size=\(3, 3\).*smaller"):
        nn.Conv2d(1, 1, 3)(small)
    with pytest.raises(ValueError, match=r"^Conv2d\(1, 1, kernel_size=\(3, 3\).*smaller"):
        nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU())(small)  # the fused path too
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=\(3, 3\).*smaller"):
        nn.MaxPool2d(3)(small)
    with pytest.raises(IndexError,
                       match=r"^Flatten\(start_dim=1, end_dim=-1\).*dim 1 is out of range.*1 dim"):
        nn.Flatten()(mg.tensor(np.zeros(3, np.float32)))  # torch raises too


class _DataError(ValueError):
    pass


class _BuiltFromTwoArguments(ValueError):
    def __init__(self, what, value):
        super().__init__(f"bad {what}: {value}")


def test_an_op_errors_subclass_keeps_its_type_the_layer_and_the_chain(monkeypatch):
    from minigrad import functional as F
    original = _DataError("inputs are odd")

    def failing(*args):
        raise original

    monkeypatch.setattr(F, "flatten", failing)
    with pytest.raises(_DataError,
                       match=r"^Flatten\(start_dim=1, end_dim=-1\): inputs are odd$") as info:
        nn.Flatten()(mg.tensor(np.zeros((2, 3), np.float32)))
    assert info.value.__cause__ is original  # the traceback shows where it came from
    # A subclass that cannot be rebuilt from a message is re-raised itself, with a note.
    original = _BuiltFromTwoArguments("start_dim", 9)
    with pytest.raises(_BuiltFromTwoArguments) as info:
        nn.Flatten()(mg.tensor(np.zeros((2, 3), np.float32)))
    assert info.value is original
    assert info.value.__notes__ == ["raised in Flatten(start_dim=1, end_dim=-1)"]


@pytest.mark.parametrize("layer,shape", [(lambda: nn.Dense(3, 2), (2, 3)),
                                         (lambda: nn.Conv2d(1, 2, 3), (1, 1, 4, 4))])
def test_non_float_input_is_a_type_error_naming_layer_and_dtype(layer, shape):
    layer = layer()
    name = type(layer).__name__
    for dtype in (np.int64, np.int32, np.uint8, bool):
        with pytest.raises(TypeError, match=rf"^{name}\(.*{np.dtype(dtype).name}"):
            layer(mg.tensor(np.zeros(shape, dtype)))
    for dtype in (np.float16, np.float32, np.float64):  # float input keeps working
        assert layer(mg.tensor(np.ones(shape, dtype))).dtype.kind == "f"
