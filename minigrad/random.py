"""Seeded random state: one generator for initialisation, one counter for dropout.

``manual_seed(seed)`` makes weight initialisation and dropout masks repeat exactly.
Dropout masks come from a counter-based hash (seed, offset) so the CPU and GPU give the
same masks and no device RNG call is needed inside a captured CUDA graph.
"""
import contextlib

import numpy as np

from ._kernels import kernel_module

_state = {"seed": 0, "rng": np.random.default_rng(0), "offset": 0}
_UINT64 = 1 << 64  # seeds live modulo 2**64, as torch's and the dropout hash's


def manual_seed(seed):
    """Reset every minigrad random stream from one integer seed.

    As ``torch.manual_seed``: any integer from ``-2**63`` to ``2**64 - 1``; a
    negative seed is taken modulo ``2**64`` (-1 is the seed ``2**64 - 1``).
    """
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"manual_seed: the seed must be an integer, got {seed!r}") from None
    if not -(1 << 63) <= value < _UINT64:
        raise ValueError(f"manual_seed: the seed must be in [-2**63, 2**64 - 1], got {value}")
    value %= _UINT64
    _state["seed"] = value
    _state["rng"] = np.random.default_rng(value)
    _state["offset"] = 0


def generator():
    """The NumPy Generator used for initialisation (always on the CPU)."""
    return _state["rng"]


def take_offsets(count):
    """Reserve ``count`` counter values of the dropout stream; returns (seed, first offset)."""
    first = _state["offset"]
    _state["offset"] += int(count)
    return _state["seed"], first


def get_state():
    """A picklable snapshot of the random state (for checkpoints)."""
    return {"seed": _state["seed"], "offset": _state["offset"],
            "rng": _state["rng"].bit_generator.state}


def set_state(state):
    """Restore a snapshot made by ``get_state``."""
    _state["seed"] = state["seed"]
    _state["offset"] = state["offset"]
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    _state["rng"] = rng


def replay_values(xp):
    """The dropout stream's position in a device array of array module ``xp``: how a
    CUDA graph draws fresh masks at every replay. The same protocol as an optimizer's
    :class:`minigrad.optim.replay.ReplayValues` (``recording``, ``sync``, ``advance``,
    ``still_valid``)."""
    return StreamReplayValues(xp)


class StreamReplayValues:
    """The dropout stream's position on the device, for a recorded CUDA graph.

    While :meth:`recording`, masks are drawn at a position read on the device, and
    the graph moves it past the values it used; the host's stream is left as it was
    (the recording runs no step). :meth:`sync` before a replay copies the host
    position when it moved (an eager step drew masks); :meth:`advance` after one
    moves the host stream as the replay moved the device's; :meth:`still_valid` is
    False once the seed changed (the graph drew with the old one).
    """

    def __init__(self, xp):
        self.offset = xp.zeros(1, dtype=np.uint64)
        scratch = xp.zeros(1, dtype=np.uint64)
        scratch += np.uint64(1)  # the in-place add recording() adds, loaded before a capture
        self.seed = None
        self.consumed = 0  # stream values one step draws
        self._mirror = None  # the position the device holds (None: not copied yet)

    @contextlib.contextmanager
    def recording(self):
        """Within: masks are drawn at device positions; on leaving, what the recorded step
        drew moves the device position on (recorded too)."""
        cuda_random = kernel_module("cuda.random")
        saved = get_state()
        self.seed, origin = take_offsets(0)
        try:
            with cuda_random.offsets_on_device(self.offset, origin):
                yield self
            self.consumed = take_offsets(0)[1] - origin
            if self.consumed:  # the next replay's masks start where these ended
                self.offset += np.uint64(self.consumed)
        finally:
            set_state(saved)  # the recording ran no step: it takes nothing

    def sync(self):
        """Copy the host's stream position to the device if it moved."""
        if self.consumed:
            position = take_offsets(0)[1]
            if position != self._mirror:
                self.offset.fill(position)
                self._mirror = position

    def advance(self):
        """Move the host's stream as a replay moved the device's."""
        if self.consumed:
            take_offsets(self.consumed)
            self._mirror += self.consumed

    def still_valid(self):
        """False when the seed changed since the recording (masks would repeat)."""
        return not self.consumed or take_offsets(0)[0] == self.seed
