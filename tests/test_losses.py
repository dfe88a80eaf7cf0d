"""Each loss against values worked out by hand / a plain second formulation, and PyTorch."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import losses
from tests.helpers.gradcheck import check_gradients
from tests.helpers.torch_oracle import check_against_torch

R = np.random.default_rng(2)


def test_mse_mae_by_hand():
    p, t = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 1.0])
    assert losses.get("mse")(mg.tensor(p), mg.tensor(t)).item() == pytest.approx((0.25 + 9) / 3)
    assert losses.get("mae")(mg.tensor(p), mg.tensor(t)).item() == pytest.approx(3.5 / 3)
    assert losses.MSELoss("sum")(mg.tensor(p), mg.tensor(t)).item() == pytest.approx(9.25)
    assert losses.L1Loss("none")(mg.tensor(p), mg.tensor(t)).shape == (3,)


def test_huber_by_hand():
    p, t = np.array([0.0, 0.0, 0.0]), np.array([0.5, -2.0, 3.0])
    # |d| <= 1: d^2/2; else |d| - 1/2
    expected = (0.125 + 1.5 + 2.5) / 3
    assert losses.get("huber")(mg.tensor(p), mg.tensor(t)).item() == pytest.approx(expected)
    assert losses.HuberLoss(delta=2.0)(mg.tensor(p), mg.tensor(t)).item() == \
        pytest.approx((0.125 + 2.0 + 2 * (3 - 1)) / 3)


def test_cross_entropy_by_hand():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    labels = np.array([0, 2])
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(log_probs[0, 0] + log_probs[1, 2]) / 2
    assert losses.get("cross_entropy")(mg.tensor(logits), mg.tensor(labels)).item() == \
        pytest.approx(expected)
    soft = np.eye(3)[labels]
    assert F.cross_entropy(mg.tensor(logits), mg.tensor(soft)).item() == pytest.approx(expected)
    assert F.nll_loss(F.log_softmax(mg.tensor(logits), 1), mg.tensor(labels)).item() == \
        pytest.approx(expected)


def test_logistic_by_hand():
    x, t = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.0, 1.0])
    p = 1 / (1 + np.exp(-x))
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert losses.get("logistic")(mg.tensor(x), mg.tensor(t)).item() == pytest.approx(expected)
    assert losses.get("bce")(mg.tensor(x), mg.tensor(t)).item() == pytest.approx(expected)


def test_hinge_by_hand():
    x = np.array([[0.1, 0.2, 0.4, 0.8]])
    # torch docs example: ((1-(0.8-0.1)) + (1-(0.8-0.2)) + (1-(0.8-0.4))) / 4
    assert losses.get("hinge")(mg.tensor(x), mg.tensor([3])).item() == pytest.approx(0.325)


@pytest.mark.parametrize("name,make_target", [
    ("mse", lambda: R.standard_normal((4, 3))),
    ("mae", lambda: R.standard_normal((4, 3)) + 0.3),
    ("huber", lambda: R.standard_normal((4, 3)) * 2),
    ("logistic", lambda: (R.random((4, 3)) > 0.5).astype(float)),
])
def test_regression_losses_gradients(name, make_target):
    target = make_target()
    loss = losses.get(name)
    check_gradients(lambda p: loss(p, mg.tensor(target)), R.standard_normal((4, 3)))


@pytest.mark.parametrize("name", ["cross_entropy", "hinge"])
def test_classification_losses_gradients(name):
    labels = mg.tensor([0, 2, 1, 2])
    loss = losses.get(name)
    check_gradients(lambda z: loss(z, labels), R.standard_normal((4, 3)))


def test_unknown_loss_lists_known_ones():
    with pytest.raises(ValueError, match="cross_entropy.*hinge"):
        losses.get("cross_entropyy")


def test_label_out_of_range_is_named():
    with pytest.raises(ValueError, match="label 7"):
        losses.get("cross_entropy")(mg.tensor(np.zeros((2, 4))), mg.tensor([1, 7]))
    with pytest.raises(ValueError, match="label -1"):
        losses.get("hinge")(mg.tensor(np.zeros((2, 4))), mg.tensor([-1, 0]))
    with pytest.raises(TypeError, match="integers"):
        losses.get("cross_entropy")(mg.tensor(np.zeros((2, 4))), np.array([0.5, 1.0]))


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        losses.get("mse")(mg.tensor(np.zeros(3)), mg.tensor(np.zeros(4)))


def test_losses_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    z, labels = R.standard_normal((6, 5)) * 3, R.integers(0, 5, 6)
    p, t = R.standard_normal((6, 5)), R.standard_normal((6, 5)) * 2
    b = (R.random((6, 5)) > 0.5).astype(float)
    cases = [("cross_entropy", nn.CrossEntropyLoss(), z, labels),
             ("hinge", nn.MultiMarginLoss(), z, labels), ("mse", nn.MSELoss(), p, t),
             ("mae", nn.L1Loss(), p, t), ("huber", nn.HuberLoss(), p, t),
             ("logistic", nn.BCEWithLogitsLoss(), p, b)]
    for name, theirs, prediction, target in cases:  # the target is a constant in both
        check_against_torch([prediction], lambda x: theirs(x, torch.tensor(target)),
                            lambda x: losses.get(name)(x, mg.tensor(target)), atol=1e-12,
                            rtol=1e-10)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "logistic"])
def test_targets_take_the_predictions_float_dtype(name):
    prediction = R.standard_normal((4, 3))
    target = (R.random((4, 3)) > 0.5).astype(np.float64)
    expected = losses.get(name)(mg.tensor(prediction), mg.tensor(target)).item()  # float64
    loss = losses.get(name)
    for given in (target, target.astype(np.int64), target.astype(bool), target.tolist(),
                  mg.tensor(target)):
        p = mg.tensor(prediction.astype(np.float32), requires_grad=True)
        value = loss(p, given)
        value.backward()
        assert value.dtype == np.float32 and p.grad.dtype == np.float32, type(given)
        assert value.item() == pytest.approx(expected, rel=1e-5)
    p64 = mg.tensor(prediction, requires_grad=True)  # float64 stays float64
    assert loss(p64, target.astype(np.float32)).dtype == np.float64


def test_cross_entropy_probability_targets_take_the_logits_dtype():
    logits = mg.tensor(R.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    probabilities = mg.tensor(np.full((3, 4), 0.25))  # float64
    loss = losses.get("cross_entropy")(logits, probabilities)
    loss.backward()
    assert loss.dtype == np.float32 and logits.grad.dtype == np.float32


def test_hinge_with_a_negative_margin_by_hand():
    x = mg.tensor(np.array([[0.1, 0.2, 0.9, 0.8]]))
    # sum over i != y of max(0, margin - x[y] + x[i]) / C: only i = 2 counts
    assert losses.MultiMarginLoss(margin=-0.05)(x, mg.tensor([3])).item() == \
        pytest.approx((-0.05 - 0.8 + 0.9) / 4)
    assert losses.MultiMarginLoss(margin=-0.5)(x, mg.tensor([3])).item() == 0


def test_hinge_margins_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    z, labels = R.standard_normal((6, 5)), R.integers(0, 5, 6)
    for margin in (-1.0, -0.3, 0.0, 0.5, 2.0):
        check_against_torch([z, labels], torch.nn.MultiMarginLoss(margin=margin),
                            losses.MultiMarginLoss(margin=margin), atol=1e-12, rtol=1e-10)
