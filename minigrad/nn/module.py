"""Module: the base of every layer and model.

Assigning a Parameter or a Module to an attribute registers it, in definition order,
so ``named_parameters()`` and ``state_dict()`` give PyTorch's names
(``"conv1.weight"``, ``"0.bias"``) in a stable order.
"""
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .. import backend
from ..creation import as_tensor
from ..io import load_weights, save_weights
from ..tensor import Tensor, no_grad
from ..utils import as_numpy, unwrap
from .parameter import Parameter, is_uninitialized


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` returns, as PyTorch's ``_IncompatibleKeys``."""
    missing_keys: list
    unexpected_keys: list

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"  # PyTorch's words
        return (f"IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")

class Module:
    """Base class for layers and models; subclasses define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        """Register a Parameter or Module (PyTorch's rules); keep registered names registered.

        A name already holding a parameter accepts only a Parameter or None, one holding
        a module only a Module or None, and one holding a buffer only an array or None:
        anything else is a TypeError, never a silent unregistering.
        """
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call "
                                 f"super().__init__() before assigning attributes")
        if isinstance(value, Parameter):
            self._unregister(name, keep=self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._unregister(name, keep=self._modules)
            self._modules[name] = value
        elif name in self._parameters:
            if value is not None:
                raise self._assignment_error(name, value, "a parameter", "a Parameter or None",
                                             "; wrap a tensor in nn.Parameter to train it")
            self._parameters[name] = None
        elif name in self._modules:
            if value is not None:
                raise self._assignment_error(name, value, "a submodule", "a Module or None")
            self._modules[name] = None
        elif name in self._buffers:
            self._buffers[name] = self._checked_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def _unregister(self, name, keep):
        """Forget ``name`` everywhere but in ``keep``, where it is about to be set: a
        replaced parameter or module keeps its place in the registration order."""
        for table in (self._parameters, self._modules, self._buffers, self.__dict__):
            if table is not keep:
                table.pop(name, None)

    def _assignment_error(self, name, value, what, expected, hint=""):
        return TypeError(f"{type(self).__name__}.{name}: cannot assign "
                         f"{type(value).__name__} to {what} ({expected} expected){hint}")

    def _checked_buffer(self, name, value):
        """``value`` if it can be a buffer (a NumPy or CuPy array, or None), else TypeError."""
        if value is None or isinstance(value, np.ndarray) or backend.device_of(value) == "cuda":
            return value
        raise self._assignment_error(name, value, "a buffer", "a NumPy/CuPy array or None")

    def __getattr__(self, name):
        for registry in ("_parameters", "_modules", "_buffers"):
            table = self.__dict__.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """Keep a non-trained array (e.g. running statistics) in the state dict."""
        if name in self.__dict__ or name in self._parameters or name in self._modules:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists; "
                           f"a buffer needs a name of its own")
        self._buffers[name] = self._checked_buffer(name, array)

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix=""):
        """(name, module) for this module and every module below it, depth first, each once."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m)
                        for k, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def children(self):
        return (m for m in self._modules.values() if m is not None)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self):
        """(qualified name, Parameter) pairs in registration order, each once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        """(qualified name, array) of every buffer, module by module, each module once."""
        for prefix, module in self.named_modules():
            for name, array in module._buffers.items():
                if array is not None:
                    yield (f"{prefix}.{name}" if prefix else name), array

    def buffers(self):
        return [array for _, array in self.named_buffers()]

    def _map_buffers(self, convert):
        """Replace every buffer by ``convert(buffer)``, each module once."""
        for module in self.modules():
            for name, array in module._buffers.items():
                if array is not None:
                    module._buffers[name] = convert(array)

    def _state_entries(self, prefix=""):
        """(state-dict key, registry, name) of every parameter and buffer, in PyTorch's order.

        Module by module in registration order, each module's own parameters, then its
        own buffers, then its children; a module registered under two names is listed
        under both (``torch.nn.Module.state_dict`` does the same), while
        ``named_parameters`` gives each parameter once.
        """
        for registry in (self._parameters, self._buffers):
            for name, value in registry.items():
                if value is not None:
                    yield prefix + name, registry, name
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_entries(f"{prefix}{name}.")

    def num_parameters(self, trainable_only=False):
        return int(builtin_sum(p.size for p in self.parameters()
                               if p.requires_grad or not trainable_only))

    # ------------------------------------------------------------ modes, devices
    def train(self, mode=True):
        """Training mode (dropout active, batch statistics); returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Evaluation mode (dropout off, running statistics); returns self."""
        return self.train(False)

    def zero_grad(self):
        for param in self.parameters():
            param.grad = None

    def to(self, device):
        """Move every parameter and buffer to ``device`` in place; returns self.

        Parameters keep their identity, so an existing optimizer keeps working: it
        moves its state arrays to the new device on its next step. What moves arrives
        C-contiguous (the CUDA kernels that update in place need it); an array already
        on ``device`` stays as it is.
        """
        device = backend.check_device(device)
        for param in self.parameters():
            param.data = backend.to_device(param.data, device)
            if param.grad is not None:
                param.grad = backend.to_device(param.grad, device)
        self._map_buffers(lambda array: backend.to_device(array, device))
        return self

    def astype(self, dtype):
        """Convert every floating parameter and buffer to ``dtype`` in place; returns self."""
        for param in self.parameters():
            param.data = param.data.astype(dtype)
            param.grad = None
        self._map_buffers(lambda array: array.astype(dtype) if array.dtype.kind == "f" else array)
        return self

    def double(self):
        """float64 parameters (for gradient checks); returns self."""
        return self.astype(np.float64)

    def float(self):
        """float32 parameters (the default); returns self."""
        return self.astype(np.float32)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    @property
    def device(self):
        params = self.parameters()
        return params[0].device if params else "cpu"

    # ------------------------------------------------------------ calling
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *inputs, **kwargs):
        # A NumPy or CuPy array is an input as a constant tensor, as a user expects.
        inputs = tuple(as_tensor(v, device=backend.device_of(v)) if backend.is_array(v) else v
                       for v in inputs)
        out = self.forward(*inputs, **kwargs)
        if _shape_trace is not None:
            _shape_trace.append((self, out))
        return out

    # ------------------------------------------------------------ state
    def state_dict(self):
        """Key -> NumPy array copy of every parameter and buffer (PyTorch's keys and order)."""
        state = OrderedDict()
        for key, registry, name in self._state_entries():
            state[key] = backend.host_copy(unwrap(registry[name]))
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters and buffers in place, checking keys and shapes.

        Returns PyTorch's named tuple ``(missing_keys, unexpected_keys)``: with
        ``strict=False`` the keys the model has that ``state`` lacks (left as they
        were) and the keys of ``state`` the model has not (ignored); with
        ``strict=True`` either kind is a ``KeyError`` listing them.

        Values may be NumPy or CuPy arrays, Tensors, or anything ``np.asarray`` takes
        (a CPU torch tensor, a list, a number). Everything is checked before anything
        is written, so a bad state dict leaves the model untouched.

        A parameter or buffer reachable under several names (a shared module, tied
        weights) needs only one of them in ``state``: files saved before shared
        modules were listed under every name hold just the first.
        """
        targets = OrderedDict((key, (registry, name))
                              for key, registry, name in self._state_entries())
        # The keys of each parameter/buffer object; a missing key whose object another
        # key of ``state`` fills is no gap.
        keys_of = {}
        for key, (registry, name) in targets.items():
            keys_of.setdefault(id(registry[name]), []).append(key)
        missing = [k for k, (registry, name) in targets.items() if k not in state
                   and not any(alias in state for alias in keys_of[id(registry[name])])]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing key(s) {missing}")
            if unexpected:
                parts.append(f"unexpected key(s) {unexpected}")
            raise KeyError(f"load_state_dict for {type(self).__name__}: " + "; ".join(parts))
        values, pending_shapes = OrderedDict(), {}
        for key, (registry, name) in targets.items():
            if key not in state:
                continue
            value = _loadable_array(state[key], key)
            if is_uninitialized(registry[name]):  # a lazy layer takes the saved shape
                pending_shapes[key] = value.shape
                values[key] = value
                continue
            current = unwrap(registry[name])
            if value.shape != current.shape:
                raise ValueError(f"load_state_dict: key {key!r} has shape {value.shape} "
                                 f"but the model expects {tuple(current.shape)}")
            values[key] = value
        for key, value in values.items():
            registry, name = targets[key]
            if key in pending_shapes:
                registry[name].materialize(pending_shapes[key], self.device)
            current = unwrap(registry[name])
            current[...] = backend.array_module(current).asarray(value, dtype=current.dtype)
        return IncompatibleKeys(missing, unexpected)

    def save(self, path):
        """Write the state dict to ``path`` atomically (never half-written), in the
        format the suffix names: ``.npz`` (also for a name without one) or ``.safetensors``; another
        suffix, ``.h5`` say, is a ``ValueError`` (see :data:`minigrad.io.WEIGHT_FORMATS`)."""
        save_weights(path, self.state_dict())

    def load(self, path, strict=True):
        """Load weights saved by ``save`` (or any file of a known format with the same
        keys); returns :meth:`load_state_dict`'s missing and unexpected keys."""
        return self.load_state_dict(load_weights(path), strict=strict)

    # ------------------------------------------------------------ display
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, module in self._modules.items():
                child = repr(module).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"

    #: The rank of the input this layer takes (4 for NCHW layers, 2 for Dense), read by
    #: ``summary`` to tell whether a shape holds the batch axis; None: any, or unknown.
    input_rank = None

    def summary(self, input_shape, print_fn=print):
        """Print (and return) each layer's output shape and parameter count.

        ``input_shape`` may leave out the batch axis, as Keras's ``input_shape`` does:
        ``(3, 80, 80)`` for a model whose first layer takes NCHW input, ``(784,)`` for a
        Dense one; ``(None, 3, 80, 80)`` or ``(1, 3, 80, 80)`` name it. Lazy layers
        (``Dense(units)``, ``LazyConv2d``) get their shapes from this pass.
        The model
        runs as it trains: layers a ``Sequential`` fuses into one kernel (a Conv2d and
        the activation after it) are one row, ``"0+1  Conv2d+ReLU"``, and listed under
        the table.
        """
        global _shape_trace
        input_shape = self._with_batch_axis(input_shape)
        x = Tensor(backend.xp_for(self.device).zeros(input_shape, dtype=np.float32))
        # Each module's own mode, restored after: a model may keep, say, one Dropout in
        # eval mode while the rest trains.
        modes = [(module, module.training) for module in self.modules()]
        _shape_trace = []
        try:
            self.eval()
            with no_grad():
                self(x)
            trace = _shape_trace
        finally:
            _shape_trace = None
            for module, mode in modes:
                object.__setattr__(module, "training", mode)
        names = {id(m): n for n, m in self.named_modules()}
        rows, fused = [], []
        for entry, out in trace:
            group = entry if isinstance(entry, tuple) else (entry,)  # a fused group: a tuple
            if any(m._modules for m in group):
                continue
            name = "+".join(names.get(id(m), "?") for m in group)
            if len(group) > 1:
                fused.append(name)
            rows.append((name, "+".join(type(m).__name__ for m in group), _output_shape(out),
                         builtin_sum(p.size for m in group
                                     for p in m._parameters.values() if p is not None)))
        total = self.num_parameters()
        trainable = self.num_parameters(trainable_only=True)
        footer = [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Input shape: {tuple(input_shape)}"]
        if fused:
            footer.append(f"Fused (one kernel each, as trained): {', '.join(fused)}")
        text = _table(["Layer", "Type", "Output shape", "Params"],
                      [(n, t, str(s), f"{c:,}") for n, t, s, c in rows], footer=footer)
        if print_fn is not None:
            print_fn(text)
        return text


    def _with_batch_axis(self, input_shape):
        """``input_shape`` with a batch axis of 1 put in front where it lacks one: a
        leading None, or one axis fewer than the first layer that fixes the input rank
        takes (layers that keep any shape, such as activations, are looked past)."""
        shape = tuple(input_shape)
        if shape and shape[0] is None:
            return (1,) + shape[1:]
        for module in self.modules():
            if module._modules:
                continue
            rank = module.input_rank
            if rank == ANY_RANK:
                continue
            return (1,) + shape if rank is not None and len(shape) == rank - 1 else shape
        return shape

    # ------------------------------------------------------------ Keras-style training
    # The training loop lives above nn (minigrad.train), so these import it when called.
    def compile(self, optimizer="adam", loss="cross_entropy", metrics=("accuracy",), lr=None,
                **optimizer_kwargs):
        """Choose the optimizer, loss and metrics for :meth:`fit` and :meth:`evaluate`
        (Keras's ``model.compile``); see :func:`minigrad.train.keras.compile`. Returns self."""
        from ..train import keras
        return keras.compile(self, optimizer, loss, metrics, lr, **optimizer_kwargs)

    def fit(self, x, y=None, **kwargs):
        """Train on arrays (or a dataset or loader), Keras-style; returns the History.
        See :func:`minigrad.train.keras.fit` for the arguments."""
        from ..train import keras
        return keras.fit(self, x, y, **kwargs)

    def evaluate(self, x, y=None, **kwargs):
        """``{"loss": ..., "accuracy": ...}`` over arrays, a dataset or a loader
        (:func:`minigrad.train.keras.evaluate`)."""
        from ..train import keras
        return keras.evaluate(self, x, y, **kwargs)

    def predict(self, x, batch_size=32, verbose=0):
        """The model's outputs for ``x`` (an array, dataset or loader) as a NumPy array."""
        from ..train import keras
        return keras.predict(self, x, batch_size=batch_size, verbose=verbose)


builtin_sum = sum


def _output_shape(out):
    """A layer's output shape for ``summary``; a tuple of them for a layer that returns
    several tensors (``MaxPool2d(return_indices=True)``)."""
    if isinstance(out, (tuple, list)):
        return tuple(_output_shape(o) for o in out)
    return tuple(out.shape)


#: ``input_rank`` of layers that take input of any rank and keep its shape (activations,
#: dropout): ``summary`` looks past them to find the batch axis.
ANY_RANK = -1
_shape_trace = None  # set by summary(): every Module call appends (module, output)


def _loadable_array(value, key):
    """A state-dict value as a NumPy array of numbers, or a TypeError naming ``key``."""
    try:
        array = as_numpy(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"load_state_dict: key {key!r} holds {type(value).__name__}, which "
                        f"cannot become an array ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"load_state_dict: key {key!r} holds {type(value).__name__} of "
                        f"dtype {array.dtype}, not an array of numbers")
    return array


def record_fused(modules, out):
    """Record, while ``summary`` traces, ``modules`` that ran as one fused kernel giving
    ``out`` (their own calls were skipped, so the trace would otherwise miss them)."""
    if _shape_trace is not None:
        _shape_trace.append((tuple(modules), out))


def _table(header, rows, footer=()):
    """A plain-text table with a rule under the header and a footer."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    numeric = [all(r[i].replace(",", "").isdigit() for r in rows) and rows for i in range(len(header))]

    def fmt(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric)).rstrip()
    rule = "-" * len(fmt(["-" * w for w in widths]))
    lines = [rule, fmt(header), rule] + [fmt(r) for r in rows] + [rule] + list(footer)
    return "\n".join(lines)
