"""Fused optimizer steps on the GPU: one kernel launch per parameter (optim.cu).

Same signatures and math as kernels.reference.optim: ``param`` and the state
arrays change in place, ``grad`` is only read. ``step`` (Adam, Adagrad) and ``lr``
(every optimizer) may also be one-element float64 CuPy arrays, read on the device,
so that a captured CUDA graph replays the update correctly while the caller
advances the step counter and sets the learning rate there between replays.
Parameters of another dtype (float16) take the reference update, as on the CPU.
"""
import numpy as np

from .._fallback import falls_back_to
from ..reference import optim as reference
from .compile import cp, float_dtype, grid_1d, kernel, launch

_SOURCE = "optim.cu"


def _operands(what, param, grad, *state):
    """Check shapes, dtypes and layout; return (grad contiguous, dtype, size)."""
    for name, array in (("param", param),) + tuple(state):
        if not array.flags.c_contiguous:
            # The kernels update through the raw pointer: a strided view would be
            # written in the wrong places, and a contiguous copy would be lost.
            raise ValueError(f"{what}: {name} must be C-contiguous to update in place")
        if array.shape != param.shape:
            raise ValueError(f"{what}: {name} has shape {array.shape}, param has "
                             f"{param.shape}")
    if grad.shape != param.shape:
        raise ValueError(f"{what}: grad has shape {grad.shape}, param has {param.shape}")
    grad = cp.ascontiguousarray(grad)
    dtype = float_dtype(what, param, grad, *(array for _, array in state))
    return grad, dtype, param.size


def _device_scalar(what, name, value, unused_pointer):
    """Kernel arguments (pointer, on-device flag, host value) for a hyper-parameter
    given as a Python number or as a one-element float64 device array.

    A host number travels by value and ``unused_pointer`` (any array: the kernel
    does not read it) fills the pointer slot.
    """
    if not isinstance(value, cp.ndarray):
        return unused_pointer, np.int32(0), np.float64(value)
    if value.size != 1 or value.dtype != np.float64:
        raise TypeError(f"{what}: a device {name} must be a one-element float64 array, "
                        f"got dtype {value.dtype} and shape {value.shape}")
    return value, np.int32(1), np.float64(0.0)


@falls_back_to(reference.sgd_update, arrays=("param",))
def sgd_update(param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov,
               weight_decay, first_step):
    """SGD with optional momentum/dampening/Nesterov and L2 weight decay (torch.optim.SGD)."""
    what = "sgd_update"
    if momentum != 0 and momentum_buffer is None:
        raise ValueError(f"{what}: momentum={momentum} needs a momentum_buffer")
    state = (("momentum_buffer", momentum_buffer),) if momentum != 0 else ()
    grad, dtype, n = _operands(what, param, grad, *state)
    buf = momentum_buffer if momentum != 0 else param  # never touched without momentum
    lr_ptr, lr_on_device, lr_host = _device_scalar(what, "lr", lr, param)
    launch(kernel(_SOURCE, what, dtype), grid_1d(n),
           (param, grad, buf, np.int64(n), lr_host, lr_ptr, lr_on_device,
            np.float64(momentum), np.float64(dampening), np.float64(weight_decay),
            np.int32(bool(nesterov)), np.int32(bool(first_step))))


@falls_back_to(reference.adam_update, arrays=("param",))
def adam_update(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                step, decoupled_weight_decay):
    """Adam (L2 weight decay) or, with ``decoupled_weight_decay=True``, AdamW."""
    what = "adam_update"
    grad, dtype, n = _operands(what, param, grad, ("exp_avg", exp_avg),
                               ("exp_avg_sq", exp_avg_sq))
    lr_ptr, lr_on_device, lr_host = _device_scalar(what, "lr", lr, param)
    step_ptr, step_on_device, _ = _device_scalar(what, "step", step, param)
    if step_on_device:  # the kernel computes the corrections from the device counter
        bias_correction1 = bias_correction2_sqrt = 1.0
    else:  # the step-dependent factors, as the reference computes them
        bias_correction1, bias_correction2_sqrt = 1 - beta1 ** step, (1 - beta2 ** step) ** 0.5
    launch(kernel(_SOURCE, what, dtype), grid_1d(n),
           (param, grad, exp_avg, exp_avg_sq, np.int64(n), lr_host, lr_ptr, lr_on_device,
            np.float64(beta1), np.float64(beta2), np.float64(eps),
            np.float64(weight_decay), np.int32(bool(decoupled_weight_decay)),
            step_ptr, step_on_device, np.float64(bias_correction1),
            np.float64(bias_correction2_sqrt)))


@falls_back_to(reference.rmsprop_update, arrays=("param",))
def rmsprop_update(param, grad, square_avg, momentum_buffer, grad_avg, *, lr, alpha, eps,
                   weight_decay, momentum, centered):
    """RMSprop, optionally centered and with momentum (torch.optim.RMSprop)."""
    what = "rmsprop_update"
    state = [("square_avg", square_avg)]
    if momentum > 0:
        if momentum_buffer is None:
            raise ValueError(f"{what}: momentum={momentum} needs a momentum_buffer")
        state.append(("momentum_buffer", momentum_buffer))
    if centered:
        if grad_avg is None:
            raise ValueError(f"{what}: centered=True needs a grad_avg buffer")
        state.append(("grad_avg", grad_avg))
    grad, dtype, n = _operands(what, param, grad, *state)
    lr_ptr, lr_on_device, lr_host = _device_scalar(what, "lr", lr, param)
    launch(kernel(_SOURCE, what, dtype), grid_1d(n),
           (param, grad, square_avg,
            momentum_buffer if momentum > 0 else param,  # unused pointers: never touched
            grad_avg if centered else param,
            np.int64(n), lr_host, lr_ptr, lr_on_device, np.float64(alpha), np.float64(eps),
            np.float64(weight_decay), np.float64(momentum), np.int32(bool(centered))))


@falls_back_to(reference.adagrad_update, arrays=("param",))
def adagrad_update(param, grad, state_sum, *, lr, eps, weight_decay, lr_decay, step):
    """Adagrad with learning-rate decay and L2 weight decay (torch.optim.Adagrad)."""
    what = "adagrad_update"
    grad, dtype, n = _operands(what, param, grad, ("state_sum", state_sum))
    lr_ptr, lr_on_device, lr_host = _device_scalar(what, "lr", lr, param)
    step_ptr, step_on_device, step_host = _device_scalar(what, "step", step, param)
    launch(kernel(_SOURCE, what, dtype), grid_1d(n),
           (param, grad, state_sum, np.int64(n), lr_host, lr_ptr, lr_on_device,
            np.float64(eps), np.float64(weight_decay), np.float64(lr_decay), step_host,
            step_ptr, step_on_device))
