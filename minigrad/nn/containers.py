"""Containers: ``Sequential`` (layers in order; a Conv2d directly followed by an
activation module it can apply runs as one kernel) and ``ModuleList``."""
from .._kernels import kernel_module
from .activation import ACTIVATIONS
from .conv_pool import Conv2d
from .module import Module, _table, record_fused


class _ModuleSequence(Module):
    """Children named "0", "1", ... in order (PyTorch's names), indexed like a list."""

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds Modules only, "
                            f"got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            part = type(self)()
            for module in modules[index]:
                part.append(module)
            return part
        try:
            return modules[index]
        except IndexError:
            raise IndexError(f"{type(self).__name__} index {index} is out of range for "
                             f"{len(modules)} modules") from None

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_ModuleSequence):
    """Layers applied in order; named "0", "1", ... as in PyTorch. Grows with ``add``.

    A slice is a new Sequential numbered from "0" again (PyTorch keeps the old names).
    A Conv2d directly followed by a ``ReLU``, ``Tanh`` or ``Sigmoid`` module runs as
    one kernel (the convolution applies the activation: the same numbers, one pass
    fewer each way); :meth:`fused_layers` lists those pairs, and ``repr`` and
    ``summary`` show them.
    """

    def __init__(self, *layers):
        super().__init__()
        for layer in layers:
            self.append(layer)

    def add(self, layer):
        """Append a layer (Keras style); returns self."""
        return self.append(layer)

    def forward(self, x):
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            activation = _fusable_pair(layers[i:i + 2])
            if activation is None:
                x = layers[i](x)
                i += 1
            else:  # conv + activation in one kernel: same numbers, one pass fewer each way
                x = layers[i].convolve(x, activation)
                record_fused(layers[i:i + 2], x)
                i += 2
        return x

    def fused_layers(self):
        """``(conv name, activation name)`` of each pair that :meth:`forward` runs as
        one kernel, e.g. ``[("0", "1"), ("3", "4")]``."""
        names, layers = list(self._modules), list(self._modules.values())
        pairs, i = [], 0
        while i < len(layers):
            if _fusable_pair(layers[i:i + 2]) is None:
                i += 1
            else:
                pairs.append((names[i], names[i + 1]))
                i += 2
        return pairs

    def __repr__(self):
        rows = [(name, repr(layer).replace("\n", " "),
                 f"{sum(p.size for p in layer.parameters()):,}")
                for name, layer in self._modules.items()]
        footer = [f"Total params: {self.num_parameters():,}"]
        fused = self.fused_layers()
        if fused:
            footer.append("Fused (one kernel each): " + ", ".join(f"{a}+{b}" for a, b in fused))
        return "Sequential\n" + _table(["#", "Layer", "Params"], rows, footer=footer)


class ModuleList(_ModuleSequence):
    """A list of registered modules (torch.nn.ModuleList), for models that loop over layers.

    A plain Python list hides its modules: their parameters would not train, move or
    save. Here they are children "0", "1", ..., so ``state_dict`` keys read
    ``"blocks.0.weight"`` as in PyTorch. It has no ``forward``: the owner calls each.
    """

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def extend(self, modules):
        """Append every module of an iterable; returns self."""
        for module in modules:
            self.append(module)
        return self

    def __setitem__(self, index, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules only, got {type(module).__name__}")
        setattr(self, list(self._modules)[index], module)


# Activation modules a Conv2d right before them can apply in its own kernel.
_FUSED_AFTER_CONV = {ACTIVATIONS[name]: name
                     for name in kernel_module("reference.activation").FUSABLE}


def _fusable_pair(pair):
    """The activation name when ``pair`` is a plain Conv2d then a plain activation module.

    Only exact types qualify (a subclass may have changed ``forward``), and the Conv2d
    must not have an activation of its own.
    """
    if len(pair) < 2:
        return None
    conv, act = pair
    if type(conv) is not Conv2d or conv.activation is not None:
        return None
    return _FUSED_AFTER_CONV.get(type(act))
