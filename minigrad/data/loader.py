"""DataLoader: seeded shuffling, batching and background batch assembly.

``for x, y in DataLoader(train_set, batch_size=32, shuffle=True, seed=123): ...``

Each pass over the loader is one epoch. The order of epoch ``e`` and the
randomness its augmentations use both come from ``(seed, e)``, so a seeded loader
repeats itself exactly, and a resumed run can pick up at any epoch with
:meth:`DataLoader.set_epoch`. Batches are assembled (gathered, augmented,
normalised) by a background thread while the model computes on the previous one;
NumPy releases the GIL for that work, so the two overlap.
"""
import queue
import threading

import numpy as np

from .. import backend
from ..creation import as_tensor
from .dataset import Dataset, _fresh_seed

__all__ = ["DataLoader"]

_DONE = object()


class DataLoader:
    """Iterate over a dataset in batches of minigrad Tensors.

    Parameters
    ----------
    dataset : a dataset from :mod:`minigrad.data` or any object with ``__len__``
        and ``__getitem__`` (or the faster ``get_batch(indices, rng)``)
    batch_size : samples per batch; ``len(dataset)`` gives full-batch descent and
        ``1`` stochastic gradient descent
    shuffle : a new random order every epoch
    seed : makes the order and the augmentations repeat; ``None`` draws one from
        minigrad's generator (so ``minigrad.manual_seed`` governs it)
    drop_last : skip a final batch smaller than ``batch_size``
    device : ``"cpu"`` or ``"cuda"``: where the yielded tensors live. Each batch is
        copied to the GPU once, as one array per field; CuPy stages the copy through
        pinned memory and queues it on the current stream, so the host does not wait
        for the transfer and the next batch is assembled meanwhile
    prefetch : batches assembled ahead by a background thread (0: none)
    sampler : an iterable of dataset indices with a length (e.g. a
        :class:`DistributedSampler`) that decides which samples an epoch visits and in
        what order; excludes ``shuffle``, as in PyTorch. A sampler with ``set_epoch``
        is told each epoch's number, so its order follows the loader's epochs

    Yields tuples of Tensors: for image datasets ``(x, y)`` with ``x`` float32
    NCHW and ``y`` int64.
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, seed=None, drop_last=False,
                 device="cpu", prefetch=2, sampler=None):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DataLoader needs a dataset with a length, got "
                            f"{type(dataset).__name__}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if int(prefetch) < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if sampler is not None and not hasattr(sampler, "__len__"):
            raise TypeError(f"DataLoader: sampler must have a length, got "
                            f"{type(sampler).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = _fresh_seed() if seed is None else int(seed)
        self.drop_last = bool(drop_last)
        self.device = backend.check_device(device)
        self.prefetch = int(prefetch)
        self.sampler = sampler
        self.epoch = 0

    def __len__(self):
        """Batches per epoch."""
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch):
        """The next pass is epoch ``epoch`` (its order and augmentations follow)."""
        self.epoch = int(epoch)

    def epoch_plan(self, epoch=None):
        """``(order, rng)`` of an epoch: the sample order and the augmentation generator."""
        epoch = self.epoch if epoch is None else int(epoch)
        entropy = [self.seed, epoch]
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            # Each rank's augmentations draw from a stream of their own.
            entropy.append(getattr(self.sampler, "rank", 0))
        order_seq, augment_seq = np.random.SeedSequence(entropy).spawn(2)
        n = len(self.dataset)
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64, count=len(self.sampler))
        elif self.shuffle:
            order = np.random.default_rng(order_seq).permutation(n)
        else:
            order = np.arange(n)
        return order, np.random.default_rng(augment_seq)

    def _batches(self, order):
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        return [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def _assemble(self, indices, rng):
        if hasattr(self.dataset, "get_batch"):
            batch = self.dataset.get_batch(indices, rng)
        else:  # a duck-typed dataset: stack its samples
            batch = Dataset.get_batch(self.dataset, indices, rng)
        return batch if isinstance(batch, tuple) else tuple(batch)

    def __iter__(self):
        order, rng = self.epoch_plan()
        self.epoch += 1
        batches = self._batches(order)
        if self.prefetch and len(batches) > 1:
            source = _prefetched(self._assemble, batches, rng, self.prefetch)
        else:
            source = (self._assemble(b, rng) for b in batches)
        try:
            for arrays in source:
                # Each batch is a fresh array: wrapped, not copied again.
                yield tuple(as_tensor(a, device=self.device) for a in arrays)
        finally:
            source.close()

    def __repr__(self):
        return (f"DataLoader({len(self.dataset)} samples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, "
                f"device={self.device!r})")


def _prefetched(make, items, rng, depth):
    """Yield ``make(item, rng)`` for each item, computed ahead by one worker thread.

    One worker keeps the results in order and the generator's draws in the same
    sequence as without prefetching, so seeded runs are identical either way.
    """
    results = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                results.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in items:
                if stop.is_set() or not put(("ok", make(item, rng))):
                    return
            put(("done", _DONE))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))

    worker = threading.Thread(target=work, name="minigrad-dataloader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = results.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()
