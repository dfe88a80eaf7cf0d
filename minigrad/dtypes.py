"""Result dtypes, as torch gives them: tensors combined with tensors
(:func:`result_dtype`) and with Python or NumPy numbers (:func:`scalar_result_dtype`)."""
import numpy as np

from .tensor import Tensor

# torch's kinds of numbers, lowest first: a Python number of a higher kind than a
# tensor promotes it (to the kind's default dtype); one of the same or a lower kind
# takes the tensor's dtype (so x * 2.0 stays float32, and uint8 * 2 stays uint8).
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}
_KIND_DEFAULT_DTYPE = {1: np.dtype(np.int64), 2: np.dtype(np.float32)}


def is_scalar(value):
    """True for a Python or NumPy number (what torch calls a wrapped scalar)."""
    return isinstance(value, (bool, int, float, complex, np.number, np.bool_))


def is_number_like(value):
    """A number, or a 0-d NumPy/CuPy array of a real kind: what combines with a tensor
    by the rule for numbers (:func:`scalar_result_dtype`), as torch treats 0-d tensors.

    Without it, ``t_float32 * arr.mean()`` would stay float32 on the CPU (NumPy's
    reductions give scalars) but turn float64 on the GPU (CuPy's give 0-d arrays).
    """
    return is_scalar(value) or (getattr(value, "ndim", None) == 0 and not isinstance(value, Tensor)
                                and getattr(value, "dtype", None) is not None
                                and value.dtype.kind in "biuf")


def result_dtype(*dtypes):
    """The dtype torch gives tensors of ``dtypes`` combined: the highest kind (bool <
    integer < float) decides, and within that kind NumPy's promotion (so int64 with
    float32 is float32, not NumPy's float64)."""
    dtypes = [np.dtype(d) for d in dtypes]
    top = max(_KIND_RANK.get(d.kind, 3) for d in dtypes)
    return np.result_type(*[d for d in dtypes if _KIND_RANK.get(d.kind, 3) == top])


def scalar_result_dtype(dtype, value):
    """The dtype of a tensor of ``dtype`` combined with the number ``value``, as torch.

    int tensor * 0.5 -> float32; bool tensor * 2 -> int64; float32 tensor * 2.0 ->
    float32 (a Python float never widens a float tensor). A 0-d array of a higher
    kind gives its own dtype (torch's rule for 0-d tensors: int tensor * a 0-d
    float64 array -> float64); of the same or a lower kind, the tensor's.
    """
    rank = _KIND_RANK.get(_scalar_kind(value))
    if rank is None:
        raise TypeError(f"cannot combine a tensor with {value!r} of type "
                        f"{type(value).__name__}: minigrad handles real numbers only")
    if rank <= _KIND_RANK.get(np.dtype(dtype).kind, 2):
        return np.dtype(dtype)
    if not is_scalar(value):  # a 0-d array
        return np.dtype(value.dtype)
    return _KIND_DEFAULT_DTYPE[rank]


def _scalar_kind(value):
    """NumPy's kind letter of a number or 0-d array: "b", "i"/"u", "f" or "c"."""
    if not isinstance(value, (bool, int, float, complex)):  # NumPy or CuPy: its dtype
        return value.dtype.kind
    if isinstance(value, bool):  # before int: bool is an int
        return "b"
    if isinstance(value, int):
        return "i"
    return "f" if isinstance(value, float) else "c"
