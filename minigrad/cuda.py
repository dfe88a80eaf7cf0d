"""GPU-only switches: whole training steps as CUDA graphs (capture forward, backward
and the optimizer's update once, then replay them for a few microseconds of host time
per step), and the TF32 opt-in for float32 matrix products (:func:`allow_tf32`).

    step = minigrad.cuda.graphed_step(model, loss_fn, optimizer, x_example, y_example)
    for x, y in loader:
        loss = step(x, y)            # a device scalar: nothing is read back
    if not step.check_finite():      # one read-back, when you choose
        ...

A training step of a small network is bound by Python and kernel-launch overhead;
a replayed graph removes both. What capturing asks of the rest of minigrad:

- CuPy cannot call cuBLAS or cuRAND while capturing. Matrix products switch by
  themselves (``kernels.cuda.gemm.matmul`` asks the stream) to the GEMM the step was
  made with: ``gemm="cublas"`` (the default), cuBLAS called directly through a handle
  with its own stream and workspace (``kernels.cuda.cublas_capture``), or
  ``gemm="custom"``, our tiled GEMM, about half as fast; the environment
  variable ``MINIGRAD_CAPTURE_GEMM`` picks when the call does not. Dropout masks come
  from a counter-based hash whose stream position is read on the device
  (``kernels.cuda.random.offsets_on_device``).
- Nothing may wait for the GPU: ``backend.capturing()`` makes ops skip host-side
  checks, and the loss's finiteness is kept in a device flag.
- Everything the graph touches must stay where it was at capture. Inputs are copied
  into static buffers; parameters, buffers and optimizer state are updated in place,
  as always. Gradients and temporaries come from a memory pool private to the
  capture and kept as long as the graph, so that memory is never handed to anyone
  else: gradients are written in place by every replay.
- What changes between replays lives on the device, declared by its owner through
  one small protocol (``replay_values(xp)``: ``recording()``, ``sync()``,
  ``advance()``, ``still_valid()``): the optimizer's learning rates and step counts
  (:class:`minigrad.optim.replay.ReplayValues`; its update reads both from its
  arguments, never from ``param_groups``/``state``, so the graph reads them from
  device memory) and the dropout stream's position
  (:func:`minigrad.random.replay_values`). The host values are copied over before a
  replay when they changed (a scheduler moved the lr) and advanced after it, so
  ``state_dict()`` stays right. Other hyper-parameters are frozen into the graph:
  changing one makes the next call capture afresh.

This module is the one place that knows about CUDA graphs; ``fit(..., cuda_graph=True)``
(or ``step=GraphedStep``) opts in.
"""
import contextlib

import numpy as np


from . import backend
from ._kernels import kernel_module
from . import random as mg_random
from .creation import as_tensor
from .tensor import Tensor
from .train.step import EagerStep
from .utils import unwrap

cuda_gemm = kernel_module("cuda.gemm")

def allow_tf32(enabled=True):
    """Opt float32 matrix products on the GPU (Dense layers, the convolutions' GEMMs)
    in to TF32 tensor cores, as PyTorch's ``torch.backends.cuda.matmul.allow_tf32``:
    inputs rounded to 10-bit mantissas, several times the float32 throughput on
    Ampere and later. Off by default, so float32 stays float32; returns the previous
    setting. Graphs captured earlier keep the math they were captured with."""
    backend.check_device("cuda")  # a clear error without CuPy or a GPU
    return cuda_gemm.set_tf32(enabled)


def graphed_step(model, loss_fn, optimizer, x_example, y_example, gemm=None):
    """A training step ``step(x, y) -> loss`` that runs as a replayed CUDA graph.

    One call does what ``optimizer.zero_grad(); loss_fn(model(x), y).backward();
    optimizer.step()`` does and returns the loss as a device scalar Tensor (its own
    copy, not read back). ``x_example`` and ``y_example`` (Tensors or arrays) fix the
    batch shape and dtypes of the graph: the first call with that shape runs eagerly
    (a real step, which also creates the optimizer's state) and captures the graph;
    later calls copy ``x``, ``y`` into the graph's input buffers and replay it. A
    batch of another shape (the last, smaller one of an epoch) runs eagerly.

    The model, its parameters and the optimizer must be on ``"cuda"``: a CPU model
    gets a ValueError (run the eager step there; there is no graph to replay).
    ``step.check_finite()`` reports whether every loss since the previous check was
    finite; ``step.output`` is the model's output of the latest call.

    ``gemm`` names the matrix product inside the graph: ``"custom"`` (our tiled GEMM)
    or ``"cublas"`` (cuBLAS called past CuPy's capture guard). The warm-up step
    multiplies with it too, so that everything it loads, and every choice made once
    per shape, is made before the capture; an error in the warm-up step or in the
    capture is a RuntimeError that says which (the original error chained). None takes
    ``MINIGRAD_CAPTURE_GEMM`` from the environment, else ``"cublas"``. Eager steps
    (other batch shapes) always use ``cupy.matmul``.
    """
    return GraphedStep(model, loss_fn, optimizer, x_example, y_example, gemm=gemm)


class GraphedStep:
    """A training step of fixed batch shape, captured once and replayed; see
    :func:`graphed_step`. Counters: ``captures``, ``replays``, ``eager_steps``;
    ``gemm``: the matrix product captured in the graph (``"custom"`` or ``"cublas"``).

    A training step as :mod:`minigrad.train.step` defines them (``fit(...,
    step=GraphedStep)``): without ``x_example``/``y_example`` the first batch fixes
    the graph's shape. Its ``check(loss, output)`` runs after the step's update.
    """

    checks_before_update = False  # a replay does the whole step at once

    def __init__(self, model, loss_fn, optimizer, x_example=None, y_example=None, gemm=None):
        self.gemm = cuda_gemm.resolve_capture_gemm(gemm)  # a bad name fails here, early
        params = list(model.parameters())
        if not params:
            raise ValueError("graphed_step: the model has no parameters to train")
        devices = {p.device for p in params}
        devices |= {backend.device_of(p.data) for g in optimizer.param_groups
                    for p in g["params"]}
        if devices != {"cuda"}:
            raise ValueError(f"graphed_step: CUDA graphs need the model and the optimizer's "
                             f"parameters on 'cuda', found them on {sorted(devices)}; on "
                             "the CPU train with the plain (eager) step")
        self._cp = backend.xp_for("cuda")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self._params = params
        self._eager_step = EagerStep(model, loss_fn, optimizer)
        self._key = None
        if x_example is not None or y_example is not None:
            if x_example is None or y_example is None:
                raise ValueError("graphed_step: give both x_example and y_example, or neither")
            self._fix_shape(_array(x_example), _array(y_example))
        self._nonfinite = self._cp.zeros((), dtype=bool)  # set on the device by any bad loss
        self._graph = None
        self.output = None
        self.captures = self.replays = self.eager_steps = 0

    def _fix_shape(self, x_example, y_example):
        """The batch shape and dtypes of the graph, and its input buffers."""
        self._key = _batch_key(x_example, y_example)
        self._x = self._cp.empty(x_example.shape, dtype=x_example.dtype)  # the graph's inputs
        self._y = self._cp.empty(y_example.shape, dtype=y_example.dtype)

    # ------------------------------------------------------------------ calling
    def __call__(self, x, y, check=None):
        """One training step on ``(x, y)``; returns the loss (a device scalar Tensor).
        ``check(loss, output)``, if given, runs after the step (see
        :mod:`minigrad.train.step`)."""
        loss = self._step(_array(x), _array(y))
        if check is not None:
            check(loss, self.output)
        return loss

    def _step(self, x_data, y_data):
        if self._key is None:
            self._fix_shape(x_data, y_data)
        if _batch_key(x_data, y_data) != self._key:  # e.g. the last, smaller batch of an epoch
            return self._eager(x_data, y_data)
        if self._graph is not None and not self._still_valid():
            self._release()
        if self._graph is None:
            # A real step first: it creates the optimizer's state (which must exist
            # before capture, or the graph would re-create it on every replay) and
            # loads every kernel the step uses - with cuBLAS, through the very calls
            # (handle, shapes, layouts) that the capture will make.
            try:
                with _warm_up_gemm(self.gemm):
                    loss = self._eager(x_data, y_data)
            except Exception as exc:
                # Its own error, type kept (a shape error stays a ValueError), with a
                # note: the one thing it does unlike an eager step is the GEMM it uses.
                exc.add_note(f"graphed_step: this was the warm-up step before the capture, "
                             f"which multiplies with the GEMM the graph would use "
                             f"(gemm={self.gemm!r}; 'custom' takes float32 and float64 "
                             "only); if an eager step runs, train eagerly or choose "
                             "gemm='cublas'")
                raise
            self._capture()
            return loss
        self._copy_in(x_data, y_data)
        for values in self._live:
            values.sync()  # the lr a scheduler set, the counts an eager step advanced
        self._graph.launch()  # on the current stream: after the copies, before any read
        self._after_replay()
        return Tensor(self._loss.copy())

    def check_finite(self):
        """True if every loss since the previous check was finite, then clear the flag.

        Reads one flag back from the GPU, so it waits for the queued steps: call it
        once per epoch or every N steps, not every step.
        """
        bad = bool(self._nonfinite)
        if bad:
            self._nonfinite.fill(False)
        return not bad

    @property
    def graph_memory_bytes(self):
        """Bytes held by the graph's private memory pool (0 before capture)."""
        return 0 if self._graph is None else self._pool.total_bytes()

    def __repr__(self):
        if self._key is None:
            return f"GraphedStep(shape not yet fixed, gemm={self.gemm!r})"
        x_shape, x_dtype, y_shape, y_dtype = self._key
        return (f"GraphedStep(x={x_shape} {x_dtype}, y={y_shape} {y_dtype}, "
                f"gemm={self.gemm!r}, captured={self._graph is not None}, "
                f"replays={self.replays}, "
                f"eager_steps={self.eager_steps})")

    # ------------------------------------------------------------------ eager
    def _eager(self, x_data, y_data):
        """The same step without a graph (warm-up, other batch shapes)."""
        x = as_tensor(x_data, device="cuda")  # the caller's batch: no copy of its own
        y = as_tensor(y_data, device="cuda")
        self.model.zero_grad()  # the model's, not only the optimizer's: all go in the graph
        loss = self._eager_step(x, y)
        self._record_finite(loss.data)
        self.output = self._eager_step.output
        self.eager_steps += 1
        return loss

    def _record_finite(self, loss_data):
        self._nonfinite |= ~self._cp.isfinite(loss_data.reshape(()))

    # ------------------------------------------------------------------ capture
    def _capture(self):
        """Record one step into a CUDA graph (nothing runs on the GPU meanwhile)."""
        cp, model, optimizer = self._cp, self.model, self.optimizer
        warm_grads = [p.grad for p in self._params]
        # What changes between replays, in device arrays its owners declare: after the
        # warm-up step, the parameters holding a gradient are those the graph's
        # optimizer step updates (their step counts and each group's lr), and the
        # dropout stream's position.
        live = [optimizer.replay_values(cp), mg_random.replay_values(cp)]
        # A capture must not be the first to load a module or to allocate the cuBLAS
        # handle's workspace (which must not come from the graph's private pool).
        cuda_gemm.prepare_capture(self.gemm,
                                  {p.data.dtype for p in self._params} | {self._x.dtype})

        keys_before = {key: tuple(state) for key, state in optimizer.state.items()}
        stream = cp.cuda.Stream(non_blocking=True)
        pool = cp.cuda.MemoryPool()
        model.zero_grad()  # the graph's backward then assigns, never adds to, .grad
        try:
            with cp.cuda.using_allocator(pool.malloc), stream, backend.capturing(), \
                    cuda_gemm.capture_gemm(self.gemm):
                stream.begin_capture()
                try:
                    with contextlib.ExitStack() as recording:
                        for values in live:
                            recording.enter_context(values.recording())
                        output = model(Tensor(self._x))
                        loss = self.loss_fn(output, Tensor(self._y))
                        loss.backward()
                        optimizer.step()
                    self._record_finite(loss.data)
                except BaseException:
                    _end_capture_quietly(stream)
                    raise
                graph = stream.end_capture()
        except Exception as exc:
            _restore_grads(self._params, warm_grads)
            _new_state_entries(optimizer, keys_before)  # never initialised: drop it
            raise RuntimeError(
                f"graphed_step: the training step could not be captured in a CUDA graph "
                f"({type(exc).__name__}: {exc}). Something in the model, the loss or the "
                "optimizer reads a value back from the GPU, calls a library CuPy cannot "
                "capture, or multiplies what the capture's GEMM does not take (the "
                "'custom' GEMM takes float32 and float64 only); train this model without "
                "the graph (eagerly)") from exc

        grads = [(p, p.grad) for p in self._params if p.grad is not None]
        _restore_grads(self._params, warm_grads)  # the graph's fill on the first replay
        created = _new_state_entries(optimizer, keys_before)
        if created:
            raise RuntimeError(
                "graphed_step: the optimizer created state while the step was captured "
                f"({created}); the graph would reset it on every replay. The warm-up step "
                "should have created it: does the optimizer skip parameters on some steps?")
        self._graph, self._pool, self._stream = graph, pool, stream
        self._loss, self._output, self._grads = loss.data, output.detach(), grads
        self._live = live
        self._training = model.training
        self._datas = [p.data for p in self._params]
        self.captures += 1

    def _still_valid(self):
        """False when something the graph baked in has changed since capture."""
        if self.model.training != self._training:
            return False
        if any(p.data is not data for p, data in zip(self._params, self._datas)):
            return False
        return all(values.still_valid() for values in self._live)

    def _release(self):
        """Drop the graph and its memory (after the GPU is done with them)."""
        self._cp.cuda.get_current_stream().synchronize()
        captured = {id(g) for _, g in self._grads}
        for p in self._params:
            if p.grad is not None and id(p.grad) in captured:
                p.grad = None
        self._graph = self._pool = self._stream = None
        self._loss = self._output = None
        self._grads = []

    # ------------------------------------------------------------------ replay
    def _copy_in(self, x_data, y_data):
        cp = self._cp
        for static, data in ((self._x, x_data), (self._y, y_data)):
            if isinstance(data, cp.ndarray):
                cp.copyto(static, data)
            else:
                static.set(np.ascontiguousarray(data))

    def _after_replay(self):
        """Mirror on the host what the replay did on the device."""
        for values in self._live:
            values.advance()
        for p, grad in self._grads:
            p.grad = grad  # the replay wrote this step's gradients there
        self.output = self._output
        self.replays += 1


def _warm_up_gemm(name):
    """The products of the warm-up step: the capture's GEMM, so that what its first
    calls do once (cuBLAS may load kernels; ``MINIGRAD_CUDA_WGRAD=auto`` times each
    convolution's weight gradient with the GEMM it will run on) happens outside the
    capture."""
    return cuda_gemm.capture_gemm(name, eager=True)


def _batch_key(x_data, y_data):
    return (tuple(x_data.shape), np.dtype(x_data.dtype), tuple(y_data.shape),
            np.dtype(y_data.dtype))


def _array(value):
    """The backend array of a Tensor, or the value itself if it is already an array."""
    value = unwrap(value)
    return value if hasattr(value, "shape") and hasattr(value, "dtype") else np.asarray(value)


def _end_capture_quietly(stream):
    """End a capture that failed, so the stream is usable again; its error is moot."""
    try:
        stream.end_capture()
    except Exception:
        pass


def _restore_grads(params, grads):
    for p, grad in zip(params, grads):
        p.grad = grad


def _new_state_entries(optimizer, keys_before):
    """Describe state the optimizer created since ``keys_before`` and remove it."""
    created = []
    for key in list(optimizer.state):
        state = optimizer.state[key]
        before = keys_before.get(key)
        if before is None:
            created.append("a new parameter's state")
            del optimizer.state[key]
            continue
        for name in [n for n in state if n not in before]:
            created.append(repr(name))
            del state[name]
    return ", ".join(created)
