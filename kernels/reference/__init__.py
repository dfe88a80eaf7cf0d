"""The plain NumPy/CuPy kernels: readable ground truth for every fast kernel."""
from . import activation, conv, linalg, losses, optim, pool, random

KERNELS = {
    "matmul": linalg.matmul,
    "conv2d_forward": conv.conv2d_forward,
    "conv2d_backward": conv.conv2d_backward,
    "conv2d_general_forward": conv.conv2d_general_forward,
    "conv2d_general_backward": conv.conv2d_general_backward,
    "conv_transpose2d_forward": conv.conv_transpose2d_forward,
    "conv_transpose2d_backward": conv.conv_transpose2d_backward,
    "max_pool2d_forward": pool.max_pool2d_forward,
    "max_pool2d_backward": pool.max_pool2d_backward,
    "avg_pool2d_forward": pool.avg_pool2d_forward,
    "avg_pool2d_backward": pool.avg_pool2d_backward,
    "window_max_forward": pool.window_max_forward,
    "window_max_backward": pool.window_max_backward,
    "window_avg_forward": pool.window_avg_forward,
    "window_avg_backward": pool.window_avg_backward,
    "softmax_cross_entropy_forward": losses.softmax_cross_entropy_forward,
    "softmax_cross_entropy_backward": losses.softmax_cross_entropy_backward,
    "sgd_update": optim.sgd_update,
    "adam_update": optim.adam_update,
    # AMSGrad: the array-module step on every device (the fused kernels keep no maximum).
    "adam_amsgrad_update": optim.adam_update,
    "rmsprop_update": optim.rmsprop_update,
    "adagrad_update": optim.adagrad_update,
    "dropout_mask": random.dropout_mask,
    "activation_forward": activation.activation_forward,
    "activation_backward": activation.activation_backward,
}
