"""Stochastic gradient descent (torch.optim.SGD)."""
from .optimizer import Optimizer, buffer_like


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and L2 weight decay.

    Same update rule and defaults as ``torch.optim.SGD``: with momentum the buffer
    starts as the first gradient, then ``buf = momentum * buf + (1 - dampening) * g``;
    the step is ``-lr * buf`` (or ``-lr * (g + momentum * buf)`` with Nesterov).
    ``maximize=True`` climbs the objective instead (the gradient is negated).
    Batch, mini-batch and stochastic gradient descent are this optimizer fed batches
    of the whole data set, of 32, or of 1.
    """

    _optional_state = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None):
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize}, foreach=foreach)

    def _check_group(self, group):
        self._check_non_negative(group, "lr", "momentum", "weight_decay")
        group["dampening"] = self._check_number("dampening", group["dampening"])
        self._check_flags(group, "nesterov", "maximize")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening == 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def _update(self, param, grad, state, group, lr, step):
        momentum = group["momentum"]
        buffer = state.get("momentum_buffer")
        first_step = buffer is None
        if momentum != 0 and first_step:
            buffer = state["momentum_buffer"] = buffer_like(param)
        self._kernel("sgd_update", param)(
            param.data, grad, buffer if momentum != 0 else None,
            lr=lr, momentum=momentum, dampening=group["dampening"],
            nesterov=group["nesterov"], weight_decay=group["weight_decay"],
            first_step=first_step)
