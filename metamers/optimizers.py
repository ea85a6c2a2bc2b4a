"""Optimizers and step-size schedules for pixel-space synthesis.

Every optimizer here works on a batch ``x`` of shape ``(N, C, H, W)`` whose images are
independent: the gradient of image ``i`` is that of its own loss, so a batch gives the
same result as its images synthesised one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

#: Number of pixels of the 3 x 224 x 224 input for which Feather et al.'s step size 1 was set.
FEATHER_REFERENCE_NUMEL = 3 * 224 * 224


class NormalizedGradient(Optimizer):
    """``x <- x - lr * g / ||g||_2``, the gradient norm taken per image (first dimension).

    The step is an L2 step of length ``lr`` for every image, whatever its gradient's scale.
    An image whose gradient is exactly zero does not move.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1.0) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):  # noqa: D102
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                norm = g.flatten(1).norm(dim=1).reshape(-1, *([1] * (g.dim() - 1)))
                p.sub_(group["lr"] * g / norm.clamp_min(torch.finfo(g.dtype).tiny))
        return loss


#: Optimizer name -> (class, keyword arguments it takes, the method keys that configure it).
#: The normalized-gradient step's ``lr`` is derived from ``step_size`` (:func:`effective_step`).
OPTIMIZERS: dict[str, tuple[type[Optimizer], tuple[str, ...], tuple[str, ...]]] = {
    "normalized_gradient": (NormalizedGradient, ("lr",), ("step_size", "scale_step_to_input")),
    "adam": (Adam, ("lr", "betas", "eps"), ("lr", "betas", "eps")),
    "sgd": (SGD, ("lr", "momentum", "nesterov"), ("lr", "momentum", "nesterov")),
}


def optimizer_keys(name: str) -> tuple[str, ...]:
    """The method keys that configure optimizer ``name``."""
    if name not in OPTIMIZERS:
        raise KeyError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name][2]


def make_optimizer(name: str, params: Iterable[torch.Tensor], options: Mapping[str, Any]) -> Optimizer:
    """Build optimizer ``name`` with the keyword arguments it takes from ``options``."""
    optimizer_keys(name)
    cls, accepted, _ = OPTIMIZERS[name]
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items() if k in accepted}
    return cls(params, **kwargs)


def step_halving(iterations: int, blocks: int = 8, gamma: float = 0.5) -> Callable[[int], float]:
    """Multiplier of the initial step: ``gamma ** b`` during block ``b`` of ``blocks`` equal blocks.

    Feather et al. (2023): 8 blocks of 3000 iterations, the step halving after each.
    """
    block = max(1, -(-iterations // blocks))  # ceil: the last block may be shorter
    return lambda it: gamma ** min(it // block, blocks - 1)


def constant(iterations: int) -> Callable[[int], float]:
    return lambda it: 1.0


#: Schedule name -> factory ``(iterations, **options) -> multiplier(iteration)``.
SCHEDULES: dict[str, Callable[..., Callable[[int], float]]] = {
    "step_halving": step_halving,
    "constant": constant,
}


#: Schedule name -> the keys (besides ``type``) that configure it.
SCHEDULE_KEYS: dict[str, tuple[str, ...]] = {"step_halving": ("blocks", "gamma"), "constant": ()}


def make_scheduler(optimizer: Optimizer, iterations: int, schedule: Mapping[str, Any]) -> LRScheduler:
    """A :class:`LambdaLR` following schedule ``schedule['type']`` over ``iterations``."""
    options = dict(schedule)
    kind = options.pop("type", "constant")
    if kind not in SCHEDULES:
        raise KeyError(f"unknown schedule {kind!r}; valid: {', '.join(SCHEDULES)}")
    return LambdaLR(optimizer, SCHEDULES[kind](iterations, **options))


def effective_step(step_size: float, numel: int, scale_to_input: bool) -> float:
    """The initial step for an image of ``numel`` values.

    With ``scale_to_input`` the step is ``step_size * sqrt(numel / (3*224*224))``, which keeps
    the root-mean-square change per pixel of Feather et al.'s step on ImageNet inputs
    (a 1x28x28 MNIST digit takes steps 0.072 times as long).
    """
    return step_size * (numel / FEATHER_REFERENCE_NUMEL) ** 0.5 if scale_to_input else step_size
