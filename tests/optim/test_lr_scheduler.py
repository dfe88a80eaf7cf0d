"""Learning-rate schedulers against closed forms, hand-worked sequences and torch."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.io import load_tree, save_tree
from minigrad.optim import lr_scheduler

EPOCHS = 16


def make_optimizer(*lrs):
    """An SGD optimizer with one parameter group per learning rate."""
    return optim.SGD([{"params": [nn.Parameter(np.zeros(2))], "lr": lr} for lr in lrs])


def lr_sequence(scheduler, epochs=EPOCHS):
    """get_last_lr() at epoch 0 (after construction) and after each of ``epochs - 1`` steps."""
    seen = [scheduler.get_last_lr()]
    for _ in range(epochs - 1):
        scheduler.step()
        seen.append(scheduler.get_last_lr())
    return seen


# Each: (scheduler class, its arguments, closed form lr(base_lr, epoch)).
SCHEDULES = [
    (lr_scheduler.StepLR, {"step_size": 3, "gamma": 0.5},
     lambda base, e: base * 0.5 ** (e // 3)),
    (lr_scheduler.ExponentialLR, {"gamma": 0.8},
     lambda base, e: base * 0.8 ** e),
    (lr_scheduler.CosineAnnealingLR, {"T_max": 5, "eta_min": 0.001},
     lambda base, e: 0.001 + (base - 0.001) * (1 + math.cos(math.pi * e / 5)) / 2),
    (lr_scheduler.CosineAnnealingLR, {"T_max": 1},
     lambda base, e: base * (1 + math.cos(math.pi * e)) / 2),
    # PyTorch takes any number of epochs > 0 for T_max, not only an int.
    (lr_scheduler.CosineAnnealingLR, {"T_max": 5.0, "eta_min": 0.001},
     lambda base, e: 0.001 + (base - 0.001) * (1 + math.cos(math.pi * e / 5)) / 2),
    (lr_scheduler.CosineAnnealingLR, {"T_max": 2.5},
     lambda base, e: base * (1 + math.cos(math.pi * e / 2.5)) / 2),
    (lr_scheduler.LinearLR, {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 4},
     lambda base, e: base * (0.25 + 0.75 * min(e, 4) / 4)),
    (lr_scheduler.LinearLR, {},  # PyTorch's defaults: 1/3 -> 1 over 5 epochs
     lambda base, e: base * (1 / 3 + 2 / 3 * min(e, 5) / 5)),
    (lr_scheduler.LinearLR, {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 6},
     lambda base, e: base * (1.0 - 0.9 * min(e, 6) / 6)),
]
SCHEDULE_IDS = [f"{cls.__name__}-{kw}" for cls, kw, _ in SCHEDULES]


@pytest.mark.parametrize("cls, kwargs, closed_form", SCHEDULES, ids=SCHEDULE_IDS)
def test_schedule_follows_its_closed_form(cls, kwargs, closed_form):
    opt = make_optimizer(0.1, 0.02)
    scheduler = cls(opt, **kwargs)
    for epoch, lrs in enumerate(lr_sequence(scheduler)):
        expected = [closed_form(0.1, epoch), closed_form(0.02, epoch)]
        assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15), f"epoch {epoch}"
    assert scheduler.last_epoch == EPOCHS - 1
    assert [g["lr"] for g in opt.param_groups] == scheduler.get_last_lr()
    assert scheduler.base_lrs == [0.1, 0.02]


def test_hand_computed_values():
    opt = make_optimizer(1.0)
    step = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    assert [lrs[0] for lrs in lr_sequence(step, 6)] == \
        pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rel=1e-12)
    opt = make_optimizer(1.0)
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    assert [lrs[0] for lrs in lr_sequence(warmup, 4)] == pytest.approx([0.5, 0.75, 1.0, 1.0])
    opt = make_optimizer(1.0)
    cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    assert [lrs[0] for lrs in lr_sequence(cosine, 5)] == \
        pytest.approx([1.0, 0.5, 0.0, 0.5, 1.0], abs=1e-15)


def test_schedulers_on_one_optimizer_compose():
    opt = make_optimizer(0.1)
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=3)
    decay = lr_scheduler.ExponentialLR(opt, gamma=0.9)
    for epoch in range(8):
        expected = 0.1 * (0.2 + 0.8 * min(epoch, 3) / 3) * 0.9 ** epoch
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
        warmup.step()
        decay.step()


def test_get_last_lr_is_a_copy():
    opt = make_optimizer(0.1)
    scheduler = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    scheduler.get_last_lr()[0] = 123.0
    assert scheduler.get_last_lr() == [0.1]


def test_the_optimizer_steps_with_the_scheduled_lr():
    param = nn.Parameter(np.zeros(1))
    opt = optim.SGD([param], lr=1.0)
    scheduler = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        param.grad = np.ones(1)
        opt.step()
        scheduler.step()
    np.testing.assert_allclose(param.data, [-(1.0 + 0.5 + 0.25)])


# ---------------------------------------------------------- ReduceLROnPlateau
def plateau_lrs(scheduler, metrics):
    """The lr after each metric: of the one group, or of all groups if there are several."""
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        last = scheduler.get_last_lr()
        lrs.append(last[0] if len(last) == 1 else last)
    return lrs


def test_plateau_min_rel_with_cooldown_and_floor():
    opt = make_optimizer(1.0)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.1,
                                               cooldown=1, min_lr=0.2)
    metrics = [10, 9.5, 9.2, 9.1] + [8.0] * 12
    # Worked by hand: improving means < 0.9 * best. Epoch 1 sets best=10; 9.5, 9.2, 9.1
    # are not below 9, so the third bad epoch (4) halves the lr. 8.0 at epoch 5 is the
    # new best (and the cooldown epoch); then every 8.0 is bad: epochs 6, 7, 8 -> halve at
    # 8; epoch 9 is cooldown; 10, 11, 12 -> 0.125 clipped to min_lr 0.2 at epoch 12; the
    # next reduction (epoch 16) would change nothing.
    expected = [1.0] * 3 + [0.5] * 4 + [0.25] * 4 + [0.2] * 5
    assert plateau_lrs(scheduler, metrics) == pytest.approx(expected)
    assert scheduler.last_epoch == 16 and scheduler.best == 8.0


def test_plateau_max_abs():
    opt = make_optimizer(0.1)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0,
                                               threshold=0.5, threshold_mode="abs")
    # Improving means > best + 0.5: 1.0 (best), 1.4 (bad: cut), 2.0 (best), 2.3 (bad: cut), 3.0.
    assert plateau_lrs(scheduler, [1.0, 1.4, 2.0, 2.3, 3.0]) == \
        pytest.approx([0.1, 0.01, 0.01, 0.001, 0.001])


def test_plateau_number_min_lr_floors_groups_added_later():
    opt = make_optimizer(0.1)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=0.004)
    opt.add_param_group({"params": [nn.Parameter(np.zeros(2))], "lr": 0.5})
    # As PyTorch: the number min_lr extends to the new group (which it floors too).
    expected = [[0.1, 0.5], [0.01, 0.05], [0.004, 0.005], [0.004, 0.004]]
    assert plateau_lrs(scheduler, [1, 2, 3, 4]) == [pytest.approx(lrs) for lrs in expected]
    assert scheduler.min_lrs == [0.004, 0.004]


def test_plateau_per_group_min_lr_must_be_extended_by_hand():
    opt = make_optimizer(0.1)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0])
    opt.add_param_group({"params": [nn.Parameter(np.zeros(2))], "lr": 0.5})
    scheduler.step(1)
    with pytest.raises(ValueError, match="min_lr was given per group for 1"):
        scheduler.step(2)
    scheduler.min_lrs.append(0.3)
    scheduler.step(3)
    assert scheduler.get_last_lr() == pytest.approx([0.01, 0.3])


def test_plateau_state_dict_keeps_default_min_lr_and_loads_older_ones(tmp_path):
    for min_lr, default in ((0.002, 0.002), ([0.002, 0.001], None)):
        scheduler = lr_scheduler.ReduceLROnPlateau(make_optimizer(0.1, 0.2), min_lr=min_lr)
        state = scheduler.state_dict()
        assert state["default_min_lr"] == default
        save_tree(tmp_path / "plateau.npz", state)
        again = lr_scheduler.ReduceLROnPlateau(make_optimizer(0.1, 0.2), min_lr=0.5)
        again.load_state_dict(load_tree(tmp_path / "plateau.npz"))
        assert again.default_min_lr == default and again.min_lrs == scheduler.min_lrs

        # A state dict saved before default_min_lr was kept: equal min_lrs came from a
        # number (and now extend to new groups); differing ones from a list.
        older = dict(state)
        del older["default_min_lr"]
        again = lr_scheduler.ReduceLROnPlateau(make_optimizer(0.1, 0.2), min_lr=0.5)
        again.load_state_dict(older)
        assert again.default_min_lr == default


def test_plateau_per_group_min_lr_eps_and_metric_types():
    opt = make_optimizer(1.0, 1e-8)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0,
                                               min_lr=[0.6, 0.0])
    scheduler.step(mg.tensor(1.0))  # a one-element Tensor is accepted, like a number
    scheduler.step(np.float32(2.0))
    # Group 0 is clipped at its floor 0.6; group 1's cut (5e-9) is below eps and skipped.
    assert scheduler.get_last_lr() == [0.6, 1e-8]


# ------------------------------------------------------------- state dicts
ROUND_TRIP = [(cls, kw) for cls, kw, _ in SCHEDULES] + \
    [(lr_scheduler.ReduceLROnPlateau, {"factor": 0.5, "patience": 1, "cooldown": 1})]


@pytest.mark.parametrize("cls, kwargs", ROUND_TRIP,
                         ids=[f"{c.__name__}-{k}" for c, k in ROUND_TRIP])
def test_state_dict_round_trip_through_npz(tmp_path, cls, kwargs):
    metrics = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3]
    plateau = cls is lr_scheduler.ReduceLROnPlateau

    def advance(scheduler, metric):
        scheduler.step(metric) if plateau else scheduler.step()
        return scheduler.get_last_lr()

    opt = make_optimizer(0.1, 0.05)
    scheduler = cls(opt, **kwargs)
    for metric in metrics[:4]:
        advance(scheduler, metric)
    save_tree(tmp_path / "state.npz", {"optimizer": opt.state_dict(),
                                       "scheduler": scheduler.state_dict()})

    opt2 = make_optimizer(0.7, 0.7)
    scheduler2 = cls(opt2, **kwargs)
    saved = load_tree(tmp_path / "state.npz")
    opt2.load_state_dict(saved["optimizer"])
    scheduler2.load_state_dict(saved["scheduler"])
    assert scheduler2.last_epoch == scheduler.last_epoch
    assert scheduler2.get_last_lr() == scheduler.get_last_lr()
    for metric in metrics[4:]:
        assert advance(scheduler2, metric) == advance(scheduler, metric)
    assert scheduler2.state_dict() == scheduler.state_dict()


def test_load_state_dict_checks_keys():
    scheduler = lr_scheduler.StepLR(make_optimizer(0.1), step_size=2)
    state = scheduler.state_dict()
    del state["last_epoch"]
    with pytest.raises(ValueError, match="last_epoch"):
        scheduler.load_state_dict(state)
    with pytest.raises(ValueError, match="T_max"):
        scheduler.load_state_dict(dict(scheduler.state_dict(), T_max=3))


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("build, message", [
    (lambda o: lr_scheduler.StepLR(o, step_size=0), "step_size"),
    (lambda o: lr_scheduler.StepLR(o, step_size=2.5), "step_size"),
    (lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=-0.1), "gamma"),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma=0), "gamma"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=-1), "eta_min"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), "start_factor"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), "end_factor"),
    (lambda o: lr_scheduler.LinearLR(o, total_iters=0), "total_iters"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="lowest"), "mode"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="pct"), "threshold_mode"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=-1), "patience"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), "min_lr"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=-0.1), "min_lr"),
])
def test_bad_arguments_name_the_culprit(build, message):
    with pytest.raises(ValueError, match=message):
        build(make_optimizer(0.1))


@pytest.mark.parametrize("build, message", [
    (lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=None), "StepLR: gamma"),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma="0.9"), "ExponentialLR: gamma"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max="10"), "CosineAnnealingLR: T_max"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=None), "eta_min"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=None), "LinearLR: start_factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=None), "ReduceLROnPlateau: factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=None), "ReduceLROnPlateau: min_lr"),
])
def test_wrongly_typed_arguments_are_type_errors_naming_them(build, message):
    with pytest.raises(TypeError, match=f"{message} must be a number"):
        build(make_optimizer(0.1))


def test_numpy_numbers_are_taken_as_the_python_floats_they_hold():
    """As torch takes them (the optimizer's own check, shared): the lrs stay floats."""
    opt = make_optimizer(0.1)
    scheduler = lr_scheduler.StepLR(opt, step_size=1, gamma=np.array(0.5))
    scheduler.step()
    assert scheduler.gamma == 0.5 and type(opt.param_groups[0]["lr"]) is float
    plateau = lr_scheduler.ReduceLROnPlateau(make_optimizer(0.1), factor=np.float32(0.5),
                                             min_lr=np.array(0.01), threshold=np.float64(0))
    assert type(plateau.factor) is float and plateau.min_lrs == [0.01]
    assert type(plateau.default_min_lr) is float
    cosine = lr_scheduler.CosineAnnealingLR(make_optimizer(0.1), T_max=np.int64(4),
                                            eta_min=np.array(0.0))
    assert cosine.T_max == 4.0 and type(cosine.eta_min) is float


@pytest.mark.parametrize("cls, kwargs", [(cls, kw) for cls, kw, _ in SCHEDULES[:1]] + [
    (lr_scheduler.ExponentialLR, {"gamma": 0.5}),
    (lr_scheduler.CosineAnnealingLR, {"T_max": 5}),
    (lr_scheduler.LinearLR, {}),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_last_epoch_takes_the_default_and_points_elsewhere_to_resume(cls, kwargs):
    fresh = cls(make_optimizer(0.1), last_epoch=-1, **kwargs)
    assert fresh.last_epoch == 0
    opt = make_optimizer(0.1)
    cls(opt, **kwargs)  # sets initial_lr, as a first run would have
    with pytest.raises(ValueError, match=r"last_epoch=3 is not supported.*"
                                         r"scheduler\.load_state_dict"):
        cls(opt, last_epoch=3, **kwargs)


def test_needs_a_minigrad_optimizer():
    with pytest.raises(TypeError, match="optimizer"):
        lr_scheduler.StepLR(object(), step_size=1)
    with pytest.raises(TypeError, match="optimizer"):
        lr_scheduler.ReduceLROnPlateau([{"lr": 0.1}])


# ------------------------------------------------------------------ oracle
def torch_optimizer(torch, *lrs):
    return torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr}
                            for lr in lrs])


def torch_lr_sequence(scheduler, opt, epochs=EPOCHS):
    seen = [scheduler.get_last_lr()]
    for _ in range(epochs - 1):
        opt.step()  # no grads: a no-op that keeps torch's call-order check quiet
        scheduler.step()
        seen.append(scheduler.get_last_lr())
    return seen


@pytest.mark.parametrize("cls, kwargs, closed_form", SCHEDULES, ids=SCHEDULE_IDS)
def test_matches_torch(cls, kwargs, closed_form):
    torch = pytest.importorskip("torch")
    theirs_opt = torch_optimizer(torch, 0.1, 0.02)
    theirs = getattr(torch.optim.lr_scheduler, cls.__name__)(theirs_opt, **kwargs)
    ours = cls(make_optimizer(0.1, 0.02), **kwargs)
    expected = torch_lr_sequence(theirs, theirs_opt, 3 * EPOCHS)
    for epoch, (mine, torchs) in enumerate(zip(lr_sequence(ours, 3 * EPOCHS), expected)):
        assert mine == pytest.approx(torchs, rel=1e-12, abs=1e-15), f"epoch {epoch}"


def test_composition_matches_torch():
    torch = pytest.importorskip("torch")
    theirs_opt = torch_optimizer(torch, 0.1)
    theirs = [torch.optim.lr_scheduler.LinearLR(theirs_opt, start_factor=0.1, total_iters=4),
              torch.optim.lr_scheduler.CosineAnnealingLR(theirs_opt, T_max=10)]
    opt = make_optimizer(0.1)
    ours = [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=4),
            lr_scheduler.CosineAnnealingLR(opt, T_max=10)]
    for epoch in range(15):
        assert opt.param_groups[0]["lr"] == pytest.approx(theirs_opt.param_groups[0]["lr"],
                                                          rel=1e-12), f"epoch {epoch}"
        theirs_opt.step()
        for s, t in zip(ours, theirs):
            s.step()
            t.step()


def test_plateau_with_an_added_group_matches_torch():
    torch = pytest.importorskip("torch")
    theirs_opt = torch_optimizer(torch, 0.1)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, patience=0, min_lr=0.003)
    opt = make_optimizer(0.1)
    ours = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=0.003)
    for epoch, metric in enumerate([1, 2, 3, 4, 5, 6]):
        if epoch == 1:
            theirs_opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)],
                                        "lr": 0.5})
            opt.add_param_group({"params": [nn.Parameter(np.zeros(2))], "lr": 0.5})
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12), \
            f"epoch {epoch}"


@pytest.mark.parametrize("kwargs", [
    {},
    {"factor": 0.5, "patience": 2, "cooldown": 2, "min_lr": 0.004},
    {"mode": "max", "factor": 0.3, "patience": 1, "threshold": 0.05, "threshold_mode": "abs"},
    {"factor": 0.5, "patience": 0, "threshold": 0.0, "eps": 0.01},
])
def test_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    # A noisy loss curve that flattens out, so both improvements and plateaus occur.
    metrics = np.maximum(1.0 / np.arange(1, 61), 0.2) + rng.normal(0, 0.02, 60)
    theirs_opt = torch_optimizer(torch, 0.1, 0.05)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **kwargs)
    ours = lr_scheduler.ReduceLROnPlateau(make_optimizer(0.1, 0.05), **kwargs)
    for epoch, metric in enumerate(metrics):
        ours.step(float(metric))
        theirs.step(float(metric))
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12), \
            f"epoch {epoch}"
    assert ours.get_last_lr() != [0.1, 0.05]  # the run did reduce
