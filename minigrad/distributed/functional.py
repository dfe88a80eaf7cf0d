"""Differentiable collectives (``torch.distributed.nn.functional``): what SyncBatchNorm
composes to take its statistics over every rank's batch."""
from .. import functional as F
from .process_group import ReduceOp, _checked_op, reduce_array

__all__ = ["all_reduce"]


def all_reduce(tensor, op=ReduceOp.SUM):
    """A new tensor holding ``tensor`` summed (or averaged) over the ranks, with a gradient.

    Every rank's output is the same sum, and every rank's loss depends on it, so the
    gradient reaching rank r's input is the sum of every rank's output gradient (for AVG,
    divided by the world size): the backward pass is itself an all-reduce.
    """
    op = _checked_op(op)
    if op not in (ReduceOp.SUM, ReduceOp.AVG):
        raise ValueError(f"differentiable all_reduce supports SUM and AVG, got {op.name}")
    out = tensor.data.copy()  # contiguous, and the input stays as it was
    reduce_array(out, op)

    def all_reduce_backward(g):
        g = g.copy()
        reduce_array(g, op)
        return (g,)
    return F._record(out, (tensor,), all_reduce_backward)
