"""The process group: who this process is among the ranks, and the collectives between them.

Two engines, no transport of our own: MPI through ``mpi4py`` (every HPC cluster; any
array, CuPy ones staged through the host) and NCCL through CuPy's bindings (GPUs;
the communicator's unique id is handed round over MPI, so ``mpiexec``/``srun`` start
every job). Collectives work in place on a Tensor's data or on an array, as
``torch.distributed``'s do, and every rank must call them in the same order.

Faults: once a group is up, an exception that nobody catches prints its traceback and
then aborts the whole MPI job (``MPI_Abort``), so the other ranks stop instead of
waiting forever in their next collective. MPI has no collective timeout; a rank that
dies without raising (killed by a signal) is noticed by ``mpiexec``/``srun``, which
then ends the others.
"""
import enum
import sys
import traceback

import numpy as np

from .. import backend
from ..utils import unwrap

__all__ = ["ReduceOp", "is_available", "is_initialized", "init_process_group",
           "destroy_process_group", "get_rank", "get_world_size", "get_backend",
           "all_reduce", "broadcast", "barrier", "abort", "reduce_array"]


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values (``torch.distributed.ReduceOp``)."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


_group = None  # the default (and only) process group once init_process_group has run


def is_available():
    """True when mpi4py imports (every backend starts from MPI)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_initialized():
    """True between ``init_process_group`` and ``destroy_process_group``."""
    return _group is not None


def init_process_group(backend="mpi"):
    """Join the job's ranks: ``backend="mpi"`` (CPU or GPU arrays) or ``"nccl"`` (GPUs).

    Run under ``mpiexec -n N`` or ``srun``; a plain ``python`` is a job of one rank. With
    ``"nccl"`` each process takes the GPU numbered by its rank among the processes on its
    node, so start one process per GPU. Calling it twice is an error, as in PyTorch.
    """
    global _group
    if _group is not None:
        raise RuntimeError("init_process_group: the default process group is already "
                           "initialized; call destroy_process_group() first")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: unknown backend {backend!r}; "
                         f"choose 'mpi' or 'nccl'")
    comm = _mpi_world()
    _group = _NCCLGroup(comm) if backend == "nccl" else _MPIGroup(comm)
    _install_abort_on_error()


def destroy_process_group():
    """Leave the group (collectives then raise); MPI itself ends when Python exits."""
    global _group
    if _group is None:
        raise RuntimeError("destroy_process_group: no process group is initialized")
    group, _group = _group, None
    group.close()
    _restore_excepthook()


def _current(who):
    if _group is None:
        raise RuntimeError(f"{who}: the default process group has not been initialized; "
                           f"call minigrad.distributed.init_process_group() first")
    return _group


def get_rank():
    """This process's rank, 0 .. world size - 1."""
    return _current("get_rank").rank


def get_world_size():
    """The number of ranks in the job."""
    return _current("get_world_size").size


def get_backend():
    """``"mpi"`` or ``"nccl"``."""
    return _current("get_backend").name


def all_reduce(tensor, op=ReduceOp.SUM):
    """Combine ``tensor`` (a Tensor or an array) across ranks, in place, by ``op``."""
    _current("all_reduce")
    _in_place(tensor, lambda array: reduce_array(array, op))


def broadcast(tensor, src=0):
    """Overwrite ``tensor`` (a Tensor or an array) on every rank with rank ``src``'s, in place."""
    group = _current("broadcast")
    if not 0 <= int(src) < group.size:
        raise ValueError(f"broadcast: src={src} is not a rank of a group of {group.size}")
    _in_place(tensor, lambda array: group.broadcast(array, int(src)))


def barrier():
    """Wait until every rank has reached this call."""
    _current("barrier").comm.Barrier()


def reduce_array(array, op=ReduceOp.SUM):
    """All-reduce a contiguous NumPy/CuPy ``array`` in place (what ``all_reduce`` and DDP's
    buckets call). AVG is a sum divided by the world size, so it needs floating data."""
    group = _current("all_reduce")
    op = _checked_op(op)
    if op is ReduceOp.AVG and array.dtype.kind != "f":
        raise TypeError(f"all_reduce: ReduceOp.AVG needs floating-point data, got {array.dtype}")
    group.all_reduce(array, ReduceOp.SUM if op is ReduceOp.AVG else op)
    if op is ReduceOp.AVG:
        array /= group.size


def _checked_op(op):
    if isinstance(op, str):
        op = ReduceOp.__members__.get(op.upper(), op)
    if not isinstance(op, ReduceOp):
        raise ValueError(f"all_reduce: unknown op {op!r}; choose one of "
                         f"{[o.name for o in ReduceOp]}")
    return op


def _in_place(tensor, collective):
    """Run ``collective`` on the array behind ``tensor``; a strided array goes through a
    contiguous copy, written back, so the caller's object holds the result either way."""
    array = unwrap(tensor)
    if not hasattr(array, "dtype") or not hasattr(array, "flags"):
        raise TypeError(f"expected a Tensor or a NumPy/CuPy array, got {type(tensor).__name__}")
    if array.flags.c_contiguous:
        collective(array)
        return
    contiguous = backend.array_module(array).ascontiguousarray(array)
    collective(contiguous)
    array[...] = contiguous


# ------------------------------------------------------------------ engines
def _mpi_world():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError("minigrad.distributed needs mpi4py and an MPI library: "
                           "pip install 'minigrad[distributed]' (mpi4py and the mpich "
                           f"wheel), then start the job with mpiexec or srun ({exc})") from None
    # A communicator of our own, so a user's MPI traffic never interleaves with ours.
    return MPI.COMM_WORLD.Dup()


class _MPIGroup:
    """Collectives through MPI. CuPy arrays go through host memory: the MPI from the
    package index is not CUDA-aware, and on GPUs the NCCL group is the fast path."""

    name = "mpi"

    def __init__(self, comm):
        from mpi4py import MPI
        self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
        self._ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
                     ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}
        self._in_place = MPI.IN_PLACE

    def all_reduce(self, array, op):
        host = _host(array)
        self.comm.Allreduce(self._in_place, host, op=self._ops[op])
        _write_back(array, host)

    def broadcast(self, array, src):
        host = _host(array)
        self.comm.Bcast(host, root=src)
        _write_back(array, host)

    def close(self):
        self.comm.Free()


def _host(array):
    return array if isinstance(array, np.ndarray) else backend.to_numpy(array)


def _write_back(array, host):
    if host is not array:
        array[...] = backend.array_module(array).asarray(host)


class _NCCLGroup:
    """Collectives through NCCL on the current CuPy stream (so they queue behind the
    step's kernels without a host wait). NumPy arrays are staged through the GPU, so
    small host values (fit's metric sums) can use the same group."""

    name = "nccl"

    def __init__(self, comm):
        import cupy
        from cupy.cuda import nccl
        from mpi4py import MPI
        self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks on this node
        local_rank = local.Get_rank()
        local.Free()
        devices = cupy.cuda.runtime.getDeviceCount()
        if local_rank >= devices:
            raise RuntimeError(f"init_process_group('nccl'): local rank {local_rank} has no "
                               f"GPU of its own ({devices} visible); start one process per GPU")
        cupy.cuda.Device(local_rank).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        self.nccl = nccl.NcclCommunicator(self.size, comm.bcast(uid, root=0), self.rank)
        self._cupy, self._lib = cupy, nccl
        self._ops = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.PRODUCT: nccl.NCCL_PROD,
                     ReduceOp.MIN: nccl.NCCL_MIN, ReduceOp.MAX: nccl.NCCL_MAX}

    def _dtype(self, dtype):
        names = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32",
                 "float64": "NCCL_FLOAT64", "int32": "NCCL_INT32", "int64": "NCCL_INT64",
                 "uint8": "NCCL_UINT8", "int8": "NCCL_INT8", "bool": "NCCL_UINT8"}
        if np.dtype(dtype).name not in names:
            raise TypeError(f"NCCL cannot reduce arrays of dtype {dtype}")
        return getattr(self._lib, names[np.dtype(dtype).name])

    def _on_device(self, array, run):
        device = array if backend.device_of(array) == "cuda" else self._cupy.asarray(array)
        run(device, self._cupy.cuda.get_current_stream().ptr)
        _write_back(array, device.get() if device is not array else device)

    def all_reduce(self, array, op):
        if op is not ReduceOp.SUM and array.dtype == np.bool_:
            raise TypeError("NCCL reduces bool arrays by SUM only")
        self._on_device(array, lambda a, stream: self.nccl.allReduce(
            a.data.ptr, a.data.ptr, a.size, self._dtype(a.dtype), self._ops[op], stream))

    def broadcast(self, array, src):
        self._on_device(array, lambda a, stream: self.nccl.bcast(
            a.data.ptr, a.size, self._dtype(a.dtype), src, stream))

    def close(self):
        self.nccl.destroy()
        self.comm.Free()


# ------------------------------------------------------------------ faults
_previous_excepthook = None


def abort(code=1, error=None):
    """End every rank of the job now (``MPI_Abort``), with exit status ``code``: what a
    rank that stops on an error it has handled itself calls, so that no other rank waits
    for it in a collective. ``error`` (an exception) is printed first, with its traceback."""
    if error is not None:
        rank = f"rank {_group.rank} of {_group.size}" if _group is not None else "a rank"
        sys.stderr.write(f"minigrad.distributed: {rank} failed; aborting every rank\n")
        traceback.print_exception(type(error), error, error.__traceback__)
    sys.stdout.flush()
    sys.stderr.flush()
    from mpi4py import MPI
    MPI.COMM_WORLD.Abort(int(code))


def _install_abort_on_error():
    """An uncaught exception prints its traceback, then aborts every rank of the job."""
    global _previous_excepthook
    if _previous_excepthook is None:
        _previous_excepthook = sys.excepthook

    def abort_job(kind, value, tb):
        abort(1, error=value.with_traceback(tb))
    sys.excepthook = abort_job


def _restore_excepthook():
    global _previous_excepthook
    if _previous_excepthook is not None:
        sys.excepthook, _previous_excepthook = _previous_excepthook, None
