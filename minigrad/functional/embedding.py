"""Lookup tables: ``embedding`` (torch.nn.functional.embedding)."""
from .. import backend
from ..utils import is_int
from ._core import _record, _same_device, _xp


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer ``input``:
    shape ``input.shape + (dim,)``. The gradient adds up into the picked rows
    (repeated indices add); row ``padding_idx`` gets none. ``max_norm``,
    ``scale_grad_by_freq`` and ``sparse`` are not supported (a clear error)."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise ValueError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), "
                         f"got shape {weight.shape}")
    rows = weight.shape[0]
    index = getattr(input, "data", input)
    xp = _xp(weight)
    index = xp.asarray(index)
    if hasattr(input, "device"):
        _same_device("embedding", input, weight)
    if index.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {index.dtype}")
    if padding_idx is not None:
        if not is_int(padding_idx) or not -rows <= padding_idx < rows:
            raise ValueError(f"embedding: padding_idx must be an int in [-{rows}, {rows}), "
                             f"got {padding_idx!r}")
        padding_idx %= rows
    if weight.device == "cpu" and not backend.is_capturing() and index.size \
            and (index.min() < 0 or index.max() >= rows):
        bad = index[(index < 0) | (index >= rows)][0]
        raise IndexError(f"embedding: index {int(bad)} is out of range for {rows} embeddings")

    def embedding_backward(g):
        full = xp.zeros(weight.shape, dtype=g.dtype)
        backend.scatter_add(full, index, g)
        if padding_idx is not None:
            full[padding_idx] = 0
        return (full,)
    return _record(weight.data[index], (weight,), embedding_backward)
