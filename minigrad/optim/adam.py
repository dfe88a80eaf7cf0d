"""Adam and AdamW (torch.optim.Adam, torch.optim.AdamW)."""
from .optimizer import Optimizer, buffer_like


class Adam(Optimizer):
    """Adam: bias-corrected running means of the gradient and of its square.

    Same update rule and defaults as ``torch.optim.Adam``. ``amsgrad=True`` keeps the
    running maximum of the second moment (state ``"max_exp_avg_sq"``, as torch) and
    divides by it; that step runs as array-module code rather than a fused kernel.
    ``weight_decay`` adds
    ``weight_decay * param`` to the gradient (L2); with
    ``decoupled_weight_decay=True`` it shrinks the parameter directly instead, which
    is AdamW. ``maximize=True`` climbs the objective instead (the gradient is negated).
    """

    _required_state = ("step", "exp_avg", "exp_avg_sq")
    _optional_state = ("max_exp_avg_sq",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, foreach=None,
                 decoupled_weight_decay=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay},
                         foreach=foreach)

    def _check_group(self, group):
        name = type(self).__name__
        self._check_non_negative(group, "lr", "eps", "weight_decay")
        group.setdefault("amsgrad", False)  # a group saved before amsgrad was supported
        self._check_flags(group, "amsgrad", "maximize", "decoupled_weight_decay")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        betas = tuple(self._check_number(f"betas[{i}]", beta) for i, beta in enumerate(betas))
        for i, beta in enumerate(betas):
            if not 0 <= beta < 1:
                raise ValueError(f"{name}: betas[{i}] must be in [0, 1), got {beta!r}")
        group["betas"] = betas

    def _init_state(self, param, group):
        state = {"step": 0, "exp_avg": buffer_like(param), "exp_avg_sq": buffer_like(param)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = buffer_like(param)
        return state

    def _update(self, param, grad, state, group, lr, step):
        beta1, beta2 = group["betas"]
        hyper = dict(lr=lr, beta1=beta1, beta2=beta2, eps=group["eps"],
                     weight_decay=group["weight_decay"], step=step,
                     decoupled_weight_decay=group["decoupled_weight_decay"])
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:  # amsgrad switched on after earlier steps
                state["max_exp_avg_sq"] = buffer_like(param)
            self._kernel("adam_amsgrad_update", param)(
                param.data, grad, state["exp_avg"], state["exp_avg_sq"],
                max_exp_avg_sq=state["max_exp_avg_sq"], **hyper)
        else:
            self._kernel("adam_update", param)(param.data, grad, state["exp_avg"],
                                               state["exp_avg_sq"], **hyper)


class AdamW(Adam):
    """Adam with decoupled weight decay (``param *= 1 - lr * weight_decay`` each step).

    Same update rule and defaults as ``torch.optim.AdamW`` (note the default
    ``weight_decay=1e-2``). Loading a state dict never turns the decoupling off.
    """

    _fixed_hyperparameters = ("decoupled_weight_decay",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         foreach=foreach, decoupled_weight_decay=True)
