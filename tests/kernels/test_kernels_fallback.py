"""kernels._fallback: calls a fast kernel is not built for run the reference kernel.

First the two decorators on stand-in kernels (which calls go where, with which
arguments), then every kernel that carries them in the CPU table, and in the CUDA
table with CuPy stood in for by NumPy (tests/cuda_emulator.py: the fallbacks never
launch a CUDA kernel): float16 and integer inputs give the reference's values and
dtypes, and a cache the reference made is accepted by the fast backward.
"""
import numpy as np
import pytest

import kernels.reference as ref
from kernels._fallback import backward_falls_back, falls_back_to, one_fast_dtype


# ------------------------------------------------------------------ the decorators
def _recording(name, calls):
    def kernel(x, w=None, *, scale=1.0):
        calls.append((name, x, w, scale))
        return name
    return kernel


def test_falls_back_to_sends_other_dtypes_to_the_reference_with_the_same_arguments():
    calls = []

    @falls_back_to(_recording("reference", calls), arrays=("x", "w"))
    def fast(x, w=None, *, scale=1.0):
        """The fast one."""
        calls.append(("fast", x, w, scale))
        return "fast"

    f32, f64 = np.ones(2, np.float32), np.ones(2)
    f16, i64 = np.ones(2, np.float16), np.ones(2, np.int64)
    assert fast(f32, f32) == "fast"
    assert fast(f32, f64) == "fast"      # promoted to float64: still a fast dtype
    assert fast(i64, w=f64) == "fast"    # int64 with float64 is float64, by keyword too
    assert fast(f16, f16, scale=2.0) == "reference"
    assert fast(i64, i64) == "reference"
    assert fast(x=f16, w=f16) == "reference"  # by keyword
    assert fast.__name__ == "fast" and fast.__doc__ == "The fast one."
    name, x, w, scale = calls[3]
    assert (name, scale) == ("reference", 2.0) and x is f16 and w is f16


def test_falls_back_to_float16_and_float32_mix_is_float32_so_stays_fast():
    """NumPy promotes float16 with float32 to float32: the fast kernel takes it."""
    @falls_back_to(lambda x, w: "reference", arrays=("x", "w"))
    def fast(x, w):
        return "fast"
    assert fast(np.ones(1, np.float16), np.ones(1, np.float32)) == "fast"
    assert fast(np.ones(1, np.float16), np.ones(1, np.float16)) == "reference"


def test_falls_back_to_with_a_predicate_and_a_default_argument():
    @falls_back_to(lambda a, b=None: "reference", arrays=("a", "b"),
                   accepts=lambda a, b: b is None or a.shape == b.shape)
    def fast(a, b=None):
        return "fast"
    assert fast(np.ones(3)) == "fast"  # b left at its default, None
    assert fast(np.ones(3), np.ones(3)) == "fast"
    assert fast(np.ones(3), np.ones(4)) == "reference"


def test_a_missing_argument_is_the_fast_kernels_type_error():
    @falls_back_to(lambda x: "reference", arrays=("x",))
    def fast(x):
        return "fast"
    with pytest.raises(TypeError, match="x"):
        fast()


def test_naming_a_parameter_the_kernel_lacks_fails_at_decoration():
    with pytest.raises(TypeError, match="no parameter 'y'"):
        falls_back_to(lambda x: x, arrays=("y",))(lambda x: x)
    with pytest.raises(TypeError, match="no parameter 'cache'"):
        backward_falls_back(lambda g, c: g, cache_type=tuple)(lambda g, c: g)
    with pytest.raises(TypeError, match="go together"):
        backward_falls_back(lambda g, cache: g, cache_type=tuple, arrays=("g",))


class _OwnCache(tuple):
    pass


def test_backward_falls_back_on_a_cache_its_forward_did_not_make():
    calls = []

    def reference(gy, cache, flag=True):
        calls.append(("reference", gy, cache, flag))
        return "reference"

    @backward_falls_back(reference, cache_type=(_OwnCache, list))
    def fast(gy, cache, flag=True):
        return "fast"

    gy = np.ones(2, np.float16)  # a dtype alone does not send a backward anywhere here
    assert fast(gy, _OwnCache((1,))) == "fast"
    assert fast(gy, cache=[1]) == "fast"
    assert fast(gy, (1,), False) == "reference"
    assert fast(gy, cache=(2,), flag=False) == "reference"
    assert [c[2:] for c in calls] == [((1,), False), ((2,), False)]


def test_backward_falls_back_with_a_reference_cache_for_other_gradient_dtypes():
    seen = []

    def reference(gy, cache):
        seen.append(cache)
        return "reference"

    @backward_falls_back(reference, cache_type=_OwnCache, arrays=("gy",),
                         reference_cache=lambda cache: ("converted",) + tuple(cache))
    def fast(gy, cache):
        return "fast"

    own = _OwnCache((7,))
    assert fast(np.ones(2, np.float32), own) == "fast"
    assert fast(np.ones(2, np.float16), own) == "reference"
    assert fast(gy=np.ones(2, np.int64), cache=own) == "reference"
    assert fast(np.ones(2, np.float16), (7,)) == "reference"  # foreign: passed as it is
    assert seen == [("converted", 7), ("converted", 7), (7,)]


def test_one_fast_dtype():
    a32, b32 = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)
    assert one_fast_dtype(a32) and one_fast_dtype(a32, b32)
    assert not one_fast_dtype(a32, b32.astype(np.float64))  # two dtypes
    assert not one_fast_dtype(a32, b32[:1])                 # two shapes
    assert not one_fast_dtype(a32.astype(np.float16))
    assert one_fast_dtype(np.float64(1.0) * np.ones(()))    # 0-d


# ------------------------------------------------------------- the kernel tables
def _conv_general(rng, dtype):
    x = rng.standard_normal((2, 4, 6, 6)).astype(dtype)
    w = rng.standard_normal((4, 2, 3, 3)).astype(dtype)
    return (x, w, np.ones(4, dtype), (1, 1), (2, 2), (2, 2), 2), (2, 4, 6, 6)


def _conv_transpose(rng, dtype):
    x = rng.standard_normal((2, 2, 4, 4)).astype(dtype)
    w = rng.standard_normal((2, 3, 3, 3)).astype(dtype)
    return (x, w, np.ones(3, dtype), (1, 1), (0, 0), (1, 1), 1, (6, 6)), (2, 3, 6, 6)


def _conv(rng, dtype):
    x = rng.standard_normal((2, 2, 5, 5)).astype(dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    return (x, w, np.ones(3, dtype), (1, 1), (1, 1), "relu"), (2, 3, 5, 5)


def _pool(rng, dtype):
    x = rng.integers(-9, 9, (2, 3, 6, 6)).astype(dtype)
    return (x, (2, 2), (2, 2), (0, 0)), (2, 3, 3, 3)


def _softmax_ce(rng, dtype):
    return (rng.standard_normal((5, 4)).astype(dtype), np.array([0, 3, 1, 2, 3])), (5,)


# name -> (forward, backward, arguments): the backward takes (gy, cache, *extra)
PAIRS = {
    "conv2d": ("conv2d_forward", "conv2d_backward", _conv, (True,)),
    "conv2d_general": ("conv2d_general_forward", "conv2d_general_backward", _conv_general,
                       (True,)),
    "conv_transpose2d": ("conv_transpose2d_forward", "conv_transpose2d_backward",
                         _conv_transpose, (True,)),
    "max_pool2d": ("max_pool2d_forward", "max_pool2d_backward", _pool, ()),
    "avg_pool2d": ("avg_pool2d_forward", "avg_pool2d_backward", _pool, ()),
    "softmax_cross_entropy": ("softmax_cross_entropy_forward",
                              "softmax_cross_entropy_backward", _softmax_ce, ()),
}


def _equal(actual, expected):
    if expected is None:
        assert actual is None
        return
    if isinstance(expected, tuple):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _equal(a, e)
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


def _cpu_table():
    pytest.importorskip("numba", reason="Numba (a declared dependency) is not installed")
    import kernels.cpu
    return kernels.cpu.KERNELS


@pytest.fixture(params=["cpu", "cuda-on-numpy"])
def table(request, monkeypatch):
    """A fast kernel table; "cuda-on-numpy" is kernels.cuda with NumPy for CuPy."""
    if request.param == "cpu":
        return _cpu_table()
    from tests.helpers.cuda_emulator import use_fake_cupy
    import kernels.cuda
    use_fake_cupy(monkeypatch)
    return kernels.cuda.KERNELS


def _check_pair(table, pair, dtype, gy_dtype=None):
    forward, backward, make, extra = PAIRS[pair]
    if forward not in table:
        pytest.skip(f"this table has no {forward}")
    args, y_shape = make(np.random.default_rng(3), dtype)
    y, cache = table[forward](*args)
    y_ref, cache_ref = ref.KERNELS[forward](*args)
    _equal(y, y_ref)
    gy = np.random.default_rng(4).integers(-3, 4, y_shape).astype(gy_dtype or y.dtype)
    _equal(table[backward](gy, cache, *extra), ref.KERNELS[backward](gy, cache_ref, *extra))


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_float16_runs_on_the_reference_both_ways(table, pair):
    _check_pair(table, pair, np.float16)


@pytest.mark.parametrize("pair", ["max_pool2d", "avg_pool2d"])
def test_integer_images_are_pooled_by_the_reference_in_their_dtype(table, pair):
    _check_pair(table, pair, np.int64, gy_dtype=np.int64)


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_a_reference_cache_goes_to_the_reference_backward(table, pair):
    """A float32 forward run by the reference, its cache handed to the fast backward."""
    forward, backward, make, extra = PAIRS[pair]
    if forward not in table:
        pytest.skip(f"this table has no {forward}")
    args, y_shape = make(np.random.default_rng(5), np.float32)
    _, cache_ref = ref.KERNELS[forward](*args)
    gy = np.random.default_rng(6).standard_normal(y_shape).astype(np.float32)
    _equal(table[backward](gy, cache_ref, *extra), ref.KERNELS[backward](gy, cache_ref, *extra))


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_float32_stays_on_the_fast_cpu_kernels(pair):
    """The fast path is still taken: its cache is the fast kernel's own, not the
    reference's plain tuple, and the numbers agree with the reference."""
    table = _cpu_table()
    forward, backward, make, extra = PAIRS[pair]
    args, y_shape = make(np.random.default_rng(7), np.float32)
    y, cache = table[forward](*args)
    assert type(cache) is not tuple
    y_ref, cache_ref = ref.KERNELS[forward](*args)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    gy = np.random.default_rng(8).standard_normal(y_shape).astype(np.float32)
    grads = table[backward](gy, cache, *extra)
    grads_ref = ref.KERNELS[backward](gy, cache_ref, *extra)
    for a, e in zip(*(g if isinstance(g, tuple) else (g,) for g in (grads, grads_ref))):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activations_of_other_dtypes_and_mismatched_outputs(table, name):
    x16 = np.linspace(-2, 2, 7).astype(np.float16)
    _equal(table["activation_forward"](name, x16), ref.KERNELS["activation_forward"](name, x16))
    x_int = np.arange(-3, 4)
    _equal(table["activation_forward"](name, x_int),
           ref.KERNELS["activation_forward"](name, x_int))
    y32 = ref.KERNELS["activation_forward"](name, x16.astype(np.float32))
    for gy in (np.ones(7, np.float16), np.ones(7, np.float64)):  # not y's dtype
        _equal(table["activation_backward"](name, gy, y32),
               ref.KERNELS["activation_backward"](name, gy, y32))


UPDATES = {
    "sgd_update": (1, dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False,
                           weight_decay=0.01, first_step=True)),
    "adam_update": (2, dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                            step=1, decoupled_weight_decay=True)),
    "rmsprop_update": (3, dict(lr=0.1, alpha=0.99, eps=1e-8, weight_decay=0.0,
                               momentum=0.5, centered=True)),
    "adagrad_update": (1, dict(lr=0.1, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step=1)),
}


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_float16_parameters_take_the_reference_update(table, name):
    n_state, hyper = UPDATES[name]
    rng = np.random.default_rng(9)
    param = rng.standard_normal(6).astype(np.float16)
    grad = rng.standard_normal(6).astype(np.float16)
    state = [np.full(6, 0.5, np.float16) for _ in range(n_state)]
    param_ref, state_ref = param.copy(), [s.copy() for s in state]
    table[name](param, grad, *state, **hyper)
    ref.KERNELS[name](param_ref, grad, *state_ref, **hyper)
    for a, e in zip([param] + state, [param_ref] + state_ref):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, e)


def test_a_strided_cpu_parameter_takes_the_reference_update():
    """The CPU's fused updates write through flat views: a parameter they cannot view
    flat (every other element of a buffer) is updated by the reference, in place."""
    table = _cpu_table()
    buffer = np.arange(12, dtype=np.float64)
    param, grad = buffer[::2], np.ones(6)
    expected = param.copy()
    ref.KERNELS["sgd_update"](expected, grad, None, **{**UPDATES["sgd_update"][1],
                                                       "momentum": 0.0})
    table["sgd_update"](param, grad, None, **{**UPDATES["sgd_update"][1], "momentum": 0.0})
    np.testing.assert_array_equal(buffer[::2], expected)
    np.testing.assert_array_equal(buffer[1::2], np.arange(1, 12, 2))
