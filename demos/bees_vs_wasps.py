#!/usr/bin/env python
"""The bees-vs-wasps exercise as one command: load, build, train, evaluate, plot.

    python demos/bees_vs_wasps.py                       # synthetic pictures, no download
    python demos/bees_vs_wasps.py --data PATH           # a real image folder
    python demos/bees_vs_wasps.py --optimizer sgd --lr 1e-2 --activation tanh
    python demos/bees_vs_wasps.py sweep --optimizer adam,sgd --lr 1e-2,1e-3 --epochs 3
    mpiexec -n 2 python demos/bees_vs_wasps.py --distributed   # data-parallel, 2 processes

The model is the exercise's CNN (three conv/ReLU/max-pool blocks, then a dense
layer of 128 and one output per class); the number of classes and their names
come from the data. Results go to ``--out`` (default: a new folder
``runs/bees_vs_wasps/<date-time>`` for every run): ``history.json``, ``result.json``,
``model.npz`` (the weights: the last epoch's, or the best epoch's with
``--save-best``), ``checkpoint.npz`` (resumable with ``--resume``; it records the
settings it was trained with, and ``--resume`` refuses to continue under different
ones, or for no more epochs than it has), ``curves.png`` and ``confusion.png``.
An ``--out`` that holds another run's files is refused unless ``--resume``
continues that run or ``--overwrite`` replaces it; an overwriting run leaves the
folder's checkpoint alone until its own first checkpoint replaces it, and when it
finishes removes the earlier run's files it did not write again.

Ctrl-C stops after the current step, keeps the last checkpoint, prints one line
and exits with status 130; ``--resume`` continues from that checkpoint.

``--distributed`` (under ``mpiexec``/``srun``) trains data-parallel: every process
reads the data, trains on its shard of each epoch with ``--batch-size`` images per
step, and only rank 0 prints and writes the files (see ``fit(..., distributed=True)``).

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
import os
import signal
import sys
import time
import warnings
from pathlib import Path

try:
    import minigrad as mg
except ImportError:  # run from a clone without installing: use the package beside us
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import minigrad as mg

from minigrad import backend, losses, nn, optim
from minigrad import distributed as dist
from minigrad.models import exercise_cnn, exercise_cnn_memory, resnet_small
from minigrad.data import (DataLoader, SyntheticInsects, load_image_folder, train_val_split,
                           transforms)
from minigrad.io import atomic_write_json
from minigrad.plot import PlotUnavailable, format_confusion, plot_confusion, plot_history
from minigrad.train import (Callback, DivergenceWarning, EarlyStopping, ModelCheckpoint,
                            TensorBoard, TrainingDiverged, WarnOnDivergence, evaluate, fit,
                            load_checkpoint)
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
#: The weights in ``--out`` (the last epoch's, or the best one's with ``--save-best``).
WEIGHTS_FILE = "model.npz"
#: Every file a run writes into ``--out``: a folder holding any of them holds a run.
RUN_FILES = ("history.json", "result.json", WEIGHTS_FILE, CHECKPOINT_FILE, "curves.png",
             "confusion.png")
#: Where runs go without ``--out``; the last part is replaced by the start's date and
#: time (``20260105-093015``, with ``-2``, ``-3``... if that folder exists).
NEW_RUN = "runs/bees_vs_wasps/<date-time>"
#: The metric "best" means here: the epoch of the best validation accuracy (what the
#: screen, the plots and the sweep rank by) decides --save-best and --early-stopping.
BEST_METRIC = "val_accuracy"
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
    model: str = "exercise"
    activation: str = "relu"
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: "int | None" = None  # None: REAL_DATA_EPOCHS, or SYNTHETIC_EPOCHS without data
    device: str = "cpu"
    cuda_graph: bool = False  # replay each full batch's step as a CUDA graph (GPU only)
    tf32: bool = False        # TF32 tensor-core matrix products (GPU only)
    seed: int = 123
    out: "str | None" = NEW_RUN  # None: write nothing
    val_fraction: float = 0.2
    augment: bool = False
    synthetic_images: int = SYNTHETIC_IMAGES
    cache: bool = True
    resume: bool = False
    distributed: bool = False  # data-parallel over MPI/NCCL (start under mpiexec or srun)
    overwrite: bool = False   # replace another run's files in ``out``
    save_best: bool = False   # model.npz holds the best epoch's weights, not the last's
    early_stopping: "int | None" = None  # patience in epochs without a better val accuracy

    def __post_init__(self):
        self.device = device_name(self.device)

    def resolved_epochs(self):
        """The number of epochs this configuration trains for."""
        if self.epochs is not None:
            return int(self.epochs)
        return REAL_DATA_EPOCHS if self.data else SYNTHETIC_EPOCHS


def device_name(device):
    """``device`` as minigrad names it: ``"gpu"`` (and ``"gpu:N"``) is ``"cuda"``, the
    name PyTorch and minigrad use; anything else is left for the checks."""
    text = str(device)
    if text.lower() == "gpu" or text.lower().startswith("gpu:"):
        return "cuda" + text[3:]
    return device


def new_run_folder(template=NEW_RUN, now=None):
    """The folder :data:`NEW_RUN` stands for: its parent plus the date and time (and
    ``-2``, ``-3``... if a run of the same second is there already)."""
    parent = Path(template).parent
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    folder, n = parent / stamp, 1
    while folder.exists():
        n += 1
        folder = parent / f"{stamp}-{n}"
    return folder


def run_files(out):
    """The names of :data:`RUN_FILES` present in ``out`` (sorted)."""
    return sorted(name for name in RUN_FILES if (Path(out) / name).exists())


def check_memory(config, device):
    """Raise :class:`ExperimentError` if training at ``config``'s image size and batch
    size cannot fit in ``device``'s free memory (estimated before anything is allocated;
    see :func:`minigrad.models.exercise_cnn_memory`)."""
    slots = 2 if _registered_name(optim.OPTIMIZERS, optim.optimizer_class(config.optimizer)) \
        in ("adam", "adamw") else 1
    need = exercise_cnn_memory(config.size, config.batch_size, optimizer_slots=slots)
    data = 0 if config.data else 4 * 3 * config.size ** 2 * int(config.synthetic_images)
    total = need["total"] + data
    free = backend.available_memory(device)
    if free is None or total <= free:
        return
    parts = [f"{need['parameters']:,} parameters with their gradients and optimizer state "
             f"{_gigabytes(need['weights'])}",
             f"a batch of {config.batch_size}'s activations {_gigabytes(need['activations'])}"]
    if data:
        parts.append(f"the {config.synthetic_images} synthetic pictures {_gigabytes(data)}")
    raise ExperimentError(
        f"--size {config.size} with --batch-size {config.batch_size} needs about "
        f"{_gigabytes(total)} ({'; '.join(parts)}), but {device} has {_gigabytes(free)} free. "
        f"The weights grow with the square of --size (the dense layer sees 128 x "
        f"(size/8)^2 values) and the activations with --batch-size: choose smaller ones "
        f"(the exercise uses --size 80)")


def _gigabytes(n):
    return f"{n / 1e9:.3g} GB"


# --model: the exercise's CNN, or a small ResNet (always ReLU) for comparison.
MODELS = {"exercise": exercise_cnn, "resnet": resnet_small}


def build_model(num_classes, activation="relu", size=80, model="exercise"):
    """The model for this experiment: the exercise's CNN
    (:func:`minigrad.models.exercise_cnn`) or :func:`minigrad.models.resnet_small`."""
    if model == "resnet":
        return resnet_small(num_classes)
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
    if config.model not in MODELS:
        raise ValueError(f"--model must be one of {sorted(MODELS)}, got {config.model!r}")
    if config.model == "resnet" and config.activation != "relu":
        raise ValueError("--activation applies to the exercise model; the resnet uses ReLU")
    device = str(device_name(config.device)).lower()
    if device.split(":")[0] not in backend.DEVICES:
        raise ValueError(f"--device must be cpu or cuda (gpu means cuda), got {config.device!r}")
    if config.early_stopping is not None and config.early_stopping < 1:
        raise ValueError(f"--early-stopping must be at least 1 epoch, got "
                         f"{config.early_stopping}")
    if config.save_best and not config.out:
        raise ValueError("--save-best keeps the best weights in the output folder; give one")
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
        if wanted and device.split(":")[0] != "cuda":
            raise ValueError(f"{flag} needs --device cuda, not {config.device!r}")
    if config.distributed and config.cuda_graph:
        raise ValueError("--cuda-graph cannot be combined with --distributed")


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
        "model": MODELS[config.model].__name__,
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


def _read_checkpoint(checkpoint):
    """The checkpoint's state; an unreadable file is an :class:`ExperimentError`."""
    try:
        return load_checkpoint(checkpoint)
    except ValueError as exc:
        raise ExperimentError(f"cannot resume: {exc}. Delete it to start afresh, or choose "
                              f"another --out") from exc


def recorded_settings(checkpoint):
    """The settings ``checkpoint`` was trained with, or ``None`` if it records none (one
    written before the demo recorded them); an unreadable file is an
    :class:`ExperimentError`."""
    record = _read_checkpoint(checkpoint).get("callbacks", {}).get(STATE_KEY)
    return None if record is None else dict(record["settings"])


def check_resume_epochs(checkpoint, epochs):
    """Raise :class:`ExperimentError` unless ``epochs`` exceeds the epochs ``checkpoint``
    has done: resuming for no more would train nothing and report a run that did not
    happen."""
    done = int(_read_checkpoint(checkpoint)["epoch"])
    if epochs <= done:
        raise ExperimentError(
            f"cannot resume from {checkpoint} for {epochs} epochs: it has done {done} "
            f"already, so nothing would train. Pass --epochs larger than {done} to train "
            f"more, or drop --resume to start a new run")


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
    device = backend.check_device(config.device)
    main_rank = True
    if config.distributed:  # first: with NCCL it picks this process's GPU
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "mpi")
        main_rank = dist.get_rank() == 0
        verbose = verbose if main_rank else 0
    say = print if verbose else (lambda *a, **k: None)
    if config.out == NEW_RUN:
        if config.resume:
            raise ExperimentError("--resume continues the run in --out DIR: name the folder")
        config = dataclasses.replace(config, out=str(new_run_folder()))
    out = Path(config.out) if config.out else None
    settings = experiment_settings(config)
    checkpoint = out / CHECKPOINT_FILE if out is not None else None
    epochs = config.resolved_epochs()
    resume = None
    if checkpoint is not None and config.resume:
        if checkpoint.exists():
            resume = checkpoint  # checked before the (slow) data loading
            if not check_resume_settings(checkpoint, settings):
                say(f"Note: {checkpoint} records no settings (written by an older demo), "
                    f"so they cannot be checked; resuming with these")
            check_resume_epochs(checkpoint, epochs)
        else:
            say(f"No checkpoint at {checkpoint}; starting afresh")
    elif out is not None and not config.overwrite and run_files(out):
        raise ExperimentError(
            f"{out} holds another run's files ({', '.join(run_files(out))}); pass --resume to "
            f"continue that run, --overwrite to replace it, or another --out (without --out "
            f"every run gets a new folder)")
    check_memory(config, device)
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
        model = build_model(len(classes), config.activation, config.size, config.model)
    except ValueError as exc:  # settings are checked already: the data's classes (one)
        raise ExperimentError(f"{description}: {exc}") from exc
    model.to(device)
    if verbose:
        model.summary((1, 3, config.size, config.size))
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True,
                              seed=config.seed, device=device)
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False,
                            seed=config.seed, device=device)

    divergence = WarnOnDivergence()
    callbacks = list(callbacks) + [divergence]
    if config.early_stopping is not None:
        callbacks.append(EarlyStopping(BEST_METRIC, patience=config.early_stopping,
                                       restore_best_weights=False, verbose=verbose))
    if config.save_best:
        callbacks.append(ModelCheckpoint(out / WEIGHTS_FILE, monitor=BEST_METRIC,
                                         save_best_only=True, weights_only=True))
    checkpoint_before = _file_signature(checkpoint)
    if checkpoint is not None:
        # The old checkpoint stays until this run's first one replaces it (settings
        # included), so an interrupted new run leaves the earlier run resumable.
        callbacks += [ExperimentRecord(settings), ModelCheckpoint(checkpoint)]
        if resume is not None:
            say(f"Resuming from {resume}")
        elif checkpoint.exists():
            say(f"Starting afresh: this run's first checkpoint replaces {checkpoint}")
    ranks = f" x {dist.get_world_size()} processes" if config.distributed else ""
    say(f"Training: {config.optimizer} lr={config.lr:g}, loss {config.loss}, activation "
        f"{config.activation}, batch {config.batch_size}{ranks}, {epochs} epochs on {device}")
    tf32_before = mg.cuda.allow_tf32(True) if config.tf32 else None
    try:
        history = fit(model, train_loader, val_loader, loss=config.loss,
                      optimizer=config.optimizer, lr=config.lr, epochs=epochs,
                      callbacks=callbacks, resume=resume, verbose=verbose, device=device,
                      cuda_graph=config.cuda_graph, distributed=config.distributed)
        best_epoch, best_acc = (history.best(BEST_METRIC) if BEST_METRIC in history
                                else (None, None))
        saved_epoch = len(history)  # 1-based; 0: the initial weights
        if config.save_best and best_epoch is not None:
            if config.distributed:  # rank 0 wrote the file: wait for it
                dist.barrier()
            model.load(out / WEIGHTS_FILE)  # report on the weights that were kept
            saved_epoch = best_epoch + 1
        result_eval = evaluate(model, val_loader, loss=config.loss, device=device,
                               distributed=config.distributed)
    finally:  # a sweep runs trials in one process: leave the setting as it was
        if tf32_before is not None:
            mg.cuda.allow_tf32(tf32_before)
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
        "best_epoch": None if best_epoch is None else best_epoch + 1,  # 1-based, as shown
        "saved_epoch": saved_epoch,
        "epochs_trained": len(history),
        "stopped_early": len(history) < epochs,
        "confusion": result_eval.confusion.tolist(),
        "chance_accuracy": 1 / len(classes),  # guessing's score, drawn in the sweep's plots
        # A finite loss far above its start (a sweep ranks such a trial as diverged):
        "diverged": divergence.diverged_epoch is not None,
        "divergence": divergence.message,
        "seconds": seconds,
        "images_per_second": sum(ips) / len(ips) if ips else None,
        "files": {},
    }
    say(f"\nFinal validation loss {result_eval.loss:.4f}, accuracy {result_eval.accuracy:.4f}"
        f" ({len(val_set)} images)")
    say("Confusion matrix (rows: true class, columns: predicted):")
    say(format_confusion(result_eval.confusion, classes))
    if config.save_best:
        say(f"Kept the weights of epoch {saved_epoch} (best {BEST_METRIC})")
    if divergence.message:
        say(f"Warning: {divergence.message}")
    if out is not None and main_rank:
        wrote_checkpoint = checkpoint.exists() and _file_signature(checkpoint) != checkpoint_before
        _write_outputs(out, model, history, result, classes, plots, say,
                       write_weights=not config.save_best or best_epoch is None,
                       wrote_checkpoint=wrote_checkpoint)
    say(f"Done in {seconds:.1f}s")
    return result


def _file_signature(path):
    """What tells one version of a file from another (or ``None`` if there is none)."""
    try:
        stat = os.stat(path)
    except (OSError, TypeError):
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _write_outputs(out, model, history, result, classes, plots, say, write_weights,
                   wrote_checkpoint):
    """Write the run's files into ``out``; ``result["files"]`` lists what this run wrote
    (the weights and checkpoint written while training included). Files an earlier run
    left there that this one did not write are removed: the folder describes one run."""
    out.mkdir(parents=True, exist_ok=True)
    files = result["files"]
    files["history"] = str(out / "history.json")
    history.save(files["history"])
    weights = out / WEIGHTS_FILE
    if write_weights:
        model.save(weights)
    if weights.exists():
        files["weights"] = str(weights)
    if wrote_checkpoint:
        files["checkpoint"] = str(out / CHECKPOINT_FILE)
    if plots:
        try:
            if history.epoch:  # no curves for a run of zero epochs
                plot_history(history, out / "curves.png",
                             title=f"{result['config']['optimizer']} "
                                   f"lr={result['config']['lr']:g}, "
                                   f"{result['config']['activation']}",
                             best_epoch=result["best_epoch"],
                             synthetic=not result["config"]["data"])
                files["curves"] = str(out / "curves.png")
            plot_confusion(result["confusion"], classes, out / "confusion.png")
            files["confusion"] = str(out / "confusion.png")
        except PlotUnavailable as exc:
            say(f"No plots: {exc}")
    files["result"] = str(out / "result.json")
    written = {Path(p).name for p in files.values()}
    stale = [name for name in run_files(out) if name not in written and not (
        name == CHECKPOINT_FILE and result["resumed"])]
    for name in stale:
        (out / name).unlink()
    atomic_write_json(files["result"], result)
    say(f"Wrote {', '.join(Path(p).name for p in files.values())} to {out}"
        + (f" (removed the earlier run's {', '.join(stale)})" if stale else ""))
    return files


# --------------------------------------------------------------------------- CLI
def add_experiment_arguments(parser):
    """The exercise's options, shared by every sub-command that trains."""
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="image folder, one subfolder per class (or train/ and val/ "
                             "or test/ subfolders); default: generated synthetic pictures")
    parser.add_argument("--size", type=int, default=80, help="image side in pixels (80)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (32)")
    parser.add_argument("--device", default="cpu", type=device_name,
                        help="cpu or cuda (gpu is another name for cuda) (cpu)")
    parser.add_argument("--cuda-graph", action="store_true",
                        help="with --device cuda: replay each training step as a CUDA graph")
    parser.add_argument("--tf32", action="store_true",
                        help="with --device cuda: TF32 tensor-core matrix products "
                             "(faster, less precise; float32 otherwise)")
    parser.add_argument("--seed", type=int, default=123,
                        help="seed of the split, the initial weights and the batch order (123)")
    parser.add_argument("--out", metavar="DIR", default=NEW_RUN,
                        help=f"where results go (a new folder {NEW_RUN} for every run); a "
                             f"folder holding another run's files is refused unless "
                             f"--resume or --overwrite")
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
        usage="%(prog)s [train] [options]\n       %(prog)s sweep [sweep options] "
              "(see: %(prog)s sweep --help)",
        description="Train the exercise's CNN on an image folder (default: synthetic "
                    "insect pictures) and report curves and a confusion matrix.",
        epilog="sub-commands: 'train' (the default, these options) trains one model; "
               "'sweep' runs a hyperparameter sweep over comma-separated values, e.g. "
               "'%(prog)s sweep --optimizer adam,sgd --lr 1e-2,1e-3 --epochs 3' "
               "(its options: '%(prog)s sweep --help'). Ctrl-C stops after the current "
               "step and keeps the last checkpoint for --resume.")
    add_experiment_arguments(parser)
    parser.add_argument("--model", choices=sorted(MODELS), default="exercise",
                        help="the exercise's CNN or a small ResNet (exercise)")
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
                        help="continue the run in --out DIR from its checkpoint.npz, for a "
                             "larger --epochs")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run whose files are in --out DIR")
    parser.add_argument("--save-best", action="store_true",
                        help="model.npz keeps the weights of the epoch with the best "
                             "validation accuracy (default: the last epoch's)")
    parser.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                        help="stop when the validation accuracy has not improved for "
                             "PATIENCE epochs")
    parser.add_argument("--quiet", action="store_true", help="print only the final result")
    parser.add_argument("--tensorboard", metavar="DIR", default=None,
                        help="also log curves, weight histograms and the confusion matrix "
                             "for TensorBoard into DIR (needs minigrad[tensorboard])")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the processes mpiexec or srun started "
                             "(MPI on the CPU, NCCL with --device cuda)")
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
    interruption = Interruption()
    try:
        logging = [TensorBoard(args.tensorboard)] if args.tensorboard else []
        with interruption.deferring_sigint(), warnings.catch_warnings():
            # Said once at the end, in one line, rather than as Python's warning text.
            warnings.simplefilter("ignore", DivergenceWarning)
            result = run_experiment(config, verbose=0 if args.quiet else 1,
                                    callbacks=[interruption, *logging])
    except KeyboardInterrupt:
        print(f"\n{interruption.describe()}", file=sys.stderr)
        return 130
    except (FileNotFoundError, NotADirectoryError, TrainingDiverged, ExperimentError,
            ImportError) as exc:  # ImportError: --tensorboard without tensorboardX
        # What the user can fix (a path, the data, the settings, the learning rate): one
        # line. Anything else, a ValueError raised while training included, is a bug
        # and keeps its traceback.
        return _user_error(exc)
    except RuntimeError as exc:
        if "cuda" in str(exc).lower():  # no GPU / no CuPy: the message says what to do
            return _user_error(exc)
        raise
    if args.quiet and (not config.distributed or dist.get_rank() == 0):
        print(f"val_loss {result['val_loss']:.4f} val_accuracy {result['val_accuracy']:.4f}")
    if result["divergence"]:
        print(f"warning: {result['divergence']} (recorded in result.json as \"diverged\")",
              file=sys.stderr)
    return 0


def _user_error(exc):
    """Print ``exc`` as one line; exit status 1. In a job of several ranks, end them all:
    the others would otherwise wait for this one in their next collective."""
    print(f"error: {exc}", file=sys.stderr)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.abort(1)
    return 1


class Interruption(Callback):
    """Ctrl-C while training stops after the current step instead of inside it.

    Within :meth:`deferring_sigint`, a first SIGINT during training only sets a flag;
    the step in progress finishes and the next batch end raises ``KeyboardInterrupt``
    (the last checkpoint, written at an epoch's end, stays as it was). A second
    SIGINT, or one outside training (loading data, evaluating), interrupts at once.
    :meth:`describe` is the one line to print then.
    """

    order = 0  # before the progress bar, so it closes on the way out

    def __init__(self):
        self.requested = False
        self.training = False
        self.where = None  # (epoch, step) last finished, 1-based
        self.steps = None
        self.out = None

    def set_run(self, run):
        super().set_run(run)
        self.steps = run.steps

    def on_train_begin(self, logs=None):
        self.training = True

    def on_train_end(self, logs=None):
        self.training = False

    def on_batch_end(self, step, logs=None):
        self.where = (self.run.epoch + 1, step + 1)
        if self.requested:
            self.training = False
            raise KeyboardInterrupt

    def _handle(self, signum, frame):
        if self.training and not self.requested:
            self.requested = True
            return
        raise KeyboardInterrupt

    def deferring_sigint(self):
        """A context manager that routes SIGINT to this object (the main thread only)."""
        import contextlib

        @contextlib.contextmanager
        def routed():
            try:
                previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not the main thread: leave Ctrl-C as it is
                yield
                return
            try:
                yield
            finally:
                signal.signal(signal.SIGINT, previous)
        return routed()

    def describe(self):
        """One line: where the run stopped and how to continue it."""
        if self.where is None:
            return "interrupted before training started; nothing was trained"
        epoch, step = self.where
        checkpoint = self.run.last_checkpoint if self.run is not None else None
        text = f"interrupted at epoch {epoch}, step {step}"
        if self.steps:
            text += f" of {self.steps}"
        if checkpoint:
            folder = os.path.dirname(checkpoint)
            done = len(self.run.history)
            return (f"{text}; {checkpoint} keeps epoch {done}: continue with --resume "
                    f"--out {folder}")
        return f"{text}; no checkpoint was written yet, so a new run starts afresh"


def sweep_trial(config, **kwargs):
    """:func:`run_experiment` for a sweep's trial: the sweep owns each trial's folder,
    so a trial run again (``--retry-failed``) replaces what an earlier attempt left."""
    return run_experiment({**config, "overwrite": True}, **kwargs)


def check_sweep_config(config):
    """Check one of the sweep's configurations (a dict) as the training command would."""
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    check_config(ExperimentConfig(**{k: v for k, v in config.items() if k in fields}))


#: Sub-commands: ``bees_vs_wasps.py NAME ...`` runs ``COMMANDS[NAME](remaining args)``;
#: anything else is the training command's options.
COMMANDS = {"train": train_command}
COMMANDS["sweep"] = lambda argv: sweep_main(
    argv, ExperimentTrial(sweep_trial, verbose=0, plots=False), prog="bees_vs_wasps.py sweep",
    check=check_sweep_config)


def main(argv=None):
    """Dispatch to a sub-command (``train`` when none is named); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return train_command(argv)


if __name__ == "__main__":
    sys.exit(main())
