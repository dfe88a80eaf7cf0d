"""Fused convolution + activation in the Numba CPU kernels (kernels.cpu.conv).

Against the reference kernel (kernels.reference.conv, the ground truth) on odd shapes
for every fusable activation; bit for bit against the CPU's own unfused conv followed
by the activation as a separate kernel (the CPU table's activation_forward/backward),
in one slice of the batch or several; saturation, NaN
and overflow at +-1e4 checked by hand on 1x1 convolutions whose output is the input;
unknown names; the float16 fallback; the cached output kept out of buffer reuse.
"""
import numpy as np
import pytest

pytest.importorskip("numba", reason="Numba (a declared dependency) is not installed")

import kernels.cpu as cpu  # noqa: E402
import kernels.reference as ref
from kernels.cpu import conv
from kernels.reference.activation import FUSABLE
from kernels.reference.windows import output_size

TOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = (np.float32, np.float64)

# (N, C, H, W, out, (kh, kw), stride, padding, bias)
CASES = [
    (1, 3, 7, 9, 4, (3, 3), (1, 1), (1, 1), True),
    (3, 5, 7, 9, 6, (1, 1), (2, 2), (0, 0), False),
    (3, 3, 7, 9, 5, (2, 3), (2, 1), (2, 1), True),
    (1, 5, 7, 9, 2, (3, 3), (2, 2), (2, 2), False),
    (3, 3, 9, 7, 3, (3, 3), (1, 2), (0, 1), True),
]


def close(actual, expected, dtype, scale):
    """rtol for the dtype, and an atol of the same size times the typical magnitude of
    a sum (values near zero come out of long sums with absolute, not relative, error)."""
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype] * scale)


def make(case, dtype, seed):
    """x, w, b (or None), and an upstream gradient, with pre-activations ~ N(0, 1) so
    that tanh and sigmoid see both their linear and their saturated parts."""
    n, c, h, w, out, kernel, stride, padding, bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((out, c) + kernel) / np.sqrt(c * kernel[0] * kernel[1])
    b = rng.standard_normal(out).astype(dtype) if bias else None
    oh = output_size(h, kernel[0], stride[0], padding[0])
    ow = output_size(w, kernel[1], stride[1], padding[1])
    gy = rng.standard_normal((n, out, oh, ow)).astype(dtype)
    return x, weight.astype(dtype), b, gy


@pytest.mark.parametrize("activation", FUSABLE)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[:5]}k{c[5]}s{c[6]}p{c[7]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fused_conv_matches_reference(case, dtype, activation):
    n, _, _, _, out, (kh, kw), stride, padding, bias = case
    x, w, b, gy = make(case, dtype, sum(case[:5]))
    y, cache = conv.conv2d_forward(x, w, b, stride, padding, activation)
    y_ref, cache_ref = ref.KERNELS["conv2d_forward"](x, w, b, stride, padding, activation)
    assert y.shape == y_ref.shape and y.dtype == dtype
    close(y, y_ref, dtype, scale=1.0)

    gx, gw, gb = conv.conv2d_backward(gy, cache, True)
    gx_ref, gw_ref, gb_ref = ref.KERNELS["conv2d_backward"](gy, cache_ref, True)
    assert gx.shape == x.shape and gw.shape == w.shape and gx.dtype == gw.dtype == dtype
    close(gx, gx_ref, dtype, scale=np.sqrt(out * kh * kw))
    sums = np.sqrt(n * y.shape[2] * y.shape[3])
    close(gw, gw_ref, dtype, scale=sums)
    if bias:
        assert gb.shape == (out,)
        close(gb, gb_ref, dtype, scale=sums)
    else:
        assert gb is None

    # Without the input gradient: the same weight and bias gradients, bit for bit.
    gx_none, gw_only, gb_only = conv.conv2d_backward(gy, cache, False)
    assert gx_none is None
    np.testing.assert_array_equal(gw_only, gw)
    if bias:
        np.testing.assert_array_equal(gb_only, gb)


def unfused_activation(activation, y):
    """The activation as a separate kernel after the conv (the CPU table's).
    Returns (output, backward) where backward(gy) is the pre-activation gradient."""
    out = cpu.KERNELS["activation_forward"](activation, y)
    return out, lambda gy: cpu.KERNELS["activation_backward"](activation, gy, out)


@pytest.mark.parametrize("activation", FUSABLE)
@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: f"{c[:5]}k{c[5]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("chunk_images", [None, 1, 2])
def test_fused_is_unfused_conv_then_activation_bit_for_bit(case, dtype, chunk_images,
                                                           activation, monkeypatch):
    """Same GEMMs, same elementwise arithmetic in the same order: only where the
    activation runs changes (ReLU against the CPU table's activation kernels)."""
    x, w, b, gy = make(case, dtype, 7)
    stride, padding = case[6], case[7]
    if chunk_images is not None:
        y0, cache0 = conv.conv2d_forward(x, w, b, stride, padding)
        monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_images * cache0.cols[0].nbytes)
        del y0, cache0
    y0, cache0 = conv.conv2d_forward(x, w, b, stride, padding)
    y_act, act_backward = unfused_activation(activation, y0)
    unfused = conv.conv2d_backward(act_backward(gy), cache0, True)

    y, cache = conv.conv2d_forward(x, w, b, stride, padding, activation)
    np.testing.assert_array_equal(y, y_act)
    fused = conv.conv2d_backward(gy, cache, True)
    for a, e in zip(fused, unfused):
        if e is None:
            assert a is None
        else:
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("activation", FUSABLE)
def test_fused_conv_in_batch_chunks_matches_whole_batch(activation, monkeypatch):
    """Slices of 2, 2 and 1 images (the last one shorter than the scratch buffer)."""
    case = (5, 3, 9, 7, 4, (3, 3), (1, 1), (1, 1), True)
    x, w, b, gy = make(case, np.float64, 10)
    y, cache = conv.conv2d_forward(x, w, b, (1, 1), (1, 1), activation)
    whole = [y.copy()] + [g.copy() for g in conv.conv2d_backward(gy, cache, True)]
    per_image = cache.cols[0].nbytes
    del y, cache
    monkeypatch.setattr(conv, "CHUNK_BYTES", 2 * per_image)
    assert conv._chunks(5, per_image) == [(0, 2), (2, 4), (4, 5)]
    y, cache = conv.conv2d_forward(x, w, b, (1, 1), (1, 1), activation)
    sliced = [y] + list(conv.conv2d_backward(gy, cache, True))
    for a, e in zip(sliced, whole):
        np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)
    y_ref, cache_ref = ref.KERNELS["conv2d_forward"](x, w, b, (1, 1), (1, 1), activation)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    for a, e in zip(sliced[1:], ref.KERNELS["conv2d_backward"](gy, cache_ref, True)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-11)


def identity_conv(values, dtype, activation):
    """A 1x1 convolution with weight 1 and no bias: its pre-activation is the input,
    exactly (one product by 1 per output)."""
    x = np.asarray(values, dtype).reshape(1, 1, 1, -1)
    return conv.conv2d_forward(x, np.ones((1, 1, 1, 1), dtype), None, (1, 1), (0, 0),
                               activation)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_saturation_nan_and_no_overflow_by_hand(dtype):
    values = [1e4, -1e4, 0.0, -0.0, np.nan, 0.5, -2.0]
    gy = np.full((1, 1, 1, len(values)), 3.0, dtype)
    expected = {
        # NaN is not > 0, so ReLU's backward passes nothing there (as the reference).
        "relu": (np.maximum(np.array(values, dtype), 0), [3, 0, 0, 0, 0, 3, 0]),
        "tanh": ([1, -1, 0, 0, np.nan, np.tanh(dtype(0.5)), np.tanh(dtype(-2))], None),
        "sigmoid": ([1, 0, 0.5, 0.5, np.nan, 1 / (1 + np.exp(dtype(-0.5))),
                     1 / (1 + np.exp(dtype(2)))], None),
    }
    for activation, (y_expected, gx_expected) in expected.items():
        y, cache = identity_conv(values, dtype, activation)
        y = y.ravel()
        # relu keeps NaN as np.maximum does; every output but the NaN one is finite.
        assert np.isfinite(np.delete(y, 4)).all(), activation
        np.testing.assert_allclose(y, np.asarray(y_expected, dtype), rtol=TOL[dtype],
                                   atol=0, err_msg=activation)
        gx, gw, gb = conv.conv2d_backward(gy, cache, True)
        assert gb is None
        gx = gx.ravel()
        if gx_expected is None:  # from the expected output: saturated ends give 0, 0 gives 3/4
            y = np.asarray(y_expected, np.float64)
            gx_expected = 3 * ((1 - y * y) if activation == "tanh" else y * (1 - y))
        np.testing.assert_allclose(gx, np.asarray(gx_expected, dtype), rtol=TOL[dtype],
                                   atol=TOL[dtype], err_msg=activation)
        if activation != "relu":  # exactly saturated: no gradient at either end
            assert gx[0] == 0 and gx[1] == 0, activation
        assert np.isnan(gw).all()  # the NaN input reaches the weight gradient


def test_sigmoid_at_1e4_in_a_real_convolution_is_finite():
    """Large pre-activations from a 3x3 convolution with bias, both signs."""
    x = np.full((1, 2, 5, 5), 100.0, np.float32)
    w = np.full((2, 2, 3, 3), 1.0, np.float32)
    w[1] *= -1
    y, cache = conv.conv2d_forward(x, w, np.array([1e4, -1e4], np.float32), (1, 1),
                                   (1, 1), "sigmoid")
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y[0, 0], 1)
    np.testing.assert_array_equal(y[0, 1], 0)
    grads = conv.conv2d_backward(np.ones_like(y), cache, True)
    for g in grads:
        np.testing.assert_array_equal(g, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fast", "reference"])
def test_unknown_activation_is_a_value_error_naming_it(dtype):
    x = np.ones((1, 1, 3, 3), dtype)
    w = np.ones((1, 1, 1, 1), dtype)
    for name in ("gelu", "ReLU", "leaky_relu"):
        with pytest.raises(ValueError, match=f"conv2d_forward.*{name!r}"):
            conv.conv2d_forward(x, w, None, (1, 1), (0, 0), name)
    flat, out = np.ones(4, np.float32), np.empty(4, np.float32)
    with pytest.raises(ValueError, match="'gelu'"):
        cpu.activation.forward_into("gelu", flat, out)
    with pytest.raises(ValueError, match="'gelu'"):
        cpu.activation.backward_into("gelu", flat, flat, out)


@pytest.mark.parametrize("activation", FUSABLE)
def test_other_dtypes_pass_the_activation_to_the_reference(activation):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float16)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float16)
    y, cache = conv.conv2d_forward(x, w, None, (1, 1), (1, 1), activation)
    y_ref, cache_ref = ref.KERNELS["conv2d_forward"](x, w, None, (1, 1), (1, 1), activation)
    y_plain, _ = ref.KERNELS["conv2d_forward"](x, w, None, (1, 1), (1, 1))
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, y_ref)
    assert not np.array_equal(y, y_plain)  # the activation was applied
    gy = np.ones_like(y)
    for a, e in zip(conv.conv2d_backward(gy, cache, True),
                    ref.KERNELS["conv2d_backward"](gy, cache_ref, True)):
        if e is None:
            assert a is None
        else:
            np.testing.assert_array_equal(a, e)


def test_cache_keeps_the_output_out_of_buffer_reuse():
    """y is pooled (over 1 MiB); once the caller drops it, the cache still holds it,
    so a second forward must get another buffer and the first backward stays right."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 1, 128, 128))
    w = rng.standard_normal((4, 1, 1, 1))
    gy = rng.standard_normal((2, 4, 128, 128))
    y, cache = conv.conv2d_forward(x, w, None, (1, 1), (0, 0), "tanh")
    assert y.nbytes >= 1 << 20 and cache.y is y
    expected = ref.KERNELS["conv2d_backward"](
        gy, ref.KERNELS["conv2d_forward"](x, w, None, (1, 1), (0, 0), "tanh")[1], True)
    del y
    y2, _ = conv.conv2d_forward(-x, w, None, (1, 1), (0, 0), "tanh")
    assert not np.shares_memory(y2, cache.y)
    for a, e in zip(conv.conv2d_backward(gy, cache, True), expected):
        if e is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-10)
    _, plain = conv.conv2d_forward(x, w, None, (1, 1), (0, 0))
    assert plain.y is None and plain.activation is None  # nothing pinned without one


@pytest.mark.parametrize("activation", FUSABLE)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_activation_loops_are_the_reference_bit_for_bit(activation, dtype):
    """forward_into / backward_into (the latter also in place)."""
    rng = np.random.default_rng(14)
    x = (rng.standard_normal(1001) * 4).astype(dtype)
    x[:6] = [1e4, -1e4, np.nan, 0.0, -0.0, 30.0]
    gy = rng.standard_normal(x.shape).astype(dtype)
    y_ref = ref.KERNELS["activation_forward"](activation, x)
    gx_ref = ref.KERNELS["activation_backward"](activation, gy, y_ref)

    out = np.full_like(x, 7)
    x_before = x.copy()
    cpu.activation.forward_into(activation, x, out)
    np.testing.assert_array_equal(out, y_ref)
    np.testing.assert_array_equal(x, x_before)
    with pytest.raises(ValueError, match="overlap"):
        cpu.activation.forward_into(activation, x, x)

    g = np.full_like(gy, 7)
    cpu.activation.backward_into(activation, gy, y_ref, g)
    np.testing.assert_array_equal(g, gx_ref)
    cpu.activation.backward_into(activation, gy, y_ref, gy)
    np.testing.assert_array_equal(gy, gx_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("activation", FUSABLE)
def test_table_activations_are_the_reference_bit_for_bit(activation, dtype):
    """The CPU table's activation_forward/backward (what F.relu, F.tanh and F.sigmoid
    run) on a transposed input with zeros, NaN and huge values; float16 goes to the
    reference."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((9, 7, 3)) * 5).astype(dtype).T
    x[0, 0, :4] = [0.0, np.nan, 1e4, -1e4]
    gy = rng.standard_normal(x.shape).astype(dtype)
    y = cpu.KERNELS["activation_forward"](activation, x)
    y_ref = ref.KERNELS["activation_forward"](activation, x)
    np.testing.assert_array_equal(y, y_ref)
    assert y.dtype == y_ref.dtype
    gx = cpu.KERNELS["activation_backward"](activation, gy, y)
    np.testing.assert_array_equal(gx, ref.KERNELS["activation_backward"](activation, gy, y_ref))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fused_relu_backward_passes_nothing_where_the_output_is_not_positive(dtype):
    """An infinite or NaN gradient on a zero output gives 0 on both tables (torch's
    rule), so the weight gradient stays finite."""
    values = [-1.0, 2.0, -3.0, 0.5]
    gy = np.array([np.inf, 1.0, np.nan, 2.0], dtype).reshape(1, 1, 1, -1)
    x = np.asarray(values, dtype).reshape(1, 1, 1, -1)
    w = np.ones((1, 1, 1, 1), dtype)
    for table in (ref.KERNELS, cpu.KERNELS):
        y, cache = table["conv2d_forward"](x, w, None, (1, 1), (0, 0), "relu")
        gx, gw, _ = table["conv2d_backward"](gy, cache, True)
        np.testing.assert_array_equal(gx.ravel(), [0.0, 1.0, 0.0, 2.0])
        np.testing.assert_allclose(gw.ravel(), [2.0 * 1 + 0.5 * 2])
