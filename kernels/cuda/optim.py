"""Fused optimizer steps on the GPU: one kernel launch per parameter (optim.cu).

Same signatures and math as kernels.reference.optim: ``param`` and the state
arrays change in place, ``grad`` is only read. ``step`` (Adam, Adagrad) may also be
a one-element float64 CuPy array, read on the device, so that a captured CUDA
graph replays the update correctly while the caller advances the counter there.
"""
import numpy as np

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


def _device_step(what, step):
    """``step`` if it is a device counter (checked), else None for a Python number."""
    if not isinstance(step, cp.ndarray):
        return None
    if step.size != 1 or step.dtype != np.float64:
        raise TypeError(f"{what}: a device step must be a one-element float64 array, "
                        f"got dtype {step.dtype} and shape {step.shape}")
    return step


def sgd_update(param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov,
               weight_decay, first_step):
    """SGD with optional momentum/dampening/Nesterov and L2 weight decay (torch.optim.SGD)."""
    what = "sgd_update"
    if momentum != 0 and momentum_buffer is None:
        raise ValueError(f"{what}: momentum={momentum} needs a momentum_buffer")
    state = (("momentum_buffer", momentum_buffer),) if momentum != 0 else ()
    grad, dtype, n = _operands(what, param, grad, *state)
    buf = momentum_buffer if momentum != 0 else param  # never touched without momentum
    launch(kernel(_SOURCE, what, dtype), grid_1d(n),
           (param, grad, buf, np.int64(n), np.float64(lr), np.float64(momentum),
            np.float64(dampening), np.float64(weight_decay), np.int32(bool(nesterov)),
            np.int32(bool(first_step))))


def adam_update(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                step, decoupled_weight_decay):
    """Adam (L2 weight decay) or, with ``decoupled_weight_decay=True``, AdamW."""
    what = "adam_update"
    grad, dtype, n = _operands(what, param, grad, ("exp_avg", exp_avg),
                               ("exp_avg_sq", exp_avg_sq))
    device_step = _device_step(what, step)
    if device_step is None:  # the step-dependent factors, as the reference computes them
        step_size, bias_correction2_sqrt = lr / (1 - beta1 ** step), (1 - beta2 ** step) ** 0.5
    else:  # computed by the kernel from the device counter
        step_size = bias_correction2_sqrt = 0.0
    launch(kernel(_SOURCE, what, dtype), grid_1d(n),
           (param, grad, exp_avg, exp_avg_sq, np.int64(n), np.float64(lr),
            np.float64(beta1), np.float64(beta2), np.float64(eps),
            np.float64(weight_decay), np.int32(bool(decoupled_weight_decay)),
            param if device_step is None else device_step,  # pointer unread when None
            np.int32(device_step is not None), np.float64(step_size),
            np.float64(bias_correction2_sqrt)))


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
    launch(kernel(_SOURCE, what, dtype), grid_1d(n),
           (param, grad, square_avg,
            momentum_buffer if momentum > 0 else param,  # unused pointers: never touched
            grad_avg if centered else param,
            np.int64(n), np.float64(lr), np.float64(alpha), np.float64(eps),
            np.float64(weight_decay), np.float64(momentum), np.int32(bool(centered))))


def adagrad_update(param, grad, state_sum, *, lr, eps, weight_decay, lr_decay, step):
    """Adagrad with learning-rate decay and L2 weight decay (torch.optim.Adagrad)."""
    what = "adagrad_update"
    grad, dtype, n = _operands(what, param, grad, ("state_sum", state_sum))
    device_step = _device_step(what, step)
    clr = lr / (1 + (step - 1) * lr_decay) if device_step is None else 0.0
    launch(kernel(_SOURCE, what, dtype), grid_1d(n),
           (param, grad, state_sum, np.int64(n), np.float64(lr), np.float64(eps),
            np.float64(weight_decay), np.float64(lr_decay),
            param if device_step is None else device_step,  # pointer unread when None
            np.int32(device_step is not None), np.float64(clr)))
