"""Adam and AdamW (torch.optim.Adam, torch.optim.AdamW)."""
from .optimizer import Optimizer, buffer_like, check_flag


class Adam(Optimizer):
    """Adam: bias-corrected running means of the gradient and of its square.

    Same update rule and defaults as ``torch.optim.Adam``, without AMSGrad
    (``amsgrad=False`` is accepted, ``True`` is an error). ``weight_decay`` adds
    ``weight_decay * param`` to the gradient (L2); with
    ``decoupled_weight_decay=True`` it shrinks the parameter directly instead, which
    is AdamW. ``maximize=True`` climbs the objective instead (the gradient is negated).
    """

    _required_state = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, foreach=None,
                 decoupled_weight_decay=False):
        self._check_amsgrad(amsgrad)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay},
                         foreach=foreach)

    def _check_amsgrad(self, amsgrad):
        amsgrad = check_flag(type(self).__name__, "amsgrad", amsgrad)
        if amsgrad:
            raise ValueError(f"{type(self).__name__}: amsgrad=True is not supported (minigrad's "
                             "Adam keeps no running maximum of the second moment)")
        return amsgrad

    def _check_group(self, group):
        name = type(self).__name__
        self._check_non_negative(group, "lr", "eps", "weight_decay")
        self._check_flags(group, "maximize", "decoupled_weight_decay")
        if "amsgrad" in group:  # a group may carry PyTorch's key; only False works here
            group["amsgrad"] = self._check_amsgrad(group["amsgrad"])
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
        return {"step": 0, "exp_avg": buffer_like(param), "exp_avg_sq": buffer_like(param)}

    def _update(self, param, grad, state, group, lr, step):
        beta1, beta2 = group["betas"]
        self._kernel("adam_update", param)(
            param.data, grad, state["exp_avg"], state["exp_avg_sq"],
            lr=lr, beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], step=step,
            decoupled_weight_decay=group["decoupled_weight_decay"])


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
