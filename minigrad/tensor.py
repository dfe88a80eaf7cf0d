"""Tensor and the autograd graph.

A Tensor holds a backend array (``.data``: NumPy on the CPU, CuPy on the GPU). Every
differentiable op (in ``functional/``) computes its output array and, when a
gradient is wanted, attaches a ``Node`` to the output: the input tensors and a
``backward`` closure that turns the output's gradient into the inputs' gradients.
``Tensor.backward()`` walks those nodes in reverse topological order, iteratively,
and then releases them (their closures and inputs), unless asked to retain the graph.

Elsewhere: the op methods Tensor inherits (``_tensor_methods``), the constructors
(``creation``: ``tensor``, ``as_tensor``, ``from_numpy``) and the result-dtype rules
(``dtypes``).
"""
import contextlib
import threading

import numpy as np

from . import backend
from ._tensor_methods import TensorMethods

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


def queue_callback(callback):
    """Run ``callback()`` once the backward pass now running has written every gradient.

    Only an op's backward closure may call it (PyTorch's ``queue_callback`` of the
    autograd engine): DistributedDataParallel's output op queues its gradient
    all-reduce this way, so ``loss.backward()`` returns with the gradients averaged.
    A callback already queued in this pass (an equal one: the same bound method) is not
    queued again. If backward raises, the queued callbacks are dropped.
    """
    callbacks = getattr(_grad_state, "callbacks", None)
    if callbacks is None:
        raise RuntimeError("queue_callback() is for an op's backward, during backward()")
    if callback not in callbacks:
        callbacks.append(callback)


class Node:
    """One recorded op: its input tensors and the closure that back-propagates it.

    ``backward(g)`` returns one gradient array (or None) per input. Each array is new
    (nothing outside the returned tuple refers to it: the engine may then hand it to a
    leaf as its ``.grad`` without a copy) or it is ``g`` itself, a view of ``g``, or of
    an input's or the output's data: the engine sees those (see :func:`_handed_on`)
    and copies before a leaf keeps one. A backward that returns an array it or a
    cache keeps must copy it first.
    """

    __slots__ = ("inputs", "backward", "name")

    def __init__(self, inputs, backward, name):
        self.inputs = inputs
        self.backward = backward
        self.name = name

    def release(self):
        """Drop the closure and the inputs (and the buffers they hold); keep the name,
        so that a second backward through this op can say which op it was."""
        self.inputs = ()
        self.backward = None

    @property
    def released(self):
        return self.backward is None


class Tensor(TensorMethods):
    """An n-dimensional array that can record the ops applied to it.

    Its op methods and arithmetic operators (``x + y``, ``x.sum()``) are inherited from
    :class:`~minigrad._tensor_methods.TensorMethods`.
    """

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
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # Python's conversions, as torch: one element, or an error (never len()-truthiness).
    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is "
                             f"ambiguous; use .any() or .all() on its data, or compare "
                             f"one element")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

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
            raise ValueError(f"only a one-element tensor converts to a Python number "
                             f"(item(), float(), int(), bool()); got shape {self.shape}")
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
        (``+=``) across calls until their grad is reset, as in PyTorch. Each leaf's
        ``.grad`` is an array of its own that may be written in place: never the
        caller's ``grad``, a forward value, a parameter's data or another leaf's
        gradient (see :func:`_handed_on` and :func:`_leaf_gradient` for the rule). The
        graph's closures are released afterwards unless ``retain_graph``; a second
        backward through a released graph is an error, raised before any ``.grad``
        changes.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(was it computed under no_grad, or from constants only?)")
        xp = backend.array_module(self.data)
        # ``owned``: ids of the tensors whose pending gradient the engine made (an
        # array nothing outside the engine holds), which a leaf may keep as it is.
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar (one-element) tensor, "
                    f"got shape {self.shape}; pass grad= of the same shape, or reduce first "
                    f"(e.g. .sum() or .mean())")
            grad = xp.ones_like(self.data)
            owned = {id(self)}
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): gradient shape {grad.shape} does not match "
                                 f"tensor shape {self.shape}")
            owned = set()  # the caller's array: a leaf it reaches copies it
        order = _reverse_topological_order(self)  # raises if it meets a released node
        grads = {id(self): grad}
        outer_callbacks = getattr(_grad_state, "callbacks", None)
        _grad_state.callbacks = callbacks = []
        try:
            for tensor in order:
                key = id(tensor)
                g = grads.pop(key, None)  # freed as soon as it is used
                if g is None:
                    continue
                node = tensor.node
                if node is None:  # a leaf: keep the gradient
                    if tensor.grad is not None:
                        tensor.grad = _leaf_gradient(tensor.grad + g, tensor, True)
                    else:
                        tensor.grad = _leaf_gradient(g, tensor, key in owned)
                    continue
                g_owned = key in owned
                owned.discard(key)
                igs = node.backward(g)
                handed_on = _handed_on(g, g_owned, tensor, node.inputs, igs)
                for inp, ig, shared in zip(node.inputs, igs, handed_on):
                    if ig is None or not inp.requires_grad:
                        continue
                    key = id(inp)
                    if key in grads:  # a sum: a new array, the engine's
                        grads[key] = grads[key] + ig
                        owned.add(key)
                    else:
                        grads[key] = ig
                        if not shared:
                            owned.add(key)
                igs = ig = None  # the last gradients, which a leaf may be about to keep
                if not retain_graph:
                    node.release()
        finally:
            _grad_state.callbacks = outer_callbacks
        for callback in callbacks:
            callback()

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

def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def _reverse_topological_order(root):
    """Tensors reachable from ``root`` through recorded nodes, every tensor before
    all of its inputs (so each has its whole gradient before it passes it on).

    Iterative depth-first post-order (no recursion limit on a 10,000-op chain). A
    tensor counts as visited when it is expanded, not when it is pushed: pushed by
    two consumers, it must finish before the first of them to be expanded, wherever
    the other push sits on the stack. A node released by an earlier backward is an
    error, found here so that backward raises before it writes any gradient.
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
        node = tensor.node
        if node is not None:
            if node.backward is None:  # Node.released, without the property's call
                raise _released_graph_error(tensor)
            for inp in node.inputs:
                if inp.requires_grad and id(inp) not in visited:
                    stack.append((inp, False))
    order.reverse()
    return order


def _released_graph_error(tensor):
    return RuntimeError(
        f"backward through the graph a second time: the graph through "
        f"'{tensor.node.name}' (output shape {tensor.shape}) was freed by an earlier "
        f"backward(); use retain_graph=True in the first backward() to backward "
        f"through it again")


def can_write_in_place(array):
    """True for a NumPy or CuPy array each of whose elements can be written in place,
    and written alone: writable, and no broadcast axis (stride 0 over more than one
    element, where one write would show in several; CuPy cannot mark one read-only).

    What ``zero_grad(set_to_none=False)`` zeroes in place rather than replaces, and
    part of what :func:`_leaf_gradient` asks of a gradient it keeps.
    """
    if not isinstance(array, backend.array_module(array).ndarray):
        return False  # a NumPy scalar, a Tensor, a list
    if not getattr(array.flags, "writeable", True):  # CuPy arrays have no such flag
        return False
    return all(stride != 0 or length <= 1
               for stride, length in zip(array.strides, array.shape))


def _memory(array):
    """The array whose memory ``array`` uses: itself, or the array it is a view of."""
    base = getattr(array, "base", None)
    return array if base is None else base


def _handed_on(g, g_owned, output, inputs, igs):
    """For each gradient a node's backward returned (``igs``, one per input): True
    when it may share memory with an array held outside it, so a leaf must copy it.

    That is a gradient on the memory of an input's or the output's data (a forward
    value, a parameter), of another gradient in ``igs`` (``a + b`` hands ``g`` to both),
    or of ``g`` when the engine does not own ``g`` (the caller's). A gradient on
    ``g``'s memory alone, when the engine owns ``g``, takes over that ownership (a
    reshape's backward: still no copy). Anything else is new, by the contract of
    :class:`Node`.
    """
    # Every array compared is alive during this call, so equal ids mean the same array.
    memories = [None if ig is None else id(_memory(ig)) for ig in igs]
    held = {id(_memory(inp.data)) for inp in inputs}
    held.add(id(_memory(output.data)))
    if not g_owned:
        held.add(id(_memory(g)))
    if len(set(memories)) == len(memories):  # no two gradients on one array: the usual
        return [m in held for m in memories]
    return [m is not None and (m in held or memories.count(m) > 1) for m in memories]


def _leaf_gradient(g, leaf, owned):
    """``g`` as an array ``leaf`` can keep as its ``.grad``, copied only when needed.

    ``g`` is kept as it is only if the engine owns it (``owned``: it made it, or an
    op's backward did, see :func:`_handed_on`), it is an array of its backend's own
    type (not a NumPy scalar or subclass), writable and contiguous (each element
    written alone, see :func:`can_write_in_place`), and it owns its memory or is a
    view of all of an array that does (a convolution's reshaped weight gradient). A
    part of a bigger array is copied, so that the leaf does not pin the whole buffer.
    CuPy caveat: CuPy's ``owndata`` only means that ``base`` is None, so a CuPy array
    built on another's memory (``cupy.ndarray(memptr=...)``, ``from_dlpack``) counts as
    owning it; no minigrad op's backward returns one, and a custom op must not.
    """
    if type(g) is np.ndarray:  # every CPU gradient: flags read directly, no dispatch
        xp = np
        flags = g.flags
        # Writeable and contiguous: what can_write_in_place asks, and more.
        keep = (owned and flags.writeable and (flags.c_contiguous or flags.f_contiguous)
                and (flags.owndata or _is_whole_view(g)))
    else:
        xp = backend.array_module(g)
        keep = (owned and type(g) is xp.ndarray and can_write_in_place(g)
                and (g.flags.c_contiguous or g.flags.f_contiguous)
                and (g.flags.owndata or _is_whole_view(g)))
    if not keep:
        g = xp.array(g)  # a NumPy scalar becomes a 0-d array; a subclass, the base class
    if g.shape != leaf.data.shape:  # .data.shape: the property would cost a call per leaf
        raise RuntimeError(f"internal error: a gradient of shape {g.shape} reached a leaf "
                           f"of shape {leaf.shape}")
    return g


def _is_whole_view(view):
    """True if ``view`` is a view of all of an array that owns its memory."""
    base = view.base
    return isinstance(base, type(view)) and base.flags.owndata and base.nbytes == view.nbytes


# The constructors and the dtype rules have their own modules (which import Tensor from
# here); these names stay importable from minigrad.tensor, where they used to live.
_MOVED = {"tensor": "creation", "as_tensor": "creation", "from_numpy": "creation",
          "constant_like": "creation", "is_scalar": "dtypes", "is_number_like": "dtypes",
          "scalar_result_dtype": "dtypes"}


def __getattr__(name):
    if name in _MOVED:
        import importlib
        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
