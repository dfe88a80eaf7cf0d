"""Export a ``Sequential`` model to ONNX: ``mg.onnx.export(model, example_input, "m.onnx")``.

The file runs in ONNX Runtime (and any ONNX tool) with the batch axis left free. Each
minigrad layer maps to the ONNX operator that computes the same thing in evaluation
mode: Conv2d -> Conv (plus its fused activation), Dense/Linear -> Gemm (MatMul + Add
for input that is not 2-D), MaxPool2d -> MaxPool, AvgPool2d -> AveragePool (padding
counted, as minigrad and torch count it), BatchNorm2d -> BatchNormalization (running
statistics), Flatten -> Flatten, Dropout -> Identity, and the activations to Relu,
LeakyRelu, Tanh, Sigmoid and Softmax. Needs the ``onnx`` package
(``pip install 'minigrad[onnx]'``, which also installs onnxruntime to run the file).
"""
import os

import numpy as np

from . import backend, nn
from .extras import require
from .functional.conv import conv_padding
from .tensor import Tensor, no_grad
from .utils import as_numpy

__all__ = ["export", "OPSET"]

#: The ONNX opset the files use (Softmax along one axis needs 13 or later).
OPSET = 17
_IR_VERSION = 8  # the IR version of opset 17, which older runtimes read too

_ACTIVATION_OPS = {nn.ReLU: "Relu", nn.Tanh: "Tanh", nn.Sigmoid: "Sigmoid"}
_CONV_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


class _Graph:
    """The nodes and initializers being built; ``value`` is the name of the current output."""

    def __init__(self, helper, numpy_helper, dtype):
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes, self.initializers = [], []
        self.value = "input"
        self.input_shape = None  # the current layer's input shape in the example, set by export

    def constant(self, name, array, dtype=None):
        array = np.asarray(backend.to_numpy(array), dtype=dtype or self.dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def add(self, op, inputs, name, **attributes):
        """Append ``op`` reading ``inputs`` (after the current value); it becomes current."""
        output = f"{name}.out"
        self.nodes.append(self.helper.make_node(op, [self.value, *inputs], [output],
                                                name=name, **attributes))
        self.value = output
        return output


def _layers(model):
    """The leaf layers of ``model`` in order (nested Sequentials opened)."""
    if isinstance(model, nn.Sequential):
        for layer in model:
            yield from _layers(layer)
    else:
        yield model


def _conv(graph, layer, name, rank):
    (ph, pw), (crop_h, crop_w) = conv_padding(layer.padding, layer.kernel_size, layer.stride)
    inputs = [graph.constant(f"{name}.weight", layer.weight.data)]
    if layer.bias is not None:
        inputs.append(graph.constant(f"{name}.bias", layer.bias.data))
    graph.add("Conv", inputs, name, kernel_shape=list(layer.kernel_size),
              strides=list(layer.stride), pads=[ph - crop_h, pw - crop_w, ph, pw])
    if layer.activation is not None:
        graph.add(_CONV_ACTIVATIONS[layer.activation], [], f"{name}.activation")


def _dense(graph, layer, name, rank):
    bias = [] if layer.bias is None else [graph.constant(f"{name}.bias", layer.bias.data)]
    if rank == 2:  # y = x @ W.T + b in one Gemm
        graph.add("Gemm", [graph.constant(f"{name}.weight", layer.weight.data), *bias], name,
                  transB=1)
        return
    weight_t = graph.constant(f"{name}.weight_t", backend.to_numpy(layer.weight.data).T)
    graph.add("MatMul", [weight_t], f"{name}.matmul")
    if bias:
        graph.add("Add", bias, name)


def _pool(op, **extra):
    def convert(graph, layer, name, rank):
        ph, pw = layer.padding
        graph.add(op, [], name, kernel_shape=list(layer.kernel_size),
                  strides=list(layer.stride), pads=[ph, pw, ph, pw], **extra)
    return convert


def _batch_norm(graph, layer, name, rank):
    channels = layer.num_features
    scale = layer.weight.data if layer.weight is not None else np.ones(channels)
    shift = layer.bias.data if layer.bias is not None else np.zeros(channels)
    inputs = [graph.constant(f"{name}.{part}", array) for part, array in
              (("weight", scale), ("bias", shift), ("running_mean", layer.running_mean),
               ("running_var", layer.running_var))]
    graph.add("BatchNormalization", inputs, name, epsilon=float(layer.eps))


def _flatten(graph, layer, name, rank):
    start, end = layer.start_dim % rank, layer.end_dim % rank
    if start == 1 and end == rank - 1:
        graph.add("Flatten", [], name, axis=1)
    else:  # keep the axes before start_dim (0 copies a dimension), merge up to end_dim,
        # then the axes after it, at their sizes (never the batch axis: end_dim >= 0)
        after = [int(n) for n in graph.input_shape[end + 1:]]
        shape = graph.constant(f"{name}.shape", [0] * start + [-1] + after, dtype=np.int64)
        graph.add("Reshape", [shape], name)


_CONVERTERS = {
    nn.Conv2d: _conv,
    nn.Dense: _dense,
    nn.MaxPool2d: _pool("MaxPool"),
    nn.AvgPool2d: _pool("AveragePool", count_include_pad=1),
    nn.BatchNorm2d: _batch_norm,
    nn.Flatten: _flatten,
    nn.Dropout: lambda graph, layer, name, rank: graph.add("Identity", [], name),
    nn.LeakyReLU: lambda graph, layer, name, rank: graph.add(
        "LeakyRelu", [], name, alpha=float(layer.negative_slope)),
    nn.Softmax: lambda graph, layer, name, rank: graph.add("Softmax", [], name,
                                                           axis=int(layer.dim)),
}
for _cls, _op in _ACTIVATION_OPS.items():
    _CONVERTERS[_cls] = lambda graph, layer, name, rank, op=_op: graph.add(op, [], name)


def export(model, example_input, path):
    """Write ``model`` (a ``Sequential`` of minigrad's layers, or one layer) to ``path``
    as an ONNX file; returns the path.

    ``example_input`` (an array or Tensor with a batch axis) fixes every axis but the
    batch one, which stays free in the file (``"batch"``); the model runs on it once,
    in evaluation mode, which also gives lazy layers their shapes. A layer ONNX export
    does not know is a TypeError naming it and the known ones.
    """
    onnx = require("onnx", "ONNX export", "onnx")
    from onnx import helper, numpy_helper
    from .io import atomic_write
    floating = [p.dtype for p in model.parameters() if p.dtype.kind == "f" and p.size]
    dtype = np.dtype(floating[0] if floating else np.float32)
    array = as_numpy(example_input)
    x = Tensor(array.astype(dtype, copy=False))
    layers = list(_layers(model))
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    shapes = []
    try:
        with no_grad():
            for layer in layers:  # each layer's input rank decides Gemm vs MatMul
                shapes.append(tuple(x.shape))
                x = layer(x)
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    for layer in layers:  # checked after the pass, which turns lazy layers into plain ones
        if type(layer) not in _CONVERTERS:
            known = ", ".join(sorted(cls.__name__ for cls in _CONVERTERS))
            raise TypeError(f"ONNX export: no ONNX form for {type(layer).__name__}; "
                            f"exportable layers: {known}")
    graph = _Graph(helper, numpy_helper, dtype)
    names = {id(m): n for n, m in model.named_modules()}
    for layer, shape in zip(layers, shapes):
        name = names.get(id(layer)) or type(layer).__name__
        graph.input_shape = shape  # the layer's input in the example (batch axis first)
        _CONVERTERS[type(layer)](graph, layer, name, len(shape))
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    shape_in = ["batch", *(int(n) for n in array.shape[1:])]
    shape_out = ["batch", *(int(n) for n in x.shape[1:])]
    graph.nodes.append(helper.make_node("Identity", [graph.value], ["output"], name="output"))
    onnx_graph = helper.make_graph(graph.nodes, type(model).__name__,
                                   [helper.make_tensor_value_info("input", elem, shape_in)],
                                   [helper.make_tensor_value_info("output", elem, shape_out)],
                                   graph.initializers)
    onnx_model = helper.make_model(onnx_graph, producer_name="minigrad",
                                   opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = _IR_VERSION
    onnx.checker.check_model(onnx_model)
    data = onnx_model.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return os.fspath(path)
