"""Tensor and the autograd graph.

A Tensor holds a backend array (``.data``: NumPy on the CPU, CuPy on the GPU). Every
differentiable op (in ``functional.py``) computes its output array and, when a
gradient is wanted, attaches a ``Node`` to the output: the input tensors and a
``backward`` closure that turns the output's gradient into the inputs' gradients.
``Tensor.backward()`` walks those nodes in reverse topological order, iteratively.
"""
import contextlib
import threading

import numpy as np

from . import backend

_grad_state = threading.local()


def is_grad_enabled():
    """False inside ``no_grad()``: ops then record no graph."""
    return getattr(_grad_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Context manager (and decorator) that turns graph recording off."""
    previous = is_grad_enabled()
    _grad_state.enabled = False
    try:
        yield
    finally:
        _grad_state.enabled = previous


class Node:
    """One recorded op: its input tensors and the closure that back-propagates it."""

    __slots__ = ("inputs", "backward", "name")

    def __init__(self, inputs, backward, name):
        self.inputs = inputs
        self.backward = backward
        self.name = name


class Tensor:
    """An n-dimensional array that can record the ops applied to it."""

    __slots__ = ("data", "grad", "requires_grad", "node", "__weakref__")
    __array_priority__ = 1000  # numpy scalar (op) Tensor defers to Tensor's operators

    def __init__(self, data, requires_grad=False):
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad
        self.node = None

    # ----------------------------------------------------------------- properties
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self.node is None

    def __len__(self):
        return self.data.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        body = np.array2string(self.numpy(), separator=", ", threshold=20, precision=4)
        return f"tensor({body}{dev}{grad})"

    # ----------------------------------------------------------------- conversion
    def numpy(self):
        """The data as a NumPy array (a copy when it lives on the GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device):
        """This tensor on ``device`` ("cpu" or "cuda"); itself if already there."""
        device = backend.check_device(device)
        if device == self.device:
            return self
        out = Tensor(backend.to_device(self.data, device), self.requires_grad)
        if self.grad is not None:
            out.grad = backend.to_device(self.grad, device)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def astype(self, dtype):
        from . import functional as F
        return F.cast(self, dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def requires_grad_(self, flag=True):
        self.requires_grad = flag
        return self

    def zero_grad(self):
        self.grad = None

    # ----------------------------------------------------------------- autograd
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` is the gradient of some scalar with respect to this tensor; it may
        be left out only when this tensor holds one element. Leaves accumulate
        (``+=``) across calls until their grad is reset, as in PyTorch. The graph's
        closures are released afterwards unless ``retain_graph``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(was it computed under no_grad, or from constants only?)")
        xp = backend.array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar (one-element) tensor, "
                    f"got shape {self.shape}; pass grad= of the same shape, or reduce first "
                    f"(e.g. .sum() or .mean())")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): gradient shape {grad.shape} does not match "
                                 f"tensor shape {self.shape}")
        grads = {id(self): grad}
        for tensor in _reverse_topological_order(self):
            g = grads.pop(id(tensor), None)  # freed as soon as it is used
            if g is None:
                continue
            node = tensor.node
            if node is None:  # a leaf: keep the gradient
                tensor.grad = g if tensor.grad is None else tensor.grad + g
                continue
            input_grads = node.backward(g)
            for inp, ig in zip(node.inputs, input_grads):
                if ig is None or not inp.requires_grad:
                    continue
                key = id(inp)
                grads[key] = ig if key not in grads else grads[key] + ig
            if not retain_graph:
                tensor.node = None

    # ----------------------------------------------------------------- operators
    # Bodies live in functional.py; these are the spellings users expect.
    def __add__(self, other):
        return _F().add(self, other)

    def __radd__(self, other):
        return _F().add(other, self)

    def __sub__(self, other):
        return _F().sub(self, other)

    def __rsub__(self, other):
        return _F().sub(other, self)

    def __mul__(self, other):
        return _F().mul(self, other)

    def __rmul__(self, other):
        return _F().mul(other, self)

    def __truediv__(self, other):
        return _F().div(self, other)

    def __rtruediv__(self, other):
        return _F().div(other, self)

    def __pow__(self, exponent):
        return _F().pow(self, exponent)

    def __matmul__(self, other):
        return _F().matmul(self, other)

    def __rmatmul__(self, other):
        return _F().matmul(other, self)

    def __neg__(self):
        return _F().neg(self)

    def __getitem__(self, index):
        return _F().getitem(self, index)

    # Comparisons give plain boolean tensors (no gradient), as in PyTorch.
    def __eq__(self, other):
        return Tensor(self.data == _raw(other))

    def __ne__(self, other):
        return Tensor(self.data != _raw(other))

    def __lt__(self, other):
        return Tensor(self.data < _raw(other))

    def __le__(self, other):
        return Tensor(self.data <= _raw(other))

    def __gt__(self, other):
        return Tensor(self.data > _raw(other))

    def __ge__(self, other):
        return Tensor(self.data >= _raw(other))

    __hash__ = object.__hash__

    # ----------------------------------------------------------------- methods
    def sum(self, axis=None, keepdims=False):
        return _F().sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _F().mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _F().max(self, axis, keepdims)

    def argmax(self, axis=None):
        return Tensor(self.data.argmax(axis=axis))

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _F().reshape(self, shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def flatten(self, start_dim=0):
        return _F().flatten(self, start_dim)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _F().transpose(self, axes or None)

    @property
    def T(self):
        return _F().transpose(self, None)

    def exp(self):
        return _F().exp(self)

    def log(self):
        return _F().log(self)

    def sqrt(self):
        return _F().pow(self, 0.5)

    def abs(self):
        return _F().abs(self)

    def relu(self):
        return _F().relu(self)

    def sigmoid(self):
        return _F().sigmoid(self)

    def tanh(self):
        return _F().tanh(self)

    def softmax(self, axis=-1):
        return _F().softmax(self, axis)

    def log_softmax(self, axis=-1):
        return _F().log_softmax(self, axis)


def _F():
    # functional imports tensor; import it lazily here to keep one direction of import.
    from . import functional
    return functional


def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def _reverse_topological_order(root):
    """Tensors reachable from ``root`` through recorded nodes, every tensor before
    all of its inputs (so each has its whole gradient before it passes it on).

    Iterative depth-first post-order (no recursion limit on a 10,000-op chain). A
    tensor counts as visited when it is expanded, not when it is pushed: pushed by
    two consumers, it must finish before the first of them to be expanded, wherever
    the other push sits on the stack.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor.node is not None:
            for inp in tensor.node.inputs:
                if inp.requires_grad and id(inp) not in visited:
                    stack.append((inp, False))
    order.reverse()
    return order


def tensor(data, requires_grad=False, device="cpu", dtype=None):
    """Make a Tensor from a list, scalar, NumPy/CuPy array or Tensor.

    Floating data becomes float32 unless it is already a float64 array (kept, for
    gradient checks) or ``dtype`` says otherwise; integer data stays integer.
    """
    device = backend.check_device(device)
    if isinstance(data, Tensor):
        data = data.data
    is_array = hasattr(data, "dtype") and hasattr(data, "shape")
    if dtype is None:
        if is_array:
            dtype = data.dtype
            if dtype.kind == "f" and dtype.itemsize < 4:
                dtype = np.float32
        else:
            probe = np.asarray(data)
            dtype = np.float32 if probe.dtype.kind == "f" else probe.dtype
            if probe.dtype.kind in "iu":
                dtype = np.int64
    xp = backend.xp_for(device)
    if is_array and backend.device_of(data) != device:
        data = backend.to_device(data, device)
    array = xp.asarray(data, dtype=dtype)
    if requires_grad and array.dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require grad, got {array.dtype}")
    return Tensor(array, requires_grad)


def as_tensor(value, like):
    """Wrap a constant (Python number or array) as a Tensor beside ``like``.

    Python numbers take ``like``'s dtype, so ``x * 2.0`` stays float32.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, int, float, np.number)):
        return Tensor(backend.xp_for(like.device).asarray(value, dtype=like.dtype))
    if hasattr(value, "shape") and backend.device_of(value) != like.device:
        raise ValueError(f"an array on {backend.device_of(value)} cannot be combined with "
                         f"a tensor on {like.device}; move one with .to()")
    return tensor(value, device=like.device)
