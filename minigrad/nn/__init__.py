"""Neural-network building blocks: Module, Parameter, layers, Sequential, ModuleList, init,
utils, parallel (DistributedDataParallel)."""
from . import init, parallel, utils
from .activation import (ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LogSigmoid, Mish,
                         PReLU, ReLU6, SiLU, Softplus)
from .attention import MultiheadAttention
from .embedding import Embedding
from .layers import (ACTIVATIONS, AvgPool2d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten,
                     Identity, LazyConv2d, LazyLinear, LeakyReLU, Linear,
                     MaxPool2d, ModuleList, ReLU, Sequential,
                     Sigmoid, Softmax, SyncBatchNorm, Tanh, activation)
from .norm import BatchNorm1d, Dropout2d, GroupNorm, LayerNorm
from .module import Module
from .parameter import Parameter, UninitializedParameter

__all__ = ["Module", "Parameter", "init", "utils", "Dense", "Linear", "Conv2d", "MaxPool2d",
           "AvgPool2d", "Flatten", "Dropout", "BatchNorm2d", "ReLU", "LeakyReLU", "Tanh",
           "Sigmoid", "Softmax", "Sequential", "ModuleList", "activation", "ACTIVATIONS",
           "GELU", "SiLU", "ELU", "SELU", "Softplus", "Mish", "Hardtanh", "ReLU6", "Hardswish",
           "Hardsigmoid", "LogSigmoid", "PReLU", "Identity", "LayerNorm", "GroupNorm", "BatchNorm1d",
           "Dropout2d", "Embedding", "MultiheadAttention"]

# ---- issue 13: convolution, pooling, resizing and padding layers (conv_pool.py)
from .conv_pool import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d,  # noqa: E402
                        CircularPad2d, ConstantPad2d, Conv1d, ConvTranspose2d, MaxPool1d,
                        MaxUnpool2d, ReflectionPad2d, ReplicationPad2d, Upsample, ZeroPad2d)

__all__ += ["Conv1d", "ConvTranspose2d", "MaxPool1d", "AvgPool1d", "MaxUnpool2d",
            "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Upsample", "ZeroPad2d", "ConstantPad2d",
            "ReflectionPad2d", "ReplicationPad2d", "CircularPad2d"]

__all__ += ["SyncBatchNorm", "parallel"]

__all__ += ["UninitializedParameter", "LazyLinear", "LazyConv2d"]
