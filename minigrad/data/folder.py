"""Image folders: one subfolder per class, decoded once into a compact uint8 array.

``root/bee/001.jpg, root/wasp/xyz.png, ...``: class names are the subfolder names,
sorted, and label ``k`` is the ``k``-th name. Every file is decoded with Pillow,
converted to RGB (16- and 32-bit greyscale scaled down to 8 bits first) and
resized once; afterwards epochs only index the in-memory uint8 array. An
optional on-disk cache (``cache=True`` or a folder) keeps the decoded array
between runs, keyed by the files' names, sizes and modification times, by the
image size and by the label order, so any change to the folder rebuilds it (and
replaces the stale file).

:func:`load_image_folder` also understands a folder already split into
``train/`` and ``val/`` (or ``valid/``, ``validation/``, ``test/``) subfolders.
"""
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import io as mg_io
from ..utils import pair
from .dataset import (IMAGENET_MEAN, IMAGENET_STD, ImageDataset, check_val_fraction,
                      train_val_split)
from .progress import progress_bar

__all__ = ["ImageFolder", "load_image_folder", "find_split_folders", "default_cache_dir",
           "save_image_folder", "MISSING_DATA_HINT"]

#: What to tell a user whose data path does not exist.
MISSING_DATA_HINT = (
    "Expected a folder with one subfolder of images per class (or train/ and val/ "
    "folders of those); the course's bee-vs-wasp photos can be downloaded with "
    "minigrad.data.download_bee_vs_wasp(dest) (needs network).")

# Sub-folder names that mark a folder as already split, validation names in order
# of preference (a "test" folder is used for validation only when no "val" exists).
TRAIN_NAMES = ("train", "training")
VAL_NAMES = ("val", "valid", "validation", "test", "testing")

_CACHE_VERSION = 2


def default_cache_dir():
    """``$MINIGRAD_CACHE``, else ``$XDG_CACHE_HOME/minigrad``, else ``~/.cache/minigrad``."""
    if os.environ.get("MINIGRAD_CACHE"):
        return Path(os.environ["MINIGRAD_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "minigrad"


def holds_data(name):
    """False for folder entries that are never data: hidden ones (.DS_Store,
    .ipynb_checkpoints, editor swap files) and the ``__MACOSX`` folder of resource
    forks that zip archives made on a Mac carry."""
    return not name.startswith(".") and name != "__MACOSX"


def _missing_path_error(root, what="image folder"):
    return FileNotFoundError(f"{what} {str(root)!r} does not exist. {MISSING_DATA_HINT}")


def _scan(root, classes=None):
    """(class names, [(relative path, label, size, mtime_ns), ...]) in a stable order."""
    root = Path(root)
    if not root.exists():
        raise _missing_path_error(root)
    if not root.is_dir():
        raise NotADirectoryError(f"image folder {str(root)!r} is a file, not a folder of "
                                 f"class subfolders")
    found = sorted(entry.name for entry in os.scandir(root)
                   if entry.is_dir() and holds_data(entry.name))
    if classes is None:
        if not found:
            raise ValueError(f"image folder {str(root)!r} has no class subfolders: put "
                             f"the images of each class in their own subfolder "
                             f"(e.g. {root}/bee/, {root}/wasp/)")
        classes = found
    else:
        classes = [str(c) for c in classes]
        missing = [c for c in classes if c not in found]
        extra = [c for c in found if c not in classes]
        if missing or extra:
            raise ValueError(f"image folder {str(root)!r} does not hold the expected "
                             f"classes {classes}: missing {missing}, unexpected {extra}")
    files = []
    for label, name in enumerate(classes):
        class_dir = root / name
        for folder, subdirs, names in os.walk(class_dir):
            subdirs[:] = sorted(d for d in subdirs if holds_data(d))
            for file_name in sorted(names):
                if not holds_data(file_name):
                    continue
                path = Path(folder) / file_name
                try:
                    stat = path.stat()
                except OSError:
                    continue  # a dangling link; reported nowhere, it holds no data
                files.append((path.relative_to(root).as_posix(), label, stat.st_size,
                              stat.st_mtime_ns))
    return classes, files


def _to_8_bits(image):
    """16- and 32-bit greyscale as an 8-bit "L" image; other modes unchanged.

    Pillow's ``convert("RGB")`` clips such pixels at 255 instead of scaling them,
    so a mid-grey 16-bit PNG would come out white. ``I`` images whose values fit
    in 16 bits (how some formats deliver 16-bit files) are scaled as 16-bit ones.
    """
    from PIL import Image
    if image.mode.startswith("I;16"):
        pixels, shift = np.asarray(image), 8
    elif image.mode == "I":
        pixels = np.asarray(image)
        shift = 8 if pixels.size == 0 or pixels.max() <= 0xFFFF else 23  # 31 bits -> 8
    else:
        return image
    pixels = np.clip(pixels, 0, None) >> shift
    return Image.fromarray(pixels.astype(np.uint8), "L")


def _decode(path, size):
    """One image as uint8 (H, W, 3), or None when Pillow cannot read it."""
    from PIL import Image
    height, width = size
    try:
        with Image.open(path) as image:
            image = _to_8_bits(image).convert("RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except Exception:  # Pillow raises many kinds for broken or non-image files
        return None


class ImageFolder(ImageDataset):
    """An image folder decoded into memory: ``ImageFolder("data/bee_vs_wasp")``.

    Parameters
    ----------
    root : folder with one subfolder per class (nested folders inside a class are
        read too; hidden files and folders are ignored)
    size : ``(height, width)`` or an int; every image is resized to it
    mean, std : per-channel normalisation (the exercise's ImageNet values by default)
    transform : batch augmentation, see :mod:`minigrad.data.transforms`
    classes : expected class names in label order (default: the sorted subfolders);
        used to give a validation folder the same labels as its training folder
    cache : ``False`` (default), ``True`` (:func:`default_cache_dir`) or a folder
        for the decoded-array cache
    workers : decoding threads (Pillow releases the GIL while decoding)
    progress : show a progress bar while decoding

    Files Pillow cannot read are skipped with one warning that counts them and
    names a few; they are listed in :attr:`skipped`. A class with no readable
    image, or a folder with none at all, is an error.
    """

    def __init__(self, root, size=(80, 80), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 transform=None, classes=None, cache=False, workers=None, progress=False):
        self.root = Path(root)
        size = pair(size, "size", "ImageFolder", 1)
        class_names, files = _scan(self.root, classes)
        images, labels, paths, skipped, cached = None, None, None, None, None
        cache_path = self._cache_path(cache, class_names, files, size)
        if cache_path is not None:
            cached = _read_cache(cache_path)
            if cached is not None:
                images, labels, paths, skipped = cached
        if images is None:
            images, labels, paths, skipped = _decode_all(self.root, files, size, workers,
                                                         progress)
        self.paths = paths
        self.skipped = skipped
        if skipped:
            shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
            warnings.warn(f"{self.root}: skipped {len(skipped)} file"
                          f"{'s' if len(skipped) != 1 else ''} that "
                          f"{'are' if len(skipped) != 1 else 'is'} not a readable image "
                          f"({shown})", stacklevel=2)
        counts = np.bincount(labels, minlength=len(class_names)) if len(labels) else \
            np.zeros(len(class_names), dtype=np.int64)
        if counts.sum() == 0:
            raise ValueError(f"image folder {str(self.root)!r} contains no readable "
                             f"images (classes: {', '.join(class_names)})")
        empty = [name for name, count in zip(class_names, counts) if count == 0]
        if empty:
            raise ValueError(f"image folder {str(self.root)!r}: class folder"
                             f"{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                             f"contain{'' if len(empty) > 1 else 's'} no readable images")
        if cache_path is not None and cached is None:
            _write_cache(cache_path, images, labels, paths, skipped)
        self.cache_path = cache_path
        super().__init__(images, labels, class_names, mean=mean, std=std,
                         transform=transform)

    @property
    def samples(self):
        """``[(path, label), ...]`` of the images kept (PyTorch's name)."""
        return [(str(self.root / p), int(label)) for p, label in zip(self.paths, self.labels)]

    def _cache_path(self, cache, classes, files, size):
        """``imagefolder-NAME-WHICH-CONTENT.npz``: WHICH hashes the folder's path, the
        image size and a label order other than the sorted one, CONTENT the class
        names and every file's name, size and modification time.

        A new CONTENT replaces the cache of the same WHICH (see
        :func:`_remove_stale_caches`). ``classes=`` in another order labels the
        same files otherwise: such runs keep a cache of their own instead of
        deleting each other's. The sorted order (the default; ``_scan`` takes only
        the folder's full set of classes) stays out of WHICH, so a class folder
        added or removed replaces the cache.
        """
        if cache is False or cache is None:
            return None
        folder = default_cache_dir() if cache is True else Path(cache)
        root = self.root.resolve()
        which_key = [_CACHE_VERSION, str(root), list(size)]
        if classes != sorted(classes):  # only then: the default's caches keep their names
            which_key.append(list(classes))
        which = _digest(which_key, 12)
        content = _digest([classes, [list(f) for f in files]], 16)
        return folder / f"imagefolder-{root.name}-{which}-{content}.npz"


def _digest(value, length):
    return hashlib.sha256(json.dumps(value).encode("utf-8")).hexdigest()[:length]


def _decode_all(root, files, size, workers, progress):
    """Decode every file; (images, labels, kept paths, skipped paths)."""
    paths = [f[0] for f in files]
    labels = np.array([f[1] for f in files], dtype=np.int64)
    workers = workers or min(8, os.cpu_count() or 1)
    height, width = size
    images = np.empty((len(files), height, width, 3), dtype=np.uint8)
    ok = np.zeros(len(files), dtype=bool)
    bar = progress_bar(total=len(files), desc="decoding images", unit="img",
                       disable=None if progress else True)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            decoded = pool.map(lambda p: _decode(root / p, size), paths, chunksize=64)
            for i, image in enumerate(decoded):
                if image is not None:
                    images[i] = image
                    ok[i] = True
                bar.update(1)
    finally:
        bar.close()
    skipped = [p for p, good in zip(paths, ok) if not good]
    if not ok.all():
        images, labels = images[ok], labels[ok]
        paths = [p for p, good in zip(paths, ok) if good]
    return images, labels, paths, skipped


def _read_cache(path):
    """The cached (images, labels, paths, skipped), or None if absent or unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return (z["images"], z["labels"].astype(np.int64), z["paths"].tolist(),
                    z["skipped"].tolist())
    except Exception:
        return None  # a damaged or foreign file: decode again and overwrite it


def _write_cache(path, images, labels, paths, skipped):
    """Write the cache file, then remove the stale ones of the same folder and size."""
    arrays = {"images": images, "labels": labels,
              "paths": np.array(paths, dtype=str),
              "skipped": np.array(skipped, dtype=str) if skipped else np.zeros(0, dtype="<U1")}
    try:
        mg_io.atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError as exc:  # a read-only cache folder must not stop training
        warnings.warn(f"could not write the image cache {path}: {exc}", stacklevel=3)
        return
    _remove_stale_caches(path)


def _remove_stale_caches(path):
    """Delete the other cache files of ``path``'s folder, image size and label order.

    They describe an earlier state of the folder, which no run can use again.
    Safe with concurrent runs: a run whose file vanishes before it is read
    decodes the images again (see :func:`_read_cache`). The temporary files of
    writes in progress start with a dot and never match.
    """
    prefix = path.name.rsplit("-", 1)[0] + "-"  # imagefolder-NAME-WHICH-
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(prefix) and entry.name.endswith(".npz") \
                and entry.name != path.name:
            try:
                os.unlink(entry.path)
            except OSError:
                pass  # gone already, or in use (Windows): it only costs disk space


def find_split_folders(root):
    """``(train_dir, val_dir)`` if ``root`` is already split, else ``None``.

    Already split means ``root`` has a ``train`` (or ``training``) subfolder and a
    ``val``/``valid``/``validation``/``test``/``testing`` one, each holding class
    subfolders.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    names = {entry.name.lower(): entry.name for entry in os.scandir(root) if entry.is_dir()}
    train = next((names[n] for n in TRAIN_NAMES if n in names), None)
    val = next((names[n] for n in VAL_NAMES if n in names), None)
    if train is None or val is None:
        return None

    def has_class_dirs(folder):
        return any(e.is_dir() and holds_data(e.name) for e in os.scandir(folder))

    if not (has_class_dirs(root / train) and has_class_dirs(root / val)):
        return None
    return root / train, root / val


def load_image_folder(root, size=(80, 80), val_fraction=0.2, seed=123, cache=False,
                      mean=IMAGENET_MEAN, std=IMAGENET_STD, progress=False):
    """The exercise's data: ``(train_set, val_set)`` from one image folder.

    A folder with ``train/`` and ``val/`` (or ``test/``, ...) subfolders is taken
    as already split; the validation folder gets the training folder's class
    names and labels. Any other folder is decoded once and split by
    :func:`random_split` into ``1 - val_fraction`` / ``val_fraction`` with ``seed``
    (the exercise: 80/20, seed 123).
    """
    root = Path(root)
    if not root.exists():
        raise _missing_path_error(root, "data folder")
    split = find_split_folders(root)
    options = dict(size=size, mean=mean, std=std, cache=cache, progress=progress)
    if split is not None:
        train_set = ImageFolder(split[0], **options)
        val_set = ImageFolder(split[1], classes=train_set.classes, **options)
        return train_set, val_set
    check_val_fraction(val_fraction)  # before the (slow) decoding
    full = ImageFolder(root, **options)
    return train_val_split(full, val_fraction, seed, what=f"image folder {str(root)!r}")


def save_image_folder(dataset, root, image_format="png"):
    """Write an :class:`ImageDataset` out as an image folder (one subfolder per class).

    Useful to look at a generated set or to hand it to another tool. Returns the
    root as a ``Path``.
    """
    from PIL import Image
    root = Path(root)
    images = dataset.images if hasattr(dataset, "images") else None
    if images is None:
        raise TypeError("save_image_folder needs a dataset with uint8 .images and .labels")
    labels = np.asarray(dataset.labels)
    counters = {}
    for image, label in zip(images, labels):
        name = dataset.classes[int(label)]
        index = counters.get(name, 0)
        counters[name] = index + 1
        if index == 0:
            (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / name / f"{index:05d}.{image_format}")
    for name in dataset.classes:  # a class without samples still gets its folder
        (root / name).mkdir(parents=True, exist_ok=True)
    return root
