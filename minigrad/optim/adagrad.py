"""Adagrad (torch.optim.Adagrad)."""
from .optimizer import Optimizer, buffer_like


class Adagrad(Optimizer):
    """Adagrad: divide the gradient by the root of the sum of all past squared gradients.

    Same update rule and defaults as ``torch.optim.Adagrad``: the step size at step
    ``t`` is ``lr / (1 + (t - 1) * lr_decay)``; the sum starts at
    ``initial_accumulator_value``. ``maximize=True`` climbs the objective instead
    (the gradient is negated).
    """

    _required_state = ("step", "sum")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, *, maximize=False, foreach=None):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "eps": eps, "maximize": maximize}, foreach=foreach)

    def _check_group(self, group):
        self._check_non_negative(group, "lr", "lr_decay", "weight_decay",
                                 "initial_accumulator_value", "eps")
        self._check_flags(group, "maximize")

    def _init_state(self, param, group):
        return {"step": 0, "sum": buffer_like(param, group["initial_accumulator_value"])}

    def _update(self, param, grad, state, group, lr, step):
        self._kernel("adagrad_update", param)(
            param.data, grad, state["sum"],
            lr=lr, eps=group["eps"], weight_decay=group["weight_decay"],
            lr_decay=group["lr_decay"], step=step)
