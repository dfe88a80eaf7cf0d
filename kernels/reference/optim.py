"""Optimizer updates, in place on the parameter and its state arrays (torch.optim's math).

Each function updates one parameter tensor: ``param`` and the state buffers are
changed in place (other code holds references to them); ``grad`` is never written
to, so weight decay works on a temporary ``grad + weight_decay * param``.
Hyper-parameters are Python scalars. Every function is array-module generic
(NumPy or CuPy) and follows PyTorch's single-tensor (``foreach=False``) code path
operation by operation, so results agree with ``torch.optim`` to rounding.
"""
from .._xp import array_module


def sgd_update(param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov,
               weight_decay, first_step):
    """SGD with optional momentum/dampening/Nesterov and L2 weight decay (torch.optim.SGD).

    ``momentum_buffer`` is None when ``momentum == 0``. ``first_step=True`` sets the
    buffer to the gradient itself (PyTorch clones the first gradient rather than
    damping it).
    """
    if weight_decay != 0:
        grad = grad + weight_decay * param
    if momentum != 0:
        if first_step:
            momentum_buffer[...] = grad
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * grad
        if nesterov:
            grad = grad + momentum * momentum_buffer
        else:
            grad = momentum_buffer
    param -= lr * grad


def adam_update(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                step, decoupled_weight_decay, max_exp_avg_sq=None):
    """Adam (L2 weight decay) or, with ``decoupled_weight_decay=True``, AdamW.

    ``step`` is the 1-based step count after this step's increment; it sets the
    bias corrections. With ``max_exp_avg_sq`` (AMSGrad) that buffer keeps the running
    maximum of ``exp_avg_sq`` and the denominator uses it, as torch's ``amsgrad``.
    """
    xp = array_module(param)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    # PyTorch's exp_avg.lerp_(grad, 1 - beta1): start + weight * (end - start).
    exp_avg += (1 - beta1) * (grad - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * (grad * grad)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    step_size = lr / bias_correction1
    second_moment = exp_avg_sq
    if max_exp_avg_sq is not None:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    denom = xp.sqrt(second_moment) / bias_correction2_sqrt + eps
    param -= step_size * (exp_avg / denom)


def rmsprop_update(param, grad, square_avg, momentum_buffer, grad_avg, *, lr, alpha, eps,
                   weight_decay, momentum, centered):
    """RMSprop, optionally centered and with momentum (torch.optim.RMSprop).

    ``momentum_buffer`` is None when ``momentum == 0``; ``grad_avg`` is None unless
    ``centered``.
    """
    xp = array_module(param)
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg *= alpha
    square_avg += (1 - alpha) * (grad * grad)
    if centered:
        grad_avg += (1 - alpha) * (grad - grad_avg)  # PyTorch's lerp_
        avg = xp.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = xp.sqrt(square_avg)
    avg += eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += grad / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * (grad / avg)


def adagrad_update(param, grad, state_sum, *, lr, eps, weight_decay, lr_decay, step):
    """Adagrad with learning-rate decay and L2 weight decay (torch.optim.Adagrad).

    ``step`` is the 1-based step count after this step's increment.
    """
    xp = array_module(param)
    if weight_decay != 0:
        grad = grad + weight_decay * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += grad * grad
    std = xp.sqrt(state_sum) + eps
    param -= clr * (grad / std)
