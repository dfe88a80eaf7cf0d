"""Numba CPU kernels (kernels.cpu) against the NumPy reference (kernels.reference).

Random shapes with odd sizes, stride/padding mixes, kernel sizes 1, 3, 5 (square and
not), batch size 1, non-contiguous inputs, float32 and float64; the optimizer
updates over several steps for every option combination; plus checks that need no
reference (a direct-loop convolution, hand-made pooling windows) and the buffer
reuse rules. The whole exercise CNN is compared between the two kernel tables at
the end.
"""
import itertools

import numpy as np
import pytest

pytest.importorskip("numba", reason="Numba (a declared dependency) is not installed")

import kernels.cpu as cpu  # noqa: E402
import kernels.reference as ref
from kernels.cpu import _buffers, _jit

TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}
DTYPES = (np.float32, np.float64)


def close(actual, expected, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def non_contiguous(array):
    """The same values in a strided (every other element of a bigger array) layout."""
    big = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), array.dtype)
    big[..., ::2] = array
    view = big[..., ::2]
    assert not view.flags.c_contiguous
    return view


# ------------------------------------------------------------------ convolution
# (N, C, H, W, out, (kh, kw), stride, padding, bias)
CONV_CASES = [
    (2, 3, 7, 9, 4, (3, 3), (1, 1), (1, 1), True),
    (1, 2, 8, 5, 3, (5, 3), (2, 3), (2, 1), False),
    (3, 4, 6, 6, 5, (1, 1), (1, 1), (0, 0), True),
    (2, 3, 11, 10, 2, (3, 5), (3, 2), (0, 2), True),
    (1, 1, 5, 5, 1, (5, 5), (1, 1), (2, 2), True),
    (2, 5, 9, 13, 3, (1, 3), (3, 1), (0, 1), False),
    (1, 3, 4, 4, 2, (3, 3), (2, 2), (2, 2), True),   # padding larger than the step
    (4, 2, 12, 7, 6, (3, 1), (1, 3), (1, 0), True),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[:5]}k{c[5]}s{c[6]}p{c[7]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_conv2d_matches_reference(case, dtype):
    n, c, h, w, out, kernel, stride, padding, bias = case
    rng = np.random.default_rng(sum(case[:5]))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((out, c) + kernel).astype(dtype)
    b = rng.standard_normal(out).astype(dtype) if bias else None

    y, cache = cpu.KERNELS["conv2d_forward"](x, weight, b, stride, padding)
    y_ref, cache_ref = ref.KERNELS["conv2d_forward"](x, weight, b, stride, padding)
    assert y.shape == y_ref.shape and y.dtype == dtype
    close(y, y_ref, dtype, scale=np.sqrt(c * kernel[0] * kernel[1]))

    gy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = cpu.KERNELS["conv2d_backward"](gy, cache, True)
    gx_ref, gw_ref, gb_ref = ref.KERNELS["conv2d_backward"](gy, cache_ref, True)
    scale = np.sqrt(n * y.shape[2] * y.shape[3])
    assert gx.shape == x.shape and gw.shape == weight.shape
    close(gx, gx_ref, dtype, scale=np.sqrt(out * kernel[0] * kernel[1]))
    close(gw, gw_ref, dtype, scale=scale)
    if bias:
        assert gb.shape == (out,)
        close(gb, gb_ref, dtype, scale=scale)
    else:
        assert gb is None
    gx_none, gw_again, _ = cpu.KERNELS["conv2d_backward"](gy, cache, False)
    assert gx_none is None
    np.testing.assert_array_equal(gw_again, gw)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_conv2d_non_contiguous_inputs(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y, cache = cpu.KERNELS["conv2d_forward"](non_contiguous(x), non_contiguous(weight),
                                             b, (2, 1), (1, 0))
    y_ref, cache_ref = ref.KERNELS["conv2d_forward"](x, weight, b, (2, 1), (1, 0))
    close(y, y_ref, dtype, scale=5)
    gy = rng.standard_normal(y.shape).astype(dtype)
    got = cpu.KERNELS["conv2d_backward"](non_contiguous(gy), cache, True)
    want = ref.KERNELS["conv2d_backward"](gy, cache_ref, True)
    for a, e in zip(got, want):
        close(a, e, dtype, scale=5)


def test_conv2d_direct_loops():
    """Forward against the definition, written as plain loops (no reference code)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 5, 6))
    weight = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    (sh, sw), (ph, pw) = (2, 1), (1, 1)
    y, _ = cpu.KERNELS["conv2d_forward"](x, weight, b, (sh, sw), (ph, pw))
    xpad = np.zeros((2, 2, 5 + 2 * ph, 6 + 2 * pw))
    xpad[:, :, ph:ph + 5, pw:pw + 6] = x
    expected = np.zeros((2, 3, (5 + 2 * ph - 3) // sh + 1, (6 + 2 * pw - 2) // sw + 1))
    for n, o, i, j in np.ndindex(*expected.shape):
        window = xpad[n, :, i * sh:i * sh + 3, j * sw:j * sw + 2]
        expected[n, o, i, j] = (window * weight[o]).sum() + b[o]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_backward_is_the_adjoint():
    """<conv(x), gy> = <x, gx> and <conv(x), gy> = <w, gw> + <b, gb>: no reference needed."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    weight = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    y_nob, cache = cpu.KERNELS["conv2d_forward"](x, weight, None, (2, 1), (1, 1))
    gy = rng.standard_normal(y_nob.shape)
    gx, gw, _ = cpu.KERNELS["conv2d_backward"](gy, cache, True)
    inner = float((y_nob * gy).sum())
    assert np.isclose(inner, float((x * gx).sum()), rtol=1e-12)
    assert np.isclose(inner, float((weight * gw).sum()), rtol=1e-12)
    y, cache = cpu.KERNELS["conv2d_forward"](x, weight, b, (2, 1), (1, 1))
    _, _, gb = cpu.KERNELS["conv2d_backward"](gy, cache, False)
    np.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(y - y_nob, np.broadcast_to(b[:, None, None], y.shape[1:])
                               [None].repeat(2, 0), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- pooling
# (N, C, H, W, kernel, stride, padding); the first ones take the 2x2 fast path.
POOL_CASES = [
    (2, 3, 8, 6, (2, 2), (2, 2), (0, 0)),
    (1, 2, 7, 9, (2, 2), (2, 2), (0, 0)),     # odd sizes: a trailing row/column unused
    (2, 2, 9, 7, (3, 3), (2, 2), (1, 1)),
    (1, 3, 6, 6, (3, 3), (1, 1), (1, 1)),
    (2, 1, 8, 11, (2, 3), (1, 2), (1, 1)),
    (1, 2, 10, 10, (5, 5), (3, 3), (2, 2)),
    (3, 2, 5, 6, (1, 1), (1, 1), (0, 0)),
    (1, 1, 7, 5, (3, 2), (3, 2), (0, 1)),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[:4]}k{c[4]}s{c[5]}p{c[6]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_matches_reference(case, dtype, kind):
    n, c, h, w, kernel, stride, padding = case
    rng = np.random.default_rng(sum(case[:4]))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    forward, backward = f"{kind}_pool2d_forward", f"{kind}_pool2d_backward"
    y, cache = cpu.KERNELS[forward](non_contiguous(x), kernel, stride, padding)
    y_ref, cache_ref = ref.KERNELS[forward](x, kernel, stride, padding)
    assert y.shape == y_ref.shape and y.dtype == dtype
    close(y, y_ref, dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = cpu.KERNELS[backward](non_contiguous(gy), cache)
    assert gx.shape == x.shape and gx.dtype == dtype
    close(gx, ref.KERNELS[backward](gy, cache_ref), dtype)


@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), (2, 2), (0, 0)),
                                                     ((3, 3), (2, 2), (1, 1))])
def test_max_pool_ties_nan_and_inf_follow_reference(kernel, stride, padding):
    """Ties go to the first element of the window; NaN wins; all -inf is handled."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, (2, 2, 7, 8)).astype(np.float32)  # many ties
    x[0, 0, 1, 1] = np.nan
    x[1, 1, :3, :3] = -np.inf
    y, cache = cpu.KERNELS["max_pool2d_forward"](x, kernel, stride, padding)
    y_ref, cache_ref = ref.KERNELS["max_pool2d_forward"](x, kernel, stride, padding)
    np.testing.assert_array_equal(y, y_ref)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(cpu.KERNELS["max_pool2d_backward"](gy, cache),
                                  ref.KERNELS["max_pool2d_backward"](gy, cache_ref))


def test_max_pool_by_hand():
    x = np.array([[[[1, 5, 2, 2, 9],
                    [3, 4, 8, 0, 9],
                    [7, 6, 1, 1, 9]]]], dtype=np.float64)
    y, cache = cpu.KERNELS["max_pool2d_forward"](x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(y, [[[[5, 8]]]])
    gx = cpu.KERNELS["max_pool2d_backward"](np.array([[[[10., 20.]]]]), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1], expected[0, 0, 1, 2] = 10, 20
    np.testing.assert_array_equal(gx, expected)
    y, cache = cpu.KERNELS["max_pool2d_forward"](x, (3, 3), (1, 2), (1, 1))
    np.testing.assert_array_equal(y, [[[[5, 8, 9], [7, 8, 9], [7, 8, 9]]]])


def test_avg_pool_by_hand():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    y, cache = cpu.KERNELS["avg_pool2d_forward"](x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_allclose(y, [[[[2.5, 4.5], [10.5, 12.5]]]])
    y, cache = cpu.KERNELS["avg_pool2d_forward"](x, (3, 3), (3, 3), (1, 1))
    # Zero padding counts in the divisor: the corner window holds 0, 1, 4, 5 of 9 cells.
    np.testing.assert_allclose(y[0, 0, 0, 0], (0 + 1 + 4 + 5) / 9)
    gx = cpu.KERNELS["avg_pool2d_backward"](np.ones((1, 1, 2, 2)), cache)
    np.testing.assert_allclose(gx, np.full((1, 1, 4, 4), 1 / 9))


# --------------------------------------------------------- softmax cross-entropy
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n, k", [(1, 2), (7, 4), (32, 10)])
def test_softmax_cross_entropy_matches_reference(dtype, n, k):
    rng = np.random.default_rng(n * k)
    logits = (rng.standard_normal((n, k)) * 5).astype(dtype)
    logits[0, 0] += 500  # the max shift keeps it finite
    labels = rng.integers(0, k, n)
    losses, cache = cpu.KERNELS["softmax_cross_entropy_forward"](non_contiguous(logits),
                                                                 labels)
    losses_ref, cache_ref = ref.KERNELS["softmax_cross_entropy_forward"](logits, labels)
    assert losses.dtype == dtype and np.isfinite(losses).all()
    close(losses, losses_ref, dtype, scale=10)
    gloss = rng.standard_normal(n).astype(dtype)
    grad = cpu.KERNELS["softmax_cross_entropy_backward"](gloss, cache)
    close(grad, ref.KERNELS["softmax_cross_entropy_backward"](gloss, cache_ref), dtype)


def test_softmax_cross_entropy_by_hand_and_bad_labels():
    logits = np.log(np.array([[1.0, 3.0], [2.0, 2.0]]))
    losses, cache = cpu.KERNELS["softmax_cross_entropy_forward"](logits, np.array([1, 0]))
    np.testing.assert_allclose(losses, [-np.log(0.75), -np.log(0.5)])
    grad = cpu.KERNELS["softmax_cross_entropy_backward"](np.array([1.0, 2.0]), cache)
    np.testing.assert_allclose(grad, [[0.25, -0.25], [-1.0, 1.0]])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        cpu.KERNELS["softmax_cross_entropy_forward"](logits, np.array([0, 2]))
    with pytest.raises(ValueError, match="do not match logits"):
        cpu.KERNELS["softmax_cross_entropy_forward"](logits, np.array([0]))


# ------------------------------------------------------------------- optimizers
OPTIMIZER_OPTIONS = {
    "sgd": dict(lr=[0.1], momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
                weight_decay=[0.0, 0.01]),
    "adam": dict(lr=[1e-2], beta1=[0.9], beta2=[0.999], eps=[1e-8], weight_decay=[0.0, 0.05],
                 decoupled_weight_decay=[False, True]),
    "rmsprop": dict(lr=[1e-2], alpha=[0.99], eps=[1e-8], weight_decay=[0.0, 0.05],
                    momentum=[0.0, 0.8], centered=[False, True]),
    "adagrad": dict(lr=[0.1], eps=[1e-10], weight_decay=[0.0, 0.05], lr_decay=[0.0, 0.01]),
}
STATE_NAMES = {"sgd": ["momentum_buffer"], "adam": ["exp_avg", "exp_avg_sq"],
               "rmsprop": ["square_avg", "momentum_buffer", "grad_avg"],
               "adagrad": ["state_sum"]}


def optimizer_cases():
    for name, options in OPTIMIZER_OPTIONS.items():
        for values in itertools.product(*options.values()):
            hyper = dict(zip(options, values))
            if name == "sgd" and hyper["nesterov"] and (hyper["momentum"] == 0
                                                       or hyper["dampening"] != 0):
                continue  # PyTorch rejects Nesterov without momentum or with dampening
            yield name, hyper


def run_optimizer(table, name, hyper, param, grads, steps_per_call=None):
    """Apply ``len(grads)`` steps of one kernel; returns param and state (copies)."""
    param = param.copy()
    state = {key: np.zeros_like(param) for key in STATE_NAMES[name]}
    if name == "sgd" and hyper["momentum"] == 0:
        state["momentum_buffer"] = None
    if name == "rmsprop":
        if hyper["momentum"] == 0:
            state["momentum_buffer"] = None
        if not hyper["centered"]:
            state["grad_avg"] = None
    update = table[f"{name}_update"]
    for step, grad in enumerate(grads, start=1):
        kept = grad.copy()
        extra = {}
        if name == "sgd":
            extra["first_step"] = step == 1
        if name in ("adam", "adagrad"):
            extra["step"] = step
        update(param, grad, *state.values(), **hyper, **extra)
        np.testing.assert_array_equal(grad, kept)  # never modifies grad
    return param, state


@pytest.mark.parametrize("name, hyper", list(optimizer_cases()),
                         ids=lambda v: v if isinstance(v, str) else
                         "-".join(f"{k}={x}" for k, x in v.items() if k != "lr"))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_optimizer_matches_reference_over_steps(name, hyper, dtype):
    rng = np.random.default_rng(5)
    param = rng.standard_normal((3, 5, 7)).astype(dtype)
    grads = [rng.standard_normal(param.shape).astype(dtype) for _ in range(4)]
    got_param, got_state = run_optimizer(cpu.KERNELS, name, hyper, param, grads)
    want_param, want_state = run_optimizer(ref.KERNELS, name, hyper, param, grads)
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got_param, want_param, **tol)
    for key, value in want_state.items():
        if value is not None:
            np.testing.assert_allclose(got_state[key], value, **tol, err_msg=key)
    assert not np.allclose(got_param, param)  # it did move


def test_optimizer_updates_in_place_and_falls_back_for_odd_layouts():
    rng = np.random.default_rng(6)
    base = rng.standard_normal((4, 6))
    grad = rng.standard_normal((4, 6))
    param = base.copy()
    exp_avg, exp_avg_sq = np.zeros_like(param), np.zeros_like(param)
    ids = [id(a) for a in (param, exp_avg, exp_avg_sq)]
    hyper = dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, step=1,
                 decoupled_weight_decay=False)
    cpu.KERNELS["adam_update"](param, grad, exp_avg, exp_avg_sq, **hyper)
    assert [id(a) for a in (param, exp_avg, exp_avg_sq)] == ids
    # First Adam step moves every element by lr against the gradient's sign.
    np.testing.assert_allclose(param, base - 0.1 * np.sign(grad), rtol=1e-6)
    # A strided parameter (a column slice) cannot be flattened in place: same result.
    wide = np.zeros((4, 12))
    wide[:, ::2] = base
    strided = wide[:, ::2]
    m, v = np.zeros((4, 6)), np.zeros((4, 6))
    cpu.KERNELS["adam_update"](strided, grad, m, v, **hyper)
    np.testing.assert_allclose(wide[:, ::2], param, rtol=1e-12)
    assert not wide[:, 1::2].any()


# --------------------------------------------------------------- buffers, threads
def test_held_outputs_are_never_reused_and_idle_ones_are():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 64, 64)).astype(np.float32)  # pooled (> 1 MiB) sizes
    weight = rng.standard_normal((40, 2, 3, 3)).astype(np.float32)
    y1, cache1 = cpu.KERNELS["conv2d_forward"](x, weight, None, (1, 1), (1, 1))
    kept = y1.copy()
    y2, _ = cpu.KERNELS["conv2d_forward"](x * 2, weight, None, (1, 1), (1, 1))
    assert not np.shares_memory(y1, y2)
    np.testing.assert_array_equal(y1, kept)            # not overwritten while held
    address = y2.__array_interface__["data"][0]
    del y2
    y3, _ = cpu.KERNELS["conv2d_forward"](x, weight, None, (1, 1), (1, 1))
    assert y3.__array_interface__["data"][0] == address  # the idle buffer came back
    gx, _, _ = cpu.KERNELS["conv2d_backward"](np.ones_like(y1), cache1, True)
    assert gx.shape == x.shape


def test_buffer_pool_cap_and_views():
    pool = _buffers.BufferPool(max_bytes=3 << 20, max_per_key=2)
    a = pool.empty("t", (1 << 18,), np.float32)    # 1 MiB
    view = a[::2]
    del a
    b = pool.empty("t", (1 << 18,), np.float32)
    assert not np.shares_memory(view, b)            # a view keeps its base busy
    del view
    c = pool.empty("t", (1 << 18,), np.float32)      # the first one is idle again
    assert pool.pooled_bytes == 2 << 20
    del b, c
    pool.empty("u", (1 << 19,), np.float32)          # 2 MiB more: over the cap
    assert pool.pooled_bytes <= 3 << 20
    small = pool.empty("t", (10,), np.float64)       # small arrays are never pooled
    assert small.shape == (10,) and pool.pooled_bytes <= 3 << 20


@pytest.mark.parametrize("environ, expected", [
    ({}, False),                                   # serial unless asked
    ({"MINIGRAD_CPU_PARALLEL": "1"}, True),
    ({"MINIGRAD_CPU_PARALLEL": " On "}, True),
    ({"MINIGRAD_CPU_PARALLEL": "0", "OPENBLAS_THREAD_TIMEOUT": "4"}, False),
])
def test_parallel_choice(environ, expected):
    assert _jit.choose_parallel(environ) is expected
    with pytest.raises(ValueError, match="MINIGRAD_CPU_PARALLEL='sometimes'"):
        _jit.choose_parallel({"MINIGRAD_CPU_PARALLEL": "sometimes"})


def test_kernels_build_in_the_chosen_mode():
    """Serial builds carry their own name, so the two modes never share cache entries."""
    name = cpu.conv._im2col.py_func.__qualname__
    assert name == ("_im2col" if cpu.PARALLEL else "_im2col_serial")
    assert cpu.conv._im2col.targetoptions.get("parallel", False) is cpu.PARALLEL


# ------------------------------------------------------------ whole exercise CNN
def test_exercise_cnn_same_loss_and_gradients_on_both_tables(monkeypatch):
    import minigrad as mg
    from minigrad import nn

    def loss_and_grads(mode):
        monkeypatch.setenv("MINIGRAD_KERNELS", mode)
        mg.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dense(12800, 128), nn.ReLU(), nn.Dense(128, 4))
        rng = np.random.default_rng(8)
        x = mg.tensor(rng.standard_normal((2, 3, 80, 80)).astype(np.float32))
        labels = mg.tensor(rng.integers(0, 4, 2))
        loss = mg.losses.get("cross_entropy")(model(x), labels)
        loss.backward()
        return loss.item(), {k: p.grad.copy() for k, p in model.named_parameters()}

    fast_loss, fast_grads = loss_and_grads("fast")
    ref_loss, ref_grads = loss_and_grads("reference")
    assert np.isclose(fast_loss, ref_loss, rtol=1e-5)
    for key, grad in ref_grads.items():
        scale = np.abs(grad).max()
        np.testing.assert_allclose(fast_grads[key], grad, rtol=1e-3, atol=1e-4 * scale,
                                   err_msg=key)


# ------------------------------------------------------- dtypes the kernels pass on
def test_other_dtypes_follow_the_reference_rules():
    """float16 and integer arrays go to the reference kernels; results keep its dtypes."""
    rng = np.random.default_rng(9)
    x16 = rng.standard_normal((1, 2, 5, 5)).astype(np.float16)
    w16 = rng.standard_normal((3, 2, 3, 3)).astype(np.float16)
    y, cache = cpu.KERNELS["conv2d_forward"](x16, w16, None, (1, 1), (1, 1))
    y_ref, cache_ref = ref.KERNELS["conv2d_forward"](x16, w16, None, (1, 1), (1, 1))
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, y_ref)
    gy = np.ones_like(y)
    for a, e in zip(cpu.KERNELS["conv2d_backward"](gy, cache, True),
                    ref.KERNELS["conv2d_backward"](gy, cache_ref, True)):
        np.testing.assert_array_equal(a, e)
    # Integer images with float64 weights compute in float64 on the fast path.
    x_int = rng.integers(0, 255, (2, 3, 6, 6))
    w64 = rng.standard_normal((2, 3, 3, 3))
    y, _ = cpu.KERNELS["conv2d_forward"](x_int, w64, None, (1, 1), (0, 0))
    assert y.dtype == np.float64
    close(y, ref.KERNELS["conv2d_forward"](x_int, w64, None, (1, 1), (0, 0))[0],
          np.float64, scale=1e3)
    for kind in ("max", "avg"):
        y, cache = cpu.KERNELS[f"{kind}_pool2d_forward"](x_int, (2, 2), (2, 2), (0, 0))
        y_ref, cache_ref = ref.KERNELS[f"{kind}_pool2d_forward"](x_int, (2, 2), (2, 2), (0, 0))
        assert y.dtype == y_ref.dtype
        np.testing.assert_array_equal(y, y_ref)
        gy = np.ones(y.shape)
        np.testing.assert_array_equal(cpu.KERNELS[f"{kind}_pool2d_backward"](gy, cache),
                                      ref.KERNELS[f"{kind}_pool2d_backward"](gy, cache_ref))
    p16 = rng.standard_normal(5).astype(np.float16)
    g16 = rng.standard_normal(5).astype(np.float16)
    p_ref, s_ref, s = p16.copy(), np.zeros_like(p16), np.zeros_like(p16)
    cpu.KERNELS["adagrad_update"](p16, g16, s, lr=0.1, eps=1e-10, weight_decay=0.0,
                                  lr_decay=0.0, step=1)
    ref.KERNELS["adagrad_update"](p_ref, g16, s_ref, lr=0.1, eps=1e-10, weight_decay=0.0,
                                  lr_decay=0.0, step=1)
    np.testing.assert_array_equal(p16, p_ref)


def test_conv2d_in_batch_chunks_matches_whole_batch(monkeypatch):
    """Slicing the batch (CHUNK_BYTES) changes nothing but where data sits in cache."""
    from kernels.cpu import conv
    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 3, 9, 7))
    weight = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    gy = rng.standard_normal((5, 4, 9, 7))
    y, cache = conv.conv2d_forward(x, weight, b, (1, 1), (1, 1))
    whole = [y.copy()] + [g.copy() for g in conv.conv2d_backward(gy, cache, True)]
    del y, cache
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)  # one image per slice
    assert conv._chunks(5, 100) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    y, cache = conv.conv2d_forward(x, weight, b, (1, 1), (1, 1))
    sliced = [y] + list(conv.conv2d_backward(gy, cache, True))
    for a, e in zip(sliced, whole):
        np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 250)
    assert conv._chunks(5, 100) == [(0, 2), (2, 4), (4, 5)]


# ----------------------------------------------------------------------- ReLU
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_relu_matches_numpy(dtype):
    """Against NumPy's maximum / mask product (no reference kernel exists for it)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 5, 7)).astype(dtype)
    x[0, 0, 0, :3] = [np.nan, 0.0, -0.0]
    forward, backward = cpu.KERNELS["activation_forward"], cpu.KERNELS["activation_backward"]
    y = forward("relu", non_contiguous(x))
    np.testing.assert_array_equal(y, np.maximum(x, 0))  # NaN kept where it was
    assert y.dtype == dtype
    gy = rng.standard_normal(x.shape).astype(dtype)
    gx = backward("relu", non_contiguous(gy), y)
    np.testing.assert_array_equal(gx, np.where(x > 0, gy, 0))
    ints = np.array([-2, 0, 3])
    y = forward("relu", ints)
    np.testing.assert_array_equal(y, [0, 0, 3])
    np.testing.assert_array_equal(backward("relu", np.ones(3), y), [0, 0, 1])


# ------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_activations_keep_a_zero_dimensional_shape(activation, dtype):
    """A 0-d array (a scalar parameter) stays 0-d both ways, as in the reference."""
    x, gy = np.array(0.5, dtype), np.array(2.0, dtype)
    y = cpu.KERNELS["activation_forward"](activation, x)
    y_ref = ref.KERNELS["activation_forward"](activation, x)
    assert y.shape == () and y.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    gx = cpu.KERNELS["activation_backward"](activation, gy, y)
    assert gx.shape == () and gx.dtype == dtype
    np.testing.assert_array_equal(gx, ref.KERNELS["activation_backward"](activation, gy, y_ref))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_relu_backward_passes_nothing_where_the_output_is_not_positive(dtype):
    """An infinite or NaN upstream gradient where y <= 0 gives 0 (torch), not inf * 0."""
    y = np.array([0.0, 0.0, 2.0, 3.0, np.nan], dtype)
    gy = np.array([np.inf, np.nan, -np.inf, 1.0, 5.0], dtype)
    expected = np.array([0.0, 0.0, -np.inf, 1.0, 0.0], dtype)
    for table in (ref.KERNELS, cpu.KERNELS):
        gx = table["activation_backward"]("relu", gy, y)
        assert gx.dtype == dtype
        np.testing.assert_array_equal(gx, expected)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_tanh_and_sigmoid_of_integers_are_float32(activation, dtype):
    """torch's rule: an integer (or boolean) tensor's tanh/sigmoid is float32; relu
    keeps the integers."""
    x = np.array([0, 1, 2, 3]).astype(dtype)
    expected = {"tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[activation](
        x.astype(np.float64))
    for table in (ref.KERNELS, cpu.KERNELS):
        y = table["activation_forward"](activation, x)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, expected, rtol=1e-6)
        if dtype != np.bool_:
            assert table["activation_forward"]("relu", x).dtype == dtype


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_of_an_empty_batch(bias, activation):
    """N = 0 (torch: an empty output, an empty input gradient, zero weight gradients)."""
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    b = np.ones(4, np.float32) if bias else None
    gy = np.zeros((0, 4, 8, 8), np.float32)
    for table in (ref.KERNELS, cpu.KERNELS):
        y, cache = table["conv2d_forward"](x, w, b, (1, 1), (1, 1), activation)
        assert y.shape == (0, 4, 8, 8) and y.dtype == np.float32
        gx, gw, gb = table["conv2d_backward"](gy, cache, True)
        assert gx.shape == x.shape and gx.dtype == np.float32
        np.testing.assert_array_equal(gw, np.zeros_like(w))
        if bias:
            np.testing.assert_array_equal(gb, np.zeros(4, np.float32))
        else:
            assert gb is None


def test_conv2d_without_input_channels_gives_the_bias():
    """in_channels = 0: every output is its bias, even when the columns come from a
    pooled buffer that an earlier convolution left full of its own values."""
    dirty = np.full((2, 1, 256, 256), 7.0)
    y, cache = cpu.KERNELS["conv2d_forward"](dirty, np.ones((3, 1, 1, 1)), None, (1, 1),
                                             (0, 0))
    assert cache.cols.nbytes >= _buffers.MIN_POOLED_BYTES  # so the next one reuses it
    del y, cache
    x = np.zeros((2, 0, 256, 256))
    w = np.zeros((3, 0, 3, 3))
    b = np.array([1.0, 2.0, 3.0])
    expected = np.broadcast_to(b[None, :, None, None], (2, 3, 256, 256))
    gy = np.ones((2, 3, 256, 256))
    for table in (ref.KERNELS, cpu.KERNELS):
        y, cache = table["conv2d_forward"](x, w, b, (1, 1), (1, 1))
        np.testing.assert_array_equal(y, expected)
        gx, gw, gb = table["conv2d_backward"](gy, cache, True)
        assert gx.shape == x.shape and gw.shape == w.shape
        np.testing.assert_array_equal(gb, np.full(3, 2 * 256 * 256.0))
        del y, cache


@pytest.mark.parametrize("x_dtype, b_dtype", [(np.float32, np.float64),
                                              (np.float64, np.float32),
                                              (np.float16, np.float32)])
def test_conv2d_output_takes_the_input_dtype_and_casts_the_bias(x_dtype, b_dtype):
    """One rule on both tables: y (and the gradients) in x and w's dtype."""
    rng = np.random.default_rng(15)
    x = rng.standard_normal((2, 2, 5, 5)).astype(x_dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(x_dtype)
    b = rng.standard_normal(3).astype(b_dtype)
    y, cache = cpu.KERNELS["conv2d_forward"](x, w, b, (1, 1), (1, 1))
    y_ref, cache_ref = ref.KERNELS["conv2d_forward"](x, w, b, (1, 1), (1, 1))
    assert y.dtype == y_ref.dtype == x_dtype
    tol = 1e-2 if x_dtype == np.float16 else TOL[x_dtype]["rtol"]
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    gy = np.ones_like(y_ref)
    grads = cpu.KERNELS["conv2d_backward"](gy, cache, True)
    grads_ref = ref.KERNELS["conv2d_backward"](gy, cache_ref, True)
    for g, g_ref in zip(grads, grads_ref):
        assert g.dtype == g_ref.dtype == x_dtype
        np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_max_pool_with_padding(dtype):
    """Padding is the dtype's smallest value (-inf does not fit an integer)."""
    x = (np.arange(2 * 3 * 5 * 4) % 11).reshape(2, 3, 5, 4).astype(dtype)
    expected, _ = ref.KERNELS["max_pool2d_forward"](x.astype(np.float64), (3, 3), (2, 1),
                                                    (1, 1))
    for table in (ref.KERNELS, cpu.KERNELS):
        y, cache = table["max_pool2d_forward"](x, (3, 3), (2, 1), (1, 1))
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, expected)
    lowest = np.full((1, 1, 2, 2), np.iinfo(dtype).min, dtype)  # ties with the padding
    y, cache = ref.KERNELS["max_pool2d_forward"](lowest, (2, 2), (1, 1), (1, 1))
    gx = ref.KERNELS["max_pool2d_backward"](np.ones(y.shape, np.float32), cache)
    np.testing.assert_array_equal(gx.ravel(), [4, 2, 2, 1])


# (kernel, stride, padding): windows that touch the padding; 1x1 with padding 1 has
# windows with no element inside the input at all.
MINUS_INF_CASES = [((2, 2), (1, 1), (1, 1)), ((3, 3), (1, 1), (1, 1)),
                   ((3, 2), (2, 1), (1, 1)), ((1, 1), (1, 1), (1, 1))]


@pytest.mark.parametrize("kernel, stride, padding", MINUS_INF_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_max_pool_windows_of_minus_inf_send_the_gradient_inside(kernel, stride, padding,
                                                                dtype):
    """A window whose elements are all -inf gives its gradient to its first element
    inside the input, never to the padding (torch's rule), on both tables."""
    rng = np.random.default_rng(16)
    x = rng.standard_normal((2, 2, 4, 5)).astype(dtype)
    x[0, 0] = -np.inf
    x[1, 1, :2, :2] = -np.inf
    y, cache = cpu.KERNELS["max_pool2d_forward"](x, kernel, stride, padding)
    y_ref, cache_ref = ref.KERNELS["max_pool2d_forward"](x, kernel, stride, padding)
    np.testing.assert_array_equal(y, y_ref)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = cpu.KERNELS["max_pool2d_backward"](gy, cache)
    gx_ref = ref.KERNELS["max_pool2d_backward"](gy, cache_ref)
    np.testing.assert_allclose(gx, gx_ref, **TOL[dtype])
    if kernel == (1, 1):  # only the outer ring of windows sees no input: it sends nothing
        np.testing.assert_allclose(gx, gy[:, :, 1:-1, 1:-1], **TOL[dtype])
    else:  # every output's gradient reaches the input
        np.testing.assert_allclose(gx.sum(axis=(2, 3)), gy.sum(axis=(2, 3)), rtol=1e-5)


def test_max_pool_of_minus_inf_by_hand():
    """torch's gradient for an all -inf 2x2 input, kernel 2, stride 1, padding 1."""
    x = np.full((1, 1, 2, 2), -np.inf, np.float32)
    for table in (ref.KERNELS, cpu.KERNELS):
        y, cache = table["max_pool2d_forward"](x, (2, 2), (1, 1), (1, 1))
        gx = table["max_pool2d_backward"](np.ones_like(y), cache)
        np.testing.assert_array_equal(gx.ravel(), [4, 2, 2, 1])


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), (2, 2), (0, 0)),
                                                     ((3, 3), (1, 1), (1, 1))])
@pytest.mark.parametrize("gy_dtype", [np.float16, np.int64])
def test_pool_backward_keeps_the_gradient_dtype_of_the_reference(kind, kernel, stride,
                                                                 padding, gy_dtype):
    """A float32 forward, a gradient of another dtype: the reference's dtype and values."""
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    y, cache = cpu.KERNELS[f"{kind}_pool2d_forward"](x, kernel, stride, padding)
    _, cache_ref = ref.KERNELS[f"{kind}_pool2d_forward"](x, kernel, stride, padding)
    gy = rng.integers(-3, 4, y.shape).astype(gy_dtype)
    gx = cpu.KERNELS[f"{kind}_pool2d_backward"](gy, cache)
    gx_ref = ref.KERNELS[f"{kind}_pool2d_backward"](gy, cache_ref)
    assert gx.dtype == gx_ref.dtype
    np.testing.assert_array_equal(gx, gx_ref)
