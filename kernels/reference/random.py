"""Counter-based random numbers: dropout masks that the CPU and the GPU draw alike.

Element ``i`` of a mask drawn at stream position ``offset`` gets the 64 bits

    bits = mix64(mix64(seed) + (offset + i) * GOLDEN_GAMMA)      (mod 2**64)

where ``mix64`` is the splitmix64 finaliser. The bits depend only on
``(seed, offset + i)``: there is no generator state, so ``kernels/cuda/random.cu``
computes the very same bits on the GPU (and can inside a replayed CUDA graph), and
two masks drawn at offsets ``a`` and ``a + size`` never share a counter. An element
is kept when the top 32 bits are ``>= drop_threshold(p)``, an integer comparison,
so keep/drop agrees bit for bit between devices.
"""
import math

import numpy as np

GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_UINT64_MOD = 1 << 64


def as_uint64(value):
    """An integer seed or offset as the uint64 both devices hash (negatives wrap)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"seed and offset must be integers, got {value!r}")
    return int(value) % _UINT64_MOD


def mix64(z):
    """The splitmix64 finaliser on a uint64 array (arithmetic wraps mod 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def hash_bits(seed, offset, count):
    """The 64 random bits of counters ``offset .. offset + count - 1`` for ``seed``."""
    key = mix64(np.array([as_uint64(seed)], dtype=np.uint64))[0]
    counters = np.arange(count, dtype=np.uint64) + np.uint64(as_uint64(offset))
    return mix64(key + counters * np.uint64(GOLDEN_GAMMA))


def drop_threshold(p):
    """Elements whose top 32 random bits fall below this integer are dropped."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    return int(round(p * 2.0 ** 32))


def keep_scale(p, dtype):
    """The value of a kept element, 1 / (1 - p), in ``dtype`` (0 when p == 1: all dropped)."""
    return np.dtype(dtype).type(0.0 if p == 1 else 1.0 / (1.0 - p))


def mask_dtype(dtype):
    """Check that a mask dtype is a floating type; return it as a NumPy dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dropout_mask: dtype must be a floating type, got {dtype}")
    return dtype


def mask_shape(shape):
    """A mask shape as a tuple of non-negative ints (an int means a 1-D shape)."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(int(d) < 0 for d in shape):
        raise ValueError(f"dropout_mask: negative dimension in shape {shape}")
    return tuple(int(d) for d in shape)


def dropout_mask(shape, p, seed, offset, dtype):
    """A dropout mask: 1/(1-p) where an element is kept, 0 where it is dropped.

    Each element is dropped with probability ``p``; the mask uses stream positions
    ``offset .. offset + size - 1`` of ``seed`` (C order), so the caller advances its
    offset by the mask's size to get an independent next mask.
    """
    shape, dtype = mask_shape(shape), mask_dtype(dtype)
    threshold = drop_threshold(p)
    size = math.prod(shape)
    keep = (hash_bits(seed, offset, size) >> np.uint64(32)) >= np.uint64(threshold)
    mask = np.where(keep, keep_scale(p, dtype), dtype.type(0))
    return mask.astype(dtype, copy=False).reshape(shape)
