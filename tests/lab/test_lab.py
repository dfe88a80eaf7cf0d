"""The optimization lab's numbers: landscapes, optimizers, lr regimes and schedules,
batch sizes, loss curves, fits under outliers, hinge vs logistic.

Each claim a figure makes is asserted here on the numbers behind it, and the lab's
machinery is held against plain textbook formulas written in this file.
"""
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import lab
from minigrad.lab import landscapes
from minigrad.plot import PlotUnavailable

# ---------------------------------------------------------------- test functions
ANALYTIC_GRADIENTS = {
    "bowl": lambda x, y: (0.1 * x, 4.0 * y),
    "rosenbrock": lambda x, y: (-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)),
    "saddle": lambda x, y: (2 * x, y ** 3 - y),
    "himmelblau": lambda x, y: (4 * x * (x * x + y - 11) + 2 * (x + y * y - 7),
                                2 * (x * x + y - 11) + 4 * y * (x + y * y - 7)),
}


@pytest.mark.parametrize("name", sorted(lab.FUNCTIONS))
def test_known_minima_are_stationary_and_lowest(name):
    function = lab.FUNCTIONS[name]
    grad = ANALYTIC_GRADIENTS[name]
    for point in function.minima:
        assert np.allclose(grad(*point), 0, atol=1e-4)
    X, Y, Z = function.grid(120)
    assert Z.min() >= function.min_value - 1e-9
    expected_min = -0.25 if name == "saddle" else 0.0
    assert function.min_value == pytest.approx(expected_min, abs=1e-9)


@pytest.mark.parametrize("name", sorted(lab.FUNCTIONS))
def test_autograd_gradient_of_each_function_matches_the_analytic_one(name):
    function = lab.FUNCTIONS[name]
    for point in np.random.default_rng(0).uniform(-2, 2, size=(5, 2)):
        p = mg.nn.Parameter(point.copy())
        function(p[0], p[1]).backward()
        assert np.allclose(p.grad, ANALYTIC_GRADIENTS[name](*point), rtol=1e-10, atol=1e-10)


def test_grid_is_the_same_expression_as_the_scalar_value():
    function = lab.HIMMELBLAU
    X, Y, Z = function.grid(7)
    assert Z.shape == (7, 7)
    assert Z[3, 5] == pytest.approx(function.value((X[3, 5], Y[3, 5])))
    x, y = X[3, 5], Y[3, 5]
    assert Z[3, 5] == pytest.approx((x * x + y - 11) ** 2 + (x + y * y - 7) ** 2)


def test_get_function_rejects_unknown_names():
    assert lab.get_function("rosenbrock") is lab.ROSENBROCK
    with pytest.raises(ValueError, match="known: bowl, rosenbrock"):
        lab.get_function("ackley")


# ---------------------------------------------------------------- run_optimizer
def test_plain_sgd_path_is_textbook_gradient_descent():
    lr, start = 0.3, np.array([-9.0, 2.0])
    run = lab.run_optimizer("sgd", lab.ILL_CONDITIONED_BOWL, start=start, lr=lr, steps=5)
    point = start.copy()
    expected = [point.copy()]
    for _ in range(5):
        point = point - lr * np.array(ANALYTIC_GRADIENTS["bowl"](*point))
        expected.append(point.copy())
    assert np.allclose(run.path, expected, rtol=1e-12)
    assert run.losses.shape == (6,)
    assert run.losses[0] == pytest.approx(0.05 * 81 + 2 * 4)
    assert np.allclose(run.lrs, lr)


def test_momentum_alias_is_heavy_ball_sgd():
    lr, beta, start = 1e-4, 0.9, np.array([1.0, -1.0])
    run = lab.run_optimizer("momentum", lab.ROSENBROCK, start=start, lr=lr, steps=4)
    point, buffer = start.copy(), None
    for _ in range(4):
        g = np.array(ANALYTIC_GRADIENTS["rosenbrock"](*point))
        buffer = g if buffer is None else beta * buffer + g
        point = point - lr * buffer
    assert np.allclose(run.path[-1], point, rtol=1e-12)


def test_adam_reaches_the_rosenbrock_minimum():
    run = lab.run_optimizer("adam", lab.ROSENBROCK, lr=0.1, steps=1000)
    assert not run.diverged
    assert run.final_distance < 0.01
    assert run.final_loss < 1e-4
    assert run.steps_to_reach(0.05) < 1000


def test_momentum_beats_plain_sgd_at_any_stable_lr_on_the_ill_conditioned_bowl():
    steps = 100
    momentum = lab.run_optimizer("momentum", lab.ILL_CONDITIONED_BOWL, steps=steps)
    # Plain GD on 0.05x² + 2y² is stable only for lr < 0.5; along x it shrinks by
    # (1 - 0.1 lr) per step, so no stable lr gets closer than 9 * 0.95**100 = 0.053.
    for lr in np.linspace(0.05, 0.49, 12):
        sgd = lab.run_optimizer("sgd", lab.ILL_CONDITIONED_BOWL, lr=lr, steps=steps)
        assert not sgd.diverged
        assert sgd.final_distance > 9 * 0.95 ** steps * 0.99
        assert momentum.final_distance < 0.7 * sgd.final_distance


def test_oversized_lr_is_reported_as_diverging_and_a_stable_one_is_not():
    limit = 2 / 4  # 2 / the largest curvature of the bowl
    too_big = lab.run_optimizer("sgd", lab.ILL_CONDITIONED_BOWL, lr=1.1 * limit, steps=200)
    assert too_big.diverged
    assert 0 < too_big.diverged_at < 200
    assert too_big.final_distance == float("inf")
    assert len(too_big.path) == too_big.diverged_at + 1
    just_below = lab.run_optimizer("sgd", lab.ILL_CONDITIONED_BOWL, lr=0.98 * limit, steps=200)
    assert not just_below.diverged and just_below.diverged_at is None


def test_non_finite_loss_stops_the_run():
    # Adagrad's first step moves each coordinate by about lr: straight to overflow.
    run = lab.run_optimizer("adagrad", lab.ROSENBROCK, lr=1e200, steps=10)
    assert run.diverged and run.diverged_at == 1
    assert not np.isfinite(run.losses[-1])


def test_tiny_lr_crawls():
    run = lab.run_optimizer("sgd", lab.ILL_CONDITIONED_BOWL, lr=0.002, steps=100)
    start_distance = np.linalg.norm(lab.ILL_CONDITIONED_BOWL.start)
    assert not run.diverged
    assert run.final_distance > 0.9 * 9  # x barely moved: 9 * (1 - 0.0002)**100
    assert run.final_distance < start_distance
    assert np.all(np.diff(run.losses) <= 0)  # it is going the right way, just slowly


def test_learning_rate_regimes_tell_the_three_stories():
    regimes = lab.learning_rate_regimes(steps=100)
    assert regimes["too large"].diverged
    assert not regimes["too small"].diverged and not regimes["about right"].diverged
    assert regimes["about right"].final_distance < 0.05 * regimes["too small"].final_distance


def test_gradient_noise_is_seeded():
    a = lab.run_optimizer("sgd", lab.HIMMELBLAU, lr=0.01, steps=20, gradient_noise=5.0, seed=3)
    b = lab.run_optimizer("sgd", lab.HIMMELBLAU, lr=0.01, steps=20, gradient_noise=5.0, seed=3)
    c = lab.run_optimizer("sgd", lab.HIMMELBLAU, lr=0.01, steps=20, gradient_noise=5.0, seed=4)
    clean = lab.run_optimizer("sgd", lab.HIMMELBLAU, lr=0.01, steps=20)
    assert np.array_equal(a.path, b.path)
    assert not np.allclose(a.path, c.path)
    assert not np.allclose(a.path, clean.path)


@pytest.mark.parametrize("seed", [0, 1])
def test_decay_schedules_settle_closer_than_a_constant_lr(seed):
    runs = lab.compare_schedules(steps=200, seed=seed)
    assert set(runs) == {"constant", "step decay", "exponential", "cosine"}
    constant = runs["constant"].settled_distance()
    for label in ("step decay", "exponential", "cosine"):
        assert runs[label].settled_distance() < 0.6 * constant, label
    assert np.allclose(runs["constant"].lrs, 0.01)
    assert runs["cosine"].lrs[-1] < 1e-3 * runs["cosine"].lrs[0]
    assert runs["exponential"].lrs[-1] == pytest.approx(0.01 * 0.01, rel=0.05)


def test_compare_optimizers_runs_every_optimizer_at_the_landscapes_lr():
    runs = lab.compare_optimizers(lab.HIMMELBLAU, steps=100)
    assert list(runs) == ["sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam"]
    for name, run in runs.items():
        assert run.lr == lab.HIMMELBLAU.lrs[name]
        assert run.final_distance < 0.05, name
    # One start, more than one minimum reached: the path decides.
    reached = {tuple(np.round(run.final_point, 1)) for run in runs.values()}
    assert len(reached) >= 2


def test_adaptive_optimizers_leave_the_saddle_sooner_than_sgd():
    runs = lab.compare_optimizers(lab.SADDLE, optimizers=("sgd", "adam", "rmsprop"), steps=200)
    assert runs["adam"].steps_to_reach(0.05) < runs["sgd"].steps_to_reach(0.05)
    assert runs["rmsprop"].steps_to_reach(0.05) < runs["sgd"].steps_to_reach(0.05)


def test_run_optimizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'.*momentum"):
        lab.run_optimizer("lbfgs", lab.ROSENBROCK, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="start must be a point"):
        lab.run_optimizer("sgd", lab.ROSENBROCK, start=(1, 2, 3), lr=0.1, steps=3)
    with pytest.raises(ValueError, match="no default lr for 'adamw'"):
        lab.run_optimizer("adamw", lab.ROSENBROCK, steps=3)
    with pytest.raises(ValueError, match="steps"):
        lab.run_optimizer("sgd", lab.ROSENBROCK, lr=0.1, steps=-1)
    # Hyper-parameters reach minigrad's optimizer, which checks them.
    with pytest.raises(ValueError, match="momentum"):
        lab.run_optimizer("sgd", lab.ROSENBROCK, lr=0.1, steps=3, momentum=-1)


def test_reduce_lr_on_plateau_is_stepped_with_the_loss():
    from minigrad.optim import lr_scheduler
    # an lr so small that the loss hardly moves: a plateau from the first step
    run = lab.run_optimizer("sgd", lab.ILL_CONDITIONED_BOWL, lr=1e-6, steps=12,
                            scheduler=lambda opt: lr_scheduler.ReduceLROnPlateau(
                                opt, factor=0.5, patience=2))
    assert run.lrs[0] == 1e-6 and run.lrs[-1] < 1e-6
    assert sorted(run.lrs, reverse=True) == list(run.lrs)


# ---------------------------------------------------------------- batch sizes
@pytest.fixture(scope="module")
def batch_runs():
    data = lab.make_line_data(n=96, seed=0)
    return data, lab.compare_batch_sizes(data, epochs=4, lr=0.05)


def test_batch_gd_takes_fewest_steps_and_sgd_the_noisiest_path(batch_runs):
    data, runs = batch_runs
    batch, mini, sgd = runs["batch"], runs["mini-batch"], runs["stochastic"]
    assert (batch.steps_per_epoch, mini.steps_per_epoch, sgd.steps_per_epoch) == (1, 3, 96)
    assert (batch.steps, mini.steps, sgd.steps) == (4, 12, 384)
    assert sgd.tortuosity > 3 * mini.tortuosity > 3 * 1.0
    assert mini.tortuosity > batch.tortuosity >= 1.0
    # SGD's mini-batch losses jump around; batch GD's fall smoothly.
    assert np.all(np.diff(batch.step_losses) < 0)
    assert np.mean(np.diff(sgd.step_losses) > 0) > 0.2
    # Per epoch, more updates learn more.
    assert sgd.epoch_losses[1] < mini.epoch_losses[1] < batch.epoch_losses[1]
    for run in runs.values():
        assert run.epoch_losses.shape == run.epoch_times.shape == (5,)
        assert run.epoch_times[0] == 0 and np.all(np.diff(run.epoch_times) > 0)


def test_batch_gd_is_full_batch_gradient_descent_on_mse(batch_runs):
    data, runs = batch_runs
    x, y = data.x.reshape(-1).astype(np.float64), data.y.reshape(-1).astype(np.float64)
    w, b = -1.0, 3.0
    for k in range(4):
        residual = w * x + b - y
        w, b = w - 0.05 * 2 * np.mean(residual * x), b - 0.05 * 2 * np.mean(residual)
        assert np.allclose(runs["batch"].path[k + 1], (w, b), rtol=1e-4)
    assert runs["batch"].epoch_losses[-1] == pytest.approx(np.mean((w * x + b - y) ** 2),
                                                           rel=1e-4)


def test_loss_surface_matches_a_hand_computed_mse():
    data = lab.make_line_data(n=20, seed=1)
    Z = lab.loss_surface(data, [1.0, 2.5], [-2.0, 0.0, 0.5])
    assert Z.shape == (3, 2)
    x, y = data.x.reshape(-1).astype(np.float64), data.y.reshape(-1).astype(np.float64)
    assert Z[2, 1] == pytest.approx(np.mean((2.5 * x + 0.5 - y) ** 2), rel=1e-6)


def test_compare_batch_sizes_rejects_a_batch_larger_than_the_data():
    with pytest.raises(ValueError, match="batch size 50"):
        lab.compare_batch_sizes(lab.make_line_data(n=20), batch_sizes={"big": 50}, epochs=1)


# ---------------------------------------------------------------- loss curves
GRID = np.linspace(-3, 3, 600)  # 600 points: no point lands exactly on a kink


def test_regression_loss_curves_and_gradients_match_the_formulas():
    curves = lab.regression_loss_curves(GRID, delta=1.0)
    e = GRID
    expected = {"MSE": (e ** 2, 2 * e), "MAE": (np.abs(e), np.sign(e)),
                "Huber (δ=1)": (np.where(np.abs(e) <= 1, 0.5 * e ** 2, np.abs(e) - 0.5),
                                np.clip(e, -1, 1))}
    assert set(curves) == set(expected)
    for name, (values, derivative) in expected.items():
        assert np.allclose(curves[name].values, values, atol=1e-12), name
        assert np.allclose(curves[name].gradients, derivative, atol=1e-12), name


def test_huber_delta_moves_the_kink():
    curve = lab.regression_loss_curves(GRID, delta=2.0)["Huber (δ=2)"]
    assert np.allclose(curve.gradients, np.clip(GRID, -2, 2), atol=1e-12)


def test_classification_loss_curves_and_gradients_match_the_formulas():
    curves = lab.classification_loss_curves(GRID)
    m = GRID
    logistic = np.log1p(np.exp(-m))
    expected = {"hinge": (np.maximum(0, 1 - m), -(m < 1).astype(float)),
                "logistic": (logistic, -1 / (1 + np.exp(m))),
                "cross-entropy": (logistic, -1 / (1 + np.exp(m)))}
    assert set(curves) == set(expected)
    for name, (values, derivative) in expected.items():
        assert np.allclose(curves[name].values, values, atol=1e-7), name
        assert np.allclose(curves[name].gradients, derivative, atol=1e-7), name


def test_loss_curve_gradients_agree_with_finite_differences():
    curves = {**lab.regression_loss_curves(GRID), **lab.classification_loss_curves(GRID)}
    for name, curve in curves.items():
        numeric = np.gradient(curve.values, GRID)
        inner = slice(2, -2)
        smooth = np.abs(np.diff(curve.gradients, prepend=curve.gradients[0])) < 0.05
        mask = smooth & np.roll(smooth, 1) & np.roll(smooth, -1)  # away from kinks
        assert mask[inner].sum() > len(GRID) // 2, name  # most of the curve is compared
        assert np.allclose(curve.gradients[inner][mask[inner]], numeric[inner][mask[inner]],
                           atol=2e-3), name


# ---------------------------------------------------------------- fits
def test_huber_and_mae_fit_the_true_line_under_outliers_and_mse_does_not():
    data = lab.make_line_data(n=60, outlier_fraction=0.15, seed=0)
    fits = lab.fit_lines(data, steps=400)
    assert set(fits) == {"mse", "huber", "mae"}
    assert fits["huber"].line_error < 0.5 and fits["mae"].line_error < 0.5
    assert fits["mse"].line_error > 4 * max(fits["huber"].line_error, fits["mae"].line_error)
    assert fits["mse"].slope > 2.5  # tilted up towards the outliers at the right end
    # MSE's fit is the least-squares line: check it against the closed form.
    x, y = data.x.reshape(-1).astype(np.float64), data.y.reshape(-1).astype(np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    assert fits["mse"].slope == pytest.approx(slope, rel=1e-2)
    assert fits["mse"].intercept == pytest.approx(intercept, abs=0.05)


def test_without_outliers_all_three_losses_find_the_line():
    data = lab.make_line_data(n=60, outlier_fraction=0.0, seed=0)
    assert not data.is_outlier.any()
    fits = lab.fit_lines(data, steps=400)
    for fit in fits.values():
        assert fit.line_error < 0.3, fit.loss


def test_make_line_data_puts_the_outliers_above_the_line():
    data = lab.make_line_data(n=100, outlier_fraction=0.1, seed=2)
    assert data.is_outlier.sum() == 10
    lift = data.y.reshape(-1) - data.true_line(data.x.reshape(-1))
    assert np.all(lift[data.is_outlier] > 10) and np.all(np.abs(lift[~data.is_outlier]) < 3)
    with pytest.raises(ValueError, match="outlier_fraction"):
        lab.make_line_data(outlier_fraction=1.0)


def test_hinge_ignores_points_beyond_the_margin_and_logistic_does_not():
    points, labels = lab.make_two_blobs(n=200, far_points=10, seed=0)
    fits = lab.fit_classifiers(points, labels, steps=200)
    hinge, logistic = fits["hinge"], fits["logistic"]
    assert hinge.accuracy > 0.9 and logistic.accuracy > 0.9
    assert hinge.pushing_count < 0.4 * len(points)
    assert logistic.pushing_count > 0.8 * len(points)
    # Hinge's pushing points are exactly those inside the margin: y * score < 1, with
    # the score the difference of the two logits.
    signs = np.where(labels == 1, 1.0, -1.0)
    margins = signs * (points @ hinge.normal + hinge.offset)
    inside = margins < 1
    disagree = inside != hinge.pushing
    assert np.all(np.abs(margins[disagree] - 1) < 1e-4)  # only float ties at the margin
    # The far, easy points push nothing under hinge loss.
    assert not hinge.pushing[-10:].any()


def test_fit_classifiers_with_cross_entropy_uses_two_logits():
    points, labels = lab.make_two_blobs(n=80, separation=6.0, seed=1)
    fit = lab.fit_classifiers(points, labels, loss_names=("cross_entropy",), steps=100)
    assert fit["cross_entropy"].accuracy > 0.95


# ---------------------------------------------------------------- plotting helpers
def test_missing_matplotlib_gives_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    regimes = lab.learning_rate_regimes(steps=3)
    with pytest.raises(PlotUnavailable, match=r"pip install 'minigrad\[plot\]'"):
        lab.plot_lr_regimes(regimes, tmp_path / "x.png")
    with pytest.raises(ImportError, match="matplotlib"):
        lab.animate_trajectories(lab.ILL_CONDITIONED_BOWL, regimes, tmp_path / "x.gif")
    assert not (tmp_path / "x.png").exists()


def test_lab_uses_minigrads_own_optimizer_registry():
    for alias, (registry_name, _) in landscapes.OPTIMIZER_SPECS.items():
        assert registry_name in mg.optim.OPTIMIZERS, alias
