"""A run's per-epoch metrics (:class:`History`) and which way each metric improves."""
import math

import numpy as np

from ..io import atomic_write_json


class History:
    """Per-epoch metrics of a run, Keras-style: ``history.history["val_loss"][epoch]``.

    Keys: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (when there is
    validation data), ``lr`` (the rate used during the epoch), ``seconds`` (the
    epoch's wall time, validation included) and ``images_per_second`` (training
    throughput), and every number a callback puts in the logs in its
    ``on_epoch_end`` (when ``fit`` records what, :class:`Callback` says). ``epoch``
    lists the epoch numbers (from 0).
    """

    def __init__(self, history=None, epoch=None, params=None):
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.epoch = list(epoch or [])
        self.params = dict(params or {})

    def append(self, epoch, logs):
        """Record one epoch's ``logs`` (a dict of numbers)."""
        self.epoch.append(int(epoch))
        self.update_last(logs)
        for values in self.history.values():  # keys missing this epoch get NaN
            if len(values) < len(self.epoch):
                values.append(math.nan)

    def update_last(self, logs):
        """Set the values of ``logs`` (a dict of numbers) in the last epoch's entry; a
        key new to the history reads NaN for the epochs before."""
        if not self.epoch:
            raise ValueError("History.update_last: no epoch recorded yet; call append first")
        for key, value in logs.items():
            values = self.history.setdefault(key, [])
            values.extend([math.nan] * (len(self.epoch) - len(values)))
            values[-1] = float(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epoch)

    def best(self, monitor="val_loss", mode="auto"):
        """``(epoch, value)`` of the best value of ``monitor`` (min for losses, max otherwise)."""
        values = self.history.get(monitor)
        if not values:
            raise KeyError(f"History has no {monitor!r}; it has {sorted(self.history)}")
        sign = metric_sign(monitor, mode)
        scores = [sign * v if not math.isnan(v) else -math.inf for v in values]
        i = int(np.argmax(scores))
        return self.epoch[i], values[i]

    def to_dict(self):
        """Plain-JSON form: ``{"history": {...}, "epoch": [...], "params": {...}}``."""
        return {"history": self.history, "epoch": self.epoch, "params": self.params}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict` (also accepts arrays from a checkpoint, and the
        ``null`` that strict JSON writes for NaN and infinities, read as NaN)."""
        return cls({k: [math.nan if x is None else float(x) for x in np.asarray(v).reshape(-1)]
                    for k, v in data["history"].items()},
                   [int(e) for e in np.asarray(data["epoch"]).reshape(-1)],
                   data.get("params", {}))

    def save(self, path):
        """Write ``history.json`` atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save`."""
        import json
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History({len(self)} epochs, last: {last})"


def history_dict(history, what="the history"):
    """The per-epoch lists (a dict) of a ``History``, of its ``.history`` dict or of
    its ``to_dict()`` / ``history.json`` form; anything else is a TypeError naming
    ``what``."""
    data = getattr(history, "history", history)
    if isinstance(data, dict) and isinstance(data.get("history"), dict):
        data = data["history"]  # the to_dict() / history.json form
    if not isinstance(data, dict):
        raise TypeError(f"{what} must be a History or its dict of per-epoch lists, got "
                        f"{type(history).__name__}")
    return data


def metric_sign(monitor, mode="auto"):
    """+1 when larger is better, -1 when smaller is (``auto``: accuracies up, the rest down).

    The one rule for "which way is better" of a metric name, used by callbacks,
    :meth:`History.best` and the sweeps of :mod:`minigrad.tune`.
    """
    if mode == "max":
        return 1.0
    if mode == "min":
        return -1.0
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return 1.0 if "acc" in monitor else -1.0
