"""Keras-style training on NumPy arrays: ``model.compile``, ``fit``, ``evaluate``, ``predict``.

::

    model = nn.Sequential(nn.Flatten(), nn.Dense(64), nn.ReLU(), nn.Dense(10))
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=32, validation_split=0.2)
    model.evaluate(x_test, y_test)        # {"loss": 0.31, "accuracy": 0.91}
    model.predict(x_test).argmax(1)       # a NumPy array

A thin layer over :func:`minigrad.train.fit`, :func:`~minigrad.train.evaluate` and
:func:`~minigrad.train.predict` (one training loop): arrays become a ``TensorDataset``
in a ``DataLoader``; datasets and loaders are taken as they are. Lazy layers
(``Dense(units)``, ``LazyConv2d``) get their shapes from the first batch before the
optimizer is built. The optimizer is built once and kept, so a second ``fit``
continues with its state, as in Keras; ``compile`` again to start afresh.
"""
import numpy as np

from .. import losses as losses_module, optim as optim_module
from ..nn.parameter import is_uninitialized
from ..tensor import Tensor, no_grad
from ..utils import as_numpy
from .evaluation import evaluate as evaluate_loader, predict as predict_outputs
from .loop import make_optimizer, fit as fit_loader

__all__ = ["compile", "fit", "evaluate", "predict", "METRICS"]

#: Metric names ``compile`` knows (Keras's names), mapped to the key they report under.
METRICS = {"accuracy": "accuracy", "acc": "accuracy"}


class _Compiled:
    """What ``compile`` chose; the optimizer object is made at the first ``fit``."""

    def __init__(self, optimizer, loss, metrics, lr, optimizer_kwargs):
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self.lr = lr
        self.optimizer_kwargs = optimizer_kwargs
        self.built = None if isinstance(optimizer, str) else optimizer


def compile(model, optimizer="adam", loss="cross_entropy", metrics=("accuracy",), lr=None,
            **optimizer_kwargs):
    """Set ``model``'s optimizer (a registry name or an optimizer object), loss (a name
    or a callable) and metrics (``"accuracy"``); returns the model.

    ``lr`` and ``optimizer_kwargs`` (``momentum=0.9``, ``weight_decay=...``) build a
    named optimizer. Names are checked now, so a typo fails here, not after loading data.
    """
    if isinstance(optimizer, str):
        optim_module.optimizer_class(optimizer)  # an unknown name: ValueError listing them
    elif not (hasattr(optimizer, "step") and hasattr(optimizer, "param_groups")):
        known = ", ".join(sorted(optim_module.OPTIMIZERS))
        raise TypeError(f"compile: optimizer must be a name ({known}) or an optimizer "
                        f"object, got {type(optimizer).__name__}")
    elif lr is not None or optimizer_kwargs:
        raise TypeError("compile: lr and optimizer keywords apply only to an optimizer given "
                        "by name")
    loss_fn = losses_module.get(loss)
    if not callable(loss_fn):
        raise TypeError(f"compile: loss must be a name or a callable, got {type(loss).__name__}")
    if isinstance(metrics, str):
        metrics = [metrics]
    names = []
    for metric in metrics or ():
        if metric not in METRICS:
            raise ValueError(f"compile: unknown metric {metric!r}; known: {sorted(METRICS)}")
        names.append(METRICS[metric])
    model.__dict__["compiled"] = _Compiled(optimizer, loss_fn, names, lr, optimizer_kwargs)
    return model


def _compiled(model, what):
    config = model.__dict__.get("compiled")
    if config is None:
        raise RuntimeError(f"{what}: call model.compile(optimizer=..., loss=...) first")
    return config


# --------------------------------------------------------------------------- inputs
def _model_dtype(model):
    for param in model.parameters():
        if param.dtype.kind == "f" and not is_uninitialized(param):
            return param.dtype
    return np.dtype(np.float32)


def _inputs(model, x):
    """``x`` as a NumPy array of the model's floating dtype (Keras casts to float32)."""
    array = as_numpy(x)
    if array.ndim == 0:
        raise ValueError("expected an array of samples (first axis: the batch), got a scalar")
    dtype = _model_dtype(model)
    return array if array.dtype == dtype else array.astype(dtype)


def _targets(y, n, what):
    array = as_numpy(y)
    if array.ndim == 0 or array.shape[0] != n:
        raise ValueError(f"{what}: x has {n} samples but y has shape {array.shape}")
    if array.dtype.kind in "biu":
        return array.astype(np.int64)
    if array.dtype.kind != "f":
        raise TypeError(f"{what}: y must hold numbers (class labels or targets), got dtype "
                        f"{array.dtype}")
    return array.astype(np.float32)


def _is_loader(data):
    """A loader: iterable in batches, not indexable (a DataLoader, a generator, a list
    of batches is indexable and is not one)."""
    return hasattr(data, "__iter__") and not hasattr(data, "__getitem__")


def _is_array_like(data):
    """Samples given as an array (NumPy, CuPy, a Tensor, a list), not a dataset or loader."""
    return isinstance(data, (np.ndarray, Tensor, list)) or hasattr(data, "__array__")


def _loader(model, x, y, batch_size, shuffle, seed, what):
    """A loader of ``(x, y)`` batches from arrays, a dataset or a loader."""
    from ..data import DataLoader, TensorDataset
    if _is_array_like(x):
        if y is None:
            raise ValueError(f"{what}: arrays x need their targets y")
        inputs = _inputs(model, x)
        return DataLoader(TensorDataset(inputs, _targets(y, len(inputs), what)),
                          batch_size=batch_size, shuffle=shuffle, seed=seed)
    if y is not None:
        raise ValueError(f"{what}: y is given only with arrays; a {type(x).__name__} holds "
                         f"its own targets")
    if _is_loader(x):
        return x
    if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
        return DataLoader(x, batch_size=batch_size, shuffle=shuffle, seed=seed)
    raise TypeError(f"{what}: expected NumPy arrays, a dataset or a loader, got "
                    f"{type(x).__name__}")


def _build_lazy_layers(model, loader):
    """Run lazy layers once on the first batch (eval mode, no gradients), so that every
    parameter has its shape before the optimizer is made."""
    if not any(is_uninitialized(p) for p in model.parameters()):
        return
    batch = next(iter(loader))
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if x.device != model.device:  # the new weights are made where the input is
        x = x.to(model.device)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(x)
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- the API
def fit(model, x, y=None, epochs=1, batch_size=32, validation_data=None,
        validation_split=0.0, callbacks=(), shuffle=True, verbose=1, seed=None, **fit_kwargs):
    """Train a compiled ``model``; returns the :class:`~minigrad.train.History` (also
    kept as ``model.history``).

    ``x``, ``y``: NumPy arrays (or Tensors) of inputs and targets (class labels or
    values), or ``x`` a dataset or a loader of ``(inputs, targets)`` and ``y`` None.
    ``validation_data``: ``(x_val, y_val)``, a dataset or a loader. ``validation_split``
    (arrays only): the last fraction of ``x``/``y``, taken before shuffling, as in
    Keras. ``shuffle`` and ``seed`` set the order of each epoch (a seed of None draws
    one from ``minigrad.manual_seed``'s generator). ``fit_kwargs`` go to
    :func:`minigrad.train.fit` (``scheduler``, ``resume``, ``device``, ``cuda_graph``).
    """
    config = _compiled(model, "fit")
    if not 0.0 <= float(validation_split) < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
    if validation_split:
        if not _is_array_like(x):
            raise ValueError("fit: validation_split needs arrays x and y (as in Keras); give "
                             "a dataset or loader its validation set with validation_data")
        if validation_data is not None:
            raise ValueError("fit: give validation_data or validation_split, not both")
        inputs = _inputs(model, x)
        n_val = int(len(inputs) * float(validation_split))
        if n_val == 0 or n_val == len(inputs):
            raise ValueError(f"fit: validation_split={validation_split} of {len(inputs)} "
                             f"samples leaves no validation or no training sample")
        targets = _targets(y, len(inputs), "fit")
        x, y = inputs[:-n_val], targets[:-n_val]
        validation_data = (inputs[-n_val:], targets[-n_val:])
    train_loader = _loader(model, x, y, batch_size, shuffle, seed, "fit")
    val_loader = None
    if validation_data is not None:
        if isinstance(validation_data, tuple):
            if len(validation_data) != 2:
                raise ValueError("fit: validation_data must be (x_val, y_val), a dataset or a "
                                 f"loader, got a tuple of {len(validation_data)}")
            val_loader = _loader(model, *validation_data, batch_size, False, 0, "fit")
        else:
            val_loader = _loader(model, validation_data, None, batch_size, False, 0, "fit")
    _build_lazy_layers(model, train_loader)
    if config.built is None:
        config.built = make_optimizer(model, config.optimizer, config.lr,
                                       **config.optimizer_kwargs)
    history = fit_loader(model, train_loader, val_loader, loss=config.loss,
                         optimizer=config.built, epochs=epochs, callbacks=callbacks,
                         verbose=verbose, **fit_kwargs)
    model.__dict__["history"] = history
    return history


def evaluate(model, x, y=None, batch_size=32, verbose=0):
    """``{"loss": ..., "accuracy": ...}`` of a compiled ``model`` over arrays, a dataset
    or a loader (the metrics chosen in ``compile``; accuracy needs class labels).
    ``verbose`` prints the result."""
    config = _compiled(model, "evaluate")
    result = evaluate_loader(model, _loader(model, x, y, batch_size, False, 0, "evaluate"),
                             loss=config.loss)
    scores = {"loss": result.loss}
    if "accuracy" in config.metrics and result.accuracy is not None:
        scores["accuracy"] = result.accuracy
    if verbose:
        print(" - ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return scores


def predict(model, x, batch_size=32, verbose=0):
    """The outputs of ``model`` (e.g. logits) for ``x`` as a NumPy array: an array of
    inputs, a dataset or a loader (its inputs are used). Needs no ``compile``;
    ``verbose`` is taken for Keras's sake and prints nothing."""
    data = _inputs(model, x) if _is_array_like(x) else x
    return predict_outputs(model, data, batch_size=batch_size)
