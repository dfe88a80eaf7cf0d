"""The CPU kernels' threads (kernels/cpu/_threads.py) and the matrix product that
splits its work over them (kernels/cpu/linalg.py), against one thread and NumPy."""
import numpy as np
import pytest

import minigrad as mg
from minigrad._kernels import kernel_module

_threads = kernel_module("cpu._threads")
linalg = kernel_module("cpu.linalg")


def test_thread_count_setting():
    assert _threads.choose_threads({}, cores=6) == 6
    assert _threads.choose_threads({"MINIGRAD_NUM_THREADS": "1"}, cores=6) == 1
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="MINIGRAD_NUM_THREADS"):
            _threads.choose_threads({"MINIGRAD_NUM_THREADS": bad}, cores=2)


def test_batch_slices_give_every_thread_a_slice(monkeypatch):
    monkeypatch.setattr(_threads, "THREADS", 2)
    # 32 images whose data fits one chunk still make two slices, one per thread
    assert _threads.batch_slices(32, 1, 1 << 20) == [(0, 16), (16, 32)]
    # large images: slices of at most the chunk, whatever the thread count
    assert _threads.batch_slices(5, 1 << 20, 2 << 20) == [(0, 2), (2, 4), (4, 5)]
    assert _threads.batch_slices(1, 10, 1 << 20) == [(0, 1)]
    assert _threads.batch_slices(0, 10, 1 << 20) == []


@pytest.mark.skipif(_threads._BLAS is None or _threads.PARALLEL,
                    reason="needs OpenBLAS and serial Numba kernels")
def test_set_num_threads_holds_openblas_to_one_thread_and_gives_it_back():
    get_blas, _ = _threads._BLAS
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(1)
        found = get_blas()
        mg.set_num_threads(3)
        assert mg.get_num_threads() == 3 and get_blas() == 1
        mg.set_num_threads(1)
        assert mg.get_num_threads() == 1 and get_blas() == found
    finally:
        mg.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_set_num_threads_rejects_what_is_not_a_positive_count(bad):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        mg.set_num_threads(bad)


@pytest.mark.parametrize("shapes", [
    ((37, 11), (11, 5)),       # rows split: more rows than columns
    ((3, 13), (13, 29)),       # columns split
    ((1, 7), (7, 40)),         # one row (batch size 1)
    ((2, 5, 9, 6), (6, 7)),    # a stack of matrices times one matrix
    ((0, 4), (4, 3)),          # no rows
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_in_blocks_matches_numpy(monkeypatch, shapes, dtype):
    monkeypatch.setattr(_threads, "THREADS", 3)
    monkeypatch.setattr(linalg, "PARALLEL_MIN_WORK", 1)
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.standard_normal(shapes[1]).astype(dtype)
    out = linalg.matmul(a, b)
    expected = np.matmul(a, b)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_matmul_of_transposed_views_and_other_dtypes(monkeypatch):
    monkeypatch.setattr(_threads, "THREADS", 2)
    monkeypatch.setattr(linalg, "PARALLEL_MIN_WORK", 1)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((31, 9)).T  # a transposed view, as a layer's weight.T
    x = rng.standard_normal((4, 31)).T
    np.testing.assert_allclose(linalg.matmul(w, x), w @ x, rtol=1e-12)
    ints = np.arange(12).reshape(3, 4)
    assert linalg.matmul(ints, ints.T).dtype == (ints @ ints.T).dtype  # NumPy's own path
    np.testing.assert_array_equal(linalg.matmul(ints, ints.T), ints @ ints.T)
    mixed = linalg.matmul(w.astype(np.float32), x)  # float32 @ float64: NumPy promotes
    assert mixed.dtype == np.float64
    np.testing.assert_allclose(linalg.matmul(x[:, 0], w.T), x[:, 0] @ w.T, rtol=1e-12)  # 1-D
    with pytest.raises(ValueError):
        linalg.matmul(w, w)
