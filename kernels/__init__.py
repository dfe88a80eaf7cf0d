"""Raw compute on arrays, one table of kernels per device.

This package knows nothing of Tensor or autograd and never imports ``minigrad``.
Each sub-package exports ``KERNELS``, a dict from kernel name to function:

- ``kernels.reference``: plain NumPy/CuPy code (array-module generic). The ground
  truth every fast kernel is tested against, and the fallback for any name a
  device table does not fill in, and for any call a fast kernel is not built for
  (float16 or integer arrays, a cache the reference made: ``kernels._fallback``).
- ``kernels.cpu``: Numba ``@njit(cache=True)`` kernels for the CPU hot loops.
- ``kernels.cuda``: CUDA C sources (``*.cu``) compiled through CuPy ``RawModule``.

The contract (shapes NCHW, weights OIHW, every function pure unless it says
"in place"):

``matmul(a, b) -> a @ b``
    NumPy's matmul rules. On CUDA it is cuBLAS through CuPy, except while the current
    stream is capturing a CUDA graph, where CuPy refuses: then cuBLAS through
    minigrad's own handle (default), or the graph-safe tiled GEMM
    (``kernels.cuda.gemm.matmul_graph_safe``) with ``MINIGRAD_CAPTURE_GEMM=custom``.
``conv2d_forward(x, w, b, stride, padding, activation=None) -> (y, cache)``
    ``b`` may be None; ``stride``/``padding`` are ``(sh, sw)``/``(ph, pw)`` tuples.
    ``y`` takes ``x``/``w``'s dtype (a bias of another float dtype is cast to it);
    an empty batch or no input channels are valid. ``activation`` (None, "relu",
    "tanh" or "sigmoid") is applied to the output in the same pass as the bias: a
    fused Conv2d + activation.
``conv2d_backward(gy, cache, need_input_grad) -> (gx or None, gw, gb or None)``
    ``gy`` is the gradient of the (activated) output; the activation's derivative
    is taken from the output kept in the cache.
``max_pool2d_forward(x, kernel, stride, padding) -> (y, cache)``
    Padding is the dtype's lowest value and never wins a tie: a window's gradient
    goes to its first in-bounds maximum (a window with no element inside gives the
    lowest value and sends its gradient nowhere).
``max_pool2d_backward(gy, cache) -> gx``
``avg_pool2d_forward(x, kernel, stride, padding) -> (y, cache)``  (count_include_pad)
``avg_pool2d_backward(gy, cache) -> gx``
``softmax_cross_entropy_forward(logits, labels) -> (losses, cache)``
    per-sample losses (N,) for integer labels (N,); numerically stable. A label
    outside [0, classes) gives a NaN loss (reference, CUDA: nothing may wait to check
    it on a GPU) or a ValueError (the CPU's fast kernel); the op layer checks labels
    on the CPU before either runs.
``softmax_cross_entropy_backward(gloss, cache) -> glogits``
``activation_forward(name, x) -> y``, ``activation_backward(name, gy, y) -> gx``
    for name "relu", "tanh" or "sigmoid", the derivative taken from the output ``y``
    (ReLU passes nothing, not even inf or NaN, where ``y`` is not positive); any
    shape, 0-d included; tanh and sigmoid of integers are float32.
Optimizer updates (in place on ``param`` and the state arrays): see
``kernels.reference.optim``.

``cache`` is opaque: only the backward of the same table reads it (ops take both
from one table when the forward runs).
"""
