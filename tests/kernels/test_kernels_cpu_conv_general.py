"""The Numba kernels for grouped, dilated and transposed convolutions
(kernels/cpu/conv_general.py) against the reference, on odd shapes and mixes of
stride, padding, dilation and groups, batch size 1 included."""
import numpy as np
import pytest

import minigrad as mg
from kernels.cpu import KERNELS as FAST
from kernels.cpu import conv_general
from kernels.reference import KERNELS as REFERENCE
from kernels.reference.windows import col2im, im2col
from minigrad import backend
from minigrad import functional as F

CASES = [  # (n, c, h, w, out, (kh, kw), stride, padding, dilation, groups)
    (1, 3, 7, 5, 3, (3, 3), (1, 1), (1, 1), (2, 2), 3),
    (2, 4, 9, 8, 6, (2, 3), (2, 1), (0, 2), (1, 3), 2),
    (3, 6, 5, 11, 6, (3, 1), (1, 3), (2, 0), (2, 1), 6),
    (1, 2, 6, 6, 4, (1, 1), (2, 2), (0, 0), (1, 1), 2),
    (2, 4, 13, 7, 8, (4, 2), (3, 2), (3, 1), (1, 2), 1),
]


def _inputs(rng, case, dtype):
    n, c, h, w, o, (kh, kw), _, _, _, g = case
    return (rng.standard_normal((n, c, h, w)).astype(dtype),
            rng.standard_normal((o, c // g, kh, kw)).astype(dtype),
            rng.standard_normal(o).astype(dtype))


def _tolerance(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_general_conv_matches_the_reference(rng, case, dtype):
    x, w, b = _inputs(rng, case, dtype)
    geometry = case[6:]
    for bias in (b, None):
        y, cache = FAST["conv2d_general_forward"](x, w, bias, *geometry)
        y_ref, cache_ref = REFERENCE["conv2d_general_forward"](x, w, bias, *geometry)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, y_ref, **_tolerance(dtype))
        gy = rng.standard_normal(y.shape).astype(dtype)
        got = FAST["conv2d_general_backward"](gy, cache, True)
        want = REFERENCE["conv2d_general_backward"](gy, cache_ref, True)
        for a, e in zip(got, want):
            assert (a is None) == (e is None)
            if a is not None:
                assert a.dtype == dtype
                np.testing.assert_allclose(a, e, **_tolerance(dtype))
    assert FAST["conv2d_general_backward"](gy, cache, False)[0] is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_transposed_conv_matches_the_reference(rng, case, dtype):
    n, c, h, wd, o, (kh, kw), stride, padding, dilation, groups = case
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((c, o // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    output_padding = [min(s, d) - 1 for s, d in zip(stride, dilation)]
    out_hw = [F.conv_transpose_output_size(size, k, s, p, op, d) for size, k, s, p, op, d in
              zip((h, wd), (kh, kw), stride, padding, output_padding, dilation)]
    if min(out_hw) < 1:
        pytest.skip("padding leaves no output for this case")
    args = (stride, padding, dilation, groups, out_hw)
    y, cache = FAST["conv_transpose2d_forward"](x, w, b, *args)
    y_ref, cache_ref = REFERENCE["conv_transpose2d_forward"](x, w, b, *args)
    np.testing.assert_allclose(y, y_ref, **_tolerance(dtype))
    gy = rng.standard_normal(y.shape).astype(dtype)
    for a, e in zip(FAST["conv_transpose2d_backward"](gy, cache, True),
                    REFERENCE["conv_transpose2d_backward"](gy, cache_ref, True)):
        np.testing.assert_allclose(a, e, **_tolerance(dtype))


@pytest.mark.parametrize("case", CASES)
def test_dilated_im2col_and_col2im_match_the_reference_windows(rng, case):
    n, c, h, w, _, kernel, stride, padding, dilation, _ = case
    x = rng.standard_normal((n, c, h, w))
    cols_ref = im2col(x, kernel, stride, padding, dilation=dilation)
    oh, ow = cols_ref.shape[-2:]
    cols = conv_general.im2col(x, kernel, stride, padding, dilation, (oh, ow))
    np.testing.assert_array_equal(cols, cols_ref.reshape(cols.shape))
    back = conv_general.col2im(cols, x.shape, kernel, stride, padding, dilation, (oh, ow))
    np.testing.assert_allclose(back, col2im(cols_ref, x.shape, stride, padding, dilation),
                               rtol=1e-12, atol=1e-12)


def test_half_precision_falls_back_to_the_reference(rng):
    x, w, b = _inputs(rng, CASES[0], np.float16)
    y, cache = FAST["conv2d_general_forward"](x, w, b, *CASES[0][6:])
    assert y.dtype == np.float16
    gx, gw, gb = FAST["conv2d_general_backward"](np.ones_like(y), cache, True)
    assert gx.shape == x.shape and gw.shape == w.shape


def test_plain_convolution_keeps_the_tuned_kernels(monkeypatch):
    """groups 1 and dilation 1 must go to conv2d_forward (kernels/cpu/conv.py), not the
    general kernels; anything else to the general ones."""
    asked = []
    real = backend.kernels

    def recording(*names, device):
        asked.extend(names)
        return real(*names, device=device)
    monkeypatch.setattr(backend, "kernels", recording)
    x, w = mg.tensor(np.ones((1, 4, 6, 6), np.float32)), mg.tensor(np.ones((4, 4, 3, 3), np.float32))
    F.conv2d(x, w, None, 1, 1)
    assert asked == ["conv2d_forward", "conv2d_backward"]
    asked.clear()
    F.conv2d(x, mg.tensor(np.ones((4, 2, 3, 3), np.float32)), None, 1, 1, 1, 2)
    F.conv2d(x, w, None, 1, 2, 2)
    assert asked == ["conv2d_general_forward", "conv2d_general_backward"] * 2
