"""Neural-network building blocks: Module, Parameter, layers, Sequential, ModuleList, init,
utils, parallel (DistributedDataParallel)."""
from . import init, parallel, utils
from .activation import (ACTIVATIONS, ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh,
                         LeakyReLU, LogSigmoid, Mish, PReLU, ReLU, ReLU6, Sigmoid, SiLU, Softmax,
                         Softplus, Tanh, activation)
from .attention import MultiheadAttention
from .containers import ModuleList, Sequential
from .conv_pool import AvgPool2d, Conv2d, LazyConv2d, MaxPool2d
from .embedding import Embedding
from .layers import Dense, Dropout, Flatten, Identity, LazyLinear, Linear
from .norm import BatchNorm1d, BatchNorm2d, Dropout2d, GroupNorm, LayerNorm, SyncBatchNorm
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
