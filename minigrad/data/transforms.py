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

Names, arguments and the distributions of the random parameters follow
torchvision's: :class:`RandomResizedCrop`, :class:`RandomRotation` and
:class:`ColorJitter` go through Pillow image by image, as torchvision does for PIL
images, so their pixels are torchvision's on PIL input (the parameters come from the
loader's generator, not torch's). :class:`Normalize` is the one transform for float
input: channels-first ``(B, C, H, W)`` batches such as a ``TensorDataset`` holds
(an ``ImageDataset`` normalises by itself, with its ``mean`` and ``std``).

Example::

    train_set.transform = Compose([RandomResizedCrop(80, scale=(0.7, 1.0)),
                                   RandomHorizontalFlip(), ColorJitter(0.2, 0.2, 0.2)])
"""
import math
import numbers

import numpy as np

from ..utils import pair

__all__ = ["Compose", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomCrop",
           "RandomResizedCrop", "RandomRotation", "ColorJitter", "Normalize"]


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
        self.size = pair(size, "size", "RandomCrop", 1)
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


# --------------------------------------------------------------------------- via Pillow
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_RESAMPLING = ("nearest", "bilinear", "bicubic")


def _to_pil(image):
    """One ``(H, W, C)`` uint8 image as a Pillow image (``L``, ``RGB`` or ``RGBA``)."""
    from PIL import Image
    channels = image.shape[2]
    return Image.fromarray(image[..., 0] if channels == 1 else image, _PIL_MODES[channels])


def _from_pil(picture, channels):
    array = np.asarray(picture, dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], channels)


def _resampling(name, who):
    from PIL import Image
    if name not in _RESAMPLING:
        raise ValueError(f"{who}: interpolation must be one of {_RESAMPLING}, got {name!r}")
    return {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR,
            "bicubic": Image.BICUBIC}[name]


def _range(value, name, who, center=None, bound=(0.0, math.inf)):
    """torchvision's rule for a jitter argument: a number ``v`` is ``[center - v,
    center + v]`` (clipped at ``bound``'s lower end), a pair is taken as it is."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{who}: {name} must be non-negative, got {value}")
        low, high = (center - value, center + value) if center is not None else (-value, value)
        low = max(low, bound[0])
    else:
        low, high = (float(v) for v in value)
    if not bound[0] <= low <= high <= bound[1]:
        raise ValueError(f"{who}: {name} must give a range inside {list(bound)}, "
                         f"got ({low}, {high})")
    return float(low), float(high)


class RandomResizedCrop:
    """Crop a random area and aspect ratio of each image, resized to ``size``
    (``torchvision.transforms.RandomResizedCrop``, its sampling exactly).

    The area is a fraction ``scale`` of the image's, the aspect ratio (width/height)
    log-uniform in ``ratio``; after ten failed draws the largest central crop within
    ``ratio`` is taken. ``interpolation``: ``"bilinear"`` (default), ``"nearest"`` or
    ``"bicubic"`` (Pillow's, which smooths when it shrinks, as torchvision's PIL path).
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bilinear"):
        self.size = pair(size, "size", "RandomResizedCrop", 1)
        self.scale = _range(scale, "scale", "RandomResizedCrop", bound=(1e-12, math.inf))
        self.ratio = _range(ratio, "ratio", "RandomResizedCrop", bound=(1e-12, math.inf))
        self.interpolation = interpolation
        self._resample = _resampling(interpolation, "RandomResizedCrop")

    def crop_box(self, height, width, rng):
        """``(top, left, h, w)`` of one crop, drawn as torchvision's ``get_params``."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                return top, int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, images, rng):
        _check_batch(images, "RandomResizedCrop")
        batch, height, width, channels = images.shape
        out = np.empty((batch, *self.size, channels), dtype=np.uint8)
        for k in range(batch):
            top, left, h, w = self.crop_box(height, width, rng)
            # Cropped first, then resized (as torchvision): the filter sees no pixel
            # outside the crop.
            crop = np.ascontiguousarray(images[k, top:top + h, left:left + w])
            picture = _to_pil(crop).resize((self.size[1], self.size[0]), self._resample)
            out[k] = _from_pil(picture, channels)
        return out

    def __repr__(self):
        return (f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio="
                f"{tuple(round(r, 4) for r in self.ratio)}, interpolation={self.interpolation!r})")


class RandomRotation:
    """Rotate each image by an angle drawn uniformly from ``degrees`` (a number ``d``:
    ``(-d, d)``), counter-clockwise for positive angles, about ``center`` (default the
    image's centre), keeping its size; corners are filled with ``fill``
    (``torchvision.transforms.RandomRotation``; ``expand`` is not offered, since every
    image of a batch keeps one size)."""

    def __init__(self, degrees, interpolation="nearest", center=None, fill=0):
        self.degrees = _range(degrees, "degrees", "RandomRotation", center=0.0,
                              bound=(-math.inf, math.inf))
        self.interpolation = interpolation
        self._resample = _resampling(interpolation, "RandomRotation")
        self.center = None if center is None else tuple(center)
        self.fill = fill

    def __call__(self, images, rng):
        _check_batch(images, "RandomRotation")
        channels = images.shape[3]
        fill = self.fill if isinstance(self.fill, (tuple, list)) else (self.fill,) * channels
        fill = fill[0] if channels == 1 else tuple(int(v) for v in fill)
        out = np.empty_like(images)
        for k in range(images.shape[0]):
            angle = rng.uniform(*self.degrees)
            picture = _to_pil(images[k]).rotate(angle, self._resample, expand=False,
                                                center=self.center, fillcolor=fill)
            out[k] = _from_pil(picture, channels)
        return out

    def __repr__(self):
        return (f"RandomRotation(degrees={self.degrees}, interpolation={self.interpolation!r}, "
                f"fill={self.fill})")


class ColorJitter:
    """Randomly change brightness, contrast, saturation and hue, in a random order per
    image (``torchvision.transforms.ColorJitter``).

    ``brightness``, ``contrast``, ``saturation``: a number ``v`` draws a factor from
    ``[max(0, 1 - v), 1 + v]`` (or give ``(low, high)``); ``hue``: ``h`` in [0, 0.5]
    draws a shift of the hue circle from ``[-h, h]``. Pillow's ImageEnhance does the
    first three, an HSV round trip the hue, as torchvision's PIL path. Grey images get
    brightness and contrast only; an alpha channel is kept as it is.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        who = "ColorJitter"
        self.brightness = _range(brightness, "brightness", who, center=1.0)
        self.contrast = _range(contrast, "contrast", who, center=1.0)
        self.saturation = _range(saturation, "saturation", who, center=1.0)
        self.hue = _range(hue, "hue", who, bound=(-0.5, 0.5))

    def _adjust(self, picture, which, factor):
        from PIL import ImageEnhance
        if which == 0:
            return ImageEnhance.Brightness(picture).enhance(factor)
        if which == 1:
            return ImageEnhance.Contrast(picture).enhance(factor)
        if picture.mode == "L":  # grey: no colour to saturate or turn
            return picture
        if which == 2:
            return ImageEnhance.Color(picture).enhance(factor)
        from PIL import Image
        h, s, v = picture.convert("HSV").split()
        shifted = (np.asarray(h, dtype=np.uint8).astype(np.int64) + int(factor * 255)) % 256
        h = Image.fromarray(shifted.astype(np.uint8), "L")
        return Image.merge("HSV", (h, s, v)).convert("RGB")

    def __call__(self, images, rng):
        _check_batch(images, "ColorJitter")
        channels = images.shape[3]
        colour = images[..., :3] if channels == 4 else images
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        neutral = (1.0, 1.0, 1.0, 0.0)
        out = images.copy()
        for k in range(images.shape[0]):
            order = rng.permutation(4)
            factors = [rng.uniform(*r) for r in ranges]
            picture = _to_pil(np.ascontiguousarray(colour[k]))
            for which in order:
                if ranges[which] != (neutral[which], neutral[which]):
                    picture = self._adjust(picture, which, factors[which])
            out[k, ..., :colour.shape[3]] = _from_pil(picture, colour.shape[3])
        return out

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel of a float ``(B, C, H, W)`` batch
    (``torchvision.transforms.Normalize``, which also takes float tensors only).

    For float images in a ``TensorDataset``; an ``ImageDataset`` normalises its uint8
    images itself (its ``mean`` and ``std``), after the other transforms.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean and std need one value per channel each, got "
                             f"{self.mean.size} and {self.std.size}")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must not be 0, got {self.std.tolist()}")

    def __call__(self, images, rng=None):
        images = np.asarray(images)
        if images.dtype.kind != "f":
            raise TypeError(f"Normalize expects float images (B, C, H, W), got dtype "
                            f"{images.dtype}; uint8 images in an ImageDataset are normalised "
                            f"by the dataset (its mean and std)")
        if images.ndim != 4 or images.shape[1] not in (1, self.mean.size):
            raise ValueError(f"Normalize: expected a batch (B, C, H, W) with C = "
                             f"{self.mean.size}, got shape {images.shape}")
        mean = self.mean.astype(images.dtype)[:, None, None]
        std = self.std.astype(images.dtype)[:, None, None]
        return (images - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"
