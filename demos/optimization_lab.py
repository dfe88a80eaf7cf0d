"""Optimization lab: watch gradient descent, loss functions and optimizers at work.

Each subcommand writes PNG figures (and a GIF where motion helps) to --out and prints
what they show, with the numbers behind them:

    python demos/optimization_lab.py landscape   # optimizers on 2-D landscapes, lrs, schedules
    python demos/optimization_lab.py batch       # batch vs mini-batch vs stochastic GD
    python demos/optimization_lab.py losses      # loss curves, outliers, hinge vs logistic
    python demos/optimization_lab.py lr-find     # LR range test on the exercise CNN (--size 80: full size)
    python demos/optimization_lab.py all --out lab_figures

Everything runs on minigrad's own autograd, losses and optimizers. --quick makes
every run smaller (for tests and a first look). Needs matplotlib
(pip install minigrad[plot]).
"""
import argparse
import time
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad import lab
from minigrad.lr_finder import lr_range_test
from minigrad.models import exercise_cnn

#: The smallest image side SyntheticInsects draws (lr-find's --size).
MIN_LR_FIND_SIZE = 16
#: Steps per landscape: enough for the better optimizers to arrive.
LANDSCAPE_STEPS = {"bowl": 100, "rosenbrock": 1000, "saddle": 200, "himmelblau": 100}


def _say(lines):
    for line in lines:
        print(line)


def _outcome(run, tolerance):
    if run.diverged:
        return f"diverged at step {run.diverged_at}"
    reached = run.steps_to_reach(tolerance)
    where = tuple(round(float(v), 2) for v in run.final_point)
    if reached is None:
        return f"ends at {where}, {run.final_distance:.2g} from a minimum"
    return f"within {tolerance} of {where} after {reached} steps"


# ------------------------------------------------------------------ landscape
def run_landscape(out, quick=False, gif=True):
    """Optimizers on the four landscapes, the three lr regimes, and lr schedules."""
    scale = 0.3 if quick else 1.0
    tolerance = 0.05
    lines = ["== Descent on a landscape ==",
             "Paths of SGD, momentum, Nesterov, RMSprop, Adagrad and Adam (minigrad.optim), "
             "each at an lr that suits the landscape; stars mark the minima."]
    results = {}
    for name, function in lab.FUNCTIONS.items():
        steps = max(20, int(LANDSCAPE_STEPS[name] * scale))
        runs = lab.compare_optimizers(function, steps=steps)
        results[name] = runs
        lab.plot_landscape(function, runs, out / f"landscape_{name}.png")
        lines.append(f"{function.title} ({function.description}; {steps} steps) "
                     f"-> landscape_{name}.png")
        for opt, run in runs.items():
            lines.append(f"    {opt:9s} lr={run.lr:<7g} {_outcome(run, tolerance)}")
    if gif:
        for name in ("rosenbrock", "saddle"):
            lab.animate_trajectories(lab.FUNCTIONS[name], results[name],
                                     out / f"landscape_{name}.gif", frames=30 if quick else 60)
        lines.append("    animations: landscape_rosenbrock.gif, landscape_saddle.gif")
    bowl, saddle = results["bowl"], results["saddle"]
    lines.append(f"  On the bowl, plain SGD ends {bowl['sgd'].final_distance:.2g} from the "
                 f"minimum, momentum {bowl['momentum'].final_distance:.2g}: momentum "
                 f"builds speed along the flat valley that SGD crawls down.")
    def steps_needed(run):
        reached = run.steps_to_reach(tolerance)
        return str(reached) if reached is not None else f"more than {len(run.path) - 1}"
    lines.append(f"  At the saddle the gradient across is tiny: SGD needs "
                 f"{steps_needed(saddle['sgd'])} steps to reach a minimum, Adam "
                 f"{steps_needed(saddle['adam'])} (adaptive methods rescale small gradients).")
    reached = {opt: run.final_point.round(1).tolist() for opt, run in results["himmelblau"].items()}
    lines.append(f"  Himmelblau, one start, different minima: {reached}")

    regimes = lab.learning_rate_regimes(steps=max(30, int(100 * scale)))
    lab.plot_lr_regimes(regimes, out / "lr_regimes.png")
    lines.append("Learning rate: plain SGD on the bowl (largest curvature 4, so GD diverges "
                 "above lr 2/4 = 0.5) -> lr_regimes.png")
    for label, run in regimes.items():
        lines.append(f"    {label:12s} lr={run.lr:<6g} {_outcome(run, tolerance)}")

    schedules = lab.compare_schedules(steps=max(60, int(200 * scale)))
    lab.plot_schedules(schedules, out / "lr_schedules.png")
    lines.append("Learning-rate decay: SGD on Himmelblau with noisy (mini-batch-like) "
                 "gradients, same noise for every schedule -> lr_schedules.png")
    for label, run in schedules.items():
        lines.append(f"    {label:12s} mean distance to the minimum over the last 10% of "
                     f"steps: {run.settled_distance():.3f}")
    _say(lines)
    return {"optimizers": results, "regimes": regimes, "schedules": schedules}


# ------------------------------------------------------------------ batch
def run_batch(out, quick=False):
    """Batch, mini-batch and stochastic gradient descent on the same line fit."""
    data = lab.make_line_data(n=128 if quick else 256, seed=0)
    runs = lab.compare_batch_sizes(data, epochs=5 if quick else 10, lr=0.05)
    lab.plot_batch_comparison(runs, data, out / "batch_sizes.png")
    lines = ["== Batch, mini-batch, stochastic ==",
             f"Dense(1, 1) fitted to {len(data)} points of y = 2x - 1 with plain SGD "
             f"(lr 0.05), fed by a DataLoader of batch size N, 32 and 1 -> batch_sizes.png"]
    for label, run in runs.items():
        lines.append(f"    {label:11s} batch {run.batch_size:4d}: {run.steps_per_epoch:4d} "
                     f"steps/epoch, loss {run.epoch_losses[0]:.3g} -> "
                     f"{run.epoch_losses[-1]:.3g} in {len(run.epoch_losses) - 1} epochs, "
                     f"{run.seconds_per_epoch * 1e3:.2f} ms/epoch, path length / distance "
                     f"{run.tortuosity:.1f}")
    batch, sgd = runs["batch"], runs["stochastic"]
    lines.append(f"  Per epoch SGD learns most ({sgd.steps_per_epoch} updates against batch "
                 f"GD's {batch.steps_per_epoch}), but its path is the noisiest "
                 f"({sgd.tortuosity:.1f}x longer than the ground it covers) and each epoch "
                 f"costs {sgd.seconds_per_epoch / max(batch.seconds_per_epoch, 1e-9):.0f}x "
                 f"batch GD's time; mini-batches get most of both.")
    _say(lines)
    return runs


# ------------------------------------------------------------------ losses
def run_losses(out, quick=False):
    """Loss curves and gradients, line fits under outliers, hinge vs logistic."""
    regression = lab.regression_loss_curves()
    classification = lab.classification_loss_curves()
    lab.plot_loss_curves(regression, classification, out / "loss_curves.png")
    gap = np.abs(classification["cross-entropy"].values - classification["logistic"].values).max()
    lines = ["== Loss functions ==",
             "Curves and their gradients, both from minigrad.losses + autograd -> loss_curves.png",
             "    MSE's slope grows with the error (2e); MAE's is +-1 whatever the error; "
             "Huber's is the error, clipped to +-delta.",
             "    Hinge is exactly 0 (and so is its gradient) once the margin passes 1; "
             "logistic keeps a small pull at every margin.",
             f"    Two-class cross-entropy on logits is the logistic loss (largest gap "
             f"{gap:.1e})."]

    data = lab.make_line_data(n=60, outlier_fraction=0.15, seed=0)
    fits = lab.fit_lines(data, steps=200 if quick else 500)
    lab.plot_line_fits(data, fits, out / "robust_regression.png")
    lines.append(f"Line fit with {int(data.is_outlier.sum())} of {len(data)} points lifted "
                 f"far above y = 2x - 1 -> robust_regression.png")
    for name, fit in fits.items():
        lines.append(f"    {name:6s} y = {fit.slope:.2f}x {fit.intercept:+.2f}   RMS gap to the "
                     f"true line {fit.line_error:.2f}")

    points, labels = lab.make_two_blobs(n=200, far_points=10, seed=0)
    classifiers = lab.fit_classifiers(points, labels, steps=150 if quick else 300)
    lab.plot_classifiers(points, labels, classifiers, out / "classifiers.png")
    lines.append("Linear classifier on two overlapping clouds (+10 far, easy points) "
                 "-> classifiers.png")
    for name, fit in classifiers.items():
        lines.append(f"    {name:8s} accuracy {fit.accuracy:.1%}; {fit.pushing_count} of "
                     f"{len(points)} points still have a non-zero gradient")
    lines.append("  Hinge loss is shaped by the points near the boundary only (the support "
                 "vectors); logistic loss listens to every point it has not saturated.")
    _say(lines)
    return {"regression": regression, "classification": classification, "fits": fits,
            "classifiers": classifiers}


# ------------------------------------------------------------------ lr-find
def run_lr_find(out, quick=False, size=32, batch_size=32, steps=60, images=512,
                optimizer="adam", start_lr=1e-4, end_lr=1.0, device="cpu", seed=0):
    """The learning-rate range test on the exercise CNN with synthetic insect pictures."""
    from minigrad.data import DataLoader, SyntheticInsects
    if quick:
        size, batch_size, steps, images = min(size, 16), min(batch_size, 8), min(steps, 10), 32
    mg.manual_seed(seed)
    dataset = SyntheticInsects(num_images=images, size=size, seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, seed=seed, device=device)
    model = exercise_cnn(dataset.num_classes, "relu", size).to(device)
    started = time.perf_counter()
    result = lr_range_test(model, loader, loss="cross_entropy", optimizer=optimizer,
                           start_lr=start_lr, end_lr=end_lr, steps=steps)
    seconds = time.perf_counter() - started
    lab.plot_lr_finder(result, out / "lr_finder.png",
                       title=f"LR range test: exercise CNN, {optimizer}, "
                             f"{size}x{size} synthetic insects, batch {batch_size}")
    if not result.has_suggestion:
        reading = ("  The loss hardly fell below where it started: too few steps to learn "
                   "anything (try more --steps or a larger --batch-size); no lr can be read "
                   "off this run.")
    else:
        reading = ("  Read it as: the loss is flat while the lr is too small to matter, falls "
                   "fastest at the suggestion, and turns up (or blows up) past the largest "
                   "usable lr.")
    _say(["== Learning-rate range test ==",
          f"Exercise CNN ({model.num_parameters():,} parameters, {size}x{size} input) on "
          f"{len(dataset)} synthetic insect drawings (minigrad.data.SyntheticInsects, not "
          f"photos), {optimizer}, batch {batch_size}, lr from {start_lr:g} growing x"
          f"{(end_lr / start_lr) ** (1 / (steps - 1)):.3f} per step -> lr_finder.png",
          f"    {result.summary()}",
          f"    {len(result.lrs)} steps in {seconds:.1f} s on {device}; the model's weights "
          f"were restored afterwards, so training can start from the same point.",
          reading])
    return result


# ------------------------------------------------------------------ CLI
def _check_lr_find_args(parser, args):
    """Refuse lr-find settings the run would trip over, as usage errors."""
    if args.size < MIN_LR_FIND_SIZE:
        parser.error(f"--size must be at least {MIN_LR_FIND_SIZE} pixels (the smallest "
                     f"synthetic insect drawing), got {args.size}")
    for option, value, least in (("--steps", args.steps, 2), ("--batch-size", args.batch_size, 1),
                                 ("--images", args.images, 1)):
        if value < least:
            parser.error(f"{option} must be at least {least}, got {value}")
    if not 0 < args.start_lr < args.end_lr:
        parser.error(f"need 0 < --start-lr < --end-lr, got {args.start_lr:g} and "
                     f"{args.end_lr:g}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("command", choices=["landscape", "batch", "losses", "lr-find", "all"])
    parser.add_argument("--out", default="lab_figures", help="folder for the figures")
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs everywhere (seconds; for tests and a first look)")
    parser.add_argument("--no-gif", action="store_true", help="skip the landscape GIFs")
    group = parser.add_argument_group("lr-find")
    group.add_argument("--size", type=int, default=32,
                       help="image side in pixels, at least 16 (the smallest synthetic "
                            "insect); the exercise's is 80, 32 keeps the default run to "
                            "seconds on a CPU; --quick caps it at 16")
    group.add_argument("--batch-size", type=int, default=32)
    group.add_argument("--steps", type=int, default=60, help="range-test steps (at least 2)")
    group.add_argument("--images", type=int, default=512, help="synthetic images to draw from")
    group.add_argument("--optimizer", default="adam")
    group.add_argument("--start-lr", type=float, default=1e-4)
    group.add_argument("--end-lr", type=float, default=1.0)
    group.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    group.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command in ("lr-find", "all"):
        _check_lr_find_args(parser, args)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commands = ["landscape", "batch", "losses", "lr-find"] if args.command == "all" \
        else [args.command]
    timings = {}
    for command in commands:
        started = time.perf_counter()
        if command == "landscape":
            run_landscape(out, args.quick, gif=not args.no_gif)
        elif command == "batch":
            run_batch(out, args.quick)
        elif command == "losses":
            run_losses(out, args.quick)
        else:
            run_lr_find(out, args.quick, size=args.size, batch_size=args.batch_size,
                        steps=args.steps, images=args.images, optimizer=args.optimizer,
                        start_lr=args.start_lr, end_lr=args.end_lr, device=args.device,
                        seed=args.seed)
        timings[command] = time.perf_counter() - started
        print()
    written = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".gif"))
    print(f"figures in {out}/: {', '.join(written)}")
    print("time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    return timings


if __name__ == "__main__":
    main()
