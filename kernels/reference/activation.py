"""ReLU forward and backward; the cache is the output (its sign is all backward needs)."""
from .._xp import array_module


def relu_forward(x):
    """(y, cache): y = max(x, 0) elementwise (NaN propagates, as np.maximum)."""
    y = array_module(x).maximum(x, 0)
    return y, y


def relu_backward(gy, cache):
    """gx = gy where the forward output was positive, else 0."""
    return gy * (cache > 0)
