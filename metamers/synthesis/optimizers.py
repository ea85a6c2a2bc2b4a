"""Optimizers for pixel-space synthesis, registered by name in :data:`OPTIMIZERS`.

Synthesis gives every image its own parameter tensor ``(1, C, H, W)``; an optimizer steps a
list of them with a closure that evaluates their objective (as :meth:`torch.optim.Optimizer.step`
takes it), so closure-based optimizers work, and every update is per image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim import SGD, Adam, Optimizer

from ..registry import Registry

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


@dataclass(frozen=True)
class OptimizerType:
    """A registered optimizer.

    Attributes
    ----------
    cls
        The :class:`torch.optim.Optimizer` class.
    kwargs
        The keyword arguments of ``cls`` that a method's settings give.
    keys
        The method keys that configure it (``step_size`` and ``scale_step_to_input`` become the
        normalized-gradient step's ``lr``, :func:`effective_step`).
    required
        The keys a method must give (no silent library default for a step size).
    """

    cls: type[Optimizer]
    kwargs: tuple[str, ...]
    keys: tuple[str, ...]
    required: tuple[str, ...]


#: Optimizer name -> :class:`OptimizerType`.
OPTIMIZERS: Registry[OptimizerType] = Registry("optimizer")
OPTIMIZERS.register("normalized_gradient", OptimizerType(NormalizedGradient, ("lr",),
                                                         ("step_size", "scale_step_to_input"), ("step_size",)))
OPTIMIZERS.register("adam", OptimizerType(Adam, ("lr", "betas", "eps"), ("lr", "betas", "eps"), ("lr",)))
OPTIMIZERS.register("sgd", OptimizerType(SGD, ("lr", "momentum", "nesterov"), ("lr", "momentum", "nesterov"),
                                         ("lr",)))


def optimizer_keys(name: str) -> tuple[str, ...]:
    """The method keys that configure optimizer ``name``."""
    return OPTIMIZERS[name].keys


def make_optimizer(name: str, params: Iterable[torch.Tensor], options: Mapping[str, Any]) -> Optimizer:
    """Build optimizer ``name`` with the keyword arguments it takes from ``options``."""
    kind = OPTIMIZERS[name]
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items() if k in kind.kwargs}
    return kind.cls(params, **kwargs)


def effective_step(step_size: float, numel: int, scale_to_input: bool) -> float:
    """The initial step for an image of ``numel`` values.

    With ``scale_to_input`` the step is ``step_size * sqrt(numel / (3*224*224))``, which keeps
    the root-mean-square change per pixel of Feather et al.'s step on ImageNet inputs
    (a 1x28x28 MNIST digit takes steps 0.072 times as long).
    """
    return step_size * (numel / FEATHER_REFERENCE_NUMEL) ** 0.5 if scale_to_input else step_size
