"""Helpers the layer modules share: argument checks, errors that name the layer, and
the first-input shaping of lazy layers (``LazyLinear``, ``LazyConv2d``)."""
import numpy as np

from ..utils import pair
from . import init
from .parameter import Parameter, is_uninitialized


def positive_int(value, what, layer):
    """``value`` as an int >= 1, or an error that names ``layer``."""
    if isinstance(value, (tuple, list)):
        raise TypeError(f"{layer}: {what} must be an int, got {value!r}")
    return pair(value, what, layer, 1)[0]


def check_floating(layer, x):
    """Integer (or bool) input would silently make the layer compute in float64: refuse it."""
    if x.dtype.kind != "f":
        raise TypeError(f"{layer!r}: expected a floating-point input (float16, float32 or "
                        f"float64), got dtype {x.dtype}; convert it with .float()")


def naming_layer(layer, op, *args):
    """``op(*args)``, with ``layer`` (a Module, or its description) put in front of a
    ValueError's message.

    The error keeps its type (a caller may catch a ValueError subclass) and chains to
    the original, whose traceback shows where inside the op it arose. The try costs
    nothing unless the op raises, and the repr is only made then, so the hot path pays
    nothing.
    """
    try:
        return op(*args)
    except (ValueError, IndexError) as exc:  # IndexError: a dim out of range, as torch
        name = layer if isinstance(layer, str) else repr(layer)
        try:
            named = type(exc)(f"{name}: {exc}")
        except Exception:
            named = None
        if named is None:  # a subclass built from other arguments: note the layer instead
            exc.add_note(f"raised in {name}")
            raise
        raise named from exc


def empty_parameter(*shape):
    return Parameter(np.zeros(shape, dtype=np.float32))



def materialize(layer, x, fan_in, out_shape, kernel_shape):
    """Give a lazy ``layer`` its weight ``(*out_shape, fan_in, *kernel_shape)`` and bias
    from the first input ``x`` (on its device, in its floating dtype), initialised as
    the eager layer would be; returns ``fan_in``. A parameter already given a shape (by
    ``load_state_dict``) keeps its values."""
    if fan_in < 1:
        raise ValueError(f"{layer!r}: cannot infer the input size from an input of shape "
                         f"{tuple(x.shape)}")
    dtype = x.dtype if x.dtype.kind == "f" else np.float32
    weight_shape = (*out_shape, fan_in, *kernel_shape)
    fresh = is_uninitialized(layer.weight)
    for param, shape in ((layer.weight, weight_shape), (layer.bias, out_shape)):
        if param is not None and is_uninitialized(param):
            param.materialize(shape, x.device, dtype)
    if tuple(layer.weight.shape) != weight_shape:
        raise ValueError(f"{layer!r}: its loaded weight has shape {tuple(layer.weight.shape)}, "
                         f"but an input of shape {tuple(x.shape)} needs {weight_shape}")
    if fresh:
        init.default_init_(layer.weight, layer.bias)
    becomes = type(layer).__dict__.get("cls_to_become")  # the lazy class itself, not a subclass
    if becomes is not None:  # as torch's cls_to_become: now an ordinary layer
        object.__setattr__(layer, "__class__", becomes)
    return fan_in
