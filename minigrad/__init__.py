"""minigrad: a small, fast, from-scratch deep-learning framework.

``import minigrad as mg``; ``mg.tensor(...)``; layers in ``mg.nn``, ops in
``mg.functional``, losses in ``mg.losses``, optimizers in ``mg.optim``, datasets and
loaders in ``mg.data``, ``fit``/``evaluate`` in ``mg.train``; ``mg.save``/``mg.load``
for state dicts (.npz, .safetensors); ``mg.onnx.export`` to ONNX; ``mg.cuda`` (CUDA graphs,
TF32) is imported on first use, since it needs CuPy.
"""
from . import backend, data, functional, losses, nn, onnx, optim, train
from .backend import cuda_available
from .io import load_weights as load, save_weights as save
from .random import manual_seed
from .tensor import Tensor, as_tensor, from_numpy, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"


def __getattr__(name):
    # mg.cuda (CUDA-graph training steps) imports CuPy, so load it only when asked for.
    if name == "cuda":
        from . import cuda
        return cuda
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")

__all__ = ["Tensor", "tensor", "as_tensor", "from_numpy", "no_grad", "is_grad_enabled",
           "cuda_available", "manual_seed", "save", "load", "backend", "functional", "losses",
           "nn", "onnx", "optim", "data", "train"]
