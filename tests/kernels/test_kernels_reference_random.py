"""The counter-based dropout hash of kernels.reference.random (the CPU ground truth)."""
import numpy as np
import pytest

from kernels.reference import KERNELS
from kernels.reference.random import (as_uint64, drop_threshold, dropout_mask, hash_bits,
                                      mix64)


def _mix64_by_hand(z):
    """splitmix64's finaliser in Python integers, written out from its definition."""
    mask = (1 << 64) - 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_registered_in_the_reference_table():
    assert KERNELS["dropout_mask"] is dropout_mask


def test_hash_is_splitmix64_of_seed_and_counter():
    seed, offset = 2 ** 63 + 12345, 2 ** 64 - 2  # the counters wrap past 2**64
    key = _mix64_by_hand(seed)
    expected = [_mix64_by_hand((key + ((offset + i) % 2 ** 64) * 0x9E3779B97F4A7C15)
                               % 2 ** 64) for i in range(5)]
    assert [int(v) for v in hash_bits(seed, offset, 5)] == expected
    assert int(mix64(np.array([0], dtype=np.uint64))[0]) == 0  # 0 is splitmix64's fixed point


def test_fraction_kept_is_about_one_minus_p():
    n = 200_000
    for p in (0.1, 0.5, 0.8):
        mask = dropout_mask((n,), p, seed=3, offset=0, dtype=np.float32)
        kept = np.count_nonzero(mask) / n
        # Binomial standard deviation sqrt(p (1-p) / n) < 0.0012: 5 sigma is 0.006.
        assert abs(kept - (1 - p)) < 0.006, (p, kept)


def test_kept_values_are_scaled_so_the_mean_is_preserved():
    p = 0.25
    mask = dropout_mask((4, 50_000), p, seed=1, offset=0, dtype=np.float64)
    assert set(np.unique(mask)) <= {0.0, 1 / (1 - p)}
    assert mask.dtype == np.float64 and mask.shape == (4, 50_000)
    assert abs(mask.mean() - 1.0) < 0.01


def test_same_seed_and_offset_give_the_same_mask():
    a = dropout_mask((31, 17), 0.5, seed=42, offset=1000, dtype=np.float32)
    b = dropout_mask((31, 17), 0.5, seed=42, offset=1000, dtype=np.float32)
    np.testing.assert_array_equal(a, b)


def test_different_offsets_or_seeds_give_different_masks():
    base = dropout_mask((1000,), 0.5, seed=42, offset=0, dtype=np.float32)
    next_mask = dropout_mask((1000,), 0.5, seed=42, offset=1000, dtype=np.float32)
    other_seed = dropout_mask((1000,), 0.5, seed=43, offset=0, dtype=np.float32)
    # Independent fair coins agree on about half the elements, not on nearly all.
    assert np.mean(base == next_mask) < 0.6
    assert np.mean(base == other_seed) < 0.6


def test_a_mask_is_a_window_of_the_stream():
    """Element i of a mask at offset k is counter k + i: masks tile the stream."""
    whole = dropout_mask((30,), 0.5, seed=9, offset=100, dtype=np.float32)
    first = dropout_mask((2, 5), 0.5, seed=9, offset=100, dtype=np.float32)
    rest = dropout_mask((20,), 0.5, seed=9, offset=110, dtype=np.float32)
    np.testing.assert_array_equal(np.concatenate([first.ravel(), rest]), whole)


def test_extreme_probabilities():
    assert np.all(dropout_mask((100,), 0.0, 1, 0, np.float32) == 1.0)
    assert np.all(dropout_mask((100,), 1.0, 1, 0, np.float32) == 0.0)
    assert drop_threshold(0.5) == 2 ** 31 and drop_threshold(1.0) == 2 ** 32


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="probability"):
        dropout_mask((3,), 1.5, 0, 0, np.float32)
    with pytest.raises(TypeError, match="floating"):
        dropout_mask((3,), 0.5, 0, 0, np.int32)
    with pytest.raises(TypeError, match="integers"):
        dropout_mask((3,), 0.5, 0.5, 0, np.float32)
    assert as_uint64(-1) == 2 ** 64 - 1  # negative seeds wrap, as on the GPU
