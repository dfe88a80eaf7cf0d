"""Parameter: a Tensor that a Module registers and an optimizer updates."""
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
