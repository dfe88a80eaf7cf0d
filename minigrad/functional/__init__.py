"""Differentiable ops, one module per family: each op computes its forward array and, beside it, its backward.

Every op follows one pattern::

    def op(x):
        y = <forward on x.data>
        def backward(gy):
            return (<gradient for x>,)
        return _record(y, (x,), backward)

``backward`` receives the output's gradient array and returns one gradient array (or
None) per input: a new array, or the gradient received or a view of it
(``tensor.Node`` says what the engine then copies). Device-specific hot loops
(convolution, pooling, fused losses) come from the device's kernel table
(``backend.kernel``; an op whose backward reads its forward's cache takes both
kernels from one table when the forward runs, ``backend.kernels``); everything else
is array-module code that runs unchanged on NumPy and CuPy. Names follow ``torch.nn.functional``.

The families: ``elementwise`` (arithmetic, matmul, linear), ``reduce``, ``shape``,
``activation``, ``conv``, ``pool``, ``norm`` (batch norm, dropout), ``loss``; what they
share is in ``_core``. ``minigrad.functional`` (``F``) is the one import path.
"""
from ._core import (_axis, _check_bias, _operands, _promoted, _record, _same_device,  # noqa: F401
                    _xp, cast, unbroadcast)
from .activation import _activation, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401
from .conv import _check_nchw, conv2d  # noqa: F401
from .elementwise import (abs, add, div, exp, linear, log, matmul, mul, neg, pow,  # noqa: F401
                          sub)
from .loss import (_check_logits, _checked_on_device, _class_labels,  # noqa: F401
                   _nan_for_bad_labels, _reduce, binary_cross_entropy_with_logits,
                   cross_entropy, huber_loss, l1_loss, mse_loss, multi_margin_loss,
                   nll_loss)
from .norm import batch_norm, dropout  # noqa: F401
from .pool import avg_pool2d, max_pool2d  # noqa: F401
from .reduce import max, mean, sum  # noqa: F401
from .shape import flatten, getitem, reshape, swapaxes, transpose  # noqa: F401

# ---- issue 13: tensor ops with torch's names (reductions, elementwise, shapes) ----
from ._core import _dim_alias, _dims  # noqa: F401,E402
from .elementwise import (clamp, clip, cos, erf, exp2, floor_divide, isfinite,  # noqa: F401,E402
                          isinf, isnan, log2, log10, maximum, minimum, remainder, rsqrt,
                          sign, sin, sqrt, where)
from .reduce import (ValuesIndices, all, amax, amin, any, argmax, argmin,  # noqa: F401,E402
                     cumsum, logsumexp, min, norm, prod, std, var)
from .shape import (cat, chunk, expand, flip, gather, index_select, masked_fill,  # noqa: F401,E402
                    one_hot, repeat, scatter_add, sort, split, squeeze, stack, topk,
                    unflatten, unsqueeze)
# ---- issue 13 (activations, norms, embedding, attention, losses): one block, kept apart
from .activation import (elu, gelu, hardsigmoid, hardswish, hardtanh, logsigmoid,  # noqa: F401
                         mish, prelu, relu6, selu, silu, softplus)
from .embedding import embedding  # noqa: F401
from .norm import dropout2d, group_norm, layer_norm  # noqa: F401
from .attention import scaled_dot_product_attention  # noqa: F401
from .loss import binary_cross_entropy, kl_div, smooth_l1_loss  # noqa: F401
# ---- issue 13: convolution, pooling and resizing (conv.py, pool.py, resize.py)
from .conv import conv1d, conv_transpose2d, conv_transpose_output_size  # noqa: F401,E402
from .pool import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool1d,  # noqa: F401,E402
                   max_pool1d, max_unpool2d)
from .resize import interpolate, pad  # noqa: F401,E402
