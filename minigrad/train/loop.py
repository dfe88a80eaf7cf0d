"""The training loop: :func:`fit`, the :class:`TrainingRun` callbacks see, one epoch."""
import math
import os
import time
import warnings

import numpy as np

from .. import backend, losses as losses_module, optim as optim_module
from .. import random as mg_random
from ..utils import is_number
from .callbacks import Callback, LearningRateScheduler, ProgressLogger, WarnOnDivergence
from .checkpoint import (_CHECKPOINT_FORMAT, _CHECKPOINT_VERSION, _checkpoint_version,
                         load_checkpoint)
from .divergence import _check_weights, _raise_diverged
from .evaluation import _predicted_classes, split_batch, evaluate, with_targets
from .history import History
from .step import EagerStep


class _EpochMeter:
    """Running loss and accuracy of an epoch, kept on the device between checks.

    On a GPU, reading a number back forces a synchronisation; the meter therefore
    collects per-step losses and correct counts as device scalars and reads them
    back only every ``check_every`` steps (and when someone asks). On the CPU the
    check happens every step, before the step's update.
    """

    def __init__(self, check_every):
        self.check_every = check_every
        self.pending = []  # (step, loss scalar, correct count or None, batch size)
        self.loss_sum = 0.0
        self.correct = 0
        self.counted = 0  # samples with an accuracy
        self.seen = 0

    def add(self, step, loss, correct, size):
        self.pending.append((step, loss, correct, size))

    def due(self):
        return len(self.pending) >= self.check_every

    def flush(self):
        """Read pending values back; returns ``(step, value)`` of a non-finite loss, or None."""
        if not self.pending:
            return None
        xp = backend.array_module(self.pending[0][1])
        losses = backend.to_numpy(xp.stack([p[1] for p in self.pending])).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            first = int(bad[0])
            return self.pending[first][0], float(losses[first])
        corrects = [p[2] for p in self.pending if p[2] is not None]
        if corrects:
            self.correct += int(backend.to_numpy(xp.stack(corrects)).sum())
            self.counted += sum(p[3] for p in self.pending if p[2] is not None)
        sizes = np.array([p[3] for p in self.pending], dtype=np.float64)
        self.loss_sum += float((losses * sizes).sum())
        self.seen += int(sizes.sum())
        self.pending = []
        return None

    def logs(self):
        logs = {"loss": self.loss_sum / self.seen if self.seen else math.nan}
        if self.counted:
            logs["accuracy"] = self.correct / self.counted
        return logs


# --------------------------------------------------------------------------- the run
class TrainingRun:
    """What callbacks see of a run in progress (``callback.run``).

    Attributes: ``model``, ``optimizer``, ``loss_fn``, ``history``, ``epoch``
    (0-based, the current one), ``epochs`` (total), ``step`` (0-based, in the
    epoch), ``steps`` (per epoch), ``train_loader``, ``val_loader``, ``device``,
    ``stop_training`` (set it to end after this epoch), ``last_checkpoint`` (path
    of the latest checkpoint written), ``callbacks``, ``train_step`` (the step
    object that trains: an :class:`~minigrad.train.step.EagerStep`, or a
    ``minigrad.cuda.GraphedStep`` that replays a captured CUDA graph), ``distributed``
    (data-parallel over a process group), ``is_main`` (False on every rank but 0 of a
    distributed run: what writes files checks) and ``train_model`` (what the step calls:
    the model, or its DDP wrapper).
    """

    def __init__(self, model, optimizer, loss_fn, train_loader, val_loader, epochs,
                 device, callbacks, history, train_step, train_model=None, is_main=True):
        self.model = model
        self.train_model = model if train_model is None else train_model
        self.distributed = self.train_model is not model
        self.is_main = is_main
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.epochs = epochs
        self.device = device
        self.callbacks = callbacks
        self.history = history
        self.train_step = train_step
        self.start_epoch = 0  # the first epoch this fit trains (later when resumed)
        self.epoch = 0
        self.step = 0
        self.steps = len(train_loader) if hasattr(train_loader, "__len__") else None
        self.stop_training = False
        self.last_checkpoint = None
        self.meter = None
        self.epoch_start = None
        self.images_seen = 0

    def lr(self):
        """The learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def running_logs(self):
        """Running loss and accuracy of the current epoch (reads pending values back)."""
        if self.meter is None:
            return {}
        bad = self.meter.flush()
        if bad is not None:
            _raise_diverged(self, *bad)
        return self.meter.logs()

    def record_step(self, loss, output, y):
        """Meter one step's loss and correct count (the step's ``check``); a non-finite
        loss found when the meter reads back raises :class:`TrainingDiverged`."""
        correct = None
        if y.dtype.kind in "iu":
            correct = (_predicted_classes(self.loss_fn, output) == y.data.reshape(-1)).sum()
        self.meter.add(self.step, loss.data, correct, y.shape[0])
        if self.meter.due():
            bad = self.meter.flush()
            if bad is not None:
                _raise_diverged(self, *bad)

    def images_per_second(self):
        """Training throughput so far this epoch."""
        if self.epoch_start is None:
            return 0.0
        return self.images_seen / max(time.perf_counter() - self.epoch_start, 1e-9)

    # ------------------------------------------------------------ checkpoints
    def callback_keys(self):
        """``(key, callback)`` pairs: the name each callback's state has in a checkpoint.

        The key is :meth:`Callback.state_key`; callbacks whose keys are equal are
        told apart by their order among themselves (``"Key"``, ``"Key#2"``, ...).
        """
        pairs, seen = [], {}
        for cb in self.callbacks:
            key = cb.state_key()
            seen[key] = seen.get(key, 0) + 1
            pairs.append((key if seen[key] == 1 else f"{key}#{seen[key]}", cb))
        return pairs

    def state(self):
        """Everything needed to continue this run, as a tree for :func:`save_checkpoint`."""
        callback_states = {}
        for key, cb in self.callback_keys():
            state = cb.state_dict()
            if state is not None:
                callback_states[key] = state
        loader = self.train_loader
        return {
            "format": _CHECKPOINT_FORMAT,
            "version": _CHECKPOINT_VERSION,
            "epoch": len(self.history),  # completed epochs
            "model": dict(self.model.state_dict()),
            "optimizer_class": type(self.optimizer).__name__,
            "optimizer": self.optimizer.state_dict(),
            "history": self.history.to_dict(),
            "rng": mg_random.get_state(),
            "loader_seed": getattr(loader, "seed", None),
            "callbacks": callback_states,
        }

    def restore(self, state, source="checkpoint"):
        """Load a :meth:`state`; returns the number of epochs it had completed."""
        if state.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"{source} is not a minigrad training checkpoint")
        version = _checkpoint_version(state, source)
        saved_class = state.get("optimizer_class")
        if saved_class != type(self.optimizer).__name__:
            raise ValueError(f"{source} was trained with {saved_class}, but this run uses "
                             f"{type(self.optimizer).__name__}; resume with the same optimizer")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._restore_callbacks(dict(state["callbacks"]), version, source)
        restored = History.from_dict(state["history"])
        self.history.history, self.history.epoch = restored.history, restored.epoch
        mg_random.set_state(state["rng"])
        seed = state.get("loader_seed")
        if seed is not None and hasattr(self.train_loader, "seed"):
            self.train_loader.seed = int(seed)  # the continued run follows the same order
        return int(state["epoch"])

    def _restore_callbacks(self, saved, version, source):
        """Hand each callback the state saved under its key; warn about any mismatch."""
        if version == 1:  # keyed its states "{position}:{class name}"
            # Positions among the callbacks of that time: WarnOnDivergence, which fit
            # adds now, came later, so it is not counted (and starts afresh).
            older = [cb for cb in self.callbacks if not isinstance(cb, WarnOnDivergence)]
            pairs = [(f"{i}:{type(cb).__name__}", cb) for i, cb in enumerate(older)]
        else:
            pairs = self.callback_keys()
        fresh = []
        for key, cb in pairs:
            if key in saved:
                cb.load_state_dict(saved.pop(key))
            elif cb.resumes_from_state and cb.state_dict() is not None:
                fresh.append(key)
        if saved or fresh:
            problems = []
            if saved:
                problems.append(f"it holds state for callbacks this run does not have "
                                f"({', '.join(sorted(saved))}), which is ignored")
            if fresh:
                problems.append(f"callbacks {', '.join(fresh)} have no saved state and "
                                f"start afresh")
            warnings.warn(f"resuming from {source}: {'; '.join(problems)}. Resume with the "
                          f"callbacks of the interrupted run to continue it exactly.",
                          stacklevel=4)


def make_optimizer(model, optimizer, lr, **kwargs):
    """``optimizer`` built by name over the model's parameters (``kwargs`` passed on),
    or checked as an optimizer object whose rates ``lr``, if given, replaces."""
    if isinstance(optimizer, str):
        return optim_module.get(optimizer, model.parameters(), lr=1e-3 if lr is None else lr,
                                **kwargs)
    if kwargs:
        raise TypeError("optimizer keyword arguments apply only when the optimizer is given "
                        f"by name, got {sorted(kwargs)}")
    if not hasattr(optimizer, "step") or not hasattr(optimizer, "param_groups"):
        raise TypeError(f"optimizer must be a name ({', '.join(sorted(optim_module.OPTIMIZERS))}) "
                        f"or an optimizer object, got {type(optimizer).__name__}")
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    return optimizer


def fit(model, train_loader, val_loader=None, loss="cross_entropy", optimizer="adam",
        lr=None, epochs=10, scheduler=None, callbacks=(), resume=None, verbose=1,
        device=None, cuda_graph=False, step=None, distributed=False):
    """Train ``model`` on ``train_loader`` for ``epochs`` epochs; returns a :class:`History`.

    Parameters
    ----------
    model : a ``minigrad.nn.Module``
    train_loader, val_loader : ``DataLoader`` s yielding ``(x, y)``; validation
        (optional) runs after every epoch without gradients
    loss : a registry name (``"cross_entropy"``, ``"mse"``, ``"hinge"``, ...) or a
        callable ``loss(output, target)``; integer labels become one-hot for the
        losses that compare outputs with same-shaped targets (MSE, MAE, Huber,
        logistic)
    optimizer : a registry name (``"adam"``, ``"sgd"``, ``"rmsprop"``, ``"adagrad"``,
        ``"adamw"``) built with ``lr`` (default 1e-3), or an optimizer object
        (``lr``, if given, overrides its groups' rates)
    epochs : total epochs (a resumed run continues up to this number)
    scheduler : a ``minigrad.optim.lr_scheduler`` scheduler, or a function
        ``optimizer -> scheduler``; stepped after every epoch
        (``ReduceLROnPlateau`` with the validation loss)
    callbacks : :class:`Callback` objects
    resume : path of a checkpoint written by :class:`ModelCheckpoint`: continue
        that run (model, optimizer, schedule, history, callbacks, random state)
    verbose : 0 silent, 1 progress bar and a line per epoch, 2 a line per epoch
    device : where to train (default: where the model's parameters are)
    cuda_graph : on "cuda", capture forward, backward and optimizer step once in a
        CUDA graph and replay it for every full-size batch (the last, smaller batch
        runs eagerly); a NaN loss is then caught after that step's update. The same
        as ``step=minigrad.cuda.GraphedStep``
    step : the training step, a function ``(model, loss_fn, optimizer) -> step``
        (default :class:`~minigrad.train.step.EagerStep`; ``minigrad.cuda.GraphedStep``,
        or ``functools.partial`` of either with options); see
        :mod:`minigrad.train.step` for what a step object does
    distributed : data-parallel over the ranks of a process group (joined here if the
        caller has not: MPI on the CPU, NCCL on "cuda"; start the job with ``mpiexec``
        or ``srun``, every rank calling ``fit`` alike). The model is wrapped in
        ``nn.parallel.DistributedDataParallel``; a ``DataLoader`` without a sampler is
        sharded by a ``data.DistributedSampler`` with its shuffle and seed (its
        ``batch_size`` is then per rank); validation metrics cover every rank's disjoint
        shard; training loss and accuracy are averaged over the ranks and images per
        second summed. Only rank 0 prints and writes checkpoints, which hold the plain
        model (they resume with or without ``distributed``). An exception on any rank
        prints its traceback and ends every rank (``MPI_Abort``): the others could not
        go on without it.

    At each epoch's end fit checks the weights and the validation loss, appends
    the epoch to the history, then calls every callback's ``on_epoch_end``
    (recording the numbers each adds to ``logs``), then every ``on_checkpoint``
    (see :class:`Callback`).

    Raises :class:`TrainingDiverged` when the loss, the validation loss or a
    weight becomes NaN or infinite (weights are checked at every epoch's end,
    before any callback, so no checkpoint is written with them).
    """
    run = _start_run(model, train_loader, val_loader, loss, optimizer, lr, epochs, scheduler,
                     callbacks, resume, verbose, device, cuda_graph, step, distributed)
    callbacks, history = run.callbacks, run.history
    left_out = set()  # keys of logs that are not numbers, warned about once
    progress = next((cb for cb in callbacks if isinstance(cb, ProgressLogger)), None)
    try:
        for cb in callbacks:
            cb.on_train_begin()
        for epoch in range(run.start_epoch, run.epochs):
            run.epoch = epoch
            if hasattr(run.train_loader, "set_epoch"):
                run.train_loader.set_epoch(epoch)  # order of epoch e comes from (seed, e)
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            logs = _run_epoch(run)
            # Recorded before the callbacks, so that at every epoch-end hook the history
            # (and a checkpoint's "epoch", its length) counts this epoch as done.
            history.append(epoch, logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
                _record_callback_logs(history, logs, cb, left_out)
            for cb in callbacks:
                cb.on_checkpoint(epoch, logs)  # every state is updated: now write files
            if run.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
    except BaseException as exc:
        if run.distributed:  # the other ranks cannot go on without this one
            from . import distributed as data_parallel
            data_parallel.abort_with(exc)
        raise
    finally:
        if progress is not None:
            progress.close()
        run.meter = None
    return history


def _start_run(model, train_loader, val_loader, loss, optimizer, lr, epochs, scheduler,
               callbacks, resume, verbose, device, cuda_graph, step, distributed=False):
    """fit's arguments checked and built into a :class:`TrainingRun` (resumed from
    ``resume`` if given), its callbacks told of it."""
    if int(epochs) != epochs or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if cuda_graph and step is not None:
        raise ValueError("fit: give cuda_graph=True or step=..., not both")
    device = backend.check_device(device or model.device)
    if cuda_graph and device != "cuda":
        raise ValueError(f"fit: cuda_graph=True needs device 'cuda', not {device!r}")
    if distributed and (cuda_graph or step is not None):
        raise ValueError("fit: distributed=True trains with the eager step (the gradient "
                         "all-reduce runs from the host after backward): no cuda_graph or step")
    is_main = True
    if distributed:
        from . import distributed as data_parallel
        is_main = data_parallel.join_group(device) == 0
        verbose = verbose if is_main else 0
    if model.device != device:
        model.to(device)
    train_model = None
    if distributed:
        model, train_model = data_parallel.wrap(model)
        train_loader = data_parallel.sharded_train_loader(train_loader)
    loss_fn = losses_module.get(loss)
    if not callable(loss_fn):
        raise TypeError(f"loss must be a name or a callable, got {type(loss).__name__}")
    opt = make_optimizer(model, optimizer, lr)
    if step is None:
        step = EagerStep
        if cuda_graph:
            from ..cuda import GraphedStep as step
    train_step = step(model if train_model is None else train_model, with_targets(loss_fn), opt)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be Callback objects, got {type(cb).__name__}")
    if scheduler is not None:
        callbacks.append(LearningRateScheduler(scheduler))
    if verbose:
        callbacks.append(ProgressLogger(verbose))
    if not any(isinstance(cb, WarnOnDivergence) for cb in callbacks):
        callbacks.append(WarnOnDivergence())  # a finite loss far above its start
    callbacks.sort(key=lambda cb: cb.order)  # stable: user order kept within a rank

    history = History(params={"epochs": int(epochs), "loss": _describe(loss),
                              "optimizer": _describe(optimizer), "device": device})
    run = TrainingRun(model, opt, loss_fn, train_loader, val_loader, int(epochs), device,
                      callbacks, history, train_step, train_model=train_model,
                      is_main=is_main)
    for cb in callbacks:
        cb.set_run(run)
    if resume is not None:
        if not os.path.exists(resume):
            raise FileNotFoundError(f"cannot resume: checkpoint {str(resume)!r} does not exist")
        run.start_epoch = run.restore(load_checkpoint(resume), source=str(resume))
        run.last_checkpoint = str(resume)
    history.params.update(lr=run.lr(), batch_size=getattr(train_loader, "batch_size", None),
                          steps=run.steps)
    return run


def _run_epoch(run):
    """Train one epoch, check the weights, validate; returns the epoch's logs.

    Nothing non-finite gets past here to the callbacks, so no checkpoint holds it.
    """
    epoch_lr = run.lr()  # after on_epoch_begin, which may set it (a warm-up)
    start = time.perf_counter()
    logs = _train_epoch(run, 1 if run.device == "cpu" else 20)
    train_seconds = time.perf_counter() - start
    _check_weights(run)
    if run.val_loader is not None:
        result = evaluate(run.model, run.val_loader, loss=run.loss_fn, device=run.device,
                          distributed=run.distributed)
        if not math.isfinite(result.loss):
            _raise_diverged(run, run.step, result.loss,
                            f"the validation loss became {result.loss} after epoch "
                            f"{run.epoch + 1}/{run.epochs}")
        logs["val_loss"] = result.loss
        if result.accuracy is not None:
            logs["val_accuracy"] = result.accuracy
    logs["lr"] = epoch_lr
    logs["seconds"] = time.perf_counter() - start
    logs["images_per_second"] = run.images_seen / max(train_seconds, 1e-9)
    if run.distributed:
        from . import distributed as data_parallel
        logs = data_parallel.combined_train_logs(logs)
    return logs


def _record_callback_logs(history, logs, callback, left_out):
    """Put into the history's last epoch the numbers in ``logs`` after ``callback``'s
    ``on_epoch_end`` (what it added or changed, as Keras records them).

    A value that is not a number is left out of the history (the callbacks after
    this one still see it in ``logs``), with one warning per key per ``fit``.
    """
    numbers_only = {}
    for key, value in logs.items():
        if is_number(value):
            numbers_only[key] = value
        elif key not in left_out:
            left_out.add(key)
            warnings.warn(f"fit: {type(callback).__name__}.on_epoch_end put a "
                          f"{type(value).__name__} in logs[{key!r}], not a number; the History "
                          f"records only numbers, so it leaves {key!r} out", stacklevel=3)
    history.update_last(numbers_only)


def _train_epoch(run, check_every):
    """One pass over the training data; returns its running loss and accuracy."""
    run.meter = _EpochMeter(check_every)
    run.epoch_start, run.images_seen = time.perf_counter(), 0
    run.train_model.train()
    for step, batch in enumerate(run.train_loader):
        run.step = step
        x, y = split_batch(batch, run.device)
        # The meter checks the loss before an eager step's update, so the weights stay
        # good; a CUDA-graph replay has applied its update by then.
        run.train_step(x, y, check=lambda loss, output: run.record_step(loss, output, y))
        run.images_seen += x.shape[0]
        for cb in run.callbacks:
            cb.on_batch_end(step, {"size": x.shape[0]})
    logs = run.running_logs()
    if run.meter.seen == 0:
        loader = run.train_loader
        raise ValueError(f"the training loader yielded no batches in epoch {run.epoch + 1} "
                         f"(a dataset of {len(getattr(loader, 'dataset', []))} samples with "
                         f"batch_size {getattr(loader, 'batch_size', '?')} and drop_last?)")
    return logs


def _describe(value):
    if isinstance(value, str):
        return value
    return type(value).__name__
