"""One helper every op test uses to hold minigrad against PyTorch, forward and backward.

``check_against_torch(inputs, torch_fn, mg_fn)`` builds the same inputs in both
frameworks (a shape tuple: standard-normal float64 data; an array: used as it is, and
differentiated only if it is floating), runs ``torch_fn`` on torch tensors and ``mg_fn``
on minigrad tensors, and compares every output (shape, dtype, values, NaN where NaN).
It then reduces the floating outputs with fixed random weights to one scalar, back-
propagates in both, and compares each input's gradient. Skips without torch.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import backend


def _outputs(result):
    """An op's result as a list of outputs (a tensor, or a tuple / named tuple of them)."""
    return list(result) if isinstance(result, (tuple, list)) else [result]


def make_inputs(inputs, seed=0, dtype=np.float64):
    """Shape tuples -> seeded standard-normal arrays of ``dtype``; arrays as given."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(a).astype(dtype) if isinstance(a, tuple) else np.asarray(a)
            for a in inputs]


def check_against_torch(inputs, torch_fn, mg_fn, *, grad=True, atol=1e-7, rtol=1e-6,
                        seed=0, dtype=np.float64, device="cpu", check_dtype=True):
    """Assert ``mg_fn`` agrees with ``torch_fn`` on ``inputs``: outputs, then gradients.

    ``inputs``: shape tuples (random float64 data) or arrays. ``grad=False`` compares
    the forward only. ``device="cuda"`` runs minigrad on the GPU. Returns minigrad's
    outputs (as a list) for further checks.
    """
    torch = pytest.importorskip("torch")
    arrays = make_inputs(inputs, seed, dtype)
    wants_grad = [grad and a.dtype.kind == "f" for a in arrays]
    t_in = [torch.tensor(a, requires_grad=w) for a, w in zip(arrays, wants_grad)]
    m_in = [mg.tensor(a, requires_grad=w, device=device) for a, w in zip(arrays, wants_grad)]
    t_out, m_out = _outputs(torch_fn(*t_in)), _outputs(mg_fn(*m_in))
    assert len(t_out) == len(m_out), f"torch gives {len(t_out)} outputs, minigrad {len(m_out)}"
    for i, (t, m) in enumerate(zip(t_out, m_out)):
        expected = t.detach().numpy()
        got = m.numpy()
        assert got.shape == expected.shape, f"output {i}: shape {got.shape}, torch {expected.shape}"
        if check_dtype:
            assert got.dtype == expected.dtype, f"output {i}: dtype {got.dtype}, torch {expected.dtype}"
        np.testing.assert_allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True,
                                   err_msg=f"output {i} differs from torch")
    if not any(wants_grad):
        return m_out
    rng = np.random.default_rng(seed + 1)
    t_loss, m_loss = 0, 0
    for t, m in zip(t_out, m_out):
        if t.requires_grad and m.requires_grad:
            w = rng.standard_normal(tuple(t.shape))
            t_loss = t_loss + (t * torch.tensor(w, dtype=t.dtype)).sum()
            # Infinite outputs may sum to NaN here; only the gradient of this sum counts.
            with np.errstate(invalid="ignore"):
                m_loss = m_loss + (m * mg.tensor(w.astype(m.dtype), device=device)).sum()
        else:
            assert not t.requires_grad and not m.requires_grad, (
                f"torch's output requires grad: {t.requires_grad}, minigrad's: {m.requires_grad}")
    if isinstance(t_loss, int):
        return m_out  # no differentiable output (argmax, comparisons)
    t_loss.backward()
    m_loss.backward()
    for i, (t, m, a) in enumerate(zip(t_in, m_in, arrays)):
        if not wants_grad[i]:
            continue
        expected = np.zeros_like(a) if t.grad is None else t.grad.numpy()
        got = np.zeros_like(a) if m.grad is None else backend.to_numpy(m.grad)
        np.testing.assert_allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True,
                                   err_msg=f"gradient of input {i} (shape {a.shape}) differs from torch")
    return m_out


def load_torch_state(module, torch_module):
    """Copy ``torch_module``'s state dict (parameters and buffers) into ``module``."""
    module.load_state_dict({k: v.detach().numpy().copy()
                            for k, v in torch_module.state_dict().items()})
    return module
