"""A finite loss far above its start: fit warns (DivergenceWarning), once, and records it."""
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.data import DataLoader, TensorDataset
from minigrad.train import (DivergenceWarning, ModelCheckpoint, WarnOnDivergence, fit,
                            load_checkpoint)


def _regression(n=64, seed=0):
    """Linear regression whose MSE has curvature about 2 * 4 = 8 along x[:, 0]: plain
    gradient descent is stable for lr < 2 / 8 and grows the loss by (1 - 8 lr)^2 per
    step above it, staying finite for a few epochs at lr 0.5 (x 9 per step)."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, 2)) * np.array([2.0, 0.5])).astype(np.float32)
    y = (x @ np.array([[1.0], [-1.0]])).astype(np.float32)
    return DataLoader(TensorDataset(x, y), batch_size=16)


def _model():
    mg.manual_seed(0)
    return nn.Dense(2, 1)


def test_a_finite_loss_far_above_its_start_warns_once_and_is_recorded():
    watch = WarnOnDivergence()
    with pytest.warns(DivergenceWarning, match=r"epoch 1 .* times its start .*lower the "
                                               r"learning rate \(it is 0.5\)") as record:
        history = fit(_model(), _regression(), loss="mse", optimizer="sgd", lr=0.5, epochs=3,
                      callbacks=[watch], verbose=0)
    assert len([w for w in record if w.category is DivergenceWarning]) == 1  # once per run
    assert all(np.isfinite(history["loss"])) and history["loss"][-1] > 1e6
    assert watch.diverged_epoch == 1 and "training is diverging" in watch.message
    assert history["loss"][0] > 10 * watch.start


def test_a_converging_run_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        history = fit(_model(), _regression(), loss="mse", optimizer="sgd", lr=0.05, epochs=3,
                      verbose=0)
    assert history["loss"][-1] < history["loss"][0]


def test_fit_adds_one_watcher_unless_given_one_and_resumes_its_start(tmp_path):
    path = tmp_path / "ckpt.npz"
    watch = WarnOnDivergence(factor=1e30)  # never fires: checks that fit uses this one
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        fit(_model(), _regression(), loss="mse", optimizer="sgd", lr=0.5, epochs=1,
            callbacks=[watch, ModelCheckpoint(path)], verbose=0)
    state = load_checkpoint(path)["callbacks"]["WarnOnDivergence"]
    assert state["start"] == watch.start and state["diverged_epoch"] is None
    resumed = WarnOnDivergence()
    with pytest.warns(DivergenceWarning, match="epoch 2"):
        fit(_model(), _regression(), loss="mse", optimizer="sgd", lr=0.5, epochs=2,
            callbacks=[resumed, ModelCheckpoint(path)], resume=path, verbose=0)
    assert resumed.start == watch.start  # the run's own start, not the resumed batch's
    with pytest.raises(ValueError, match="factor must be > 1"):
        WarnOnDivergence(factor=1)
