"""The normalized-gradient step of Feather et al. (2023): a step of fixed L2 length per image."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer


def evaluate(closure: Callable[[], torch.Tensor] | None) -> torch.Tensor | None:
    """The closure's value, computed with gradients on (an optimizer's ``step`` runs under
    ``no_grad``), or None without a closure."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class NormalizedGradient(Optimizer):
    """``x <- x - lr * g / ||g||_2``, the gradient norm taken per image (first dimension).

    The step is an L2 step of length ``lr`` for every image, whatever its gradient's scale.
    An image whose gradient is exactly zero does not move. The parameters of a group are
    updated together (one multi-tensor operation for all of them, when each is one image).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1.0) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):  # noqa: D102
        loss = evaluate(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if all(len(p) == 1 for p in params):  # one image each: the tensor's norm is the image's
                tiny = torch.finfo(grads[0].dtype).tiny
                norms = torch._foreach_clamp_min(torch._foreach_norm(grads), tiny)
                torch._foreach_div_(norms, -group["lr"])  # -||g|| / lr
                torch._foreach_add_(params, torch._foreach_div(grads, norms))
                continue
            for p, g in zip(params, grads):
                norm = g.flatten(1).norm(dim=1).reshape(-1, *([1] * (g.dim() - 1)))
                p.sub_(group["lr"] * g / norm.clamp_min(torch.finfo(g.dtype).tiny))
        return loss
