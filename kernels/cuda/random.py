"""Dropout masks on the GPU from the counter-based hash of kernels.reference.random.

Same seed and offset, same mask, bit for bit, as the NumPy reference.
"""
import contextlib

import numpy as np

from .._xp import FLOAT_DTYPES
from ..reference.random import (as_uint64, drop_threshold, keep_scale, mask_dtype,
                                mask_shape)
from .compile import cp, grid_1d, kernel, launch

_SOURCE = "random.cu"

# (device base, host origin) while offsets_on_device() is active, else None.
_device_base = None


@contextlib.contextmanager
def offsets_on_device(base, origin):
    """Draw masks at device positions while capturing a CUDA graph.

    Inside this context a host ``offset`` given to :func:`dropout_mask` means stream
    position ``base[0] + (offset - origin)``, read on the device: ``base`` is a
    one-element uint64 CuPy array and ``origin`` the host offset it stands for. A
    captured graph then draws fresh masks on each replay once the caller moves
    ``base`` on (inside the graph, or before each launch), while the code that asks
    for masks keeps passing plain host offsets.
    """
    global _device_base
    _check_device_offset(base)
    previous, _device_base = _device_base, (base, as_uint64(origin))
    try:
        yield
    finally:
        _device_base = previous


def _check_device_offset(offset):
    if offset.size != 1 or offset.dtype != np.uint64:
        raise TypeError("dropout_mask: a device offset must be a one-element uint64 "
                        f"array, got dtype {offset.dtype} and shape {offset.shape}")


def dropout_mask(shape, p, seed, offset, dtype):
    """A dropout mask: 1/(1-p) where an element is kept, 0 where it is dropped.

    Uses stream positions ``offset .. offset + size - 1`` of ``seed``. ``offset`` may
    also be a one-element uint64 CuPy array: the kernel then reads it on the device,
    so a captured CUDA graph draws a fresh mask on each replay once the caller
    advances that array (by the mask size) inside the graph. Inside
    :func:`offsets_on_device`, host offsets count from that context's device base.
    """
    shape, dtype = mask_shape(shape), mask_dtype(dtype)
    threshold = drop_threshold(p)
    if dtype not in FLOAT_DTYPES:  # no kernel for it (float16): the float32 mask's
        # pattern, which is the same hash, at this dtype's own rounding of 1/(1-p)
        kept = dropout_mask(shape, p, seed, offset, np.float32) != 0
        return kept.astype(dtype) * keep_scale(p, dtype)
    mask = cp.empty(shape, dtype=dtype)
    if isinstance(offset, cp.ndarray):
        _check_device_offset(offset)
        offset_ptr, on_device, offset_host = offset, 1, 0
    elif _device_base is not None:
        base, origin = _device_base
        distance = as_uint64(offset) - origin
        if distance < 0:
            raise ValueError(f"dropout_mask: offset {offset} is before the origin {origin} "
                             "of the device offsets in use")
        offset_ptr, on_device, offset_host = base, 1, distance
    else:
        offset_ptr, on_device, offset_host = mask, 0, as_uint64(offset)
    launch(kernel(_SOURCE, "dropout_mask", dtype), grid_1d(mask.size),
           (mask, np.int64(mask.size), np.uint64(as_uint64(seed)), offset_ptr,
            np.int32(on_device), np.uint64(offset_host), np.uint64(threshold),
            np.float64(keep_scale(p, np.float64))))
    return mask
