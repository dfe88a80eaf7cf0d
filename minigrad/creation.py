"""Making tensors: ``tensor`` (a copy, as ``torch.tensor``), ``as_tensor`` and
``from_numpy`` (sharing memory where they can), and ``constant_like``, which wraps
a number or an array that an op combines with a tensor."""
import numpy as np

from . import backend
from .dtypes import is_number_like, scalar_result_dtype
from .tensor import Tensor


def _array_for(data, device, dtype, copy):
    """The backend array ``tensor`` and ``as_tensor`` wrap (see their docstrings)."""
    device = backend.check_device(device)
    if isinstance(data, Tensor):
        data = data.data
    is_array = hasattr(data, "dtype") and hasattr(data, "shape")
    if dtype is None:
        if is_array:
            dtype = data.dtype
            if dtype.kind == "f" and dtype.itemsize < 4:
                dtype = np.float32
        else:
            probe = np.asarray(data)
            dtype = np.float32 if probe.dtype.kind == "f" else probe.dtype
            if probe.dtype.kind in "iu":
                dtype = np.int64
    xp = backend.xp_for(device)
    if is_array and backend.device_of(data) != device:
        data = backend.to_device(data, device)  # a copy already
        copy = False
    # xp.array copies (and casts in the same pass); xp.asarray copies only to cast.
    return xp.array(data, dtype=dtype) if copy else xp.asarray(data, dtype=dtype)


def tensor(data, requires_grad=False, device="cpu", dtype=None):
    """Make a Tensor from a list, scalar, NumPy/CuPy array or Tensor: always a copy.

    As ``torch.tensor``, the new tensor never shares memory with ``data`` (changing
    the array afterwards leaves the tensor alone; a Tensor given is copied and cut
    from its graph). Use :func:`as_tensor` or :func:`from_numpy` to wrap an array
    without copying it (data loaders, hot paths).

    Floating data becomes float32 unless it is already a float64 array (kept, for
    gradient checks) or ``dtype`` says otherwise; integer data becomes int64 unless it
    is already an integer array (kept: uint8 images stay uint8).
    """
    array = _array_for(data, device, dtype, copy=True)
    if requires_grad and array.dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require grad, got {array.dtype}")
    return Tensor(array, requires_grad)


def as_tensor(data, dtype=None, device="cpu"):
    """``data`` as a Tensor, sharing its memory where it can (``torch.as_tensor``).

    A Tensor already of that dtype and device is returned as it is; an array of the
    right dtype on the right device is wrapped without a copy (so a change to one
    shows in the other); anything else is converted, as :func:`tensor` does.
    """
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype) \
            and backend.check_device(device) == data.device:
        return data
    return Tensor(_array_for(data, device, dtype, copy=False))


def from_numpy(array):
    """A CPU Tensor sharing ``array``'s memory and dtype (``torch.from_numpy``)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a NumPy array, got {type(array).__name__}")
    return Tensor(array)


def constant_like(value, like):
    """Wrap a constant (a number or an array) as a Tensor beside ``like``, no copy.

    A number takes ``scalar_result_dtype(like.dtype, value)`` (``like`` itself is
    promoted by the op, see ``functional._operands``); an array keeps its dtype.
    """
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "shape") and not isinstance(value, np.generic) \
            and backend.device_of(value) != like.device:
        raise ValueError(f"an array on {backend.device_of(value)} cannot be combined with "
                         f"a tensor on {like.device}; move one with .to()")
    if is_number_like(value):
        dtype = scalar_result_dtype(like.dtype, value)
        return Tensor(backend.xp_for(like.device).asarray(value, dtype=dtype))
    return as_tensor(value, device=like.device)
