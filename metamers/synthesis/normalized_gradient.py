"""The normalized-gradient step of Feather et al. (2023): a step of fixed L2 length per image."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer


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
