"""The exercise's CNN learns a small problem through the public API of the issue."""
import numpy as np

import minigrad as mg
from minigrad import losses, optim
from minigrad.models import exercise_cnn


def test_exercise_cnn_drives_training_loss_down(tmp_path):
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    labels = np.arange(16) % 4
    x = rng.normal(0, 0.5, (16, 3, 80, 80)).astype(np.float32)
    for i, label in enumerate(labels):  # each class lights up one quadrant of one channel
        r, c = divmod(label, 2)
        x[i, label % 3, r * 40:(r + 1) * 40, c * 40:(c + 1) * 40] += 1.5
    model = exercise_cnn()
    opt = optim.get("adam", model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    loss_fn = losses.get("cross_entropy")
    xt, yt = mg.tensor(x), mg.tensor(labels)
    history = []
    for _ in range(12):
        loss = loss_fn(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())
    assert history[0] > 1.2
    assert history[-1] < 0.3 * history[0]
    model.save(tmp_path / "model.npz")
    before = model(xt).numpy()
    model.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(model(xt).numpy(), before)
