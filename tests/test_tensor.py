"""Tensor and autograd engine behaviour."""
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend


def test_float_data_defaults_to_float32_and_float64_is_kept():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor(np.zeros(3)).dtype == np.float64
    assert mg.tensor(np.zeros(3, np.float16)).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor(3.0).shape == ()


def test_python_scalars_keep_the_tensor_dtype():
    x = mg.tensor([1.0, 2.0])
    assert (x * 2.0).dtype == np.float32
    assert (2 - x).dtype == np.float32
    np.testing.assert_allclose((2 - x).numpy(), [1, 0])


def test_gradients_accumulate_until_reset():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 4 * x.numpy())
    x.zero_grad()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3, 3, 3])


def test_shared_subexpression_gets_both_paths():
    x = mg.tensor(2.0, requires_grad=True)
    y = x * x
    z = y * y + y  # x^4 + x^2
    z.backward()
    assert x.grad == pytest.approx(4 * 8 + 2 * 2)


@pytest.mark.parametrize("build,want", [
    # A tensor used directly and through a longer path by the same op, in either
    # order: it must get both gradients before it passes its own on.
    (lambda x: x + x * 3, lambda x: np.full_like(x, 4.0)),
    (lambda x: x * 3 + x, lambda x: np.full_like(x, 4.0)),
    (lambda x: x * x.exp(), lambda x: (1 + x) * np.exp(x)),           # x e^x
    (lambda x: x * mg.functional.sigmoid(x),                            # SiLU
     lambda x: (s := 1 / (1 + np.exp(-x))) * (1 + x * (1 - s))),
    (lambda x: (h := (x * 2).exp()) + (h * x).exp(),                    # a non-leaf twice
     lambda x: 2 * np.exp(2 * x) + np.exp(x * np.exp(2 * x)) * np.exp(2 * x) * (1 + 2 * x)),
])
def test_a_tensor_reached_by_paths_of_different_lengths_gets_every_gradient(build, want):
    values = np.array([-1.5, 0.5, 2.0])
    x = mg.tensor(values, requires_grad=True)
    build(x).sum().backward()
    np.testing.assert_allclose(x.grad, want(values), rtol=1e-12)


def test_a_residual_block_gets_the_gradient_of_both_branches():
    """relu(l1(x)) feeds l2 both directly and through l3: h + l3(h) (float64)."""
    from minigrad import nn
    rng = np.random.default_rng(0)
    l1, l2, l3 = (nn.Dense(4, 4) for _ in range(3))
    for layer in (l1, l2, l3):
        layer.astype(np.float64)
    x = mg.tensor(rng.standard_normal((5, 4)))
    h = mg.functional.relu(l1(x))
    l2(h + l3(h)).sum().backward()
    # By hand: d/dh of sum(l2(h + l3 h)) = (1 + W3^T) W2^T 1, through relu to W1.
    w2, w3 = l2.weight.data, l3.weight.data
    g_h = np.ones((5, 4)) @ w2 @ (np.eye(4) + w3)
    g_pre = g_h * (h.data > 0)
    np.testing.assert_allclose(l1.weight.grad, g_pre.T @ x.data, rtol=1e-12)


def test_long_chain_backward_is_iterative():
    x = mg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 10_000, rel=1e-3)


def test_backward_on_non_scalar_needs_a_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(np.ones(2, np.float32))
    np.testing.assert_allclose(x.grad, [2, 2])


def test_backward_gradient_shape_is_checked():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        (x * 2).backward(np.ones(3, np.float32))


def test_graph_is_released_after_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = (y * y).sum()
    z.backward()
    # Closures and inputs (and the buffers they hold) freed; still not leaves.
    assert z.node.released and y.node.released and y.node.inputs == ()
    assert not y.is_leaf
    z2 = (x * x).sum()
    z2.backward(retain_graph=True)
    assert not z2.node.released


def test_no_grad_records_nothing_and_detach_cuts():
    x = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.node is None
    assert mg.is_grad_enabled()
    d = (x * 2).detach()
    assert not d.requires_grad and d.node is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        d.sum().backward()


def test_intermediate_tensors_keep_no_grad():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.sum().backward()
    assert y.grad is None and x.grad is not None


def test_methods_and_indexing():
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    x = mg.tensor(a)
    assert x.sum(axis=1).shape == (2, 4)
    assert x.mean(axis=(0, 2), keepdims=True).shape == (1, 3, 1)
    np.testing.assert_allclose(x.max(axis=-1).values.numpy(), a.max(-1))  # torch: (values, indices)
    assert x.reshape(6, 4).shape == (6, 4)
    assert x.transpose(2, 0, 1).shape == (4, 2, 3)
    np.testing.assert_allclose(x[1, :, 2].numpy(), a[1, :, 2])
    assert x.T.shape == (4, 3, 2)
    assert (x > 5).numpy().sum() == 18


def test_broadcast_failure_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        mg.tensor(np.ones((2, 3))) + mg.tensor(np.ones(4))


def test_requires_grad_only_for_floats():
    with pytest.raises(TypeError, match="floating"):
        mg.tensor([1, 2], requires_grad=True)


def test_item_and_repr():
    assert mg.tensor([[2.5]]).item() == 2.5
    assert "requires_grad=True" in repr(mg.tensor([1.0], requires_grad=True))
    with pytest.raises(ValueError, match="one-element"):
        mg.tensor([1.0, 2.0]).item()


def test_cuda_request_without_gpu_is_one_clear_error():
    if mg.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="(CuPy|GPU)") as info:
        mg.tensor([1.0]).to("cuda")
    message = str(info.value)
    assert "pip install" in message or "no CUDA GPU" in message


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="tpu"):
        mg.tensor([1.0], device="tpu")


def test_kernel_switch_is_validated(monkeypatch):
    monkeypatch.setenv("MINIGRAD_KERNELS", "fastest")
    with pytest.raises(ValueError, match="MINIGRAD_KERNELS"):
        backend.kernel("conv2d_forward", "cpu")


# ------------------------------------------------------------ numbers beside tensors
@pytest.mark.parametrize("make,want,dtype", [
    (lambda: mg.tensor([1, 2]) * 0.5, [0.5, 1.0], np.float32),
    (lambda: mg.tensor(np.array([255, 128], np.uint8)) * (1 / 255), [1.0, 128 / 255],
     np.float32),
    (lambda: mg.tensor([1, 2]) + 0.5, [1.5, 2.5], np.float32),
    (lambda: 1.5 - mg.tensor([1, 2]), [0.5, -0.5], np.float32),
    (lambda: mg.tensor([1, 2]) / 2, [0.5, 1.0], np.float32),
    (lambda: mg.tensor([True, False]) * 2, [2, 0], np.int64),
    (lambda: mg.tensor([True, False]) * 1.5, [1.5, 0.0], np.float32),
    (lambda: mg.tensor([1, 2]) ** 0.5, [1.0, 2 ** 0.5], np.float32),
    (lambda: mg.tensor(np.array([3, 4], np.uint8)) * 2, [6, 8], np.uint8),
    (lambda: mg.tensor([1, 2]) * np.float64(0.5), [0.5, 1.0], np.float32),
])
def test_a_number_of_a_higher_kind_promotes_the_tensor_as_torch(make, want, dtype):
    out = make()
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)


def test_a_number_never_widens_a_float_tensor():
    x = mg.tensor([1.0, 2.0])
    for out in (x * 2, x + True, x * np.float64(0.5), x ** np.float64(2), 2.0 ** x):
        assert out.dtype == np.float32
    assert (mg.tensor(np.ones(2)) * 0.5).dtype == np.float64


def test_a_complex_number_is_a_clear_type_error():
    with pytest.raises(TypeError, match="real numbers"):
        mg.tensor([1.0]) * 1j


# ------------------------------------------------------------ released graphs
def test_second_backward_through_a_released_graph_is_an_error():
    from minigrad import nn
    lin = nn.Dense(3, 2)
    h = lin(mg.tensor(np.ones((4, 3), np.float32)))
    l1, l2 = (h * h).mean(), h.sum()
    l1.backward()
    first = lin.weight.grad.copy()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        l2.backward()
    np.testing.assert_array_equal(lin.weight.grad, first)  # nothing half-written


def test_backward_twice_on_one_root_is_an_error_and_sets_no_grad_on_it():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    assert y.grad is None and not y.is_leaf
    np.testing.assert_allclose(x.grad, [2, 4])


def test_retain_graph_allows_a_second_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.sum().backward(retain_graph=True)
    (h * h).sum().backward()
    np.testing.assert_allclose(x.grad, [3 + 18 * 1, 3 + 18 * 2])


# ------------------------------------------------------------ leaves own their .grad
def test_leaves_do_not_share_a_gradient_array():
    w1 = mg.tensor([1.0, 2.0], requires_grad=True)
    w2 = mg.tensor([3.0, 4.0], requires_grad=True)
    ((w1 + w2) * mg.tensor([2.0, 2.0])).sum().backward()
    assert not np.shares_memory(w1.grad, w2.grad)
    for p in (w1, w2):
        p.grad *= 0.5
    np.testing.assert_allclose(w1.grad, [1, 1])
    np.testing.assert_allclose(w2.grad, [1, 1])


def test_a_reduction_gradient_is_writable_for_zero_grad_in_place():
    from minigrad import nn, optim
    w = nn.Parameter(np.ones((2, 2), np.float32))
    (w + 1).mean().backward()
    assert w.grad.flags.writeable and w.grad.flags.owndata
    opt = optim.SGD([w], lr=0.1)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad, np.zeros((2, 2)))


def test_a_zero_dimensional_leaf_gets_an_array_not_a_numpy_scalar():
    from minigrad import nn
    b = nn.Parameter(np.array(1.0, np.float32))
    for _ in range(2):  # set, then accumulated (0-d + 0-d is a NumPy scalar)
        (b * mg.tensor([1.0, 2.0])).sum().backward()
        assert type(b.grad) is np.ndarray and b.grad.shape == ()
    assert b.grad == 6.0


def test_the_callers_gradient_array_is_never_kept():
    q = mg.tensor([1.0, 2.0], requires_grad=True)
    given = np.ones(2, np.float32)
    q.backward(grad=given)
    assert q.grad is not given
    w = mg.tensor([[1.0, 2.0]], requires_grad=True)
    w.reshape(2).backward(grad=given)  # reaches the leaf as a view of the caller's array
    assert not np.shares_memory(w.grad, given)
    q.grad[...] = 0
    w.grad[...] = 0
    np.testing.assert_array_equal(given, [1, 1])


def test_a_fresh_kernel_gradient_is_kept_without_a_copy(monkeypatch):
    """The big gradients (matmul outputs) are stored as they come out of the op."""
    from minigrad import nn
    layer = nn.Dense(3, 4)
    made = []  # weak references: a strong one would make the leaf copy it
    real = mg.backend.kernel

    def recording(name, device):
        fn = real(name, device)
        if name != "matmul":
            return fn

        def product(a, b):
            out = fn(a, b)
            made.append(weakref.ref(out))
            return out
        return product
    monkeypatch.setattr(mg.backend, "kernel", recording)
    layer(mg.tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert any(layer.weight.grad is ref() for ref in made)


def _leaf_gradient_from(make):
    """The .grad a leaf keeps when an op's backward returns ``make()`` for it."""
    from minigrad.functional import _record
    x = mg.tensor(np.zeros((2, 2)), requires_grad=True)
    _record(x.data + 1, (x,), lambda g: (make(),)).sum().backward()
    return x.grad


def test_a_view_of_a_new_array_is_kept_and_a_part_of_one_is_copied():
    made = []  # a weak reference to the view: it is the backward's alone

    def view_of_a_new_array():
        view = np.arange(4.0).reshape(2, 2)
        made.append(weakref.ref(view))
        return view
    grad = _leaf_gradient_from(view_of_a_new_array)
    assert grad is made[0]()  # no copy
    # A part of a bigger array: copied, so the leaf does not pin the whole buffer.
    grad = _leaf_gradient_from(lambda: np.arange(8.0)[:4].reshape(2, 2))
    assert grad.flags.owndata


def test_a_new_gradient_handed_on_by_a_view_op_is_still_kept():
    """A reshape's backward hands on the array it got: the engine's own, no copy."""
    from minigrad.functional import _record
    made = []
    w = mg.tensor(np.zeros((2, 3)), requires_grad=True)

    def new_gradient(g):
        out = np.full((6,), 2.0)
        made.append(weakref.ref(out))
        return (out,)
    _record(np.zeros(6), (w.reshape(6),), new_gradient).sum().backward()
    assert w.grad.base is made[0]()
    np.testing.assert_array_equal(w.grad, np.full((2, 3), 2.0))


def test_a_gradient_on_a_forward_value_or_parameter_is_copied():
    """A backward that returns an input's data (a parameter), a view of it, or the
    output's data: the leaf gets its own array, and writing it changes nothing else."""
    from minigrad.functional import _record
    for hand_back in (lambda x, out: x.data, lambda x, out: x.data.T.T,
                      lambda x, out: out[0].data):
        x = mg.tensor(np.ones((2, 2)), requires_grad=True)
        out = []
        out.append(_record(x.data * 3, (x,), lambda g: (hand_back(x, out),)))
        out[0].backward(np.ones((2, 2)))
        held = hand_back(x, out).copy()
        assert not np.shares_memory(x.grad, x.data)
        assert not np.shares_memory(x.grad, out[0].data)
        x.grad += 10
        np.testing.assert_array_equal(x.data, np.ones((2, 2)))
        np.testing.assert_array_equal(out[0].data, np.full((2, 2), 3.0))
        np.testing.assert_array_equal(x.grad, held + 10)


def test_one_gradient_handed_to_two_leaves_gives_each_its_own():
    """``a + b`` hands its gradient to both inputs (and a caller's array, here)."""
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, 4.0], requires_grad=True)
    given = np.array([1.0, 1.0], np.float32)
    (a + b).backward(given)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, given) and not np.shares_memory(b.grad, given)
    a.grad *= 5
    np.testing.assert_array_equal(b.grad, [1, 1])
    np.testing.assert_array_equal(given, [1, 1])
    # An engine-made gradient (backward() of a scalar) handed to both: the same.
    c = mg.tensor(2.0, requires_grad=True)
    d = mg.tensor(3.0, requires_grad=True)
    (c + d).backward()
    assert not np.shares_memory(c.grad, d.grad)
    c.grad += 1
    assert d.grad == 1.0 and c.grad == 2.0


def test_an_accumulated_gradient_is_a_new_array_of_the_leafs_own():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    given = np.array([1.0, 1.0], np.float32)
    w.backward(given)  # the root is the leaf: the caller's array, copied
    assert not np.shares_memory(w.grad, given)
    first = w.grad
    (w * 2).backward(given)
    assert w.grad is not first and not np.shares_memory(w.grad, first)
    w.grad[...] = 0
    np.testing.assert_array_equal(first, [1, 1])
    np.testing.assert_array_equal(given, [1, 1])
    np.testing.assert_array_equal(w.data, [1, 2])


def test_importing_minigrad_installs_and_removes_no_tracer_or_profiler():
    """The gradient rule does not depend on the interpreter's tracing: import leaves
    ``sys.settrace``/``sys.setprofile`` alone (a debugger stays as it was)."""
    import subprocess
    import sys
    code = (
        "import sys\n"
        "calls = []\n"
        "sys.settrace = lambda f: calls.append(('settrace', f))\n"
        "sys.setprofile = lambda f: calls.append(('setprofile', f))\n"
        "import minigrad, minigrad.tensor, minigrad.functional\n"
        "assert calls == [], calls\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_which_gradients_are_kept_does_not_depend_on_a_tracer():
    """Under a tracer that reads every frame's locals (as pdb does), the caller's
    array is still copied and a new one still kept."""
    import sys

    def reading_locals(frame, event, arg):
        frame.f_locals
        return reading_locals
    made = []

    def new_array():
        out = np.ones((2, 2))
        made.append(weakref.ref(out))
        return out
    given = np.ones(2, np.float32)
    w = mg.tensor([[1.0, 2.0]], requires_grad=True)
    sys.settrace(reading_locals)
    try:
        kept = _leaf_gradient_from(new_array)
        w.reshape(2).backward(grad=given)
    finally:
        sys.settrace(None)
    assert kept is made[0]()
    assert not np.shares_memory(w.grad, given)


def test_a_gradient_whose_elements_overlap_is_copied():
    """Rows that are one row in memory (stride 0): writable, and owning its memory,
    but writing one element would change another."""
    def one_row_twice():
        rows = np.ndarray((2, 2), strides=(0, 8))
        assert rows.flags.owndata and rows.flags.writeable
        rows[0] = [1.0, 2.0]
        return rows
    grad = _leaf_gradient_from(one_row_twice)
    grad[0, 0] = 5
    np.testing.assert_array_equal(grad, [[5, 2], [1, 2]])


# ------------------------------------------------------------ Python protocols
def test_truth_value_of_one_element_and_ambiguity_of_more():
    assert not (mg.tensor(2.0) < 1.0)
    assert not bool(mg.tensor([0.0]))
    assert bool(mg.tensor([[3]]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mg.tensor(np.zeros(0)))


def test_float_int_abs_and_len():
    assert float(mg.tensor(2.5)) == 2.5 and int(mg.tensor([[7]])) == 7
    with pytest.raises(ValueError, match="one-element"):
        float(mg.tensor([1.0, 2.0]))
    assert len(mg.tensor(np.ones((3, 2)))) == 3
    with pytest.raises(TypeError, match="0-d"):
        len(mg.tensor(1.0))
    x = mg.tensor([-2.0, 3.0], requires_grad=True)
    abs(x).sum().backward()
    np.testing.assert_allclose(x.grad, [-1, 1])


def test_a_number_to_the_power_of_a_tensor_is_differentiable():
    x = mg.tensor([1.0, 3.0], requires_grad=True)
    y = 2 ** x
    np.testing.assert_allclose(y.numpy(), [2, 8])
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2 * np.log(2), 8 * np.log(2)], rtol=1e-6)


# ------------------------------------------------------------ transpose and permute
def test_transpose_with_negative_axes_gets_the_right_gradient():
    x = mg.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    y = x.transpose(-1, 0, 1)
    assert y.shape == (4, 2, 3)
    (y * mg.tensor(np.arange(24.0).reshape(4, 2, 3))).sum().backward()
    np.testing.assert_array_equal(x.grad, np.arange(24.0).reshape(4, 2, 3).transpose(1, 2, 0))


def test_transpose_takes_numpy_and_torch_spellings():
    a = np.arange(120.0).reshape(2, 3, 4, 5)
    x = mg.tensor(a)
    np.testing.assert_array_equal(x.transpose(1, 2).numpy(), a.swapaxes(1, 2))  # torch
    np.testing.assert_array_equal(x.transpose(-1, 0).numpy(), a.swapaxes(-1, 0))
    np.testing.assert_array_equal(x.transpose(3, 1, 0, 2).numpy(), a.transpose(3, 1, 0, 2))
    np.testing.assert_array_equal(x.transpose((3, 1, 0, 2)).numpy(), a.transpose(3, 1, 0, 2))
    np.testing.assert_array_equal(x.transpose().numpy(), a.transpose())
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), a.transpose(0, 2, 3, 1))
    m = mg.tensor(np.arange(6.0).reshape(2, 3))
    assert m.transpose(0, 1).shape == m.transpose(1, 0).shape == (3, 2)


@pytest.mark.parametrize("axes", [(0, 0, 1), (0, 1, 3), (0, 1), (1,)])
def test_a_bad_permutation_is_a_clear_error(axes):
    x = mg.tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"permutation.*\(2, 3, 4\)"):
        x.permute(*axes)


def test_swapping_an_axis_out_of_range_is_a_clear_error():
    with pytest.raises(IndexError, match="dim 3 is out of range"):  # as torch
        mg.tensor(np.ones((2, 3, 4))).transpose(0, 3)


# ------------------------------------------------------------ copies and aliases
def test_tensor_copies_its_input_as_torch_tensor_does():
    a = np.array([1.0, 2.0], np.float32)
    t = mg.tensor(a)
    a[0] = 9
    np.testing.assert_array_equal(t.numpy(), [1, 2])
    u = mg.tensor(t)
    t.data[1] = 5
    np.testing.assert_array_equal(u.numpy(), [1, 2])


def test_as_tensor_and_from_numpy_share_memory():
    from minigrad.tensor import as_tensor, from_numpy
    a = np.array([1.0, 2.0], np.float32)
    shared, numpy_view = as_tensor(a), from_numpy(a)
    a[0] = 9
    assert shared.numpy()[0] == 9 and numpy_view.numpy()[0] == 9
    assert as_tensor(a, dtype=np.float64).dtype == np.float64  # a conversion copies
    assert as_tensor(shared) is shared
    assert as_tensor([1.0, 2.0]).dtype == np.float32
    with pytest.raises(TypeError, match="NumPy array"):
        from_numpy([1.0, 2.0])


def test_an_integer_cast_does_not_require_grad():
    x = mg.tensor([1.5, 2.5], requires_grad=True)
    assert not x.astype(np.int64).requires_grad
    assert x.astype(np.float64).requires_grad


def test_a_zero_dimensional_array_combines_as_a_number_does():
    """As torch treats 0-d tensors, and so that the GPU (whose reductions give 0-d
    arrays, not scalars) promotes as the CPU does: a float32 tensor stays float32."""
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    assert (t * np.array(2.0)).dtype == np.float32  # NumPy alone would give float64
    assert (np.array(2.0) - t).dtype == np.float32
    assert (t + np.array(3)).dtype == np.float32
    # A 0-d array of a higher kind gives its own dtype (a Python float: float32).
    assert (mg.tensor([1, 2]) * np.array(2.5)).dtype == np.float64
    assert (mg.tensor([1, 2]) * 2.5).dtype == np.float32
    (t * np.array(3.0)).sum().backward()
    assert t.grad.dtype == np.float32 and list(t.grad) == [3.0, 3.0]
    assert (t * np.ones(2)).dtype == np.float64  # arrays with a shape keep NumPy's rule


def test_the_old_import_paths_of_the_constructors_and_dtype_rules_still_work():
    """They moved out of tensor.py (to creation.py and dtypes.py); the names stay."""
    import importlib
    from minigrad import creation, dtypes
    tensor_module = importlib.import_module("minigrad.tensor")
    for name, home in (("tensor", creation), ("as_tensor", creation), ("from_numpy", creation),
                       ("constant_like", creation), ("is_scalar", dtypes),
                       ("is_number_like", dtypes), ("scalar_result_dtype", dtypes)):
        assert getattr(tensor_module, name) is getattr(home, name)
    from minigrad.tensor import as_tensor, tensor  # noqa: F401
    assert mg.tensor is creation.tensor and mg.as_tensor is creation.as_tensor
    with pytest.raises(AttributeError, match="no_such_name"):
        tensor_module.no_such_name
    # The inherited op methods add no per-tensor dictionary: __slots__ only.
    with pytest.raises(AttributeError):
        mg.tensor([1.0]).anything = 1
