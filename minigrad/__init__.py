"""minigrad: a small, fast, from-scratch deep-learning framework.

``import minigrad as mg``; ``mg.tensor(...)``; layers in ``mg.nn``, ops in
``mg.functional``, losses in ``mg.losses``, optimizers in ``mg.optim``, datasets and
loaders in ``mg.data``, ``fit``/``evaluate`` in ``mg.train``, data-parallel
training over MPI/NCCL in ``mg.distributed``; ``mg.save``/``mg.load`` for state dicts
(.npz, .safetensors); ``mg.onnx.export`` to ONNX; ``mg.cuda`` (CUDA graphs, TF32) is
imported on first use, since it needs CuPy.
"""
from . import backend, data, distributed, functional, losses, nn, onnx, optim, train
from .backend import cuda_available, get_num_threads, set_num_threads
from .creation import as_tensor, from_numpy, tensor
from .io import load_weights as load, save_weights
from .random import manual_seed
from .tensor import Tensor, is_grad_enabled, no_grad

# torch's top-level tensor functions (torch.cat, torch.where, ...): the ops of F.
from .functional import (abs, all, amax, amin, any, argmax, argmin, cat, chunk,  # noqa: E402,F401
                         clamp, clip, cumsum, erf, exp, flatten, flip, gather, index_select,
                         isfinite, isinf, isnan, log, logsumexp, masked_fill, max, maximum,
                         mean, min, minimum, norm, prod, scatter_add, sort, split, sqrt,
                         squeeze, stack, std, sum, topk, unsqueeze, var, where)

__version__ = "0.1.0"


def __getattr__(name):
    # mg.cuda (CUDA-graph training steps) imports CuPy, so load it only when asked for.
    if name == "cuda":
        from . import cuda
        return cuda
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")



def save(state_dict, path):
    """Write ``state_dict`` (name -> array or Tensor) to ``path`` atomically, as ``.npz``
    or ``.safetensors`` by its suffix (``torch.save``'s argument order); ``mg.load(path)``
    reads it back."""
    return save_weights(path, state_dict)


__all__ = ["Tensor", "tensor", "as_tensor", "from_numpy", "no_grad", "is_grad_enabled",
           "cuda_available", "get_num_threads", "set_num_threads", "manual_seed", "save",
           "load", "backend", "functional", "losses",
           "nn", "onnx", "optim", "data", "train", "distributed"]
