"""Parameter: a Tensor that a Module registers and an optimizer updates."""
import numpy as np

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad; assigning one to a Module registers it."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class UninitializedParameter(Parameter):
    """A lazy layer's parameter before its first forward (``torch.nn.UninitializedParameter``).

    It has no shape yet (its data is an empty placeholder); :meth:`materialize` gives it
    one, in place, and turns it into a plain :class:`Parameter`, so the layer, its
    ``parameters()`` list and anything else holding it see the same object. An optimizer
    refuses it: build the optimizer after one forward pass.
    """

    __slots__ = ()

    def __init__(self, requires_grad=True):
        super().__init__(np.empty((0,), dtype=np.float32), requires_grad)

    def materialize(self, shape, device="cpu", dtype=np.float32):
        """Allocate ``shape`` zeros (the layer then initialises them); becomes a Parameter."""
        self.data = backend.xp_for(device).zeros(tuple(int(s) for s in shape), dtype=dtype)
        self.grad = None
        self.__class__ = Parameter

    def __repr__(self):
        return "<UninitializedParameter>"


def is_uninitialized(value):
    """Whether ``value`` is a lazy layer's parameter that has no shape yet."""
    return isinstance(value, UninitializedParameter)
