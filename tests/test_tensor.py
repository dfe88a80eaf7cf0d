"""Tensor and autograd engine behaviour."""
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
    assert z.node is None and y.node is None  # closures (and their buffers) freed
    z2 = (x * x).sum()
    z2.backward(retain_graph=True)
    assert z2.node is not None


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
    np.testing.assert_allclose(x.max(axis=-1).numpy(), a.max(-1))
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
        backend.kernel("conv2d_forward")
