"""CUDA kernels through CuPy: CUDA C sources (``*.cu``) compiled by NVRTC on first use.

``KERNELS`` overrides the reference table for device ``"cuda"``. Matrix products
(``"matmul"``, and the GEMMs inside the convolution) go to cuBLAS, except while the
current stream is capturing a CUDA graph, where CuPy cannot call cuBLAS: then they
run on cuBLAS through minigrad's own handle (cublas_capture.py), or on our tiled GEMM
(``gemm.matmul_graph_safe``, gemm.cu) with ``MINIGRAD_CAPTURE_GEMM=custom``. Importing
this package needs no GPU and no CuPy; the functions need both when called.
"""
from . import activation, conv, gemm, losses, optim, pool, random

KERNELS = {
    "matmul": gemm.matmul,
    "conv2d_forward": conv.conv2d_forward,
    "conv2d_backward": conv.conv2d_backward,
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
    "dropout_mask": random.dropout_mask,
    "activation_forward": activation.activation_forward,
    "activation_backward": activation.activation_backward,
}
