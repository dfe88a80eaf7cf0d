"""Seeded, batched augmentation of uint8 images.

A transform is any callable ``transform(images, rng) -> images`` on a batch of
uint8 images laid out channels-last, ``(B, H, W, C)`` with C = 1, 3 or 4,
drawing its randomness from the NumPy ``Generator`` it is given. The
:class:`~minigrad.data.DataLoader` hands every batch the generator of the
current epoch, so a seeded loader repeats its augmentations exactly.
Transforms run before normalisation (on the compact uint8 pixels) and never
modify their input array.

Layout: channels-last is how :class:`~minigrad.data.ImageDataset` (and so
``ImageFolder`` and ``SyntheticInsects``) stores images; it turns them into the
models' NCHW float32 only after the transform. A :class:`~minigrad.data.TensorDataset`
hands a transform its first array as it is, usually NCHW model input, on which a
"horizontal" flip would flip rows. So these transforms refuse a batch that is
clearly channels-first: a last axis that is no channel count, or a second axis
of 1, 3 or 4 in a non-uint8 array (float images that small do not occur, NCHW
input does). To augment images, keep them as uint8 ``(N, H, W, C)`` in an
``ImageDataset``.

Example::

    train_set.transform = Compose([RandomHorizontalFlip(), RandomCrop(80, padding=4)])
"""
import numpy as np

__all__ = ["Compose", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomCrop"]


#: Channel counts of a channels-last image: grey, RGB, RGBA.
_CHANNELS = (1, 3, 4)


def _check_batch(images, name):
    """Refuse anything but a channels-last ``(B, H, W, C)`` batch (see the module doc)."""
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        shape = getattr(images, "shape", None)
        raise ValueError(f"{name} expects a batch of images (B, H, W, C), got shape {shape}")
    second, last = images.shape[1], images.shape[3]
    if second in _CHANNELS and (last not in _CHANNELS or images.dtype != np.uint8):
        raise ValueError(
            f"{name} expects channels-last images (B, H, W, C), but got a {images.dtype} "
            f"batch of shape {images.shape}, which looks channels-first (B, C, H, W), "
            f"like a model's input: flipping or cropping it would act on the wrong axes. "
            f"Keep the images as uint8 (N, H, W, C) in an ImageDataset, which applies the "
            f"transform before converting to NCHW float32")
    if last not in _CHANNELS:
        raise ValueError(f"{name} expects images (B, H, W, C) with C = 1, 3 or 4 channels, "
                         f"got shape {images.shape}")


def size_pair(value, name):
    """An image size as ``(height, width)``: an int ``n`` is ``(n, n)``; anything that
    is not two positive ints is a ValueError naming ``name``."""
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) <= 0:
        raise ValueError(f"{name} must be a positive int or (height, width), got {value}")
    return value


class Compose:
    """Apply several transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    def __call__(self, images, rng):
        for t in self.transforms:
            images = t(images, rng)
        return images

    def __repr__(self):
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class _RandomFlip:
    axis = None

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must lie in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, images, rng):
        _check_batch(images, type(self).__name__)
        flip = rng.random(images.shape[0]) < self.p
        out = images.copy()
        if flip.any():
            out[flip] = np.flip(images[flip], axis=self.axis)
        return out

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each image left-right with probability ``p``."""
    axis = 2


class RandomVerticalFlip(_RandomFlip):
    """Mirror each image upside down with probability ``p``."""
    axis = 1


class RandomCrop:
    """Pad each image by ``padding`` pixels, then cut a random ``size`` window.

    ``size`` is an int or ``(height, width)``; ``padding_mode`` is ``"constant"``
    (filled with ``fill``), ``"reflect"`` or ``"edge"``, as in torchvision. With
    ``padding=4`` and ``size`` equal to the image size this is the classic
    "shift by up to 4 pixels" augmentation.
    """

    _MODES = ("constant", "reflect", "edge")

    def __init__(self, size, padding=0, fill=0, padding_mode="constant"):
        self.size = size_pair(size, "RandomCrop size")
        if int(padding) < 0:
            raise ValueError(f"RandomCrop padding must be >= 0, got {padding}")
        if padding_mode not in self._MODES:
            raise ValueError(f"RandomCrop padding_mode must be one of {self._MODES}, "
                             f"got {padding_mode!r}")
        self.padding = int(padding)
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, images, rng):
        _check_batch(images, "RandomCrop")
        p = self.padding
        if p:
            widths = ((0, 0), (p, p), (p, p), (0, 0))
            if self.padding_mode == "constant":
                images = np.pad(images, widths, mode="constant", constant_values=self.fill)
            else:
                images = np.pad(images, widths, mode=self.padding_mode)
        batch, height, width = images.shape[:3]
        h, w = self.size
        if h > height or w > width:
            raise ValueError(f"RandomCrop size {self.size} is larger than the padded "
                             f"images ({height}, {width})")
        top = rng.integers(0, height - h + 1, size=batch)
        left = rng.integers(0, width - w + 1, size=batch)
        rows = top[:, None] + np.arange(h)
        cols = left[:, None] + np.arange(w)
        # One fancy-index gather crops the whole batch at per-image offsets.
        return images[np.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]

    def __repr__(self):
        return (f"RandomCrop(size={self.size}, padding={self.padding}, "
                f"padding_mode={self.padding_mode!r})")
