"""One helper every op and layer test uses: finite differences vs autograd, float64.

``check_gradients(fn, *arrays)`` evaluates ``fn`` on Tensors made from the arrays,
reduces the output with fixed random weights to a scalar (so the whole Jacobian is
exercised, not just its row sums), back-propagates, and compares each input's
gradient with central differences of the same scalar.
"""
import numpy as np

import minigrad as mg


def check_gradients(fn, *arrays, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0, wrt=None):
    """Assert autograd gradients of ``fn`` match finite differences for every input.

    ``wrt``: indices of the inputs to check (default: all). Returns the output array.
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    wrt = range(len(arrays)) if wrt is None else wrt
    tensors = [mg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = np.random.default_rng(seed).standard_normal(out.shape)

    def scalar(values):
        with mg.no_grad():
            result = fn(*[mg.tensor(v) for v in values])
        return float((result.numpy() * weights).sum())

    (out * mg.tensor(weights)).sum().backward()
    for i in wrt:
        numeric = np.zeros_like(arrays[i])
        flat = arrays[i].reshape(-1)
        for j in range(flat.size):
            saved = flat[j]
            flat[j] = saved + eps
            plus = scalar(arrays)
            flat[j] = saved - eps
            minus = scalar(arrays)
            flat[j] = saved
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        analytic = tensors[i].grad
        assert analytic is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(analytic, numeric, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {i} (shape {arrays[i].shape})")
    return out.numpy()


def check_layer_gradients(layer, x, **tolerances):
    """Gradient-check a layer (made float64) with respect to its input and parameters."""
    layer.double()
    owners = [(m, name) for m in layer.modules() for name in m._parameters]
    originals = [m._parameters[name] for m, name in owners]

    def fn(x_t, *param_tensors):
        # Swap in the checker's tensors so gradients land on them.
        for (module, name), t in zip(owners, param_tensors):
            module._parameters[name] = t
        try:
            return layer(x_t)
        finally:
            for (module, name), p in zip(owners, originals):
                module._parameters[name] = p

    return check_gradients(fn, x, *[p.data for p in originals], **tolerances)
