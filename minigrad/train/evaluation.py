"""Batches and targets as a loss wants them, and :func:`evaluate` / :func:`predict`."""
from typing import NamedTuple

import numpy as np

from .. import backend, losses as losses_module
from ..creation import as_tensor
from ..tensor import Tensor, no_grad
from ..utils import unwrap


def loss_target(loss_fn, output, y):
    """Class labels as the loss wants them: as they are, or one-hot for value losses.

    Cross-entropy and hinge take integer labels; MSE, MAE, Huber and the logistic
    loss compare the outputs with a target of the same shape, so integer labels
    become one-hot rows (or a column of 0/1 for a single output).
    """
    if not getattr(loss_fn, "compares_values", False) or y.dtype.kind not in "iu":
        return y
    xp = backend.array_module(output.data)
    if output.ndim == 2 and output.shape[1] > 1:
        return Tensor(xp.eye(output.shape[1], dtype=output.dtype)[y.data])
    return Tensor(y.data.reshape(output.shape).astype(output.dtype))


def with_targets(loss_fn):
    """``loss_fn`` taking class labels as :func:`fit` does: ``(output, y) ->
    loss_fn(output, target)``, integer labels made one-hot for the value losses."""
    return lambda output, y: loss_fn(output, loss_target(loss_fn, output, y))


def _predicted_classes(loss_fn, output):
    """Class predictions from the outputs (argmax; a threshold for one output)."""
    xp = backend.array_module(output.data)
    if output.ndim == 2 and output.shape[1] > 1:
        return xp.argmax(output.data, axis=1)
    threshold = 0.0 if isinstance(loss_fn, losses_module.BCEWithLogitsLoss) else 0.5
    return (output.data.reshape(-1) > threshold).astype(np.int64)


def _confusion_matrix(labels, predicted, loader, output):
    """Rows: true class, columns: predicted class (NumPy integer arrays in).

    One row and column per class the loader's dataset names, per output of the
    model (two for a single output) and per label seen, whichever is most: a
    4-output head on a 2-class dataset gets a 4x4 matrix, so every prediction
    has its column.
    """
    if labels.size and labels.min() < 0:
        raise ValueError(f"evaluate: class labels must be >= 0, got {int(labels.min())}")
    classes = getattr(getattr(loader, "dataset", None), "classes", None)
    outputs = output.shape[1] if output.ndim == 2 and output.shape[1] > 1 else 2
    k = max(len(classes) if classes is not None else 0, outputs,
            int(labels.max(initial=-1)) + 1, int(predicted.max(initial=-1)) + 1)
    return np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)


def split_batch(batch, device):
    """``(x, y)`` from a loader's batch, moved to ``device`` if needed."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(f"fit/evaluate need batches of (inputs, targets), got a "
                         f"{type(batch).__name__}")
    x, y = batch[0], batch[1]
    x = x if isinstance(x, Tensor) else as_tensor(x)  # a batch: read, never kept
    y = y if isinstance(y, Tensor) else as_tensor(y)
    if x.device != device:
        x = x.to(device)
    if y.device != device:
        y = y.to(device)
    return x, y


class Evaluation(NamedTuple):
    """Result of :func:`evaluate`: mean loss, accuracy (None without class labels),
    and the confusion matrix (rows: true class, columns: predicted class)."""
    loss: float
    accuracy: "float | None"
    confusion: "np.ndarray | None"


def evaluate(model, loader, loss="cross_entropy", device=None, distributed=False):
    """Loss, accuracy and confusion matrix of ``model`` over ``loader`` (no gradients).

    The model is put in eval mode for the pass and returned to its previous mode.
    ``accuracy`` is the fraction of predictions (argmax, or a threshold for a single
    output) equal to the label, as in ``fit``. The confusion matrix has one row and
    column per class of the loader's dataset (``dataset.classes``), or per output
    of the model where it has more (then the extra columns count predictions of
    classes the dataset does not have).

    ``distributed``: every rank of the process group evaluates its share of the loader's
    samples (every world-size-th one, none twice) and all get the numbers of the whole
    set; every rank must call it. A DistributedDataParallel model is evaluated through
    its ``module``, so the ranks need not take equally many batches.
    """
    if distributed:
        from .distributed import evaluate_across_ranks
        return evaluate_across_ranks(model, loader, loss=loss, device=device)
    device = backend.check_device(device or model.device)
    loss_fn = losses_module.get(loss)
    was_training = model.training
    model.eval()
    losses_pending, labels_pending, predicted_pending = [], [], []
    try:
        with no_grad():
            for batch in loader:
                x, y = split_batch(batch, device)
                output = model(x)
                value = loss_fn(output, loss_target(loss_fn, output, y))
                losses_pending.append((value.data, x.shape[0]))
                if y.dtype.kind in "iu":  # kept on the device, read back once at the end
                    labels_pending.append(y.data.reshape(-1))
                    predicted_pending.append(_predicted_classes(loss_fn, output))
    finally:
        model.train(was_training)
    if not losses_pending:
        raise ValueError("evaluate: the loader yielded no batches")
    xp = backend.array_module(losses_pending[0][0])
    values = backend.to_numpy(xp.stack([v for v, _ in losses_pending])).astype(np.float64)
    sizes = np.array([n for _, n in losses_pending], dtype=np.float64)
    total_loss, seen = float((values * sizes).sum()), float(sizes.sum())
    accuracy = confusion = None
    if labels_pending:
        labels = backend.to_numpy(xp.concatenate(labels_pending)).astype(np.int64)
        predicted = backend.to_numpy(xp.concatenate(predicted_pending)).astype(np.int64)
        accuracy = float(np.mean(predicted == labels))
        confusion = _confusion_matrix(labels, predicted, loader, output)
    return Evaluation(total_loss / seen, accuracy, confusion)


def predict(model, data, batch_size=32, device=None):
    """The model's outputs (e.g. logits) for ``data`` as a NumPy array.

    ``data`` is a loader (its inputs are used), a dataset, or an array/Tensor of
    inputs; batches of ``batch_size``. ``predict(...).argmax(1)`` gives classes.
    """
    from ..data import DataLoader
    device = backend.check_device(device or model.device)
    if isinstance(data, (np.ndarray, Tensor)) or hasattr(data, "__array__"):
        array = unwrap(data)
        batches = ((as_tensor(array[i:i + batch_size]),)
                   for i in range(0, len(array), batch_size))
    elif hasattr(data, "__iter__") and not hasattr(data, "__getitem__"):
        batches = data
    else:
        batches = DataLoader(data, batch_size=batch_size, shuffle=False, seed=0)
    outputs = []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                x = x if isinstance(x, Tensor) else as_tensor(x)
                if x.device != device:
                    x = x.to(device)
                outputs.append(backend.to_numpy(model(x).data))
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("predict: no inputs")
    return np.concatenate(outputs)
