"""Neural-network building blocks: Module, Parameter, layers, Sequential, ModuleList, init."""
from . import init
from .layers import (ACTIVATIONS, AvgPool2d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten,
                     LazyConv2d, LazyLinear, LeakyReLU, Linear, MaxPool2d, ModuleList, ReLU,
                     Sequential, Sigmoid, Softmax, Tanh, activation)
from .module import Module
from .parameter import Parameter, UninitializedParameter

__all__ = ["Module", "Parameter", "UninitializedParameter", "init", "Dense", "Linear",
           "LazyLinear", "Conv2d", "LazyConv2d", "MaxPool2d", "AvgPool2d", "Flatten", "Dropout",
           "BatchNorm2d", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softmax", "Sequential", "ModuleList", "activation", "ACTIVATIONS"]
