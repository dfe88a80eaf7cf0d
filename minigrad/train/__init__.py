"""Training: ``fit``, ``evaluate``, ``predict``, ``History`` and callbacks.

::

    from minigrad.train import fit, evaluate, EarlyStopping, ModelCheckpoint
    history = fit(model, train_loader, val_loader, loss="cross_entropy",
                  optimizer="adam", lr=1e-3, epochs=10,
                  callbacks=[EarlyStopping(patience=3), ModelCheckpoint("run/ckpt.npz")])
    history.history["val_accuracy"]          # one value per epoch, as in Keras
    result = evaluate(model, val_loader)     # loss, accuracy, confusion matrix

Everything beyond the bare loop is a small :class:`Callback`: the progress display,
learning-rate schedules, early stopping and checkpoints. A loss that turns NaN or
infinite stops training with :class:`TrainingDiverged`, before the bad step
touches the weights on the CPU; weights or a validation loss that turn NaN or
infinite stop it at the epoch's end, before any checkpoint is written, so the
last checkpoint is always a good one. ``fit(..., resume=path)`` continues a run from a
checkpoint written by :class:`ModelCheckpoint` (model, optimizer, schedules,
history, callbacks, random state and data order), and on the CPU the continued
run gives the same numbers as one never interrupted.

The package, one module per room: :mod:`~minigrad.train.history` (History,
metric_sign), :mod:`~minigrad.train.callbacks`, :mod:`~minigrad.train.checkpoint`
(format, versioning, atomic writes), :mod:`~minigrad.train.divergence` (the NaN/inf
checks), :mod:`~minigrad.train.loop` (fit, TrainingRun), :mod:`~minigrad.train.step`
(the training step: EagerStep) and
:mod:`~minigrad.train.evaluation` (evaluate, predict), :mod:`~minigrad.train.run_logging`
(CSVLogger, TensorBoard) and :mod:`~minigrad.train.keras` (``model.compile``/``fit``/
``evaluate``/``predict`` on NumPy arrays, over the functions above).
"""
from .callbacks import (Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint,
                        ProgressLogger, WarnOnDivergence, format_epoch)
from .checkpoint import load_checkpoint, save_checkpoint
from .divergence import DivergenceWarning, TrainingDiverged
from .evaluation import (Evaluation, evaluate, loss_target, predict, split_batch,
                         with_targets)
from .history import History, history_dict, metric_sign
from .loop import TrainingRun, make_optimizer, fit
from .run_logging import CSVLogger, TensorBoard
from .step import EagerStep
from . import keras  # after fit, evaluate and predict, which it builds on

__all__ = ["fit", "evaluate", "predict", "History", "Evaluation", "TrainingDiverged",
           "TrainingRun", "Callback", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "ProgressLogger", "WarnOnDivergence", "DivergenceWarning",
           "CSVLogger", "TensorBoard", "save_checkpoint", "load_checkpoint", "keras",
           "EagerStep", "with_targets", "loss_target", "split_batch", "make_optimizer"]
