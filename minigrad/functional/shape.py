"""Shapes and indexing, with torch's names: ``reshape``, ``flatten``/``unflatten``,
``squeeze``/``unsqueeze``, ``expand``, ``flip``, ``repeat``, ``cat``/``stack``,
``split``/``chunk``, ``transpose``/``swapaxes``, ``getitem`` (torch's indexing rules),
``gather``/``scatter_add``/``index_select``/``masked_fill``, ``one_hot``, ``sort``/``topk``."""
import builtins
import collections
import math

import numpy as np

from .. import backend
from ..dtypes import result_dtype
from ..tensor import Tensor
from ..utils import is_int, unwrap
from ._core import _axis, _dim_alias, _dims, _record, _same_device, _xp, unbroadcast


def reshape(x, shape):
    try:
        y = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into {tuple(shape)}") from None

    def reshape_backward(g):
        return (g.reshape(x.shape),)
    return _record(y, (x,), reshape_backward)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge the dims from ``start_dim`` to ``end_dim`` (inclusive) into one, as
    torch.flatten (whose default, unlike nn.Flatten's, starts at dim 0). A 0-d tensor
    flattens to shape (1,)."""
    if x.ndim == 0:
        _axis(start_dim, 0, "flatten")
        _axis(end_dim, 0, "flatten")
        return reshape(x, (1,))
    start, end = _axis(start_dim, x.ndim, "flatten"), _axis(end_dim, x.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"for a tensor of shape {x.shape}")
    return reshape(x, x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])


def unflatten(x, dim, sizes):
    """Split ``dim`` into ``sizes`` (one of them may be -1), as torch.unflatten."""
    axis = _axis(dim, x.ndim, "unflatten")
    sizes = tuple(sizes)
    known = math.prod(n for n in sizes if n != -1)
    if sizes.count(-1) > 1 or (-1 not in sizes and known != x.shape[axis]) \
            or (-1 in sizes and (known == 0 or x.shape[axis] % known)):
        raise ValueError(f"unflatten: sizes {sizes} do not multiply to dim {dim}'s size "
                         f"{x.shape[axis]} (shape {x.shape})")
    return reshape(x, x.shape[:axis] + sizes + x.shape[axis + 1:])


def squeeze(x, dim=None):
    """Drop dims of size 1: all of them, or those of ``dim`` (an int or a tuple) that
    have size 1 (others are left, as torch)."""
    axes = _dims(dim, x.ndim, "squeeze")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1)))


def unsqueeze(x, dim):
    """A new dim of size 1 at ``dim`` (in [-ndim - 1, ndim])."""
    axis = _axis(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def expand(x, *sizes):
    """``x`` broadcast to ``sizes`` without copying (-1 keeps a dim; new dims go in
    front), as torch.expand; the gradient sums over the broadcast dims."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes {sizes} for a tensor of {x.ndim} dims")
    shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    if any(n < 0 for n in shape) or any(m != 1 and m != n
                                        for m, n in zip(x.shape, shape[lead:])):
        raise ValueError(f"expand: a tensor of shape {x.shape} cannot be expanded to {sizes} "
                         f"(only dims of size 1 can grow)")

    def expand_backward(g):
        return (unbroadcast(g, x.shape),)
    return _record(_xp(x).broadcast_to(x.data, shape), (x,), expand_backward)


def flip(x, dims):
    """``x`` reversed along ``dims`` (an int or a tuple)."""
    axes = _dims(dims, x.ndim, "flip")
    xp = _xp(x)

    def flip_backward(g):
        return (xp.flip(g, axes) if axes else g,)
    return _record(xp.flip(x.data, axes) if axes else x.data.copy(), (x,), flip_backward)


def repeat(x, *sizes):
    """``x`` tiled ``sizes`` times along each dim (torch.repeat: at least ``x.ndim``
    sizes; extra ones add leading dims)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if len(sizes) < x.ndim or not all(is_int(n) and n >= 0 for n in sizes):
        raise ValueError(f"repeat: needs at least {x.ndim} non-negative int sizes for a "
                         f"tensor of shape {x.shape}, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    xp = _xp(x)

    def repeat_backward(g):
        # (r0, n0, r1, n1, ...): sum over every r
        split = [v for pair in zip(sizes, shape) for v in pair]
        g = g.reshape(split).sum(axis=tuple(range(0, 2 * len(sizes), 2)))
        return (g.reshape(x.shape),)
    return _record(xp.tile(x.data.reshape(shape), sizes), (x,), repeat_backward)


def cat(tensors, dim=0, *, axis=None):
    """The tensors joined along ``dim`` (torch.cat); dtypes promote as torch."""
    dim, _ = _dim_alias("cat", dim, axis)
    tensors = _same_device_tensors(tensors, "cat")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated (use stack)")
    axis = _axis(dim, ndim, "cat")
    for t in tensors:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != \
                tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            raise ValueError(f"cat: shapes {[t.shape for t in tensors]} differ outside dim "
                             f"{dim}")
    xp = _xp(tensors[0])
    dtype = result_dtype(*[t.dtype for t in tensors])
    ends = np.cumsum([t.shape[axis] for t in tensors])

    def cat_backward(g):
        parts = xp.split(g, ends[:-1].tolist(), axis=axis)
        return tuple(p.astype(t.dtype, copy=False) for p, t in zip(parts, tensors))
    y = xp.concatenate([t.data.astype(dtype, copy=False) for t in tensors], axis=axis)
    return _record(y, tuple(tensors), cat_backward)


def stack(tensors, dim=0, *, axis=None):
    """The tensors, all of one shape, joined along a new dim ``dim`` (torch.stack)."""
    dim, _ = _dim_alias("stack", dim, axis)
    tensors = _same_device_tensors(tensors, "stack")
    if len({t.shape for t in tensors}) > 1:
        raise ValueError(f"stack: tensors must have one shape, got {[t.shape for t in tensors]}")
    axis = _axis(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, axis) for t in tensors], axis)


def _same_device_tensors(tensors, op):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (tuple, list)) or not tensors:
        raise TypeError(f"{op}: expects a non-empty list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    if not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{op}: every element must be a Tensor, got "
                        f"{[type(t).__name__ for t in tensors]}")
    _same_device(op, *tensors)
    return list(tensors)


def split(x, split_size_or_sections, dim=0):
    """``x`` cut along ``dim`` into pieces of one size (the last may be smaller) or of
    the listed sizes (which must add up to the dim's size), as torch.split."""
    axis = _axis(dim, x.ndim, "split")
    n = x.shape[axis]
    if is_int(split_size_or_sections):
        size = split_size_or_sections
        if size <= 0 and n:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [builtins.min(size, n - i) for i in range(0, n, size)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n or not all(is_int(s) and s >= 0 for s in sizes):
            raise ValueError(f"split: sections {sizes} must be non-negative and add up to "
                             f"{n}, the size of dim {dim} (shape {x.shape})")
    starts = np.cumsum([0] + sizes[:-1]).tolist()
    lead = (slice(None),) * axis
    return tuple(getitem(x, lead + (slice(s, s + k),)) for s, k in zip(starts, sizes))


def chunk(x, chunks, dim=0):
    """``x`` in ``chunks`` pieces along ``dim``, each of ceil(size / chunks) but the last
    (so there may be fewer pieces), as torch.chunk."""
    if not is_int(chunks) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    n = x.shape[_axis(dim, x.ndim, "chunk")]
    return split(x, builtins.max(-(-n // chunks), 1), dim)


def _index_array(index, op, x=None):
    """The integer array of a Tensor or array ``index`` (on ``x``'s device), or a clear
    error."""
    data = unwrap(index)
    if getattr(data, "dtype", None) is None or data.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got "
                        f"{getattr(data, 'dtype', type(data).__name__)}")
    if x is not None and backend.device_of(data) != x.device:
        raise ValueError(f"{op}: index is on {backend.device_of(data)}, the input on "
                         f"{x.device}; move one with .to()")
    return data


def _along(xp, index, axis):
    """The full advanced index that reads ``index`` along ``axis`` and each position
    elsewhere: what gather reads and scatter_add writes."""
    if not index.ndim:  # a 0-d tensor: its one element
        return ()
    grids = list(xp.ogrid[tuple(slice(0, n) for n in index.shape)])
    grids[axis] = index
    return tuple(grids)


def _check_gather_index(x, index, axis, op, src=None):
    """torch's rules: index has x's number of dims, is no larger than x outside ``axis``
    and no larger than ``src`` anywhere, and holds positions along ``axis``."""
    if index.ndim != x.ndim or (src is not None and src.ndim != x.ndim):
        raise ValueError(f"{op}: index has {index.ndim} dims, the input {x.ndim}"
                         + ("" if src is None else f", src {src.ndim}"))
    if any(m > n for d, (m, n) in enumerate(zip(index.shape, x.shape)) if d != axis):
        raise ValueError(f"{op}: index of shape {index.shape} is larger than the input "
                         f"{x.shape} outside dim {axis}")
    if src is not None and any(m > n for m, n in zip(index.shape, src.shape)):
        raise ValueError(f"{op}: index of shape {index.shape} is larger than src {src.shape}")
    size = x.shape[axis] if x.ndim else 1
    if index.size and (int(index.min()) < -size or int(index.max()) >= size):
        raise IndexError(f"{op}: index out of range for dim {axis} of size {size}")


def gather(x, dim, index):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim 1 (torch.gather): ``index`` has x's
    number of dims, no larger than x outside ``dim``; the output has its shape."""
    axis = _axis(dim, x.ndim, "gather")
    index = _index_array(index, "gather", x)
    _check_gather_index(x, index, axis, "gather")
    xp = _xp(x)
    where = _along(xp, index, axis)

    def gather_backward(g):
        full = xp.zeros(x.shape, dtype=g.dtype)
        backend.scatter_add(full, where, g)
        return (full,)
    return _record(x.data[where], (x,), gather_backward)


def scatter_add(x, dim, index, src):
    """A copy of ``x`` with src[i][j][k] added at [i][index[i][j][k]][k] for dim 1
    (torch.scatter_add; repeated indices add up). Gradients: all of it to ``x``, and
    to ``src`` what its elements were added to."""
    axis = _axis(dim, x.ndim, "scatter_add")
    index = _index_array(index, "scatter_add", x)
    _check_gather_index(x, index, axis, "scatter_add", src)
    _same_device("scatter_add", x, src)
    xp = _xp(x)
    where = _along(xp, index, axis)
    used = tuple(slice(0, n) for n in index.shape)
    y = x.data.copy()
    backend.scatter_add(y, where, src.data[used].astype(y.dtype, copy=False))

    def scatter_add_backward(g):
        gsrc = xp.zeros(src.shape, dtype=g.dtype)
        gsrc[used] = g[where]
        return g, gsrc
    return _record(y, (x, src), scatter_add_backward)


def index_select(x, dim, index):
    """The entries of ``x`` at the 1-D ``index`` along ``dim`` (torch.index_select)."""
    axis = _axis(dim, x.ndim, "index_select")
    index = _index_array(index, "index_select", x)
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 0-d or 1-D, got shape {index.shape}")
    if index.size and (int(index.min()) < -x.shape[axis] or int(index.max()) >= x.shape[axis]):
        raise IndexError(f"index_select: index out of range for dim {dim} of size "
                         f"{x.shape[axis]}")
    return getitem(x, (slice(None),) * axis + (index.reshape(-1),))


def masked_fill(x, mask, value):
    """``x`` with ``value`` (a number or a 0-d tensor) where the bool ``mask``
    (broadcastable to x) is True; the gradient flows where it is False."""
    from .elementwise import where
    data = unwrap(mask)
    if getattr(data, "dtype", None) != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got "
                        f"{getattr(data, 'dtype', type(data).__name__)}")
    if isinstance(value, Tensor) and value.ndim:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape "
                         f"{value.shape}")
    if np.broadcast_shapes(data.shape, x.shape) != x.shape:
        raise ValueError(f"masked_fill: mask of shape {data.shape} does not broadcast to "
                         f"{x.shape}")
    if isinstance(value, Tensor):
        value = value.astype(x.dtype)
    return where(Tensor(data), x.data.dtype.type(value) if not isinstance(value, Tensor)
                 else value, x)


def one_hot(tensor, num_classes=-1):
    """Integer class labels -> int64 one-hot vectors along a new last dim (torch's
    F.one_hot); ``num_classes=-1`` takes the largest label plus one."""
    labels = _index_array(tensor, "one_hot")
    xp = backend.array_module(labels)
    if labels.size and int(labels.min()) < 0:
        raise ValueError("one_hot: class labels must be non-negative")
    top = int(labels.max()) + 1 if labels.size else 0
    if num_classes == -1:
        if not labels.size:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor")
        num_classes = top
    elif top > num_classes:
        raise ValueError(f"one_hot: label {top - 1} is not below num_classes={num_classes}")
    return Tensor((labels[..., None] == xp.arange(num_classes)).astype(np.int64))


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices) of ``x`` sorted along ``dim`` (torch.sort; always stable here,
    NaN counts as largest); the gradient goes back to where each value came from."""
    axis = _axis(dim, x.ndim, "sort")
    if x.ndim == 0:
        return ValuesIndices(reshape(x, ()), Tensor(_xp(x).zeros((), dtype=np.int64)))
    xp = _xp(x)
    if descending:  # stable among ties: sort the reversed order, then reverse back
        n = x.shape[axis]
        index = n - 1 - xp.flip(xp.argsort(xp.flip(x.data, axis), axis=axis, kind="stable"),
                                axis)
    else:
        index = xp.argsort(x.data, axis=axis, kind="stable")
    index = index.astype(np.int64, copy=False)
    return ValuesIndices(_values_at(x, index, axis, True), Tensor(index))


def topk(x, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the ``k`` largest (or smallest) entries along ``dim``,
    largest first (torch.topk); the gradient goes back to where each came from."""
    axis = _axis(dim, x.ndim, "topk")
    n = x.shape[axis] if x.ndim else 1
    if not is_int(k) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be an int in [0, {n}], got {k!r}")
    values, index = sort(x, dim, descending=largest)
    if x.ndim == 0:
        return ValuesIndices(values, index)
    keep = (slice(None),) * axis + (slice(0, k),)
    return ValuesIndices(getitem(values, keep), Tensor(index.data[keep]))


# torch.return_types.max / min / sort / topk: a tuple that also names its fields.
ValuesIndices = collections.namedtuple("ValuesIndices", ["values", "indices"])


def _values_at(x, index, axis, keepdim):
    """``x`` taken at ``index`` (keepdims form) along ``axis``; the gradient goes to those
    elements alone (torch's value-selecting ops: max(dim), sort, topk). Each index
    appears once along ``axis``, so the backward writes rather than adds."""
    xp = _xp(x)
    where = _along(xp, index, axis)
    y = x.data[where]

    def take_backward(g):
        full = xp.zeros(x.shape, dtype=g.dtype)
        full[where] = g if keepdim else xp.expand_dims(g, axis)
        return (full,)
    return _record(y if keepdim else xp.squeeze(y, axis), (x,), take_backward, "take")


def transpose(x, axes=None):
    """The axes permuted by ``axes`` (NumPy's transpose), or reversed when None.

    ``axes`` must be a permutation of the ``x.ndim`` axes; negative ones count from
    the end. The gradient goes back through the inverse permutation.
    """
    if axes is not None:
        given = tuple(axes)
        axes = tuple(int(a) % x.ndim for a in given if is_int(a) and -x.ndim <= a < x.ndim)
        if len(given) != x.ndim or sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {given} are not a permutation of the "
                             f"{x.ndim} axes of a tensor of shape {x.shape}")
    inverse = None if axes is None else tuple(np.argsort(axes))

    def transpose_backward(g):
        return (g.transpose(inverse),)
    return _record(x.data.transpose(axes), (x,), transpose_backward)


def swapaxes(x, axis1, axis2):
    """``x`` with two axes exchanged (torch.transpose(x, dim0, dim1))."""
    axes = list(range(x.ndim))
    i, j = _axis(axis1, x.ndim, "swapaxes"), _axis(axis2, x.ndim, "swapaxes")
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(x, axes)


def getitem(x, index):
    """``x[index]`` by PyTorch's rules: integers, slices, None, Ellipsis, and integer or
    bool arrays / tensors / lists (advanced indices). Unlike NumPy, an integer never
    counts as an advanced index: it selects first, so on a (2, 3, 4) tensor
    ``x[0, :, [1, 2]]`` is (3, 2), not NumPy's (2, 3). Repeated advanced indices add
    their gradients up."""
    index = _unwrapped(index)
    parts = index if isinstance(index, tuple) else (index,)
    advanced = [_is_advanced(p) for p in parts]
    if any(advanced) and any(is_int(p) for p in parts):
        basic, rest = _split_integers_first(parts, advanced, x.ndim)
        return _getitem(_getitem(x, basic), rest)
    return _getitem(x, index)


def _unwrapped(index):
    """An index with its Tensors (alone or in a tuple) replaced by their arrays."""
    if isinstance(index, tuple):
        return tuple(unwrap(i) for i in index)
    return unwrap(index)


def _is_advanced(part):
    return isinstance(part, (list, np.ndarray)) or (
        hasattr(part, "shape") and hasattr(part, "dtype") and part.ndim > 0
        and not isinstance(part, np.generic))


def _split_integers_first(parts, advanced, ndim):
    """(basic, rest): the index with every advanced part replaced by full slices (so its
    integers select first, as torch), and the advanced parts placed at the dims where
    those slices left them in the result."""
    consumed = builtins.sum(_dims_consumed(p) for p in parts if p is not None and p is not Ellipsis)
    basic, rest = [], []
    for part, is_adv in zip(parts, advanced):
        if is_adv:
            width = _dims_consumed(part)
            basic.extend([slice(None)] * width)
            rest.append(part)
        elif part is Ellipsis:
            basic.append(part)
            rest.extend([slice(None)] * (ndim - consumed))
        else:
            basic.append(part)
            if not is_int(part):  # a slice or None leaves one dim in the result
                rest.append(slice(None))
    return tuple(basic), tuple(rest)


def _dims_consumed(part):
    """How many dims of the indexed tensor an index part reads."""
    if is_int(part) or isinstance(part, slice):
        return 1
    array = np.asarray(part) if isinstance(part, list) else part
    return array.ndim if array.dtype == np.bool_ else 1


def _getitem(x, index):
    """``x[index]`` with the array module's rule; the backward writes the gradient back
    (adding at repeated positions when the index has arrays)."""
    try:
        y = x.data[index]
    except IndexError as error:
        raise IndexError(f"index {index!r} out of range for a tensor of shape {x.shape}: "
                         f"{error}") from None
    parts = index if isinstance(index, tuple) else (index,)
    repeats = any(_is_advanced(p) for p in parts)

    def getitem_backward(g):
        full = _xp(x).zeros(x.shape, dtype=g.dtype)
        if repeats:
            backend.scatter_add(full, index, g)  # repeated indices add up
        else:
            full[index] = g  # basic indexing reaches each element at most once
        return (full,)
    return _record(y, (x,), getitem_backward, "getitem")
