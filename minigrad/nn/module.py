"""Module: the base of every layer and model.

Assigning a Parameter or a Module to an attribute registers it, in definition order,
so ``named_parameters()`` and ``state_dict()`` give PyTorch's names
(``"conv1.weight"``, ``"0.bias"``) in a stable order.
"""
import io as _io
from collections import OrderedDict

import numpy as np

from .. import backend
from ..io import atomic_write
from ..tensor import Tensor, no_grad
from .parameter import Parameter


class Module:
    """Base class for layers and models; subclasses define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call "
                                 f"super().__init__() before assigning attributes")
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

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
        self._buffers[name] = array

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix=""):
        """(name, module) for this module and every module below it, depth first."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()]
            stack.extend(reversed(children))

    def children(self):
        return iter(self._modules.values())

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self):
        """(qualified name, Parameter) pairs in registration order, each once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name, array in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), module, name, array

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
        moves its state arrays to the new device on its next step.
        """
        device = backend.check_device(device)
        for param in self.parameters():
            param.data = backend.to_device(param.data, device)
            if param.grad is not None:
                param.grad = backend.to_device(param.grad, device)
        for _, module, name, array in list(self.named_buffers()):
            module._buffers[name] = backend.to_device(array, device)
        return self

    def astype(self, dtype):
        """Convert every floating parameter and buffer to ``dtype`` in place; returns self."""
        for param in self.parameters():
            param.data = param.data.astype(dtype)
            param.grad = None
        for _, module, name, array in list(self.named_buffers()):
            if array.dtype.kind == "f":
                module._buffers[name] = array.astype(dtype)
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

    def __call__(self, *inputs):
        out = self.forward(*inputs)
        if _shape_trace is not None:
            _shape_trace.append((self, out))
        return out

    # ------------------------------------------------------------ state
    def state_dict(self):
        """Name -> NumPy array copy of every parameter and buffer (PyTorch's keys)."""
        state = OrderedDict()
        for name, param in self.named_parameters():
            state[name] = backend.to_numpy(param.data).copy()
        for name, _, _, array in self.named_buffers():
            state[name] = np.array(backend.to_numpy(array), copy=True)
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters and buffers in place, checking keys and shapes.

        Everything is checked before anything is written, so a bad state dict leaves
        the model untouched.
        """
        targets = OrderedDict((n, p) for n, p in self.named_parameters())
        buffers = {n: (m, k) for n, m, k, _ in self.named_buffers()}
        expected = list(targets) + list(buffers)
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in targets and k not in buffers]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing key(s) {missing}")
            if unexpected:
                parts.append(f"unexpected key(s) {unexpected}")
            raise KeyError(f"load_state_dict for {type(self).__name__}: " + "; ".join(parts))
        for name in expected:
            if name not in state:
                continue
            current = targets[name].data if name in targets else \
                buffers[name][0]._buffers[buffers[name][1]]
            given = np.shape(state[name])
            if tuple(given) != tuple(current.shape):
                raise ValueError(f"load_state_dict: key {name!r} has shape {tuple(given)} "
                                 f"but the model expects {tuple(current.shape)}")
        for name in expected:
            if name not in state:
                continue
            value = state[name]
            if name in targets:
                param = targets[name]
                xp = backend.array_module(param.data)
                param.data[...] = xp.asarray(backend.to_numpy(value), dtype=param.dtype)
            else:
                module, key = buffers[name]
                xp = backend.array_module(module._buffers[key])
                module._buffers[key][...] = xp.asarray(backend.to_numpy(value))
        return self

    def save(self, path):
        """Write the state dict to ``path`` as .npz, atomically (never half-written)."""
        buffer = _io.BytesIO()
        np.savez(buffer, **self.state_dict())
        atomic_write(path, lambda f: f.write(buffer.getvalue()))

    def load(self, path):
        """Load weights saved by ``save`` (or any .npz with the same keys)."""
        with np.load(path, allow_pickle=False) as archive:
            return self.load_state_dict({k: archive[k] for k in archive.files})

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

    def summary(self, input_shape, print_fn=print):
        """Print (and return) each layer's output shape and parameter count.

        ``input_shape`` includes the batch axis, e.g. ``(1, 3, 80, 80)``.
        """
        global _shape_trace
        x = Tensor(backend.xp_for(self.device).zeros(input_shape, dtype=np.float32))
        was_training = self.training
        _shape_trace = []
        try:
            self.eval()
            with no_grad():
                self(x)
            trace = _shape_trace
        finally:
            _shape_trace = None
            self.train(was_training)
        names = {id(m): n for n, m in self.named_modules()}
        rows = [(names.get(id(m), "?"), type(m).__name__, tuple(out.shape),
                 builtin_sum(p.size for p in m._parameters.values()))
                for m, out in trace if not m._modules]
        total = self.num_parameters()
        trainable = self.num_parameters(trainable_only=True)
        text = _table(["Layer", "Type", "Output shape", "Params"],
                      [(n, t, str(s), f"{c:,}") for n, t, s, c in rows],
                      footer=[f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                              f"Input shape: {tuple(input_shape)}"])
        if print_fn is not None:
            print_fn(text)
        return text


builtin_sum = sum
_shape_trace = None  # set by summary(): every Module call appends (module, output)


def tracing_shapes():
    """True while ``summary`` records every module call (so layers must not be fused)."""
    return _shape_trace is not None


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
