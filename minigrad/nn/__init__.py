"""Neural-network building blocks: Module, Parameter, layers, Sequential, ModuleList, init,
parallel (DistributedDataParallel)."""
from . import init, parallel
from .layers import (ACTIVATIONS, AvgPool2d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten,
                     LeakyReLU, Linear, MaxPool2d, ModuleList, ReLU, Sequential, Sigmoid,
                     Softmax, SyncBatchNorm, Tanh, activation)
from .module import Module
from .parameter import Parameter

__all__ = ["Module", "Parameter", "init", "Dense", "Linear", "Conv2d", "MaxPool2d",
           "AvgPool2d", "Flatten", "Dropout", "BatchNorm2d", "ReLU", "LeakyReLU", "Tanh",
           "Sigmoid", "Softmax", "SyncBatchNorm", "Sequential", "ModuleList", "activation",
           "ACTIVATIONS", "parallel"]
