"""Figures for the optimization lab: PNGs (and GIFs) from the lab's results.

matplotlib is imported only when a figure is drawn; without it the functions raise
:class:`minigrad.plot.PlotUnavailable` (an ImportError) with the install command.
Figures are made with matplotlib's object API (``matplotlib.figure.Figure``), never
pyplot, so they draw headless and leave no global state behind.
"""
import textwrap
from pathlib import Path

import numpy as np

from ..plot import figure_class, save_figure
from .batching import loss_surface

__all__ = ["plot_landscape", "animate_trajectories", "plot_lr_regimes", "plot_schedules",
           "plot_batch_comparison", "plot_loss_curves", "plot_line_fits", "plot_classifiers",
           "plot_lr_finder"]

#: One colour per optimizer, the same in every figure.
COLORS = {"sgd": "#1f77b4", "momentum": "#ff7f0e", "nesterov": "#2ca02c", "rmsprop": "#d62728",
          "adagrad": "#9467bd", "adam": "#8c564b", "adamw": "#e377c2"}
_CYCLE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f"]
_GAP_FLOOR = 1e-12  # log plots of "loss above the minimum" need a positive floor


def _figure(*subplots, width=None, height=4.2):
    """A headless Figure with a grid of axes; a clear error without matplotlib."""
    Figure = figure_class("the lab's figures")
    rows, cols = subplots if subplots else (1, 1)
    fig = Figure(figsize=(width or 5.2 * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _color(name, i):
    return COLORS.get(name, _CYCLE[i % len(_CYCLE)])


def _contour(ax, function, resolution=200, xlim=None, ylim=None, levels=25):
    """Filled contours of a test function, log-spaced where its values span decades."""
    X, Y, Z = function.grid(resolution, xlim, ylim)
    if function.log_levels:
        # Height above the lowest point, on log-spaced levels: valleys show their shape.
        floor = max(1e-6 * float(Z.max() - Z.min()), 1e-12)
        gap = Z - Z.min() + floor
        lv = np.logspace(np.log10(floor), np.log10(gap.max()), levels)
        ax.contourf(X, Y, gap, levels=lv, cmap="viridis", norm=_log_norm(), alpha=0.85)
        ax.contour(X, Y, gap, levels=lv, colors="white", linewidths=0.3, alpha=0.5)
    else:
        ax.contourf(X, Y, Z, levels=levels, cmap="viridis", alpha=0.85)
        ax.contour(X, Y, Z, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
    minima = np.asarray(function.minima)
    ax.plot(minima[:, 0], minima[:, 1], "*", color="gold", markersize=14,
            markeredgecolor="black", label="minimum", zorder=5)
    ax.set_xlim(*(xlim or function.xlim))
    ax.set_ylim(*(ylim or function.ylim))
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _log_norm():
    from matplotlib.colors import LogNorm
    return LogNorm()


def _frame(function, trajectories, reach=3.0):
    """``(xlim, ylim)`` that show the function's box and the paths on it: the box grown
    to take in every finite point of every path, at most ``reach`` box widths out on
    each side (a path diverging further is cut at the frame, its end marker on the
    edge), with a small margin where it grew."""
    limits = []
    for axis, (low, high) in enumerate((function.xlim, function.ylim)):
        span = high - low
        points = np.concatenate([np.asarray(run.path)[:, axis] for run in trajectories])
        points = points[np.isfinite(points)]
        lo = max(min(low, points.min(initial=low)), low - reach * span)
        hi = min(max(high, points.max(initial=high)), high + reach * span)
        margin = 0.04 * (hi - lo)
        limits.append((lo - margin if lo < low else lo, hi + margin if hi > high else hi))
    return limits


def _legend_below(ax, fontsize=7):
    """The legend under the axes, so it hides none of the contours and paths."""
    handles, _ = ax.get_legend_handles_labels()
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=fontsize,
                     ncol=min(3, max(1, len(handles))), frameon=False)


def _path(ax, trajectory, label, color, markevery=None):
    path = trajectory.path
    ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1.6, label=label, zorder=6)
    ax.plot(path[:, 0], path[:, 1], ".", color=color, ms=3, zorder=6,
            markevery=markevery or max(1, len(path) // 60))
    ax.plot(*path[0], "o", color="white", markeredgecolor="black", ms=6, zorder=7)
    finite = path[np.all(np.isfinite(path), axis=1)]
    # The end (the last finite point) on the frame's edge if the path left the frame.
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    end = np.clip(finite[-1] if len(finite) else path[0], (x0, y0), (x1, y1))
    ax.plot(*end, "X" if trajectory.diverged else "o", color=color,
            markeredgecolor="black", ms=7, zorder=7, clip_on=False)


def _loss_gap(trajectory):
    return np.maximum(trajectory.losses - trajectory.function.min_value, _GAP_FLOOR)


def plot_landscape(function, trajectories, path, title=None):
    """Optimizer paths over the function's contours (left) and loss against step (right)."""
    fig, axes = _figure(1, 2, width=11.5, height=5.4)
    ax, ax_loss = axes[0]
    xlim, ylim = _frame(function, trajectories.values())
    _contour(ax, function, xlim=xlim, ylim=ylim)
    for i, (name, run) in enumerate(trajectories.items()):
        color = _color(name, i)
        _path(ax, run, f"{name} (lr={run.lr:g})", color)
        ax_loss.semilogy(_loss_gap(run), color=color, label=name)
    ax.set_title(title or function.title)
    _legend_below(ax)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss above the minimum (log)")
    ax_loss.set_title("how fast each optimizer descends")
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_loss.legend(fontsize=7)
    return save_figure(fig, path)


def animate_trajectories(function, trajectories, path, frames=60, fps=12, dpi=80):
    """A GIF of the optimizers moving over the landscape together, step by step.

    The contours are drawn once and each frame only redraws the paths on top
    (matplotlib blitting), then Pillow writes the GIF: a frame costs milliseconds
    instead of a full re-render of the contour plot.
    """
    fig, axes = _figure(1, 1, width=5.6, height=5.4)  # raises first if matplotlib is missing
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image  # a dependency of minigrad itself
    ax = axes[0, 0]
    xlim, ylim = _frame(function, trajectories.values())
    _contour(ax, function, resolution=140, xlim=xlim, ylim=ylim)
    moving = []
    for i, (name, run) in enumerate(trajectories.items()):
        color = _color(name, i)
        (line,) = ax.plot([], [], "-", color=color, lw=1.8, label=name, zorder=6, animated=True)
        (head,) = ax.plot([], [], "o", color=color, markeredgecolor="black", ms=7, zorder=7,
                          animated=True)
        moving.append((run, line, head))
    _legend_below(ax)
    ax.set_title(function.title, fontsize=9)
    step_label = ax.text(0.02, 0.02, "", transform=ax.transAxes, fontsize=9, animated=True,
                         bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # the static part, once
    background = canvas.copy_from_bbox(fig.bbox)
    longest = max(len(run.path) for run in trajectories.values())
    images = []
    for step in np.unique(np.linspace(1, longest, frames).astype(int)):
        canvas.restore_region(background)
        for run, line, head in moving:
            shown = run.path[:step]
            line.set_data(shown[:, 0], shown[:, 1])
            head.set_data([shown[-1, 0]], [shown[-1, 1]])
            ax.draw_artist(line)
            ax.draw_artist(head)
        step_label.set_text(f"step {step - 1}")
        ax.draw_artist(step_label)
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One palette for every frame, taken from the last (which shows every path):
    # quantizing each frame on its own is most of the cost of writing a GIF.
    palette = images[-1].quantize(colors=255, method=Image.Quantize.FASTOCTREE)
    images = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    return path


def plot_lr_regimes(regimes, path):
    """One panel per learning rate (overshoot, crawl, about right) and their losses."""
    fig, axes = _figure(1, len(regimes) + 1, width=4.6 * (len(regimes) + 1), height=4.2)
    for i, (label, run) in enumerate(regimes.items()):
        ax = axes[0, i]
        xlim, ylim = _frame(run.function, [run])
        _contour(ax, run.function, xlim=xlim, ylim=ylim)
        _path(ax, run, label, _CYCLE[i + 3], markevery=1)
        if run.diverged:
            outcome = f"diverged at step {run.diverged_at}"
        else:
            outcome = f"{run.final_distance:.2g} from the minimum after {len(run.path) - 1} steps"
        ax.set_title(f"{label}: lr={run.lr:g}\n{outcome}", fontsize=9)
        axes[0, -1].semilogy(_loss_gap(run), color=_CYCLE[i + 3], label=f"{label} (lr={run.lr:g})")
    ax = axes[0, -1]
    ax.set_xlabel("step")
    ax.set_ylabel("loss above the minimum (log)")
    ax.set_title(f"{next(iter(regimes.values())).optimizer} on the "
                 f"{next(iter(regimes.values())).function.name}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_schedules(runs, path, zoom=1.0):
    """Noisy descents under lr schedules: paths near the minimum, distance and lr per step."""
    fig, axes = _figure(1, 3, width=15, height=4.4)
    ax_path, ax_dist, ax_lr = axes[0]
    any_run = next(iter(runs.values()))
    function = any_run.function
    end = any_run.path[-1]
    centre = np.asarray(function.minima)[np.argmin(
        np.linalg.norm(np.asarray(function.minima) - end, axis=1))]
    _contour(ax_path, function, xlim=(centre[0] - zoom, centre[0] + zoom),
             ylim=(centre[1] - zoom, centre[1] + zoom))
    for i, (label, run) in enumerate(runs.items()):
        color = _CYCLE[i]
        tail = len(run.path) // 2  # the second half: where settling happens
        ax_path.plot(run.path[tail:, 0], run.path[tail:, 1], ".-", color=color, lw=0.6, ms=2,
                     label=label, zorder=6)
        ax_dist.semilogy(np.maximum(function.distance_to_minimum(run.path), 1e-6), color=color,
                         lw=0.9, label=f"{label}: settled {run.settled_distance():.3f}")
        ax_lr.plot(run.lrs, color=color, label=label)
    ax_path.set_title("second half of each path, near the minimum", fontsize=9)
    _legend_below(ax_path)
    ax_dist.set_xlabel("step")
    ax_dist.set_ylabel("distance to the minimum (log)")
    ax_dist.set_title("a decaying lr settles closer", fontsize=9)
    ax_dist.grid(True, which="both", alpha=0.3)
    ax_dist.legend(fontsize=7)
    ax_lr.set_xlabel("step")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("the schedules", fontsize=9)
    ax_lr.grid(True, alpha=0.3)
    ax_lr.legend(fontsize=7)
    return save_figure(fig, path)


def plot_batch_comparison(runs, data, path, loss="mse"):
    """Loss per epoch and per second, the parameter paths, and the mini-batch losses."""
    fig, axes = _figure(2, 2, width=11.5, height=4.2)
    (ax_epoch, ax_time), (ax_path, ax_steps) = axes
    points = np.concatenate([run.path for run in runs.values()])
    w_lo, w_hi = points[:, 0].min(), points[:, 0].max()
    b_lo, b_hi = points[:, 1].min(), points[:, 1].max()
    pad_w, pad_b = 0.15 * (w_hi - w_lo) + 0.1, 0.15 * (b_hi - b_lo) + 0.1
    ws = np.linspace(w_lo - pad_w, w_hi + pad_w, 120)
    bs = np.linspace(b_lo - pad_b, b_hi + pad_b, 120)
    Z = loss_surface(data, ws, bs, loss)
    ax_path.contourf(ws, bs, Z, levels=np.logspace(np.log10(Z.min()), np.log10(Z.max()), 20),
                     norm=_log_norm(), cmap="viridis", alpha=0.8)
    for i, (label, run) in enumerate(runs.items()):
        color = _CYCLE[i]
        name = f"{label} (batch {run.batch_size}, {run.steps_per_epoch} steps/epoch)"
        epochs = np.arange(len(run.epoch_losses))
        ax_epoch.semilogy(epochs, run.epoch_losses, "o-", color=color, ms=3, label=name)
        ax_time.semilogy(run.epoch_times[1:] * 1e3, run.epoch_losses[1:], "o-", color=color,
                         ms=3, label=label)
        ax_path.plot(run.path[:, 0], run.path[:, 1], "-", color=color, lw=0.8 if run.batch_size
                     == 1 else 1.6, label=f"{label}: path/distance {run.tortuosity:.1f}")
        steps_axis = np.arange(1, len(run.step_losses) + 1) / run.steps_per_epoch
        ax_steps.semilogy(steps_axis, run.step_losses, "-", color=color, lw=0.6, alpha=0.8,
                          label=label)
    ax_path.plot(data.slope, data.intercept, "*", color="gold", ms=14, markeredgecolor="black")
    ax_epoch.set_xlabel("epoch")
    ax_epoch.set_ylabel("full-data loss")
    ax_epoch.set_title("per epoch: more steps per pass learn faster", fontsize=9)
    ax_time.set_xscale("log")
    ax_time.set_xlabel("training time (ms, log)")
    ax_time.set_ylabel("full-data loss")
    ax_time.set_title("per second: one big step is cheap, many small ones are not", fontsize=9)
    ax_path.set_xlabel("weight (slope)")
    ax_path.set_ylabel("bias (intercept)")
    ax_path.set_title("paths over the loss surface: SGD zig-zags", fontsize=9)
    ax_steps.set_xlabel("epoch")
    ax_steps.set_ylabel("loss of the batch trained on")
    ax_steps.set_title("the loss each step sees: noisy for small batches", fontsize=9)
    for ax in (ax_epoch, ax_time, ax_path, ax_steps):
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    return save_figure(fig, path)


def plot_loss_curves(regression, classification, path):
    """Loss curves (top) and their autograd gradients (bottom), regression | classification."""
    fig, axes = _figure(2, 2, width=11, height=3.8)
    for col, (curves, xlabel) in enumerate(((regression, "error  (prediction - target)"),
                                            (classification, "margin  (label x score)"))):
        for i, (name, curve) in enumerate(curves.items()):
            style = "--" if name == "cross-entropy" else "-"
            axes[0, col].plot(curve.x, curve.values, style, color=_CYCLE[i + 3 * col], lw=2,
                              label=name)
            axes[1, col].plot(curve.x, curve.gradients, style, color=_CYCLE[i + 3 * col],
                              lw=2, label=name)
        axes[0, col].set_ylabel("loss")
        axes[1, col].set_ylabel("d loss / d " + xlabel.split()[0])
        axes[1, col].set_xlabel(xlabel)
        for row in range(2):
            axes[row, col].grid(True, alpha=0.3)
            axes[row, col].legend(fontsize=8)
            axes[row, col].axvline(0, color="black", lw=0.5)
    axes[0, 0].set_title("regression losses: MSE grows fast, MAE and Huber linearly", fontsize=9)
    axes[0, 1].set_title("classification losses: hinge is 0 beyond margin 1", fontsize=9)
    axes[0, 1].plot(classification[next(iter(classification))].x,
                    (classification[next(iter(classification))].x <= 0).astype(float),
                    ":", color="gray", label="0-1 loss")
    axes[0, 1].legend(fontsize=8)
    return save_figure(fig, path)


def plot_line_fits(data, fits, path):
    """The data with its outliers, the true line and the line fitted under each loss."""
    fig, axes = _figure(1, 2, width=11, height=4.4)
    ax, ax_loss = axes[0]
    x, y = data.x.reshape(-1), data.y.reshape(-1)
    ax.scatter(x[~data.is_outlier], y[~data.is_outlier], s=14, color="gray", label="data")
    ax.scatter(x[data.is_outlier], y[data.is_outlier], s=30, color="red", marker="x",
               label="outliers")
    xs = np.linspace(x.min(), x.max(), 50)
    ax.plot(xs, data.true_line(xs), "k--", lw=1.5, label="true line")
    for i, (name, fit) in enumerate(fits.items()):
        label = (f"{name}: y={fit.slope:.2f}x{fit.intercept:+.2f} "
                 f"(off by {fit.line_error:.2f})")
        ax.plot(xs, fit(xs), color=_CYCLE[i], lw=2, label=label)
        ax_loss.semilogy(fit.losses, color=_CYCLE[i], label=name)
    ax.set_title("a few outliers drag the squared loss, not Huber or MAE", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("training (each loss on its own scale)", fontsize=9)
    ax_loss.legend(fontsize=7)
    ax_loss.grid(True, which="both", alpha=0.3)
    return save_figure(fig, path)


def plot_classifiers(points, labels, fits, path):
    """One panel per loss: the points, the learned boundary, and the points still pushing it."""
    fig, axes = _figure(1, len(fits), width=5.2 * len(fits), height=4.6)
    lo, hi = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
    for ax, (name, fit) in zip(axes[0], fits.items()):
        for cls, color in ((0, "#1f77b4"), (1, "#ff7f0e")):
            chosen = labels == cls
            ax.scatter(points[chosen, 0], points[chosen, 1], s=12, color=color, alpha=0.6,
                       label=f"class {cls}")
        ax.scatter(points[fit.pushing, 0], points[fit.pushing, 1], s=40, facecolors="none",
                   edgecolors="black", lw=0.8, label=f"still pushing ({fit.pushing_count})")
        xs = np.linspace(lo[0], hi[0], 2)
        n0, n1 = fit.normal
        if abs(n1) > 1e-9:
            ax.plot(xs, -(n0 * xs + fit.offset) / n1, "k-", lw=2, label="boundary")
        else:
            ax.axvline(-fit.offset / n0, color="black", lw=2, label="boundary")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_title(f"{name}: accuracy {fit.accuracy:.1%}, "
                     f"{fit.pushing_count}/{len(points)} points push", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
        ax.grid(True, alpha=0.3)
    return save_figure(fig, path)


def plot_lr_finder(result, path, title="learning-rate range test"):
    """Loss against learning rate (log), raw and smoothed, with the suggestion marked
    and the summary's words under it."""
    fig, axes = _figure(1, 1, width=7, height=5.0)
    ax = axes[0, 0]
    ax.plot(result.lrs, result.losses, ".-", color="0.45", lw=0.8, ms=3,
            label="loss of each step's batch (raw)")
    ax.plot(result.lrs, result.smoothed_losses, color="#1f77b4", lw=2,
            label="smoothed (centred average)")
    ax.set_xscale("log")
    ax.axvline(result.suggested_lr, color="#d62728", ls="--",
               label=f"suggested lr {result.suggested_lr:.2g} (steepest descent)")
    ax.plot([result.suggested_lr], [np.interp(np.log(result.suggested_lr), np.log(result.lrs),
                                              result.smoothed_losses)], "o", color="#d62728")
    if result.diverged_lr is not None:
        ax.axvline(result.diverged_lr, color="black", ls=":",
                   label=f"stopped: loss blew up at lr {result.diverged_lr:.2g}")
    smoothed, raw = result.smoothed_losses, result.losses
    # Zoom on the dip with the raw losses in view: from a little under the lowest raw
    # loss to a little over the highest one short of the blow-up, which would
    # otherwise flatten everything.
    span = max(smoothed[0] - smoothed.min(), 0.02 * abs(smoothed[0]), 1e-12)
    top = min(float(raw.max()), smoothed[0] + 2.5 * span)
    ax.set_ylim(min(float(raw.min()), smoothed.min()) - 0.2 * span, top + 0.2 * span)
    fig.supxlabel(textwrap.fill(result.summary(), 120), fontsize=7)
    ax.set_xlabel("learning rate (log)")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
