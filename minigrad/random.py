"""Seeded random state: one generator for initialisation, one counter for dropout.

``manual_seed(seed)`` makes weight initialisation and dropout masks repeat exactly.
Dropout masks come from a counter-based hash (seed, offset) so the CPU and GPU give the
same masks and no device RNG call is needed inside a captured CUDA graph.
"""
import numpy as np

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
