"""Run logging callbacks for :func:`minigrad.train.fit`: a CSV file and TensorBoard.

::

    from minigrad.train import fit, CSVLogger, TensorBoard
    fit(model, train_loader, val_loader, epochs=10,
        callbacks=[CSVLogger("run/log.csv"), TensorBoard("run/tb")])
    # then: tensorboard --logdir run/tb

Both are exported by :mod:`minigrad.train`. Epochs count from 0 in both files, as
in Keras and in ``History.epoch``. ``TensorBoard`` writes its event files with
``tensorboardX`` (``pip install 'minigrad[tensorboard]'``): a small writer that needs
only protobuf, where TensorBoard itself (with its server) would pull in grpcio and a
web stack just to write files.
"""
import csv
import io
import os

import numpy as np

from .. import backend
from ..extras import require
from .callbacks import Callback
from .evaluation import evaluate

__all__ = ["CSVLogger", "TensorBoard"]


class CSVLogger(Callback):
    """Append each epoch's metrics to a CSV file (Keras's ``CSVLogger``).

    The first row is the header: ``epoch`` then the metric names of the first epoch in
    sorted order; each epoch adds a row as it ends, written and closed at once, so the
    file is complete up to the last finished epoch even if training stops. A metric
    missing in a later epoch reads ``NA``; one that appears later is left out.
    ``append=False`` starts the file afresh at each ``fit``; ``append=True`` keeps its
    rows (use it to continue a resumed run's log) and writes a header only into an
    empty or new file.
    """

    order = 95  # after every other callback has added its numbers to the logs

    def __init__(self, filename, separator=",", append=False):
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)
        self.keys = None

    resumes_from_state = False

    def on_train_begin(self, logs=None):
        folder = os.path.dirname(self.filename)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self.keys = None
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8", newline="") as f:
                header = f.readline()
            if header:  # continue under the file's own columns
                self.keys = next(csv.reader([header], delimiter=self.separator))[1:]
        else:
            open(self.filename, "w").close()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        write_header = self.keys is None
        if write_header:
            self.keys = sorted(logs)
        with open(self.filename, "a", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if write_header:
                writer.writerow(["epoch"] + self.keys)
            writer.writerow([epoch] + [logs[k] if k in logs else "NA" for k in self.keys])

    def __repr__(self):
        return f"CSVLogger({self.filename!r}, separator={self.separator!r}, append={self.append})"


class TensorBoard(Callback):
    """Write the run for TensorBoard (``tensorboard --logdir LOG_DIR``), as Keras lays it out.

    Every epoch: the scalars of the logs as ``epoch_<name>``, training ones under
    ``LOG_DIR/train`` and ``val_`` ones (without the prefix) under
    ``LOG_DIR/validation``, so each curve shows both; every ``histogram_freq`` epochs
    (0: never) a histogram of each parameter, by its state-dict name. At the end of
    training, with validation data and matplotlib installed, the confusion matrix of
    the final model as an image (``confusion_matrix``, one more validation pass;
    ``confusion_matrix=False`` skips it). The step is the epoch, from 0.
    """

    order = 95
    resumes_from_state = False

    def __init__(self, log_dir="logs", histogram_freq=1, confusion_matrix=True):
        # Imported now, so that a missing package fails here, not after an epoch.
        self.writer_class = require("tensorboardX", "the TensorBoard callback",
                                    "tensorboard").SummaryWriter
        self.log_dir = os.fspath(log_dir)
        if int(histogram_freq) != histogram_freq or histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be an integer >= 0, "
                             f"got {histogram_freq!r}")
        self.histogram_freq = int(histogram_freq)
        self.confusion_matrix = bool(confusion_matrix)
        self.writers = {}

    def _writer(self, split):
        if split not in self.writers:
            self.writers[split] = self.writer_class(os.path.join(self.log_dir, split))
        return self.writers[split]

    def on_train_begin(self, logs=None):
        self.close()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writer(split).add_scalar(f"epoch_{name}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            writer = self._writer("train")
            for name, param in self.model.named_parameters():
                writer.add_histogram(name, backend.to_numpy(param.data).astype(np.float64),
                                     epoch)
        for writer in self.writers.values():
            writer.flush()  # an interrupted run keeps every finished epoch

    def on_train_end(self, logs=None):
        run = self.run
        if self.confusion_matrix and run.val_loader is not None and run.history.epoch:
            image = self._confusion_image(run)
            if image is not None:
                self._writer("validation").add_image("confusion_matrix", image,
                                                     run.history.epoch[-1], dataformats="HWC")
        self.close()

    def _confusion_image(self, run):
        """The final model's confusion matrix as an RGB array, or None without matplotlib
        or class labels."""
        from .. import plot
        if not plot.plots_available():
            return None
        result = evaluate(run.model, run.val_loader, loss=run.loss_fn, device=run.device)
        if result.confusion is None:
            return None
        classes = getattr(getattr(run.val_loader, "dataset", None), "classes", None)
        fig = plot.plot_confusion(result.confusion, classes)
        buffer = io.BytesIO()
        plot.save_figure(fig, buffer)
        from PIL import Image
        buffer.seek(0)
        return np.asarray(Image.open(buffer).convert("RGB"))

    def close(self):
        """Flush and close the event files (``fit`` does it at the end of training)."""
        for writer in self.writers.values():
            writer.close()
        self.writers = {}

    def __repr__(self):
        return f"TensorBoard({self.log_dir!r}, histogram_freq={self.histogram_freq})"
