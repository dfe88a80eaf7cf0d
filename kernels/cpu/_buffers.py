"""Reusable big arrays: the same shapes come back every training step.

Allocating a fresh 30-60 MB array costs page faults on first touch (a few ms per
step on this model), so the CPU kernels take their outputs and scratch arrays from a
pool. A pooled array is handed out again only when nothing outside the pool refers
to it any more (its reference count is back to the pool's own), so an output that a
Tensor, a cache or a user still holds is never overwritten: reuse is safe without
anyone having to give buffers back.
"""
import math
import sys
import threading
from collections import OrderedDict

import numpy as np

# Arrays smaller than this come from NumPy's allocator directly: pooling pays only
# where page faults dominate.
MIN_POOLED_BYTES = 1 << 20
# Pooled memory kept at most (the exercise CNN at batch 32 pools ~240 MiB:
# ``POOL.pooled_bytes`` after three training steps); beyond it, idle arrays of the
# least recently used shapes are dropped first.
MAX_POOLED_BYTES = 512 << 20
# Arrays of one (tag, shape, dtype) kept at most (two graphs alive at once is common:
# a training graph and an evaluation forward).
MAX_PER_KEY = 3


def _refcount_of_slot(arrays, i):
    return sys.getrefcount(arrays[i])


# The count a pooled array has when only the pool's list refers to it, measured
# the same way it is measured below (robust to the interpreter's own bookkeeping).
_IDLE_REFCOUNT = _refcount_of_slot([np.empty(1)], 0)


class BufferPool:
    """Hands out arrays of a requested (tag, shape, dtype), reusing idle ones."""

    def __init__(self, max_bytes=MAX_POOLED_BYTES, max_per_key=MAX_PER_KEY):
        self.max_bytes = max_bytes
        self.max_per_key = max_per_key
        self._arrays = OrderedDict()  # key -> list of arrays, least recently used first
        self._bytes = 0
        self._lock = threading.Lock()

    def empty(self, tag, shape, dtype):
        """An uninitialised C-contiguous array; never one that someone still holds."""
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        # math.prod: np.prod is slow a call (shape-product in benchmarks/README.md)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < MIN_POOLED_BYTES:
            return np.empty(shape, dtype)
        key = (tag, shape, dtype.str)
        with self._lock:
            arrays = self._arrays.get(key)
            if arrays is None:
                arrays = self._arrays[key] = []
            self._arrays.move_to_end(key)
            for i in range(len(arrays)):
                if _refcount_of_slot(arrays, i) == _IDLE_REFCOUNT:
                    return arrays[i]
            array = np.empty(shape, dtype)
            if len(arrays) < self.max_per_key:
                arrays.append(array)
                self._bytes += nbytes
                self._evict()
            return array

    def _evict(self):
        """Drop idle arrays of the least recently used keys until under the byte cap."""
        for key in list(self._arrays):
            if self._bytes <= self.max_bytes:
                return
            arrays = self._arrays[key]
            kept = []
            for i in range(len(arrays)):
                if _refcount_of_slot(arrays, i) == _IDLE_REFCOUNT:
                    self._bytes -= arrays[i].nbytes
                else:
                    kept.append(arrays[i])
            if kept:
                self._arrays[key] = kept
            else:
                del self._arrays[key]

    def clear(self):
        """Forget every pooled array (held ones stay valid for their holders)."""
        with self._lock:
            self._arrays.clear()
            self._bytes = 0

    @property
    def pooled_bytes(self):
        """Bytes the pool keeps (idle or handed out)."""
        return self._bytes


POOL = BufferPool()
