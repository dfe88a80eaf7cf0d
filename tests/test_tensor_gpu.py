"""Tensor semantics that must hold on CuPy arrays too (skipped without CuPy and a GPU)."""
import numpy as np
import pytest

import minigrad as mg

pytestmark = pytest.mark.gpu

if not mg.cuda_available():
    pytest.skip("needs CuPy and a CUDA GPU", allow_module_level=True)


def test_leaves_own_their_gradients_on_the_gpu():
    from minigrad import nn
    w1 = mg.tensor([1.0, 2.0], requires_grad=True, device="cuda")
    w2 = mg.tensor([3.0, 4.0], requires_grad=True, device="cuda")
    (w1 + w2).sum().backward()  # a broadcast view, handed to both leaves
    w1.grad *= 0.5
    np.testing.assert_allclose(w1.grad.get(), [0.5, 0.5])
    np.testing.assert_allclose(w2.grad.get(), [1, 1])
    b = nn.Parameter(mg.tensor(1.0, device="cuda").data)
    (b * mg.tensor([1.0, 2.0], device="cuda")).sum().backward()
    assert b.grad.shape == () and float(b.grad) == 3.0


def test_tensor_copies_and_as_tensor_shares_on_the_gpu():
    from minigrad.tensor import as_tensor
    source = mg.tensor([1.0, 2.0], device="cuda").data
    copied, shared = mg.tensor(source, device="cuda"), as_tensor(source, device="cuda")
    source[0] = 9
    assert copied.numpy()[0] == 1 and shared.numpy()[0] == 9


def test_an_int_tensor_times_a_float_is_float32_on_the_gpu():
    out = mg.tensor([1, 2], device="cuda") * 0.5
    assert out.dtype == np.float32 and out.device == "cuda"
    np.testing.assert_allclose(out.numpy(), [0.5, 1.0])
