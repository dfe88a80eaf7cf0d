"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), by class or by name, and lr_scheduler.

``optim.get("adam", model.parameters(), lr=1e-3)`` builds one by its registry name.
Adding an optimizer is one class and one line in ``OPTIMIZERS``.
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

OPTIMIZERS = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def optimizer_class(name):
    """The optimizer class registered as ``name`` (case-insensitive), or a clear error
    listing the known names."""
    if not isinstance(name, str):
        raise TypeError(f"optimizer name must be a string, got {type(name).__name__}")
    try:
        return OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known: "
                         f"{', '.join(sorted(OPTIMIZERS))}") from None


def get(name, params, **kwargs):
    """Build the optimizer registered as ``name`` (case-insensitive) over ``params``."""
    return optimizer_class(name)(params, **kwargs)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "OPTIMIZERS", "get",
           "optimizer_class", "lr_scheduler"]
