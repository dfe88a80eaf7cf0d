"""Winograd F(2x2, 3x3) convolutions and batch slices on threads (kernels.cpu) against
the plain NumPy reference: odd sizes, every padding mix, batch size 1, each fused
activation, float32 and float64; the adjoint identities in float64; how the
algorithm is chosen; threaded slices giving the same numbers as one thread.
"""
import numpy as np
import pytest

pytest.importorskip("numba", reason="Numba (a declared dependency) is not installed")

import kernels.reference as ref  # noqa: E402
from kernels.cpu import _threads, conv, winograd  # noqa: E402

TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}

# (N, C, H, W, out, padding, bias, activation)
CASES = [
    (2, 3, 7, 9, 4, (1, 1), True, None),
    (1, 2, 5, 6, 3, (0, 0), False, "relu"),     # batch 1, no padding
    (3, 4, 8, 8, 5, (2, 1), True, "tanh"),      # padding wider than the kernel's half
    (2, 3, 6, 7, 2, (1, 0), True, "sigmoid"),
    (1, 5, 3, 3, 2, (0, 0), True, None),        # a single output pixel
    (2, 17, 11, 4, 6, (1, 2), False, "relu"),   # odd everything
    (1, 1, 1, 1, 1, (1, 1), True, None),        # a 1x1 image, all padding
    (2, 2, 4, 13, 3, (0, 1), True, "relu"),
]


@pytest.fixture
def winograd_everywhere(monkeypatch):
    monkeypatch.setenv("MINIGRAD_CONV_ALGO", "winograd")


def _close(actual, expected, dtype, scale):
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"p{c[5]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_winograd_matches_reference(case, dtype, winograd_everywhere):
    n, c, h, w, out, padding, bias, activation = case
    rng = np.random.default_rng(sum(case[:5]))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((out, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(out).astype(dtype) if bias else None
    y, cache = conv.conv2d_forward(x, weight, b, (1, 1), padding, activation)
    assert isinstance(cache, winograd.WinogradCache)
    y_ref, cache_ref = ref.KERNELS["conv2d_forward"](x, weight, b, (1, 1), padding, activation)
    assert y.shape == y_ref.shape and y.dtype == dtype
    _close(y, y_ref, dtype, np.sqrt(c * 9))
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = conv.conv2d_backward(gy, cache, True)
    gx_ref, gw_ref, gb_ref = ref.KERNELS["conv2d_backward"](gy, cache_ref, True)
    assert gx.shape == x.shape and gw.shape == weight.shape
    assert gx.dtype == gw.dtype == dtype
    _close(gx, gx_ref, dtype, np.sqrt(out * 9))
    _close(gw, gw_ref, dtype, np.sqrt(n * h * w))
    if bias:
        assert gb.dtype == dtype
        _close(gb, gb_ref, dtype, np.sqrt(n * h * w))
    else:
        assert gb is None
    gx_none, gw_again, _ = conv.conv2d_backward(gy, cache, False)
    assert gx_none is None
    np.testing.assert_array_equal(gw_again, gw)


def test_winograd_backward_is_the_adjoint(winograd_everywhere):
    """<conv(x), gy> = <x, gx> = <w, gw>, and gb is gy summed: no reference needed."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    weight = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    y, cache = conv.conv2d_forward(x, weight, None, (1, 1), (1, 0))
    gy = rng.standard_normal(y.shape)
    gx, gw, _ = conv.conv2d_backward(gy, cache, True)
    inner = float((y * gy).sum())
    assert np.isclose(inner, float((x * gx).sum()), rtol=1e-12)
    assert np.isclose(inner, float((weight * gw).sum()), rtol=1e-12)
    _, cache = conv.conv2d_forward(x, weight, b, (1, 1), (1, 0))
    _, _, gb = conv.conv2d_backward(gy, cache, False)
    np.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_winograd_float32_error_against_float64_on_a_wide_layer(winograd_everywhere):
    """64 input channels (the exercise's conv3): float32 Winograd stays as close to the
    float64 result as float32 im2col does, within a small factor."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 64, 10, 10))
    weight = rng.standard_normal((8, 64, 3, 3)) * 0.05
    exact, _ = ref.KERNELS["conv2d_forward"](x, weight, None, (1, 1), (1, 1))
    fast, _ = conv.conv2d_forward(x.astype(np.float32), weight.astype(np.float32), None,
                                  (1, 1), (1, 1))
    plain, _ = ref.KERNELS["conv2d_forward"](x.astype(np.float32),
                                             weight.astype(np.float32), None, (1, 1), (1, 1))
    scale = np.abs(exact).max()
    err_fast = np.abs(fast - exact).max() / scale
    err_plain = np.abs(plain - exact).max() / scale
    assert err_fast < 1e-5 and err_fast < 8 * max(err_plain, 1e-7)


@pytest.mark.parametrize("setting, shape, stride, expected", [
    ("auto", ((2, 32, 8, 8), (4, 32, 3, 3)), (1, 1), "im2col"),      # too little work
    ("auto", ((2, 32, 8, 8), (4, 32, 3, 3)), (2, 1), "im2col"),      # strided
    ("auto", ((2, 32, 8, 8), (4, 32, 5, 5)), (1, 1), "im2col"),      # not 3x3
    ("im2col", ((2, 32, 8, 8), (4, 32, 3, 3)), (1, 1), "im2col"),
    ("winograd", ((2, 3, 8, 8), (4, 3, 3, 3)), (1, 1), "winograd"),
    ("winograd", ((2, 3, 8, 8), (4, 3, 3, 1)), (1, 1), "im2col"),    # does not apply
    ("winograd", ((2, 0, 8, 8), (4, 0, 3, 3)), (1, 1), "im2col"),    # no input channels
])
def test_algorithm_choice(monkeypatch, setting, shape, stride, expected):
    monkeypatch.setenv("MINIGRAD_CONV_ALGO", setting)
    never = lambda algo: pytest.fail("no measurement expected")  # noqa: E731
    assert conv.algorithm(*shape, stride, trial=never) == expected


@pytest.mark.parametrize("faster", ["im2col", "winograd"])
def test_auto_measures_each_geometry_once_and_keeps_the_faster(monkeypatch, faster):
    monkeypatch.setenv("MINIGRAD_CONV_ALGO", "auto")
    monkeypatch.setattr(conv, "_measured", {})
    monkeypatch.setattr(conv, "MEASURE_MIN_WORK", 1)
    tried = []

    def trial(algo):
        tried.append(algo)
        return 1.0 if algo == faster else 2.0
    shape = ((2, 32, 8, 8), (4, 32, 3, 3))
    assert conv.algorithm(*shape, (1, 1), (1, 1), trial=trial) == faster
    assert conv.algorithm(*shape, (1, 1), (1, 1), trial=trial) == faster
    assert sorted(tried) == ["im2col", "winograd"]  # measured once
    # another geometry (here: no padding) is measured on its own
    assert conv.algorithm(*shape, (1, 1), (0, 0), trial=trial) == faster
    assert len(tried) == 4
    assert set(conv.measured_choices().values()) == {faster}
    # without a trial, an unmeasured geometry takes the exact path
    assert conv.algorithm((3, 32, 8, 8), (4, 32, 3, 3), (1, 1), (1, 1)) == "im2col"


def test_auto_really_times_both_algorithms_on_a_real_call(monkeypatch):
    """The first call of a geometry worth measuring runs both algorithms (on at most
    MEASURE_IMAGES images), records a choice, and returns the same numbers as either."""
    monkeypatch.setenv("MINIGRAD_CONV_ALGO", "auto")
    monkeypatch.setattr(conv, "_measured", {})
    monkeypatch.setattr(conv, "MEASURE_MIN_WORK", 1)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((11, 16, 7, 9)).astype(np.float32)
    weight = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    y, cache = conv.conv2d_forward(x, weight, b, (1, 1), (1, 1), "relu")
    [(key, chosen)] = conv.measured_choices().items()
    assert key[0] == x.shape and chosen in ("im2col", "winograd")
    assert isinstance(cache, winograd.WinogradCache) == (chosen == "winograd")
    expected, _ = ref.KERNELS["conv2d_forward"](x.astype(np.float64), weight.astype(np.float64),
                                                b.astype(np.float64), (1, 1), (1, 1), "relu")
    np.testing.assert_allclose(y, expected, rtol=2e-4, atol=2e-4)


def test_algorithm_setting_rejects_unknown_names():
    assert conv.algorithm_setting({}) == "auto"
    assert conv.algorithm_setting({"MINIGRAD_CONV_ALGO": " Im2Col "}) == "im2col"
    with pytest.raises(ValueError, match="MINIGRAD_CONV_ALGO"):
        conv.algorithm_setting({"MINIGRAD_CONV_ALGO": "fft"})


@pytest.mark.parametrize("algo", ["im2col", "winograd"])
def test_slices_on_threads_match_one_thread(monkeypatch, algo):
    """Many one-image slices shared by three threads give one thread's numbers."""
    monkeypatch.setenv("MINIGRAD_CONV_ALGO", algo)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 4, 9, 6))
    weight = rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5)
    gy = rng.standard_normal((7, 5, 9, 6))
    results = {}
    for threads in (1, 3):
        monkeypatch.setattr(_threads, "THREADS", threads)
        y, cache = conv.conv2d_forward(x, weight, b, (1, 1), (1, 1), "relu")
        results[threads] = [y.copy()] + [g.copy() for g in conv.conv2d_backward(gy, cache, True)]
        del y, cache
    for a, e in zip(results[3], results[1]):
        np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)


def test_an_error_in_a_slice_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(_threads, "THREADS", 2)
    seen = []

    def work(lo, hi):
        seen.append(lo)
        if lo == 2:
            raise RuntimeError("slice 2 failed")
    with pytest.raises(RuntimeError, match="slice 2 failed"):
        _threads.run_slices(work, [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert 2 in seen
