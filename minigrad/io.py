"""Atomic file writing, and a safe container for nested training state.

Every checkpoint, weight file and result table in minigrad goes through
:func:`atomic_write`: the bytes go to a temporary file in the destination's own
folder, are flushed and fsync'ed, and only then renamed over the destination with
``os.replace`` (atomic on POSIX and Windows). A run killed half-way through a write
leaves the previous file intact and at most a stray ``.tmp`` file beside it.
The new file gets the permissions the old one had (or, for a new file, what
``open()`` would give it under the process's umask), not ``mkstemp``'s 0600.

:func:`save_tree` / :func:`load_tree` store a nested structure of dicts, lists,
tuples, scalars, strings and arrays (a model's and an optimizer's state, a
history, RNG states) in one ``.npz`` file: the arrays as NumPy arrays, the rest as
JSON. Loading never unpickles, so a checkpoint from elsewhere cannot run code.

:func:`save_weights` / :func:`load_weights` store a flat state dict (name -> array)
in the format the file name's suffix names, looked up in :data:`WEIGHT_FORMATS`;
a suffix it does not list is refused rather than written in another format.
"""
import io
import json
import math
import os
import stat
import tempfile
import threading

import numpy as np

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "to_json_value",
           "current_umask", "save_tree", "load_tree", "WEIGHT_FORMATS", "save_weights",
           "load_weights"]


def atomic_write(path, write_fn):
    """Write a file atomically: ``write_fn(f)`` fills an open binary file object.

    The data lands in a temporary file in the same folder (so the final rename
    never crosses file systems), is fsync'ed, then renamed over ``path``. If
    ``write_fn`` raises, the temporary file is removed and ``path`` is untouched.
    Missing parent folders are created. The file keeps the mode of the file it
    replaces; a new file gets ``0o666 & ~umask``, as ``open(path, "w")`` would.
    Returns ``path`` as a string.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp always creates 0600
        os.replace(tmp, path)
    except BaseException:
        # BaseException too: a Ctrl-C during the write must not leave the temp file.
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)
    return path


def _mode_for(path):
    """Permission bits for a file written to ``path``: those of the file already
    there, else what ``open()`` would create (``0o666`` less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode) & 0o777  # no setuid/setgid/sticky
    except OSError:  # no such file (or unreadable metadata): a new file's default
        return 0o666 & ~current_umask()


_UMASK_LOCK = threading.Lock()


def current_umask():
    """The process's umask, read without changing it where the OS allows.

    Linux reports it in ``/proc/self/status`` (kernel 4.7+), which is both
    thread-safe and free of side effects. Elsewhere the only portable way is to
    set a umask and put the old one back; that briefly changes a process-wide
    setting, so it runs under a lock (which protects our own concurrent writers,
    though not foreign threads creating files in that instant) and restrictively
    (0o077), so that a file created by another thread meanwhile is too private
    rather than too open.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX only; a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path, text, encoding="utf-8"):
    """Atomically write a string to ``path``."""
    return atomic_write(path, lambda f: f.write(text.encode(encoding)))


def atomic_write_json(path, obj, indent=2):
    """Atomically write ``obj`` as strict JSON.

    NumPy (and CuPy) scalars and arrays become numbers and lists. NaN and the
    infinities, which JSON has no words for (Python would write the bare tokens
    ``NaN``/``Infinity`` that other parsers reject), become ``null``; a reader
    of a numeric field maps ``null`` back to NaN (``History.load`` does).
    """
    text = json.dumps(to_json_value(obj), indent=indent, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def to_json_value(obj):
    """``obj`` with NumPy/CuPy values made plain and non-finite floats made ``None``
    (recursively through dicts, lists and tuples); anything JSON cannot hold is a
    ``TypeError`` naming its type."""
    if isinstance(obj, dict):
        return {key: to_json_value(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_value(value) for value in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):  # bool is an int
        return obj
    if isinstance(obj, (np.generic, np.ndarray)):
        return to_json_value(obj.tolist())
    if hasattr(obj, "get") and hasattr(obj, "shape"):  # a CuPy array
        return to_json_value(obj.get().tolist())
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


# ---------------------------------------------------------------------------
# Nested state in one .npz: arrays stored natively, the skeleton as JSON.

_TREE_FORMAT = "minigrad-tree"
_TREE_VERSION = 1


def save_tree(path, tree):
    """Atomically save a nested structure of dicts/lists/tuples/scalars/arrays.

    Arrays (NumPy or CuPy; CuPy ones are copied to the host) are stored as
    ``.npz`` members; dict keys may be strings, ints, floats, bools or None and
    keep their type, tuples stay tuples. Anything else is a ``TypeError`` naming
    where in the tree it sits.
    """
    arrays = {}
    skeleton = _encode(tree, arrays, "tree")
    header = json.dumps({"format": _TREE_FORMAT, "version": _TREE_VERSION,
                         "tree": skeleton})
    members = {"__tree__": np.frombuffer(header.encode("utf-8"), dtype=np.uint8)}
    members.update(arrays)
    return atomic_write(path, lambda f: np.savez(f, **members))


def load_tree(path):
    """Load a structure written by :func:`save_tree` (arrays come back as NumPy)."""
    path = os.fspath(path)
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array
        raise ValueError(f"{path} is not a minigrad state file (a single array, not an "
                         ".npz archive)")
    with loaded as archive:
        if "__tree__" not in archive.files:
            raise ValueError(f"{path} is not a minigrad state file (no '__tree__' entry)")
        header = json.loads(archive["__tree__"].tobytes().decode("utf-8"))
        if header.get("format") != _TREE_FORMAT:
            raise ValueError(f"{path}: unknown format {header.get('format')!r}")
        if header.get("version", 0) > _TREE_VERSION:
            raise ValueError(f"{path} was written by a newer minigrad "
                             f"(format version {header['version']})")
        return _decode(header["tree"], archive)


def _encode(obj, arrays, where):
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) or (hasattr(obj, "get") and hasattr(obj, "dtype")
                                       and hasattr(obj, "shape")):
        array = obj if isinstance(obj, np.ndarray) else obj.get()
        if array.dtype == object:
            raise TypeError(f"{where}: object arrays cannot be saved safely")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {"__array__": name}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, np.generic):
                key = key.item()
            if not (key is None or isinstance(key, (bool, int, float, str))):
                raise TypeError(f"{where}: dict key {key!r} of type "
                                f"{type(key).__name__} cannot be saved")
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]")])
        return {"__dict__": items}
    raise TypeError(f"{where}: cannot save an object of type {type(obj).__name__}")


def _decode(node, archive):
    if isinstance(node, list):
        return [_decode(v, archive) for v in node]
    if isinstance(node, dict):
        if "__array__" in node:
            return archive[node["__array__"]]
        if "__tuple__" in node:
            return tuple(_decode(v, archive) for v in node["__tuple__"])
        return {key: _decode(value, archive) for key, value in node["__dict__"]}
    return node


# ---------------------------------------------------------------------------
# Weight files: a state dict in the format the suffix names.

def _save_npz(path, state):
    buffer = io.BytesIO()  # rendered first, so the atomic write is one quick copy
    np.savez(buffer, **state)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _load_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} holds a single array, not an .npz archive of weights")
        return {key: archive[key] for key in archive.files}


def _save_safetensors(path, state):
    from .extras import require
    data = require("safetensors.numpy", "saving .safetensors files", "safetensors").save(
        state, metadata={"format": "pt"})  # the metadata PyTorch's own files carry
    atomic_write(path, lambda f: f.write(data))


def _load_safetensors(path):
    from .extras import require
    return require("safetensors.numpy", "loading .safetensors files",
                   "safetensors").load_file(os.fspath(path))


#: Weight-file formats by suffix (lower case, with the dot): ``(save(path, state),
#: load(path) -> state)``. A format is one entry here; a name without a suffix is
#: ``.npz`` (NumPy's archive, which ``np.load`` reads). ``.safetensors`` is PyTorch's
#: and Hugging Face's shared format (a JSON header and raw little-endian arrays, nothing
#: to unpickle), with PyTorch's key names as the state dict has them.
WEIGHT_FORMATS = {".npz": (_save_npz, _load_npz),
                  ".safetensors": (_save_safetensors, _load_safetensors)}


def _weight_format(path, verb):
    """The ``(save, load)`` pair for ``path``'s suffix; a suffix no format has is a
    ``ValueError`` that names the known ones (never a file in another format)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower() or ".npz"
    if suffix not in WEIGHT_FORMATS:
        known = ", ".join(sorted(WEIGHT_FORMATS))
        stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
        raise ValueError(f"cannot {verb} weights as {suffix!r} ({os.fspath(path)}): minigrad "
                         f"knows the formats {known}; name the file by one of them, e.g. "
                         f"{stem}.npz")
    return WEIGHT_FORMATS[suffix]


def save_weights(path, state):
    """Write a state dict (name -> array or Tensor, on any device) to ``path``
    atomically, in the format its suffix names (see :data:`WEIGHT_FORMATS`). Returns
    ``path``."""
    from .utils import as_numpy
    arrays = {str(key): np.asarray(as_numpy(value), order="C")
              for key, value in state.items()}
    _weight_format(path, "save")[0](path, arrays)
    return path


def load_weights(path):
    """Read a state dict (an ordered dict of NumPy arrays) written by
    :func:`save_weights`, ``np.savez`` or ``safetensors.torch.save_file`` (the format
    from the suffix)."""
    from collections import OrderedDict
    return OrderedDict(_weight_format(path, "load")[1](path).items())
