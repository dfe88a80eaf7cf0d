"""The torch-spelled tensor methods and operators (``x + y``, ``x.sum(dim=1)``,
``x.reshape(...)``, ``x.relu()``): one line each, every body in ``functional/``.

:class:`~minigrad.tensor.Tensor` inherits them, so that ``tensor.py`` holds only what a
tensor is (its data, gradient and graph node) and the autograd engine.
"""
import numpy as np


class TensorMethods:
    """The methods ``Tensor`` inherits that are differentiable ops of ``functional``."""

    __slots__ = ()  # Tensor's own slots stay its only attributes

    def astype(self, dtype):
        """This tensor as ``dtype``; a non-float result requires no grad."""
        return _F().cast(self, dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    # ----------------------------------------------------------------- operators
    # Comparisons, which record nothing, are Tensor's own.
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
