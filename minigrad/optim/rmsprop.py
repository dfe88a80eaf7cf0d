"""RMSprop (torch.optim.RMSprop)."""
from .optimizer import Optimizer, buffer_like


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root-mean-square of its history.

    Same update rule and defaults as ``torch.optim.RMSprop``: ``alpha`` is the
    smoothing constant of the mean square; ``centered`` subtracts the squared running
    mean of the gradient (an estimate of its variance); ``momentum`` accumulates the
    normalised steps. ``maximize=True`` climbs the objective instead (the gradient is
    negated).
    """

    _required_state = ("step", "square_avg")
    _optional_state = ("momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False, foreach=None):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered, "maximize": maximize},
                         foreach=foreach)

    def _check_group(self, group):
        self._check_non_negative(group, "lr", "eps", "weight_decay", "momentum")
        self._check_flags(group, "centered", "maximize")
        # PyTorch only asks alpha >= 0; above 1 the mean square would go negative.
        group["alpha"] = self._check_number("alpha", group["alpha"])
        if not 0 <= group["alpha"] <= 1:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {group['alpha']!r}")

    def _init_state(self, param, group):
        return {"step": 0, "square_avg": buffer_like(param)}

    def _update(self, param, grad, state, group, lr, step):
        momentum, centered = group["momentum"], group["centered"]
        # Made on first need, so a group may also turn these on after its first step.
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = buffer_like(param)
        if centered and "grad_avg" not in state:
            state["grad_avg"] = buffer_like(param)
        self._kernel("rmsprop_update", param)(
            param.data, grad, state["square_avg"],
            state["momentum_buffer"] if momentum > 0 else None,
            state["grad_avg"] if centered else None,
            lr=lr, alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=momentum, centered=centered)
