"""Devices: which array module holds the data, and which kernel table computes on it.

``"cpu"`` arrays are NumPy arrays, ``"cuda"`` arrays are CuPy arrays. Each device
has one kernel table (name -> function), filled from ``kernels.reference`` and
overridden by the device's fast kernels (``kernels.cpu``: Numba, ``kernels.cuda``:
CUDA), unless ``MINIGRAD_KERNELS=reference`` asks for the plain path.
"""
import contextlib
import os
import warnings

import numpy as np

from ._kernels import kernel_module

DEVICES = ("cpu", "cuda")

_cupy = None
_cupy_error = None
_tables = {}
_capturing = False


def _load_cupy():
    """Import CuPy once; remember why it failed so the error can say so."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy
            _cupy = cupy
        except Exception as exc:  # ImportError, or a broken CUDA install
            _cupy_error = exc
    return _cupy


def cuda_available():
    """True when CuPy imports and sees at least one CUDA GPU."""
    cupy = _load_cupy()
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def check_device(device):
    """Normalise a device name; raise a clear error for an unknown or unusable one."""
    device = str(device).lower()
    if device.startswith("cuda:"):  # "cuda:0" as PyTorch users write it
        device = "cuda"
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {DEVICES}")
    if device == "cuda" and not cuda_available():
        if _load_cupy() is None:
            raise RuntimeError(
                "device 'cuda' needs CuPy, which is not installed "
                f"({_cupy_error}). Install the GPU extra matching your CUDA: "
                "pip install 'minigrad[cuda12]' or 'minigrad[cuda13]'")
        raise RuntimeError("device 'cuda': CuPy is installed but finds no CUDA GPU "
                           "(check the NVIDIA driver and CUDA_VISIBLE_DEVICES)")
    return device


def device_of(array):
    """The device an array lives on."""
    if isinstance(array, np.ndarray) or _cupy is None:
        return "cpu"
    return "cuda" if isinstance(array, _cupy.ndarray) else "cpu"


def is_array(value):
    """True for a NumPy or CuPy array: not a Tensor, a list, a number or a NumPy scalar.
    CuPy is recognised by its module name, so asking never imports it."""
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy")


def xp_for(device):
    """The array module of a device: ``numpy`` or ``cupy``."""
    if device == "cpu":
        return np
    check_device(device)
    return _cupy


def array_module(array):
    """The array module an array belongs to."""
    return xp_for(device_of(array))


def to_device(array, device):
    """Copy an array to a device, C-ordered (a no-op when it is already there).

    ``cupy.asarray`` and ``.get()`` keep a Fortran-ordered array Fortran-ordered, and
    the fused CUDA optimizer updates take C-contiguous arrays only; so the array is
    put in C order on its own device first: free when it already is, else one copy
    there on top of the transfer's (``copy(order="C")``, not ``ascontiguousarray``,
    which would turn a 0-d array into a 1-d one).
    """
    if device_of(array) == device:
        return array
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    if device == "cpu":
        return array.get()
    return xp_for(device).asarray(array)


def to_numpy(array):
    """A NumPy array of ``array``: itself if NumPy, a host copy if CuPy, else ``np.asarray``.

    Anything array-like (a list, a scalar, a CPU torch tensor) goes through
    ``np.asarray``; CuPy is looked up only for values that are not NumPy arrays.
    """
    if isinstance(array, np.ndarray):
        return array
    cupy = _load_cupy()
    if cupy is not None and isinstance(array, cupy.ndarray):
        return array.get()
    return np.asarray(array)


def host_copy(array):
    """A NumPy copy of an array from any device, sharing no memory with it: made in one
    copy (a CuPy array's host copy is new already), for state dicts and checkpoints."""
    if device_of(array) == "cuda":
        return array.get()
    return np.array(array, copy=True)


def scatter_add(array, index, values):
    """``array[index] += values`` in place, with repeated indices adding up."""
    if device_of(array) == "cpu":
        np.add.at(array, index, values)
    else:
        import cupyx
        cupyx.scatter_add(array, index, values)


def kernel_mode():
    """``"fast"`` (default, also when the variable is set but empty) or
    ``"reference"`` from the MINIGRAD_KERNELS variable."""
    mode = os.environ.get("MINIGRAD_KERNELS", "").strip().lower() or "fast"
    if mode not in ("fast", "reference"):
        raise ValueError(f"MINIGRAD_KERNELS={mode!r}; use 'fast' or 'reference'")
    return mode


def kernel_table(device, mode=None):
    """The kernel table (name -> function) of a device, built once per mode."""
    mode = mode or kernel_mode()
    key = (device, mode)
    if key not in _tables:
        table = dict(kernel_module("reference").KERNELS)
        if mode == "fast":
            table.update(_fast_kernels(device))
        _tables[key] = table
    return _tables[key]


def _fast_kernels(device):
    """The device's fast kernels; an empty table, with one warning saying why and what
    it costs, if its package cannot be imported (Numba missing or broken, say)."""
    try:
        KERNELS = kernel_module("cpu" if device == "cpu" else "cuda").KERNELS
    except ImportError as exc:
        # Everything still works, several times slower: a user should hear of it.
        warnings.warn(f"minigrad: the fast {device} kernels could not be loaded "
                      f"({type(exc).__name__}: {exc}); using the NumPy reference kernels, "
                      "several times slower. Install the declared dependencies (numba) "
                      "to get them back.", RuntimeWarning, stacklevel=3)
        return {}
    return KERNELS


def kernel(name, device):
    """The kernel ``name`` of ``device``'s table: ``kernel("matmul", x.device)``."""
    return kernels(name, device=device)[0]


def kernels(*names, device):
    """Several kernels by name, from one and the same table of ``device`` (keyword):
    ``forward, backward = kernels("conv2d_forward", "conv2d_backward", device=x.device)``.

    An op takes its forward and backward kernels together when its forward runs:
    the backward must read the cache its own table's forward wrote, even if
    ``MINIGRAD_KERNELS`` changes before backward runs. The device is required (no
    CPU default): a lookup that forgot it would silently run CUDA data on the CPU.
    """
    if device not in DEVICES:
        raise ValueError(f"backend.kernels: unknown device {device!r} (one of {DEVICES}); "
                         f"names come first, the device last: kernel(name, device), "
                         f"kernels(*names, device=device)")
    if not names:
        raise TypeError("backend.kernels: give at least one kernel name")
    table = kernel_table(device)
    try:
        return tuple(table[name] for name in names)
    except KeyError as exc:
        raise KeyError(f"backend.kernels: no kernel named {exc.args[0]!r} in the "
                       f"{device} table") from None


def is_capturing():
    """True inside :func:`capturing`: a CUDA graph of a step is being recorded."""
    return _capturing


@contextlib.contextmanager
def capturing():
    """Mark the recording of a CUDA graph (``minigrad.cuda``) for the ops.

    Inside, ops skip the checks that would read a device value back to the host
    (a capture cannot wait for the GPU); the matrix products choose their graph-safe
    kernel by themselves, from the stream's own capture state.
    """
    global _capturing
    previous, _capturing = _capturing, True
    try:
        yield
    finally:
        _capturing = previous


def available_memory(device):
    """Bytes a new allocation on ``device`` can use now, or ``None`` where unknown.

    ``"cpu"``: the kernel's MemAvailable (free plus reclaimable caches), else the
    physical memory; ``"cuda"``: the GPU's free memory plus what CuPy's pool holds.
    """
    if device == "cuda":
        cupy = _load_cupy()
        try:
            free, _ = cupy.cuda.Device().mem_info
            return int(free) + int(cupy.get_default_memory_pool().free_bytes())
        except Exception:  # no CuPy or no GPU: check_device says which
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def set_num_threads(threads):
    """Threads the CPU kernels spread their work over (as ``torch.set_num_threads``);
    the default is every core this process may use (``MINIGRAD_NUM_THREADS``)."""
    kernel_module("cpu._threads").set_num_threads(threads)


def get_num_threads():
    """Threads the CPU kernels spread their work over."""
    return kernel_module("cpu._threads").get_num_threads()
