"""fit / evaluate / predict / History / callbacks / NaN stop / resume."""
import io
import math
import os
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.io import save_tree
from minigrad.optim import lr_scheduler
from minigrad.train import (Callback, EarlyStopping, History, LearningRateScheduler,
                            ModelCheckpoint, ProgressLogger, TrainingDiverged, evaluate,
                            fit, format_epoch, load_checkpoint, predict, save_checkpoint)


def _blobs(n=150, seed=0):
    """Three Gaussian blobs in 2-D: an easy, learnable 3-class problem."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    x = centres[labels] + rng.normal(0, 0.6, (n, 2))
    return TensorDataset(x.astype(np.float32), labels.astype(np.int64))


def _loaders(seed=1, batch_size=16):
    train, val = _blobs(150, 0), _blobs(60, 1)
    return (DataLoader(train, batch_size, shuffle=True, seed=seed),
            DataLoader(val, 32, shuffle=False))


def _mlp(dropout=0.0):
    layers = [nn.Dense(2, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Dense(16, 3))


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------- fit and History
def test_fit_learns_and_returns_a_keras_like_history():
    mg.manual_seed(0)
    model = _mlp()
    train, val = _loaders()
    history = fit(model, train, val, lr=0.05, epochs=5, verbose=0)
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds",
                      "images_per_second"}
    assert all(len(v) == 5 for v in h.values()) and history.epoch == [0, 1, 2, 3, 4]
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["val_accuracy"][-1] > 0.9 and h["accuracy"][-1] > 0.9
    assert h["lr"] == [0.05] * 5 and all(s > 0 for s in h["seconds"])
    assert history.params["epochs"] == 5 and history.params["steps"] == 10
    assert history["loss"] is h["loss"] and "val_loss" in history and len(history) == 5


def test_training_metrics_match_their_definition():
    # With lr=0 the weights never change, so the epoch's training loss and accuracy
    # must equal those of the fixed model over the whole training set.
    mg.manual_seed(0)
    model = _mlp()
    train, _ = _loaders()
    history = fit(model, train, optimizer="sgd", lr=0.0, epochs=1, verbose=0)
    x, y = train.dataset.arrays
    logits = model(mg.tensor(x)).numpy().astype(np.float64)
    log_probs = logits - logits.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    assert history["loss"][0] == pytest.approx(-log_probs[np.arange(len(y)), y].mean(), rel=1e-5)
    assert history["accuracy"][0] == pytest.approx((logits.argmax(1) == y).mean())


def test_history_best_and_json_round_trip(tmp_path):
    h = History()
    for epoch, (loss, acc) in enumerate([(1.0, 0.5), (0.6, 0.7), (0.8, 0.65)]):
        h.append(epoch, {"val_loss": loss, "val_accuracy": acc})
    assert h.best("val_loss") == (1, 0.6) and h.best("val_accuracy") == (1, 0.7)
    assert h.best("val_loss", mode="max") == (0, 1.0)
    h.append(3, {"val_loss": 0.5})  # a key missing in an epoch is NaN there
    assert math.isnan(h["val_accuracy"][3])
    path = h.save(tmp_path / "history.json")
    back = History.load(path)
    assert back.epoch == h.epoch and back["val_loss"] == h["val_loss"]
    with pytest.raises(KeyError, match="History has no 'loss'"):
        h.best("loss")
    with pytest.raises(ValueError, match="mode"):
        h.best("val_loss", mode="best")


def test_same_seeds_same_numbers_other_seed_other_numbers():
    def run(seed):
        mg.manual_seed(seed)
        model = _mlp(dropout=0.2)
        train, val = _loaders(seed=seed)
        history = fit(model, train, val, lr=0.02, epochs=3, verbose=0)
        return history.history, _weights(model)

    h1, w1 = run(3)
    h2, w2 = run(3)
    h3, w3 = run(4)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert h1[key] == h2[key]
    assert _same_weights(w1, w2) and not _same_weights(w1, w3)


def test_fit_accepts_an_optimizer_object_and_moves_no_data_needlessly():
    mg.manual_seed(0)
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train, val = _loaders()
    history = fit(model, train, val, optimizer=opt, epochs=2, verbose=0)
    assert history["lr"] == [0.1, 0.1]
    fit(model, train, optimizer=opt, lr=0.01, epochs=1, verbose=0)  # lr overrides the groups'
    assert opt.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "hinge", "logistic", "cross_entropy"])
def test_every_registry_loss_trains_a_classifier(loss):
    mg.manual_seed(0)
    model = _mlp()
    train, val = _loaders()
    history = fit(model, train, val, loss=loss, lr=0.02, epochs=4, verbose=0)
    assert all(np.isfinite(history["loss"]))
    assert history["val_accuracy"][-1] > 0.8


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(loss="cross_entropyy"), ValueError, "known losses"),
    (dict(optimizer="adamm"), ValueError, "known"),
    (dict(optimizer=3), TypeError, "optimizer must be"),
    (dict(callbacks=[object()]), TypeError, "Callback"),
])
def test_fit_rejects_bad_arguments(kwargs, error, match):
    train, _ = _loaders()
    with pytest.raises(error, match=match):
        fit(_mlp(), train, verbose=0, **kwargs)


# ----------------------------------------------------------------- evaluate / predict
def test_evaluate_matches_a_plain_computation():
    mg.manual_seed(0)
    model = _mlp()
    data = _blobs(45, 2)
    loader = DataLoader(data, batch_size=20)  # uneven batches: 20, 20, 5
    result = evaluate(model, loader)
    x, y = data.arrays
    logits = model(mg.tensor(x)).numpy().astype(np.float64)
    shifted = logits - logits.max(1, keepdims=True)
    losses = np.log(np.exp(shifted).sum(1)) - shifted[np.arange(45), y]
    pred = logits.argmax(1)
    confusion = np.zeros((3, 3), int)
    for t, p in zip(y, pred):
        confusion[t, p] += 1
    assert result.loss == pytest.approx(losses.mean(), rel=1e-5)
    assert result.accuracy == pytest.approx((pred == y).mean())
    np.testing.assert_array_equal(result.confusion, confusion)
    loss, accuracy, matrix = result  # unpacks like a tuple
    assert matrix.sum() == 45


def test_evaluate_uses_eval_mode_and_restores_it():
    mg.manual_seed(0)
    model = _mlp(dropout=0.5)
    loader = DataLoader(_blobs(30), batch_size=30)
    first, second = evaluate(model, loader), evaluate(model, loader)
    assert first.loss == second.loss  # no dropout noise while evaluating
    assert model.training


def test_evaluate_confusion_has_a_row_per_named_class():
    from minigrad.data import ImageDataset
    images = np.zeros((6, 8, 8, 3), np.uint8)
    ds = ImageDataset(images, np.array([0, 0, 1, 1, 0, 1]), ["a", "b", "c", "d"])
    model = nn.Sequential(nn.Flatten(), nn.Dense(192, 4))
    result = evaluate(model, DataLoader(ds, batch_size=4))
    assert result.confusion.shape == (4, 4) and result.confusion.sum() == 6


class _TwoClasses(TensorDataset):
    classes = ["ants", "bees"]


@pytest.mark.parametrize("predicted_for", [(3, 1), (2, 3)])
def test_evaluate_with_more_outputs_than_classes(predicted_for):
    # A 4-output head on a 2-class dataset: class-0 samples are predicted as
    # predicted_for[0], class-1 samples as predicted_for[1].
    x = np.repeat(np.eye(2, dtype=np.float32), 10, axis=0)
    labels = np.repeat([0, 1], 10)
    model = nn.Sequential(nn.Dense(2, 4))
    weight = np.zeros((4, 2), np.float32)
    weight[predicted_for[0], 0] = weight[predicted_for[1], 1] = 1.0
    model[0].weight.data[...] = weight
    model[0].bias.data[...] = 0.0
    loader = DataLoader(_TwoClasses(x, labels), batch_size=8)
    result = evaluate(model, loader)
    expected = np.zeros((4, 4), int)
    expected[0, predicted_for[0]] = expected[1, predicted_for[1]] = 10
    np.testing.assert_array_equal(result.confusion, expected)
    assert result.accuracy == pytest.approx(np.mean(np.array(predicted_for)[labels] == labels))
    # the same definition as fit's training accuracy (lr=0 keeps the model as it is)
    history = fit(model, loader, optimizer="sgd", lr=0.0, epochs=1, verbose=0)
    assert history["accuracy"][0] == pytest.approx(result.accuracy)


def test_predict_from_arrays_datasets_and_loaders():
    mg.manual_seed(0)
    model = _mlp()
    data = _blobs(37)
    x = data.arrays[0]
    expected = model(mg.tensor(x)).numpy()
    np.testing.assert_allclose(predict(model, x, batch_size=10), expected, rtol=1e-6)
    np.testing.assert_allclose(predict(model, mg.tensor(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(predict(model, data), expected, rtol=1e-6)
    np.testing.assert_allclose(predict(model, DataLoader(data, 8)), expected, rtol=1e-6)


# ----------------------------------------------------------------- callbacks
class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin {epoch}")

    def on_batch_end(self, step, logs=None):
        self.events.append(f"batch {step} size {logs['size']}")
        self.running = self.run.running_logs()

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_checkpoint(self, epoch, logs=None):
        self.events.append(f"checkpoint {epoch} history {len(self.run.history)}")

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_callback_hooks_run_in_order_with_their_arguments():
    rec = Recorder()
    data = DataLoader(_blobs(40), batch_size=16)
    fit(_mlp(), data, epochs=2, callbacks=[rec], verbose=0)
    keys = ["accuracy", "images_per_second", "loss", "lr", "seconds"]
    assert rec.events == ["train_begin",
                          "epoch_begin 0", "batch 0 size 16", "batch 1 size 16", "batch 2 size 8",
                          f"epoch_end 0 {keys}", "checkpoint 0 history 1",
                          "epoch_begin 1", "batch 0 size 16", "batch 1 size 16", "batch 2 size 8",
                          f"epoch_end 1 {keys}", "checkpoint 1 history 2", "train_end"]
    assert set(rec.running) == {"loss", "accuracy"} and rec.model is not None


def test_a_callback_can_stop_training():
    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.run.stop_training = True

    history = fit(_mlp(), DataLoader(_blobs(30), 10), epochs=10, callbacks=[StopAfterTwo()],
                  verbose=0)
    assert len(history) == 2


class Script(Callback):
    """Writes a scripted value of a made-up metric into the logs (before EarlyStopping)."""
    order = 40

    def __init__(self, values):
        self.values = values
        self.snapshots = {}

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]
        self.snapshots[epoch] = _weights(self.model)


def test_early_stopping_stops_and_restores_the_best_weights(capsys):
    mg.manual_seed(0)
    model = _mlp()
    script = Script([3.0, 1.0, 2.0, 1.5, 0.1, 0.0])
    stopper = EarlyStopping(monitor="score", patience=2)
    history = fit(model, DataLoader(_blobs(30), 10), epochs=6, lr=0.05,
                  callbacks=[script, stopper], verbose=0)
    assert len(history) == 4  # best at epoch 1, then two epochs without improvement
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    assert _same_weights(_weights(model), script.snapshots[1])
    assert "Restored the weights of epoch 2" in capsys.readouterr().out


def test_early_stopping_without_restoring_keeps_the_last_weights():
    model = _mlp()
    script = Script([3.0, 1.0, 2.0, 1.5])
    fit(model, DataLoader(_blobs(30), 10), epochs=4, lr=0.05, verbose=0,
        callbacks=[script, EarlyStopping(monitor="score", patience=2,
                                         restore_best_weights=False, verbose=0)])
    assert _same_weights(_weights(model), script.snapshots[3])


def test_early_stopping_needs_its_metric():
    with pytest.raises(KeyError, match="give fit validation data"):
        fit(_mlp(), DataLoader(_blobs(30), 10), epochs=2, callbacks=[EarlyStopping()],
            verbose=0)


def test_model_checkpoint_best_only_and_weights_only(tmp_path):
    mg.manual_seed(0)
    model = _mlp()
    script = Script([3.0, 1.0, 2.0, 0.5])
    pattern = str(tmp_path / "best-{epoch:02d}.npz")
    fit(model, DataLoader(_blobs(30), 10), epochs=4, lr=0.05, verbose=0,
        callbacks=[script, ModelCheckpoint(pattern, monitor="score", save_best_only=True,
                                           mode="min", weights_only=True)])
    assert sorted(os.listdir(tmp_path)) == ["best-01.npz", "best-02.npz", "best-04.npz"]
    fresh = _mlp()
    fresh.load(tmp_path / "best-02.npz")
    assert _same_weights(_weights(fresh), script.snapshots[1])


def test_full_checkpoint_holds_the_whole_run(tmp_path):
    mg.manual_seed(0)
    model = _mlp()
    train, val = _loaders()
    history = fit(model, train, val, epochs=2, lr=0.05, verbose=0,
                  callbacks=[ModelCheckpoint(tmp_path / "ckpt.npz")])
    state = load_checkpoint(tmp_path / "ckpt.npz")
    assert state["epoch"] == 2 and state["optimizer_class"] == "Adam"
    assert _same_weights(state["model"], _weights(model))
    assert state["history"]["history"]["val_loss"] == history["val_loss"]
    assert state["loader_seed"] == train.seed
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]  # written atomically: no temp left


def test_learning_rate_schedule_steps_once_per_epoch():
    model = _mlp()
    history = fit(model, DataLoader(_blobs(30), 10), lr=0.1, epochs=4, verbose=0,
                  scheduler=lambda opt: lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_plateau_schedule_gets_the_validation_loss():
    seen = []

    class Spy(lr_scheduler.ReduceLROnPlateau):
        def step(self, metric):
            seen.append(metric)
            super().step(metric)

    model = _mlp()
    opt = optim.Adam(model.parameters(), lr=0.01)
    train, val = _loaders()
    history = fit(model, train, val, optimizer=opt, epochs=3, verbose=0,
                  callbacks=[LearningRateScheduler(Spy(opt, patience=0))])
    assert seen == history["val_loss"]


def test_scheduler_for_another_optimizer_is_refused():
    other = optim.SGD(_mlp().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        fit(_mlp(), DataLoader(_blobs(30), 10), epochs=1, verbose=0,
            scheduler=lr_scheduler.StepLR(other, step_size=1))


class SetLearningRate(Callback):
    """Sets the rate at the start of one epoch (a warm-up, or one gone wrong)."""

    def __init__(self, epoch, lr):
        self.epoch, self.lr = epoch, lr

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.run.optimizer.param_groups[0]["lr"] = self.lr


def test_history_lr_is_the_rate_the_epoch_trained_with():
    history = fit(_mlp(), DataLoader(_blobs(30), 10), lr=0.1, epochs=3, verbose=0,
                  callbacks=[SetLearningRate(1, 0.02)])
    assert history["lr"] == [0.1, 0.02, 0.02]


def test_history_records_what_callbacks_add_to_the_logs(tmp_path):
    history = fit(_mlp(), DataLoader(_blobs(30), 10), epochs=3, verbose=0,
                  callbacks=[Script([3.0, 2.0, 1.0]), ModelCheckpoint(tmp_path / "ckpt.npz")])
    assert history["score"] == [3.0, 2.0, 1.0]
    assert load_checkpoint(tmp_path / "ckpt.npz")["history"]["history"]["score"] == [3.0, 2.0, 1.0]


class SeeHistory(Callback):
    """Notes, in on_epoch_end, what the run's history holds of the epoch."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        recorded = self.run.history.history
        self.seen.append((len(self.run.history), recorded.get("loss", [None])[-1] == logs["loss"],
                          recorded.get("score", [None])[-1]))


def test_on_epoch_end_finds_its_epoch_in_the_history():
    watcher = SeeHistory()  # order 50: after Script (40) has added its score
    history = fit(_mlp(), DataLoader(_blobs(30), 10), epochs=2, verbose=0,
                  callbacks=[Script([3.0, 2.0]), watcher])
    assert watcher.seen == [(1, True, 3.0), (2, True, 2.0)]
    assert history["score"] == [3.0, 2.0]


class SaveInEpochEnd(Callback):
    """A checkpoint written where callbacks wrote them before on_checkpoint existed."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        save_checkpoint(self.path, self.run)


def test_a_checkpoint_saved_in_on_epoch_end_counts_the_epoch_as_done(tmp_path):
    ckpt = tmp_path / "mine.npz"
    loader = DataLoader(_blobs(30), 10, shuffle=True, seed=3)
    mg.manual_seed(0)
    model = _mlp()
    fit(model, loader, epochs=2, verbose=0, callbacks=[SaveInEpochEnd(ckpt)])
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 2 and list(state["history"]["epoch"]) == [0, 1]
    assert _same_weights(state["model"], _weights(model))
    # Resuming a finished run trains nothing more: no epoch is trained twice.
    resumed = _mlp()
    history = fit(resumed, loader, epochs=2, verbose=0, resume=ckpt)
    assert history.epoch == [0, 1] and _same_weights(_weights(resumed), _weights(model))


class Annotate(Callback):
    """Adds values of every kind to the logs."""

    def on_epoch_end(self, epoch, logs=None):
        logs["note"] = f"epoch {epoch} done"
        logs["per_class"] = np.array([0.1, 0.2, 0.3])
        logs["half"] = np.float32(epoch / 2)
        logs["count"] = np.array(epoch)
        logs["loss"] = 10.0 + epoch  # changed, as Keras records it


def test_logs_that_are_not_numbers_stay_out_of_the_history_with_one_warning(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    with pytest.warns(UserWarning) as caught:
        history = fit(_mlp(), DataLoader(_blobs(30), 10), epochs=2, verbose=0,
                      callbacks=[Annotate(), ModelCheckpoint(ckpt)])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2  # one per key, not one per epoch
    assert "Annotate.on_epoch_end put a str in logs['note']" in messages[0]
    assert "ndarray in logs['per_class']" in messages[1]
    assert "note" not in history and "per_class" not in history
    assert history["half"] == [0.0, 0.5] and history["count"] == [0.0, 1.0]
    assert history["loss"] == [10.0, 11.0]
    assert load_checkpoint(ckpt)["epoch"] == 2


def test_a_reused_early_stopping_starts_each_fit_afresh(capsys):
    stopper = EarlyStopping(monitor="score", patience=2)
    loader = DataLoader(_blobs(30), 10)
    fit(_mlp(), loader, epochs=6, lr=0.05, verbose=0,
        callbacks=[Script([1.0, 0.5, 2.0, 2.0, 2.0, 2.0]), stopper])
    assert stopper.stopped_epoch == 3
    capsys.readouterr()
    second = _mlp()
    script = Script([5.0, 4.0, 3.0, 2.0])
    history = fit(second, loader, epochs=4, lr=0.05, verbose=0, callbacks=[script, stopper])
    assert len(history) == 4 and stopper.stopped_epoch is None and stopper.best_epoch == 3
    assert _same_weights(_weights(second), script.snapshots[3])  # not the first model's
    assert capsys.readouterr().out == ""


def test_a_reused_best_only_checkpoint_compares_within_its_own_fit(tmp_path):
    path = tmp_path / "best.npz"
    checkpoint = ModelCheckpoint(path, monitor="score", mode="min", save_best_only=True,
                                 weights_only=True)
    loader = DataLoader(_blobs(30), 10)
    fit(_mlp(), loader, epochs=2, verbose=0, callbacks=[Script([1.0, 0.5]), checkpoint])
    second = _mlp()
    script = Script([2.0, 3.0])
    fit(second, loader, epochs=2, verbose=0, callbacks=[script, checkpoint])
    written = _mlp()
    written.load(path)
    assert _same_weights(_weights(written), script.snapshots[0])


# ----------------------------------------------------------------- divergence
class NaNAt:
    """A cross-entropy that returns NaN at one (epoch, step), counting calls."""

    def __init__(self, epoch, step, steps_per_epoch):
        self.bad_call = epoch * steps_per_epoch + step
        self.calls = 0
        self.inner = mg.losses.get("cross_entropy")

    def __call__(self, output, target):
        value = self.inner(output, target)
        self.calls += 1
        if self.calls - 1 == self.bad_call:
            return value * float("nan")
        return value


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path):
    mg.manual_seed(0)
    model = _mlp()
    loader = DataLoader(_blobs(40), batch_size=10)  # 4 steps per epoch

    class Snap(Callback):
        def on_batch_end(self, step, logs=None):
            self.last = _weights(self.model)

    snap = Snap()
    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(TrainingDiverged) as info:
        fit(model, loader, loss=NaNAt(epoch=1, step=2, steps_per_epoch=4), lr=0.1, epochs=5,
            callbacks=[ModelCheckpoint(ckpt), snap], verbose=0)
    err = info.value
    assert (err.epoch, err.step, err.lr) == (2, 3, 0.1) and math.isnan(err.value)
    message = str(err)
    assert "epoch 2/5, step 3/4" in message and "learning rate" in message
    assert str(ckpt) in message and err.checkpoint == str(ckpt)
    # The NaN was caught before its update: the weights are those after the last good step.
    assert _same_weights(_weights(model), snap.last)
    state = load_checkpoint(ckpt)  # the epoch-1 checkpoint is whole and loadable
    assert state["epoch"] == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow on the way to inf
def test_a_learning_rate_far_too_high_diverges():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Dense(2, 3))
    # With the squared error every step multiplies the error by about lr * |x|^2.
    with pytest.raises(TrainingDiverged, match=r"learning rate 1000\)"):
        fit(model, DataLoader(_blobs(40), 10), loss="mse", optimizer="sgd", lr=1e3, epochs=20,
            verbose=0)


def _regression_loader():
    rng = np.random.default_rng(0)
    data = TensorDataset(rng.normal(size=(32, 4)).astype(np.float32),
                         rng.normal(size=(32, 1)).astype(np.float32))
    return DataLoader(data, batch_size=32)  # one step per epoch: every update is a last one


def test_weights_broken_by_an_epochs_last_update_stop_before_any_checkpoint(tmp_path):
    # Each step's loss is checked before its update; the update of the last step is
    # seen by no loss, so the epoch's end must catch the NaN weights it leaves.
    mg.manual_seed(0)
    model = nn.Sequential(nn.Dense(4, 1))
    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(TrainingDiverged) as info:
        fit(model, _regression_loader(), loss="mse", optimizer="sgd", lr=0.01, epochs=3,
            verbose=0, callbacks=[SetLearningRate(1, math.nan), ModelCheckpoint(ckpt)])
    err = info.value
    assert err.epoch == 2 and math.isnan(err.value) and err.checkpoint == str(ckpt)
    assert "parameter '0.weight' became nan during epoch 2/3" in str(err)
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and all(np.isfinite(v).all() for v in state["model"].values())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow on the way to inf
def test_an_infinite_validation_loss_stops_before_any_checkpoint(tmp_path):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Dense(4, 1))
    loader, ckpt = _regression_loader(), tmp_path / "ckpt.npz"
    with pytest.raises(TrainingDiverged) as info:
        fit(model, loader, loader, loss="mse", optimizer="sgd", lr=0.01, epochs=3, verbose=0,
            callbacks=[SetLearningRate(1, 1e30), ModelCheckpoint(ckpt)])
    err = info.value
    assert err.epoch == 2 and err.value == math.inf and err.lr == 1e30
    assert "the validation loss became inf after epoch 2/3" in str(err)
    assert f"{ckpt}, is intact" in str(err)
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and state["history"]["history"]["val_loss"][0] < 10


class Poison(Callback):
    """Puts a NaN into the weights after fit's own check of the epoch (defence in depth)."""
    order = 60

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.model[0].weight.data[0, 0] = math.nan


@pytest.mark.parametrize("weights_only", [False, True])
def test_model_checkpoint_never_writes_nan_weights(tmp_path, weights_only):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Dense(4, 1))
    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(TrainingDiverged, match=r"'0.weight' holds nan after epoch 2/2, so .*"
                                               r"ckpt.npz was not written"):
        fit(model, _regression_loader(), loss="mse", optimizer="sgd", lr=0.01, epochs=2,
            verbose=0, callbacks=[Poison(), ModelCheckpoint(ckpt, weights_only=weights_only)])
    if weights_only:
        with np.load(ckpt) as weights:
            assert np.isfinite(weights["0.weight"]).all()
    else:
        assert load_checkpoint(ckpt)["epoch"] == 1


# ----------------------------------------------------------------- resume
class Interrupt(Callback):
    order = 95  # after the checkpoint of the epoch is written

    def __init__(self, after_epoch):
        self.after_epoch = after_epoch

    def on_checkpoint(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


def _resumable_run(tmp_path, seed, callbacks=(), resume=None, scheduler=True):
    mg.manual_seed(seed)
    model = _mlp(dropout=0.25)  # dropout draws random numbers: their state must resume too
    train = DataLoader(_blobs(60), batch_size=16, shuffle=True, seed=seed)
    val = DataLoader(_blobs(30, 1), batch_size=30)
    sched = (lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)) if scheduler else None
    history = fit(model, train, val, lr=0.02, epochs=5, scheduler=sched, resume=resume,
                  callbacks=[ModelCheckpoint(tmp_path / "ckpt.npz"),
                             EarlyStopping(patience=10, verbose=0), *callbacks], verbose=0)
    return model, history


def test_resume_after_an_interruption_gives_the_uninterrupted_numbers(tmp_path):
    straight, h_straight = _resumable_run(tmp_path / "a", seed=7)
    with pytest.raises(KeyboardInterrupt):
        _resumable_run(tmp_path / "b", seed=7, callbacks=[Interrupt(after_epoch=2)])
    assert load_checkpoint(tmp_path / "b" / "ckpt.npz")["epoch"] == 3
    # Another seed would give other weights, order and dropout: the checkpoint must win.
    resumed, h_resumed = _resumable_run(tmp_path / "b", seed=99,
                                        resume=tmp_path / "b" / "ckpt.npz")
    assert _same_weights(_weights(resumed), _weights(straight))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert h_resumed[key] == h_straight[key]
    assert h_resumed.epoch == [0, 1, 2, 3, 4]


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    _resumable_run(tmp_path, seed=1)
    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(ValueError, match="trained with Adam"):
        fit(_mlp(dropout=0.25), DataLoader(_blobs(60), 16), optimizer="sgd", resume=ckpt,
            verbose=0)
    weights = tmp_path / "weights.npz"
    _mlp().save(weights)
    with pytest.raises(ValueError, match="not a minigrad training checkpoint"):
        fit(_mlp(), DataLoader(_blobs(60), 16), resume=weights, verbose=0)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        fit(_mlp(), DataLoader(_blobs(60), 16), resume=tmp_path / "absent.npz", verbose=0)


@pytest.mark.parametrize("cut", [0.0, 0.1, 0.5, 0.99])
def test_resume_from_a_damaged_checkpoint_names_the_file(tmp_path, cut):
    ckpt = tmp_path / "ckpt.npz"
    loader = DataLoader(_blobs(30), 10)
    fit(_mlp(), loader, epochs=1, verbose=0, callbacks=[ModelCheckpoint(ckpt)])
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[:int(len(data) * cut)])  # as a copy or a disk cut short leaves it
    with pytest.raises(ValueError, match="damaged") as info:
        fit(_mlp(), loader, epochs=2, verbose=0, resume=ckpt)
    assert str(ckpt) in str(info.value)
    ckpt.write_bytes(b"PK\x03\x04" + bytes(50))
    with pytest.raises(ValueError, match=f"cannot read {ckpt}: the file is damaged"):
        load_checkpoint(ckpt)


def test_resume_continues_the_early_stopping_count(tmp_path):
    # best at epoch 2 (index 1); index 2 and 3 do not improve: patience 2 ends it after 4
    scores = [3.0, 1.0, 2.0, 2.5, 0.5]

    def run(callbacks=(), resume=None):
        stopper = EarlyStopping(monitor="score", patience=2, verbose=0)
        history = fit(_mlp(), DataLoader(_blobs(30), 10), epochs=5, lr=0.05, verbose=0,
                      resume=resume, callbacks=[Script(scores), stopper,
                                                ModelCheckpoint(tmp_path / "ckpt.npz"),
                                                *callbacks])
        return history, stopper

    with pytest.raises(KeyboardInterrupt):
        run([Interrupt(after_epoch=2)])
    history, stopper = run(resume=tmp_path / "ckpt.npz")
    assert len(history) == 4 and stopper.stopped_epoch == 3 and stopper.best_epoch == 1


@pytest.mark.parametrize("order_on_resume", ["same", "swapped"])
def test_resuming_keeps_the_best_checkpoint_of_the_interrupted_run(tmp_path, order_on_resume):
    last, best = tmp_path / "last.npz", tmp_path / "best.npz"
    scores = [0.5, 0.4, 0.3, 0.35]
    loader = DataLoader(_blobs(30), 10)

    def callbacks(swapped=False):
        pair = [ModelCheckpoint(last),
                ModelCheckpoint(best, monitor="score", mode="min", save_best_only=True)]
        return [Script(scores), *(pair[::-1] if swapped else pair)]

    fit(_mlp(), loader, epochs=3, verbose=0, callbacks=callbacks())
    assert load_checkpoint(best)["epoch"] == 3
    # "last" is written after "best" has taken the epoch's score as its best
    assert load_checkpoint(last)["callbacks"]["ModelCheckpoint:best.npz"]["best"] == -0.3
    fit(_mlp(), loader, epochs=4, verbose=0, resume=last,
        callbacks=callbacks(swapped=order_on_resume == "swapped"))
    assert load_checkpoint(last)["epoch"] == 4
    assert load_checkpoint(best)["epoch"] == 3  # epoch 4's 0.35 is worse than 0.3


def test_resume_warns_when_the_callbacks_differ_from_the_checkpoints(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    loader = DataLoader(_blobs(30), 10)
    fit(_mlp(), loader, epochs=1, verbose=0,
        callbacks=[ModelCheckpoint(ckpt), EarlyStopping(monitor="loss", verbose=0)])
    with pytest.warns(UserWarning, match=r"EarlyStopping:loss\), which is ignored; callbacks "
                                         r"EarlyStopping:accuracy have no saved state"):
        fit(_mlp(), loader, epochs=2, verbose=0, resume=ckpt,
            callbacks=[ModelCheckpoint(ckpt), EarlyStopping(monitor="accuracy", verbose=0)])


@pytest.mark.parametrize("version", [1, None])  # None: no "version" entry reads as 1
def test_a_version_1_checkpoint_gives_callbacks_their_state_by_position(tmp_path, version):
    ckpt = tmp_path / "ckpt.npz"
    loader = DataLoader(_blobs(30), 10)

    def callbacks(stopper):  # sorted by order: Script 40, EarlyStopping 50, checkpoint 90
        return [Script([1.0, 0.5, 0.7]), stopper, ModelCheckpoint(ckpt)]

    fit(_mlp(), loader, epochs=2, verbose=0,
        callbacks=callbacks(EarlyStopping(monitor="score", patience=5, verbose=0)))
    state = load_checkpoint(ckpt)
    saved = state["callbacks"]
    del state["version"]
    if version is not None:
        state["version"] = version
    state["callbacks"] = {"1:EarlyStopping": saved["EarlyStopping:score"],
                          "2:ModelCheckpoint": saved["ModelCheckpoint:ckpt.npz"]}
    save_tree(ckpt, state)
    stopper = EarlyStopping(monitor="score", patience=5, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(_mlp(), loader, epochs=3, verbose=0, resume=ckpt, callbacks=callbacks(stopper))
    assert stopper.best_epoch == 1 and stopper.wait == 1


@pytest.mark.parametrize("version", [3, "2", 0])
def test_a_checkpoint_of_an_unknown_version_is_refused_naming_the_file(tmp_path, version):
    ckpt = tmp_path / "ckpt.npz"
    loader = DataLoader(_blobs(30), 10)
    fit(_mlp(), loader, epochs=1, verbose=0, callbacks=[ModelCheckpoint(ckpt)])
    state = load_checkpoint(ckpt)
    state["version"] = version
    save_tree(ckpt, state)
    expected = "newer minigrad" if version == 3 else "unknown training checkpoint version"
    with pytest.raises(ValueError, match=expected) as info:
        load_checkpoint(ckpt)
    assert str(ckpt) in str(info.value)
    with pytest.raises(ValueError, match=expected):
        fit(_mlp(), loader, epochs=2, verbose=0, resume=ckpt)


# ----------------------------------------------------------------- progress display
def test_progress_prints_one_summary_line_per_epoch(capsys):
    train, val = _loaders()
    fit(_mlp(), train, val, epochs=2, verbose=2)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2
    assert out[0].startswith("Epoch 1/2 - ") and "val_accuracy" in out[0] and "img/s" in out[0]
    fit(_mlp(), train, val, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_plain_progress_bar_shows_running_metrics(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    import minigrad.data.progress as progress
    original = progress.PlainProgress

    def plain(*args, **kwargs):
        kwargs["file"] = screen
        return original(*args, **kwargs)

    monkeypatch.setattr(progress, "PlainProgress", plain)
    lines = []
    logger = ProgressLogger(verbose=1, kind="plain", print_fn=lines.append, refresh=0.0)
    train, _ = _loaders()
    fit(_mlp(), train, epochs=1, callbacks=[logger], verbose=0)
    drawn = screen.getvalue()
    assert "Epoch 1/1" in drawn and "loss " in drawn and " acc " in drawn and "img/s" in drawn
    assert len(lines) == 1 and lines[0].startswith("Epoch 1/1")


def test_format_epoch_skips_missing_metrics():
    line = format_epoch(0, 3, {"loss": 0.5, "accuracy": float("nan"), "lr": 1e-3,
                               "seconds": 2.0})
    assert line == "Epoch 1/3 - 2.0s - loss 0.5000 - lr 0.001"


def test_an_empty_training_loader_is_an_error():
    loader = DataLoader(_blobs(10), batch_size=16, drop_last=True)
    with pytest.raises(ValueError, match="yielded no batches"):
        fit(_mlp(), loader, epochs=1, verbose=0)


def test_cuda_graph_needs_the_cuda_device():
    data = TensorDataset(np.zeros((4, 2), np.float32), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="cuda_graph"):
        mg.train.fit(nn.Dense(2, 2), DataLoader(data, batch_size=2), epochs=1, verbose=0,
                     cuda_graph=True)


def test_fit_trains_through_the_step_it_is_given():
    """fit(step=...) builds its step from (model, loss, optimizer) and calls it once per
    batch; the default EagerStep gives the same numbers."""
    from minigrad.train import EagerStep
    calls = []

    class CountingStep(EagerStep):
        def __call__(self, x, y, check=None):
            calls.append(x.shape[0])
            return super().__call__(x, y, check)

    histories = []
    for step in (None, CountingStep):
        mg.manual_seed(0)
        train, val = _loaders()
        history = fit(_mlp(), train, val, lr=0.05, epochs=2, verbose=0, step=step)
        histories.append({k: history[k] for k in ("loss", "accuracy", "val_loss")})
    assert calls == ([16] * 9 + [6]) * 2
    assert histories[0] == histories[1]


def test_eager_step_checks_the_loss_before_its_update():
    """A check that raises leaves the weights as they were: the step stops before the update."""
    from minigrad.train import EagerStep
    model = nn.Dense(2, 3)
    step = EagerStep(model, mg.losses.get("cross_entropy"),
                     optim.SGD(model.parameters(), lr=0.5))
    x, y = mg.tensor(np.ones((4, 2), np.float32)), mg.tensor(np.array([0, 1, 2, 0]))
    before = [p.numpy().copy() for p in model.parameters()]

    def refuse(loss, output):
        assert output.shape == (4, 3) and np.isfinite(loss.item())
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        step(x, y, check=refuse)
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before))
    loss = step(x, y)
    assert loss.requires_grad is False and step.output.shape == (4, 3)
    assert not all(np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before))


def test_fit_takes_cuda_graph_or_a_step_not_both():
    data = TensorDataset(np.zeros((4, 2), np.float32), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="not both"):
        fit(nn.Dense(2, 2), DataLoader(data, batch_size=2), epochs=1, verbose=0,
            cuda_graph=True, step=lambda *a: None)


def test_a_loss_says_whether_it_compares_values_and_gets_one_hot_labels_if_so():
    from minigrad.train import loss_target
    comparing = {name for name in ("mse", "mae", "huber", "logistic", "cross_entropy", "hinge")
                 if mg.losses.get(name).compares_values}
    assert comparing == {"mse", "mae", "huber", "logistic"}

    class SquaredGap(mg.losses.Loss):  # a user's own loss opts in by the attribute
        compares_values = True

        def forward(self, prediction, target):
            return ((prediction - target) ** 2).mean()

    output, labels = mg.tensor(np.zeros((2, 3), np.float32)), mg.tensor(np.array([2, 0]))
    np.testing.assert_array_equal(loss_target(SquaredGap(), output, labels).numpy(),
                                  [[0, 0, 1], [1, 0, 0]])
    assert loss_target(mg.losses.get("cross_entropy"), output, labels) is labels
