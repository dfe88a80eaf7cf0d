"""Datasets: in-memory images, plain arrays, subsets and the seeded random split.

Every dataset here answers ``len(ds)``, ``ds[i]`` and ``ds.get_batch(indices, rng)``;
the last is what :class:`~minigrad.data.DataLoader` calls to build a whole batch in
a few vectorised NumPy operations instead of one Python call per sample. A user
dataset that only defines ``__len__`` and ``__getitem__`` (subclass
:class:`Dataset`) works too: its samples are stacked.

Images are stored once as uint8 ``(N, H, W, 3)`` (a quarter of the memory of
float32); a batch is gathered, augmented (``transform``), then scaled to [0, 1],
normalised per channel and laid out NCHW float32, all in one pass per batch.
"""
import numbers

import numpy as np

from .. import random as mg_random
from ..utils import as_numpy

__all__ = ["Dataset", "ImageDataset", "TensorDataset", "Subset", "random_split",
           "train_val_split", "IMAGENET_MEAN", "IMAGENET_STD"]

#: The per-channel mean and std the exercise (and ImageNet-trained models) use.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Marker: "use the transform the dataset itself holds" (None means "no transform").
_INHERIT = object()


def _fresh_seed():
    """A seed drawn from minigrad's global generator, so ``manual_seed`` governs it."""
    return int(mg_random.generator().integers(0, 2**63 - 1))


class Dataset:
    """Base class for a user's dataset: define ``__len__`` and ``__getitem__``.

    ``__getitem__(i)`` returns a tuple of arrays/numbers (e.g. ``(image, label)``).
    Override :meth:`get_batch` when a whole batch can be made faster at once.
    A batch transform given to :meth:`get_batch` (e.g. by a :class:`Subset` with a
    ``transform``) runs on the stacked first column, as in :class:`TensorDataset`.
    """

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def get_batch(self, indices, rng=None, transform=_INHERIT):
        """A batch as a tuple of stacked NumPy arrays (default: stack the samples).

        ``transform(batch_of_first_column, rng)``, when given, augments the first
        column. The base class holds no transform of its own (a ``self.transform``
        of a user's dataset may well be a per-sample one that ``__getitem__`` applies).
        """
        samples = [self[int(i)] for i in indices]
        if not isinstance(samples[0], (tuple, list)):
            samples = [(s,) for s in samples]
        columns = [np.stack([as_numpy(sample[k]) for sample in samples])
                   for k in range(len(samples[0]))]
        if transform is not _INHERIT and transform is not None:
            rng = rng if rng is not None else np.random.default_rng()
            columns[0] = transform(columns[0], rng)
        return tuple(columns)


class ImageDataset(Dataset):
    """Images held in memory as uint8 ``(N, H, W, 3)`` with integer labels.

    Parameters
    ----------
    images : uint8 array ``(N, H, W, C)``
    labels : integer array ``(N,)`` with values in ``[0, len(classes))``
    classes : class names; ``classes[k]`` is the name of label ``k``
    mean, std : per-channel normalisation applied after scaling to [0, 1]
    transform : optional augmentation ``transform(images_uint8_nhwc, rng)``
        applied to each batch (see :mod:`minigrad.data.transforms`)

    A sample is ``(x, label)`` with ``x`` float32 ``(C, H, W)``, normalised.
    """

    def __init__(self, images, labels, classes, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 transform=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8 (0..255), got {images.dtype}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},) to match the "
                             f"images, got {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got {labels.dtype}")
        classes = [str(c) for c in classes]
        if len(classes) == 0:
            raise ValueError("classes must name at least one class")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"labels must lie in [0, {len(classes)}) for {len(classes)} "
                             f"classes, found {labels.min()}..{labels.max()}")
        channels = images.shape[3]
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        if mean.shape != (channels,) or std.shape != (channels,):
            raise ValueError(f"mean and std need {channels} values (one per channel), "
                             f"got {mean.size} and {std.size}")
        if np.any(std <= 0):
            raise ValueError(f"std must be positive, got {std.tolist()}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = classes
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.transform = transform
        # x_normalised = uint8 * scale - shift, i.e. (uint8 / 255 - mean) / std.
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._shift = (mean / std).astype(np.float32)
        self._rng = np.random.default_rng()

    @property
    def class_to_idx(self):
        """Class name -> label number."""
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def num_classes(self):
        """How many classes the labels range over."""
        return len(self.classes)

    @property
    def targets(self):
        """All labels, int64 ``(N,)`` (PyTorch's name)."""
        return self.labels

    @property
    def image_size(self):
        """``(H, W)`` of the stored images."""
        return tuple(self.images.shape[1:3])

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, index):
        x, y = self.get_batch(np.array([index]), self._rng)
        return x[0], int(y[0])

    def class_counts(self):
        """Number of samples per class, int array ``(num_classes,)``."""
        return np.bincount(self.labels, minlength=len(self.classes))

    def normalize(self, images):
        """uint8 ``(B, H, W, C)`` -> normalised float32 ``(B, C, H, W)``."""
        images = np.asarray(images)
        out = np.empty((images.shape[0], images.shape[3]) + images.shape[1:3], np.float32)
        np.multiply(images.transpose(0, 3, 1, 2), self._scale[:, None, None], out=out)
        out -= self._shift[:, None, None]
        return out

    def get_batch(self, indices, rng=None, transform=_INHERIT):
        """``(x, y)``: float32 NCHW normalised images and int64 labels for ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        images = self.images[indices]
        transform = self.transform if transform is _INHERIT else transform
        if transform is not None:
            images = transform(images, rng if rng is not None else self._rng)
        return self.normalize(images), self.labels[indices]

    def __repr__(self):
        h, w = self.image_size
        return (f"{type(self).__name__}({len(self)} images, {h}x{w}, "
                f"{len(self.classes)} classes: {', '.join(self.classes)})")


class TensorDataset(Dataset):
    """Samples are rows of equally long arrays, e.g. ``TensorDataset(x, y)``.

    Arrays may be NumPy arrays or minigrad Tensors; dtypes and layouts are kept,
    and batches reach the model as they are: images for minigrad's layers must
    therefore be NCHW float32, as in PyTorch. A ``transform(batch_of_first_array,
    rng)`` gets that raw batch. The image transforms of
    :mod:`minigrad.data.transforms` work on channels-last uint8 ``(B, H, W, C)``
    and refuse an NCHW batch; to augment images, hold them in an
    :class:`ImageDataset`, which transforms them before laying them out NCHW.
    """

    def __init__(self, *arrays, transform=None):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(as_numpy(a) for a in arrays)
        lengths = [a.shape[0] if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(f"TensorDataset arrays must share their first dimension, "
                             f"got shapes {shapes}")
        self.transform = transform
        self._rng = np.random.default_rng()

    def __len__(self):
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        return tuple(column[0] for column in self.get_batch(np.array([index]), self._rng))

    def get_batch(self, indices, rng=None, transform=_INHERIT):
        """The rows ``indices`` of every array (the first one transformed, if set)."""
        indices = np.asarray(indices, dtype=np.int64)
        batch = [a[indices] for a in self.arrays]
        transform = self.transform if transform is _INHERIT else transform
        if transform is not None:
            batch[0] = transform(batch[0], rng if rng is not None else self._rng)
        return tuple(batch)


class Subset(Dataset):
    """The samples ``indices`` of ``dataset``, with an optional transform of its own.

    ``transform=None`` keeps the parent's transform; so a training subset can be
    given augmentation (``train.transform = ...``) while its validation sibling,
    which shares the same decoded images, stays plain.
    """

    def __init__(self, dataset, indices, transform=None):
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset indices must lie in [0, {n}) for a dataset of "
                             f"{n} samples")
        self.dataset = dataset
        self.indices = indices % n if n else indices
        self.transform = transform

    def __len__(self):
        return self.indices.shape[0]

    def __getitem__(self, index):
        return tuple(column[0] for column in self.get_batch(np.array([index])))

    def __getattr__(self, name):
        # classes, class_to_idx, mean, std, num_classes, ... come from the parent.
        if name in ("dataset", "indices", "transform"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    @property
    def labels(self):
        """The labels of this subset's samples (when the parent has labels)."""
        return np.asarray(self.dataset.labels)[self.indices]

    @property
    def targets(self):
        """Alias of :attr:`labels` (PyTorch's name)."""
        return self.labels

    def class_counts(self):
        """Number of samples per class in this subset."""
        return np.bincount(self.labels, minlength=len(self.dataset.classes))

    def get_batch(self, indices, rng=None, transform=_INHERIT):
        """Delegate to the parent with mapped indices and this subset's transform."""
        if transform is _INHERIT and self.transform is not None:
            transform = self.transform
        return self.dataset.get_batch(self.indices[np.asarray(indices, dtype=np.int64)],
                                      rng, transform)

    def __repr__(self):
        return f"Subset({len(self)} of {self.dataset!r})"


def random_split(dataset, lengths, seed=None):
    """Split ``dataset`` into non-overlapping :class:`Subset` s by a seeded permutation.

    ``lengths`` are either counts summing to ``len(dataset)`` or fractions summing
    to 1 (PyTorch's rule: each part gets ``floor(n * fraction)``, and the left-over
    samples go one each to the parts in order). ``seed`` makes the split repeatable
    (the exercise uses ``seed=123``); ``None`` draws it from minigrad's generator,
    so ``minigrad.manual_seed`` governs it.
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split needs at least one length")
    if all(isinstance(v, numbers.Integral) for v in lengths):
        counts = [int(v) for v in lengths]
        if any(c < 0 for c in counts) or sum(counts) != n:
            raise ValueError(f"random_split lengths {counts} must be non-negative and sum "
                             f"to the dataset's {n} samples")
    else:
        fractions = [float(v) for v in lengths]
        if any(f < 0 or f > 1 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(f"random_split fractions {fractions} must lie in [0, 1] and "
                             f"sum to 1")
        counts = [int(np.floor(n * f)) for f in fractions]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    if seed is None:
        seed = _fresh_seed()
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def check_val_fraction(val_fraction):
    """Raise ``ValueError`` unless ``0 < val_fraction < 1``."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")


def train_val_split(dataset, val_fraction=0.2, seed=None, what="the dataset"):
    """``(train, val)``: :func:`random_split` into ``1 - val_fraction`` and ``val_fraction``.

    Refuses a split that would leave either part empty (e.g. 4 images at 0.2
    give 4 and 0), with a ``ValueError`` naming ``what``, the counts and the
    fraction: an empty validation set would otherwise only fail after the first
    training epoch.
    """
    check_val_fraction(val_fraction)
    train, val = random_split(dataset, [1.0 - val_fraction, val_fraction], seed=seed)
    if len(train) == 0 or len(val) == 0:
        n = len(dataset)
        raise ValueError(f"{what} holds {n} sample{'s' if n != 1 else ''}: "
                         f"val_fraction={val_fraction:g} splits {'them' if n != 1 else 'it'} "
                         f"into {len(train)} for training and {len(val)} for validation, "
                         f"and each part needs at least one; add samples or change "
                         f"val_fraction")
    return train, val
