"""Numba CPU kernels: the hot loops of convolution, pooling, the fused softmax
cross-entropy and the fused optimizer updates, with the contract of ``kernels``;
also the activations (``activation_forward(name, x)``, ``activation_backward(name,
gy, y)`` for relu, tanh and sigmoid), one pass each.

Convolutions are im2col or Winograd transforms (Numba) + batched BLAS GEMMs; large
outputs and scratch arrays are reused between steps (``_buffers``). The work is
spread over the cores by batch slices (``_threads``), OpenBLAS held to one thread;
each Numba kernel runs serially unless ``MINIGRAD_CPU_PARALLEL=1`` (``_jit``).
Names missing here fall back to ``kernels.reference``.
"""
from . import activation, conv, conv_general, linalg, losses, optim, pool
from ._jit import PARALLEL

KERNELS = {
    "conv2d_forward": conv.conv2d_forward,
    "conv2d_backward": conv.conv2d_backward,
    # groups > 1 or dilation > 1, and transposed convolutions (conv_general.py)
    "conv2d_general_forward": conv_general.conv2d_general_forward,
    "conv2d_general_backward": conv_general.conv2d_general_backward,
    "conv_transpose2d_forward": conv_general.conv_transpose2d_forward,
    "conv_transpose2d_backward": conv_general.conv_transpose2d_backward,
    "max_pool2d_forward": pool.max_pool2d_forward,
    "max_pool2d_backward": pool.max_pool2d_backward,
    "avg_pool2d_forward": pool.avg_pool2d_forward,
    "avg_pool2d_backward": pool.avg_pool2d_backward,
    "softmax_cross_entropy_forward": losses.softmax_cross_entropy_forward,
    "softmax_cross_entropy_backward": losses.softmax_cross_entropy_backward,
    "sgd_update": optim.sgd_update,
    "adam_update": optim.adam_update,
    "rmsprop_update": optim.rmsprop_update,
    "adagrad_update": optim.adagrad_update,
    "activation_forward": activation.activation_forward,
    "activation_backward": activation.activation_backward,
    "matmul": linalg.matmul,
}

__all__ = ["KERNELS", "PARALLEL"]
