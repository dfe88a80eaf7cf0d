#!/usr/bin/env python
"""The bees-vs-wasps exercise as one command: load, build, train, evaluate, plot.

    python demos/bees_vs_wasps.py                       # synthetic pictures, no download
    python demos/bees_vs_wasps.py --data PATH           # a real image folder
    python demos/bees_vs_wasps.py --optimizer sgd --lr 1e-2 --activation tanh
    python demos/bees_vs_wasps.py sweep --optimizer adam,sgd --lr 1e-2,1e-3 --epochs 3

The model is the exercise's CNN (three conv/ReLU/max-pool blocks, then a dense
layer of 128 and one output per class); the number of classes and their names
come from the data. Results go to ``--out``: ``history.json``, ``result.json``,
``model.npz`` (the weights), ``checkpoint.npz`` (resumable with ``--resume``; it
records the settings it was trained with, and ``--resume`` refuses to continue
under different ones, except a larger ``--epochs``), ``curves.png`` and
``confusion.png``. A new run without ``--resume`` leaves the folder's checkpoint
alone until its own first checkpoint replaces it.

Without ``--data`` the demo trains on generated pictures of "insects" (synthetic
drawings in the real set's four classes, not photos) for 4 epochs instead of the
exercise's 10, sized to finish within two minutes on two CPU cores. For the real
photos, download
them once with ``python -c "from minigrad.data import download_bee_vs_wasp;
print(download_bee_vs_wasp('data'))"`` and pass the printed folder to ``--data``.

For reuse (e.g. by a hyperparameter sweep): :func:`build_model`,
:func:`load_data`, :func:`run_experiment`, :class:`ExperimentConfig` and
:class:`ExperimentError` (what the user can fix: the data, the settings);
:data:`COMMANDS` maps sub-command names to functions so ``main`` can dispatch to
more commands than training.
"""
import argparse
import dataclasses
import sys
import time
from pathlib import Path

try:
    import minigrad as mg
except ImportError:  # run from a clone without installing: use the package beside us
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import minigrad as mg

from minigrad import backend, losses, nn, optim
from minigrad.models import exercise_cnn
from minigrad.data import (DataLoader, SyntheticInsects, load_image_folder, train_val_split,
                           transforms)
from minigrad.io import atomic_write_json
from minigrad.plot import PlotUnavailable, format_confusion, plot_confusion, plot_history
from minigrad.train import (Callback, ModelCheckpoint, TensorBoard, TrainingDiverged, evaluate,
                            fit, load_checkpoint)
from minigrad.tune import ExperimentTrial, sweep_main

#: Epochs when none are given: the exercise's 10 on real data; fewer on the
#: synthetic pictures, which a few epochs already separate well, so that the
#: default run stays short.
REAL_DATA_EPOCHS = 10
SYNTHETIC_EPOCHS = 4
#: Synthetic pictures generated for the default run (split 80/20 like real data).
SYNTHETIC_IMAGES = 1600
#: The synthetic pictures are the same for every run (like a data set on disk);
#: --seed only changes the split, the initial weights and the order of batches.
SYNTHETIC_DATA_SEED = 0
#: The resumable checkpoint in ``--out``.
CHECKPOINT_FILE = "checkpoint.npz"
#: The name of :class:`ExperimentRecord`'s state among a checkpoint's callback states.
STATE_KEY = "bees_vs_wasps-experiment"


class ExperimentError(ValueError):
    """What the user can fix before training: unusable data, or a ``--resume`` under
    settings that differ from the checkpoint's. The CLI prints it as one line."""


@dataclasses.dataclass
class ExperimentConfig:
    """Everything a learner changes between runs (the CLI's options)."""
    data: "str | None" = None
    size: int = 80
    batch_size: int = 32
    activation: str = "relu"
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: "int | None" = None  # None: REAL_DATA_EPOCHS, or SYNTHETIC_EPOCHS without data
    device: str = "cpu"
    cuda_graph: bool = False  # replay each full batch's step as a CUDA graph (GPU only)
    tf32: bool = False        # TF32 tensor-core matrix products (GPU only)
    seed: int = 123
    out: "str | None" = "runs/bees_vs_wasps"
    val_fraction: float = 0.2
    augment: bool = False
    synthetic_images: int = SYNTHETIC_IMAGES
    cache: bool = True
    resume: bool = False

    def resolved_epochs(self):
        """The number of epochs this configuration trains for."""
        if self.epochs is not None:
            return int(self.epochs)
        return REAL_DATA_EPOCHS if self.data else SYNTHETIC_EPOCHS


def build_model(num_classes, activation="relu", size=80):
    """The exercise's CNN (:func:`minigrad.models.exercise_cnn`) for this experiment."""
    return exercise_cnn(num_classes, activation, size)


def load_data(config, progress=False):
    """``(train_set, val_set, description)`` for a configuration.

    With ``config.data``: that image folder (already split into train/ and
    val/ or test/, or split 80/20 with ``config.seed``). Without: the synthetic
    pictures, split the same way. Unusable data (no classes, an empty class, too
    few images for both splits) raises :class:`ExperimentError`; a missing folder
    ``FileNotFoundError``.
    """
    try:
        if config.data:
            try:
                train_set, val_set = load_image_folder(
                    config.data, size=config.size, val_fraction=config.val_fraction,
                    seed=config.seed, cache=config.cache, progress=progress)
            except FileNotFoundError as exc:  # what the library cannot say: the flags
                raise FileNotFoundError(f"{exc} Pass the folder with --data PATH, or leave "
                                        "--data out to train on generated pictures.") from exc
            description = f"image folder {config.data}"
        else:
            full = SyntheticInsects(config.synthetic_images, size=config.size,
                                    seed=SYNTHETIC_DATA_SEED)
            train_set, val_set = train_val_split(full, config.val_fraction, config.seed,
                                                 what="the synthetic set (--synthetic-images)")
            description = SyntheticInsects.description
    except ValueError as exc:
        raise ExperimentError(str(exc)) from exc
    if config.augment:  # the training split only: validation sees the photos as they are
        train_set.transform = augmentation(config.size)
    return train_set, val_set, description


def augmentation(size):
    """``--augment``: torchvision's usual recipe, mild enough for small images."""
    return transforms.Compose([transforms.RandomResizedCrop(size, scale=(0.6, 1.0)),
                               transforms.RandomHorizontalFlip(),
                               transforms.RandomRotation(10),
                               transforms.ColorJitter(0.2, 0.2, 0.2)])


def check_config(config):
    """Raise ``ValueError`` naming the first setting that cannot work (before any data loads)."""
    losses.get(config.loss)  # an unknown name lists the known ones
    optim.optimizer_class(config.optimizer)  # an unknown name lists the known ones
    nn.activation(config.activation)
    if config.size < 8:
        raise ValueError(f"--size must be at least 8 (three 2x2 poolings), got {config.size}")
    if config.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {config.batch_size}")
    if not config.lr > 0:
        raise ValueError(f"--lr must be positive, got {config.lr}")
    if config.epochs is not None and config.epochs < 0:
        raise ValueError(f"--epochs must be >= 0, got {config.epochs}")
    if not 0 < config.val_fraction < 1:
        raise ValueError(f"the validation fraction must lie in (0, 1), got {config.val_fraction}")
    for flag, wanted in (("--cuda-graph", config.cuda_graph), ("--tf32", config.tf32)):
        if wanted and str(config.device).lower().split(":")[0] != "cuda":
            raise ValueError(f"{flag} needs --device cuda, not {config.device!r}")


def experiment_settings(config):
    """The settings a resumed run must share with its checkpoint, as a JSON-ready dict.

    Everything that decides the data, its split, the model or the update rule:
    changing one of them under a checkpoint would continue the weights under
    another experiment (or leak validation images into training, for the seed
    and the split). ``epochs`` may grow, and the device, ``--cuda-graph``,
    ``--tf32``, the cache and the output folder may change. Loss, optimizer and
    activation are recorded by their registries' first name for what they build,
    so aliases (``bce`` for ``logistic``, ``Adam``, ``ReLU``) are the same setting.
    """
    activation = type(nn.activation(config.activation))
    loss = type(losses.get(config.loss))
    optimizer = optim.optimizer_class(config.optimizer)
    settings = {
        "model": exercise_cnn.__name__,
        "data": str(Path(config.data).expanduser().resolve()) if config.data else None,
        "size": int(config.size),
        "seed": int(config.seed),
        "val_fraction": float(config.val_fraction),
        "activation": _registered_name(nn.ACTIVATIONS, activation),
        "loss": _registered_name(losses.LOSSES, loss),
        "optimizer": _registered_name(optim.OPTIMIZERS, optimizer),
        "lr": float(config.lr),
        "batch_size": int(config.batch_size),
        "augment": bool(config.augment),
    }
    if not config.data:  # the synthetic set: its size decides the data and the split
        settings["synthetic_images"] = int(config.synthetic_images)
    return settings


def _registered_name(registry, cls):
    """The first name under which ``registry`` (name -> class) lists ``cls``."""
    return next(name for name, registered in registry.items() if registered is cls)


class ExperimentRecord(Callback):
    """Puts the run's :func:`experiment_settings` into every checkpoint the run writes.

    Inside the file, the settings are written in the same atomic write as the
    weights they describe: no checkpoint ever sits beside another run's settings.
    The state is the same for the whole run, so a resumed run has nothing to load
    from it (:func:`check_resume_settings` compares it before the data loads).
    """

    resumes_from_state = False  # a record, the same for the whole run

    def __init__(self, settings):
        self.settings = dict(settings)

    def state_key(self):
        return STATE_KEY

    def state_dict(self):
        return {"settings": self.settings}


def recorded_settings(checkpoint):
    """The settings ``checkpoint`` was trained with, or ``None`` if it records none (one
    written before the demo recorded them); an unreadable file is an
    :class:`ExperimentError`."""
    try:
        state = load_checkpoint(checkpoint)
    except ValueError as exc:
        raise ExperimentError(f"cannot resume: {exc}. Delete it to start afresh, or choose "
                              f"another --out") from exc
    record = state.get("callbacks", {}).get(STATE_KEY)
    return None if record is None else dict(record["settings"])


def check_resume_settings(checkpoint, settings):
    """Raise :class:`ExperimentError` listing every setting in which ``settings``
    differ from those ``checkpoint`` was trained with.

    Returns ``False`` when the checkpoint records no settings (nothing to
    compare), ``True`` when every setting matches.
    """
    recorded = recorded_settings(checkpoint)
    if recorded is None:
        return False
    missing = "(not recorded)"
    names = list(settings) + [name for name in recorded if name not in settings]
    changed = [f"{name} {recorded.get(name, missing)!r} -> {settings.get(name, missing)!r}"
               for name in names if recorded.get(name, missing) != settings.get(name, missing)]
    if changed:
        raise ExperimentError(
            f"cannot resume from {checkpoint}: it was trained with other settings "
            f"({'; '.join(changed)}). Resume with the settings it was trained with (only "
            f"--epochs may grow), or drop --resume or choose another --out to start a new run")
    return True


def run_experiment(config, verbose=1, callbacks=(), plots=True):
    """Load, build, train, evaluate; write the results to ``config.out``; return a dict.

    The dict holds the configuration, class names, the per-epoch history, the
    final validation loss and accuracy, the confusion matrix, the best
    validation accuracy, seconds and images per second. ``config`` may be an
    :class:`ExperimentConfig` or a dict of its fields. Raises
    ``minigrad.train.TrainingDiverged`` if the loss becomes NaN or infinite, and
    :class:`ExperimentError` for unusable data or if ``config.resume`` would
    continue a checkpoint trained with other settings (see
    :func:`experiment_settings`).
    """
    if isinstance(config, dict):
        config = ExperimentConfig(**config)
    check_config(config)
    say = print if verbose else (lambda *a, **k: None)
    out = Path(config.out) if config.out else None
    settings = experiment_settings(config)
    checkpoint = out / CHECKPOINT_FILE if out is not None else None
    resume = None
    if checkpoint is not None and config.resume:
        if checkpoint.exists():
            resume = checkpoint  # checked before the (slow) data loading
            if not check_resume_settings(checkpoint, settings):
                say(f"Note: {checkpoint} records no settings (written by an older demo), "
                    f"so they cannot be checked; resuming with these")
        else:
            say(f"No checkpoint at {checkpoint}; starting afresh")
    device = backend.check_device(config.device)
    epochs = config.resolved_epochs()
    started = time.perf_counter()

    train_set, val_set, description = load_data(config, progress=bool(verbose))
    classes = list(train_set.classes)
    say(f"Data: {description}: {len(train_set)} training and {len(val_set)} validation "
        f"images, {config.size}x{config.size}, {len(classes)} classes ({', '.join(classes)})")
    if not config.data:
        say("  For real photos pass --data PATH (e.g. the folder that "
            "minigrad.data.download_bee_vs_wasp() returns).")
        if config.epochs is None:
            say(f"  {SYNTHETIC_EPOCHS} epochs by default on these pictures (the exercise's "
                f"{REAL_DATA_EPOCHS} on real photos); change with --epochs.")

    mg.manual_seed(config.seed)
    try:
        model = build_model(len(classes), config.activation, config.size)
    except ValueError as exc:  # settings are checked already: the data's classes (one)
        raise ExperimentError(f"{description}: {exc}") from exc
    model.to(device)
    if verbose:
        model.summary((1, 3, config.size, config.size))
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True,
                              seed=config.seed, device=device)
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False,
                            seed=config.seed, device=device)

    callbacks = list(callbacks)
    if checkpoint is not None:
        # The old checkpoint stays until this run's first one replaces it (settings
        # included), so an interrupted new run leaves the earlier run resumable.
        callbacks += [ExperimentRecord(settings), ModelCheckpoint(checkpoint)]
        if resume is not None:
            say(f"Resuming from {resume}")
        elif checkpoint.exists():
            say(f"Starting afresh: this run's first checkpoint replaces {checkpoint}")
    say(f"Training: {config.optimizer} lr={config.lr:g}, loss {config.loss}, activation "
        f"{config.activation}, batch {config.batch_size}, {epochs} epochs on {device}")
    tf32_before = mg.cuda.allow_tf32(True) if config.tf32 else None
    try:
        history = fit(model, train_loader, val_loader, loss=config.loss,
                      optimizer=config.optimizer, lr=config.lr, epochs=epochs,
                      callbacks=callbacks, resume=resume, verbose=verbose, device=device,
                      cuda_graph=config.cuda_graph)
        result_eval = evaluate(model, val_loader, loss=config.loss, device=device)
    finally:  # a sweep runs trials in one process: leave the setting as it was
        if tf32_before is not None:
            mg.cuda.allow_tf32(tf32_before)
    best_epoch, best_acc = (history.best("val_accuracy") if "val_accuracy" in history
                            else (None, None))
    seconds = time.perf_counter() - started
    ips = history.history.get("images_per_second", [])
    result = {
        "config": dataclasses.asdict(config),  # a resumed run's matches its checkpoint's
        "resumed": resume is not None,
        "epochs": epochs,
        "data": description,
        "classes": classes,
        "train_images": len(train_set),
        "val_images": len(val_set),
        "parameters": model.num_parameters(),
        "history": history.history,
        "val_loss": result_eval.loss,
        "val_accuracy": result_eval.accuracy,
        "best_val_accuracy": best_acc,
        "best_epoch": best_epoch,
        "confusion": result_eval.confusion.tolist(),
        "seconds": seconds,
        "images_per_second": sum(ips) / len(ips) if ips else None,
        "files": {},
    }
    say(f"\nFinal validation loss {result_eval.loss:.4f}, accuracy {result_eval.accuracy:.4f}"
        f" ({len(val_set)} images)")
    say("Confusion matrix (rows: true class, columns: predicted):")
    say(format_confusion(result_eval.confusion, classes))
    if out is not None:
        result["files"] = _write_outputs(out, model, history, result, classes, plots, say)
    say(f"Done in {seconds:.1f}s")
    return result


def _write_outputs(out, model, history, result, classes, plots, say):
    out.mkdir(parents=True, exist_ok=True)
    files = {"history": str(out / "history.json"), "weights": str(out / "model.npz"),
             "result": str(out / "result.json"), "checkpoint": str(out / CHECKPOINT_FILE)}
    history.save(files["history"])
    model.save(files["weights"])
    if plots:
        try:
            if history.epoch:  # no curves for a run of zero epochs
                plot_history(history, out / "curves.png",
                             title=f"{result['config']['optimizer']} "
                                   f"lr={result['config']['lr']:g}, "
                                   f"{result['config']['activation']}")
                files["curves"] = str(out / "curves.png")
            plot_confusion(result["confusion"], classes, out / "confusion.png")
            files["confusion"] = str(out / "confusion.png")
        except PlotUnavailable as exc:
            say(f"No plots: {exc}")
    atomic_write_json(files["result"], result)
    say(f"Wrote {', '.join(Path(p).name for p in files.values())} to {out}")
    return files


# --------------------------------------------------------------------------- CLI
def add_experiment_arguments(parser):
    """The exercise's options, shared by every sub-command that trains."""
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="image folder, one subfolder per class (or train/ and val/ "
                             "or test/ subfolders); default: generated synthetic pictures")
    parser.add_argument("--size", type=int, default=80, help="image side in pixels (80)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (32)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    parser.add_argument("--cuda-graph", action="store_true",
                        help="with --device cuda: replay each training step as a CUDA graph")
    parser.add_argument("--tf32", action="store_true",
                        help="with --device cuda: TF32 tensor-core matrix products "
                             "(faster, less precise; float32 otherwise)")
    parser.add_argument("--seed", type=int, default=123,
                        help="seed of the split, the initial weights and the batch order (123)")
    parser.add_argument("--out", metavar="DIR", default="runs/bees_vs_wasps",
                        help="where results go (runs/bees_vs_wasps)")
    parser.add_argument("--augment", action="store_true",
                        help="augment the training images: random resized crops, flips, "
                             "small rotations and colour jitter")
    parser.add_argument("--no-cache", dest="cache", action="store_false",
                        help="do not keep decoded images in the on-disk cache")
    parser.add_argument("--synthetic-images", type=int, default=SYNTHETIC_IMAGES,
                        help=f"how many synthetic pictures to generate ({SYNTHETIC_IMAGES})")
    return parser


def build_parser():
    """The training command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="bees_vs_wasps.py",
        description="Train the exercise's CNN on an image folder (default: synthetic "
                    "insect pictures) and report curves and a confusion matrix.")
    add_experiment_arguments(parser)
    parser.add_argument("--activation", choices=sorted(nn.ACTIVATIONS), default="relu",
                        help="activation function (relu)")
    parser.add_argument("--loss", default="cross_entropy",
                        help="loss: cross_entropy, hinge, mse, mae, huber, logistic "
                             "(cross_entropy)")
    parser.add_argument("--optimizer", default="adam",
                        help="optimizer: adam, sgd, rmsprop, adagrad, adamw (adam)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (1e-3)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs ({REAL_DATA_EPOCHS} with --data, "
                             f"{SYNTHETIC_EPOCHS} on the synthetic pictures)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from DIR/checkpoint.npz if it exists")
    parser.add_argument("--quiet", action="store_true", help="print only the final result")
    parser.add_argument("--tensorboard", metavar="DIR", default=None,
                        help="also log curves, weight histograms and the confusion matrix "
                             "for TensorBoard into DIR (needs minigrad[tensorboard])")
    return parser


def config_from_args(args):
    """An :class:`ExperimentConfig` from parsed arguments (unknown fields ignored)."""
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    return ExperimentConfig(**{k: v for k, v in vars(args).items() if k in fields})


def train_command(argv):
    """``bees_vs_wasps.py [options]``: one training run."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(args)
    try:
        check_config(config)
    except ValueError as exc:
        parser.error(str(exc))  # prints usage and the message, exits with status 2
    try:
        logging = {"callbacks": [TensorBoard(args.tensorboard)]} if args.tensorboard else {}
        result = run_experiment(config, verbose=0 if args.quiet else 1, **logging)
    except (FileNotFoundError, NotADirectoryError, TrainingDiverged, ExperimentError,
            ImportError) as exc:  # ImportError: --tensorboard without tensorboardX
        # What the user can fix (a path, the data, the settings, the learning rate): one
        # line. Anything else, a ValueError raised while training included, is a bug
        # and keeps its traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if "cuda" in str(exc).lower():  # no GPU / no CuPy: the message says what to do
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise
    if args.quiet:
        print(f"val_loss {result['val_loss']:.4f} val_accuracy {result['val_accuracy']:.4f}")
    return 0


#: Sub-commands: ``bees_vs_wasps.py NAME ...`` runs ``COMMANDS[NAME](remaining args)``;
#: anything else is the training command's options.
COMMANDS = {"train": train_command}
COMMANDS["sweep"] = lambda argv: sweep_main(
    argv, ExperimentTrial(run_experiment, verbose=0, plots=False), prog="bees_vs_wasps.py sweep")


def main(argv=None):
    """Dispatch to a sub-command (``train`` when none is named); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return train_command(argv)


if __name__ == "__main__":
    sys.exit(main())
