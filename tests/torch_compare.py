"""A local PyTorch oracle for op tests: one op run in both frameworks, forward and
backward compared (``compare_with_torch``), and a torch state dict copied into a
minigrad module (``load_torch_state``). Callers skip without torch first."""
import numpy as np

import minigrad as mg


def compare_with_torch(mg_fn, torch_fn, *arrays, atol=1e-6, rtol=1e-5, seed=0, grad=True):
    """Assert ``mg_fn`` on minigrad tensors and ``torch_fn`` on torch tensors agree, on
    the output and on every floating input's gradient of a fixed random weighting."""
    import torch
    arrays = [np.asarray(a) for a in arrays]
    wants = [grad and a.dtype.kind == "f" for a in arrays]
    mine = [mg.tensor(a, requires_grad=w) for a, w in zip(arrays, wants)]
    theirs = [torch.tensor(a, requires_grad=w) for a, w in zip(arrays, wants)]
    out, expected = mg_fn(*mine), torch_fn(*theirs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), atol=atol, rtol=rtol,
                               err_msg="forward")
    if not any(wants):
        return out
    weights = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    (out * mg.tensor(weights)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for i, (m, t) in enumerate(zip(mine, theirs)):
        if wants[i]:
            np.testing.assert_allclose(m.grad, t.grad.numpy(), atol=atol, rtol=rtol,
                                       err_msg=f"gradient of input {i}")
    return out


def load_torch_state(module, torch_module):
    """Copy ``torch_module``'s state dict (parameters and buffers) into ``module``."""
    module.load_state_dict({k: v.detach().numpy().copy()
                            for k, v in torch_module.state_dict().items()})
    return module
