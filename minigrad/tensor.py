"""Tensor and the autograd graph.

A Tensor holds a backend array (``.data``: NumPy on the CPU, CuPy on the GPU). Every
differentiable op (in ``functional/``) computes its output array and, when a
gradient is wanted, attaches a ``Node`` to the output: the input tensors and a
``backward`` closure that turns the output's gradient into the inputs' gradients.
``Tensor.backward()`` walks those nodes in reverse topological order, iteratively,
and then releases them (their closures and inputs), unless asked to retain the graph.
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

    def astype(self, dtype):
        """This tensor as ``dtype``; a non-float result requires no grad."""
        return _F().cast(self, dtype)

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

    # ----------------------------------------------------------------- operators
    # Bodies live in functional/; these are the spellings users expect.
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

    def __rpow__(self, base):
        return _F().pow(base, self)

    def __matmul__(self, other):
        return _F().matmul(self, other)

    def __rmatmul__(self, other):
        return _F().matmul(other, self)

    def __floordiv__(self, other):
        return _F().floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _F().floor_divide(other, self)

    def __mod__(self, other):
        return _F().remainder(self, other)

    def __rmod__(self, other):
        return _F().remainder(other, self)

    def __neg__(self):
        return _F().neg(self)

    def __abs__(self):
        return _F().abs(self)

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
    # torch's names and arguments (dim=, keepdim=; NumPy's axis=, keepdims= as aliases).
    def sum(self, dim=None, keepdim=False, **aliases):
        return _F().sum(self, dim, keepdim, **aliases)

    def mean(self, dim=None, keepdim=False, **aliases):
        return _F().mean(self, dim, keepdim, **aliases)

    def prod(self, dim=None, keepdim=False, **aliases):
        return _F().prod(self, dim, keepdim, **aliases)

    def max(self, dim=None, keepdim=False, **aliases):
        """The largest element (0-d); with ``dim``, the named tuple (values, indices);
        with a tensor, the elementwise maximum (as torch.max)."""
        return _F().max(self, dim, keepdim, **aliases)

    def min(self, dim=None, keepdim=False, **aliases):
        """As :meth:`max`, for the smallest."""
        return _F().min(self, dim, keepdim, **aliases)

    def amax(self, dim=None, keepdim=False, **aliases):
        return _F().amax(self, dim, keepdim, **aliases)

    def amin(self, dim=None, keepdim=False, **aliases):
        return _F().amin(self, dim, keepdim, **aliases)

    def argmax(self, dim=None, keepdim=False, **aliases):
        return _F().argmax(self, dim, keepdim, **aliases)

    def argmin(self, dim=None, keepdim=False, **aliases):
        return _F().argmin(self, dim, keepdim, **aliases)

    def var(self, dim=None, unbiased=None, keepdim=False, **kwargs):
        return _F().var(self, dim, unbiased, keepdim, **kwargs)

    def std(self, dim=None, unbiased=None, keepdim=False, **kwargs):
        return _F().std(self, dim, unbiased, keepdim, **kwargs)

    def logsumexp(self, dim, keepdim=False, **aliases):
        return _F().logsumexp(self, dim, keepdim, **aliases)

    def norm(self, p="fro", dim=None, keepdim=False, **aliases):
        return _F().norm(self, p, dim, keepdim, **aliases)

    def cumsum(self, dim, **aliases):
        return _F().cumsum(self, dim, **aliases)

    def any(self, dim=None, keepdim=False, **aliases):
        return _F().any(self, dim, keepdim, **aliases)

    def all(self, dim=None, keepdim=False, **aliases):
        return _F().all(self, dim, keepdim, **aliases)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _F().reshape(self, shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _F().flatten(self, start_dim, end_dim)

    def unflatten(self, dim, sizes):
        return _F().unflatten(self, dim, sizes)

    def squeeze(self, dim=None):
        return _F().squeeze(self, dim)

    def unsqueeze(self, dim):
        return _F().unsqueeze(self, dim)

    def expand(self, *sizes):
        return _F().expand(self, *sizes)

    def expand_as(self, other):
        return _F().expand(self, other.shape)

    def flip(self, *dims):
        return _F().flip(self, dims[0] if len(dims) == 1 else dims)

    def repeat(self, *sizes):
        return _F().repeat(self, *sizes)

    def split(self, split_size, dim=0):
        return _F().split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return _F().chunk(self, chunks, dim)

    def gather(self, dim, index):
        return _F().gather(self, dim, index)

    def scatter_add(self, dim, index, src):
        return _F().scatter_add(self, dim, index, src)

    def index_select(self, dim, index):
        return _F().index_select(self, dim, index)

    def masked_fill(self, mask, value):
        return _F().masked_fill(self, mask, value)

    def sort(self, dim=-1, descending=False, stable=False):
        return _F().sort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return _F().topk(self, k, dim, largest, sorted)

    def transpose(self, *axes):
        """Reorder the axes, in NumPy's or torch's spelling.

        No argument reverses the axes, as NumPy; one tuple or list, or ``ndim`` ints
        other than two, permutes them as NumPy does; two ints swap those two axes, as
        ``torch.transpose(x, dim0, dim1)``. Two ints on a matrix therefore always
        transpose it (``m.transpose(0, 1)`` is ``m.T``, as in torch, where NumPy would
        read the identity permutation); pass a tuple, ``m.transpose((0, 1))``, for
        NumPy's reading. Negative axes count from the end.
        """
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            return _F().transpose(self, axes[0])
        if not axes:
            return _F().transpose(self, None)
        if len(axes) == 2:
            return _F().swapaxes(self, *axes)
        return _F().transpose(self, axes)

    def permute(self, *dims):
        """The axes in the order ``dims`` (a full permutation), as ``torch.permute``."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return _F().transpose(self, dims)

    @property
    def T(self):
        return _F().transpose(self, None)

    def exp(self):
        return _F().exp(self)

    def exp2(self):
        return _F().exp2(self)

    def log(self):
        return _F().log(self)

    def log2(self):
        return _F().log2(self)

    def log10(self):
        return _F().log10(self)

    def sqrt(self):
        return _F().sqrt(self)

    def rsqrt(self):
        return _F().rsqrt(self)

    def sin(self):
        return _F().sin(self)

    def cos(self):
        return _F().cos(self)

    def erf(self):
        return _F().erf(self)

    def abs(self):
        return _F().abs(self)

    def sign(self):
        return _F().sign(self)

    def pow(self, exponent):
        return _F().pow(self, exponent)

    def maximum(self, other):
        return _F().maximum(self, other)

    def minimum(self, other):
        return _F().minimum(self, other)

    def clamp(self, min=None, max=None):
        return _F().clamp(self, min, max)

    clip = clamp

    def where(self, condition, other):
        """``self`` where ``condition`` holds, else ``other`` (torch's Tensor.where)."""
        return _F().where(condition, self, other)

    def floor_divide(self, other):
        return _F().floor_divide(self, other)

    def remainder(self, other):
        return _F().remainder(self, other)

    def isnan(self):
        return _F().isnan(self)

    def isinf(self):
        return _F().isinf(self)

    def isfinite(self):
        return _F().isfinite(self)

    def relu(self):
        return _F().relu(self)

    def sigmoid(self):
        return _F().sigmoid(self)

    def tanh(self):
        return _F().tanh(self)

    def softmax(self, dim=-1, **aliases):
        return _F().softmax(self, dim, **aliases)

    def log_softmax(self, dim=-1, **aliases):
        return _F().log_softmax(self, dim, **aliases)


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


def _array_for(data, device, dtype, copy):
    """The backend array ``tensor`` and ``as_tensor`` wrap (see their docstrings)."""
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
        data = backend.to_device(data, device)  # a copy already
        copy = False
    # xp.array copies (and casts in the same pass); xp.asarray copies only to cast.
    return xp.array(data, dtype=dtype) if copy else xp.asarray(data, dtype=dtype)


def tensor(data, requires_grad=False, device="cpu", dtype=None):
    """Make a Tensor from a list, scalar, NumPy/CuPy array or Tensor: always a copy.

    As ``torch.tensor``, the new tensor never shares memory with ``data`` (changing
    the array afterwards leaves the tensor alone; a Tensor given is copied and cut
    from its graph). Use :func:`as_tensor` or :func:`from_numpy` to wrap an array
    without copying it (data loaders, hot paths).

    Floating data becomes float32 unless it is already a float64 array (kept, for
    gradient checks) or ``dtype`` says otherwise; integer data becomes int64 unless it
    is already an integer array (kept: uint8 images stay uint8).
    """
    array = _array_for(data, device, dtype, copy=True)
    if requires_grad and array.dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require grad, got {array.dtype}")
    return Tensor(array, requires_grad)


def as_tensor(data, dtype=None, device="cpu"):
    """``data`` as a Tensor, sharing its memory where it can (``torch.as_tensor``).

    A Tensor already of that dtype and device is returned as it is; an array of the
    right dtype on the right device is wrapped without a copy (so a change to one
    shows in the other); anything else is converted, as :func:`tensor` does.
    """
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype) \
            and backend.check_device(device) == data.device:
        return data
    return Tensor(_array_for(data, device, dtype, copy=False))


def from_numpy(array):
    """A CPU Tensor sharing ``array``'s memory and dtype (``torch.from_numpy``)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a NumPy array, got {type(array).__name__}")
    return Tensor(array)


# torch's kinds of numbers, lowest first: a Python number of a higher kind than a
# tensor promotes it (to the kind's default dtype); one of the same or a lower kind
# takes the tensor's dtype (so x * 2.0 stays float32, and uint8 * 2 stays uint8).
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}
_KIND_DEFAULT_DTYPE = {1: np.dtype(np.int64), 2: np.dtype(np.float32)}


def is_scalar(value):
    """True for a Python or NumPy number (what torch calls a wrapped scalar)."""
    return isinstance(value, (bool, int, float, complex, np.number, np.bool_))


def is_number_like(value):
    """A number, or a 0-d NumPy/CuPy array of a real kind: what combines with a tensor
    by the rule for numbers (:func:`scalar_result_dtype`), as torch treats 0-d tensors.

    Without it, ``t_float32 * arr.mean()`` would stay float32 on the CPU (NumPy's
    reductions give scalars) but turn float64 on the GPU (CuPy's give 0-d arrays).
    """
    return is_scalar(value) or (getattr(value, "ndim", None) == 0 and not isinstance(value, Tensor)
                                and getattr(value, "dtype", None) is not None
                                and value.dtype.kind in "biuf")


def scalar_result_dtype(dtype, value):
    """The dtype of a tensor of ``dtype`` combined with the number ``value``, as torch.

    int tensor * 0.5 -> float32; bool tensor * 2 -> int64; float32 tensor * 2.0 ->
    float32 (a Python float never widens a float tensor). A 0-d array of a higher
    kind gives its own dtype (torch's rule for 0-d tensors: int tensor * a 0-d
    float64 array -> float64); of the same or a lower kind, the tensor's.
    """
    rank = _KIND_RANK.get(_scalar_kind(value))
    if rank is None:
        raise TypeError(f"cannot combine a tensor with {value!r} of type "
                        f"{type(value).__name__}: minigrad handles real numbers only")
    if rank <= _KIND_RANK.get(np.dtype(dtype).kind, 2):
        return np.dtype(dtype)
    if not is_scalar(value):  # a 0-d array
        return np.dtype(value.dtype)
    return _KIND_DEFAULT_DTYPE[rank]


def _scalar_kind(value):
    """NumPy's kind letter of a number or 0-d array: "b", "i"/"u", "f" or "c"."""
    if not isinstance(value, (bool, int, float, complex)):  # NumPy or CuPy: its dtype
        return value.dtype.kind
    if isinstance(value, bool):  # before int: bool is an int
        return "b"
    if isinstance(value, int):
        return "i"
    return "f" if isinstance(value, float) else "c"


def constant_like(value, like):
    """Wrap a constant (a number or an array) as a Tensor beside ``like``, no copy.

    A number takes ``scalar_result_dtype(like.dtype, value)`` (``like`` itself is
    promoted by the op, see ``functional._operands``); an array keeps its dtype.
    """
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "shape") and not isinstance(value, np.generic) \
            and backend.device_of(value) != like.device:
        raise ValueError(f"an array on {backend.device_of(value)} cannot be combined with "
                         f"a tensor on {like.device}; move one with .to()")
    if is_number_like(value):
        dtype = scalar_result_dtype(like.dtype, value)
        return Tensor(backend.xp_for(like.device).asarray(value, dtype=dtype))
    return as_tensor(value, device=like.device)
