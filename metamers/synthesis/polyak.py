"""Polyak's step size: a gradient step whose length is set by how far the objective is from its
minimum (Polyak 1969/1987), per image.

A metamer's objective (a distance between activations, :mod:`.losses`, or a weighted sum of
them) has minimum 0: the reference itself attains it. For an objective ``f`` with minimum 0,
Polyak's step is ``x <- x - lr * f(x) / ||g||^2 * g``, ``g`` the gradient of ``f`` at ``x``; when
``f`` is the norm of a residual that is linear in ``x`` with orthonormal rows, ``lr = 1`` reaches
the minimum in one step, at the solution nearest the iterate. It moves along the gradient, as
the published normalized-gradient step does (so from noise it goes where gradient flow goes,
and its metamers stay about as far from their references as the published ones), but its
length follows the remaining error instead of a fixed schedule: long while the image is far from
a metamer, short near one. Heavy-ball ``momentum`` adds the previous step times ``momentum``.

With image priors (:mod:`.priors`) the objective's minimum is not 0, so the step does not
vanish at it; a schedule that decays ``lr`` (``cosine``) then lets it settle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

from .normalized_gradient import evaluate


class PolyakStep(Optimizer):
    """``v_i <- momentum * v_i + lr * f_i / ||g_i||^2 * g_i``, ``x_i <- x_i - v_i`` for each image
    ``i``, the Polyak part's L2 length at most ``max_step``.

    The step needs each image's objective value ``f_i``: the synthesis loop hands them over with
    :meth:`set_objective` before the update (in the order of the parameters, over every group).
    An image whose gradient is zero, or so small that its squared norm is below the dtype's
    smallest normal number (a float32 norm below about 1e-19), gets no Polyak part (its velocity
    still carries it).

    Parameters
    ----------
    params
        One parameter per image (``(1, ...)``), or parameter groups of them.
    lr
        The fraction of Polyak's step taken (1: the full step).
    momentum
        Heavy-ball momentum in [0, 1) (0: none).
    max_step
        The longest L2 step of an image's Polyak part (0: no limit), so that an image whose
        gradient almost vanishes away from a metamer does not jump far.
    """

    #: The synthesis loop hands this optimizer each image's objective (:meth:`set_objective`).
    takes_objective = True

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1.0, momentum: float = 0.0,
                 max_step: float = 0.0) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not max_step >= 0:
            raise ValueError(f"max_step must be >= 0 (0: no limit), got {max_step}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "max_step": max_step})
        self._objective: torch.Tensor | None = None

    def set_objective(self, values: torch.Tensor) -> None:
        """Each image's objective at the current iterate, in the order of the parameters."""
        self._objective = values.detach().flatten()

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):  # noqa: D102
        loss = evaluate(closure)
        values, self._objective = self._objective, None
        if values is None:
            raise RuntimeError("PolyakStep needs each image's objective: call set_objective before each step")
        count = sum(len(group["params"]) for group in self.param_groups)
        if len(values) != count:
            raise RuntimeError(f"PolyakStep steps {count} images but was given {len(values)} objective values")
        start = 0
        for group in self.param_groups:
            mine, start = values[start:start + len(group["params"])], start + len(group["params"])
            chosen = [k for k, p in enumerate(group["params"]) if p.grad is not None]
            if not chosen:
                continue
            params = [group["params"][k] for k in chosen]
            grads = [p.grad for p in params]
            norms = torch.stack(torch._foreach_norm(grads))
            squares = norms.square()
            tiny = torch.finfo(norms.dtype).tiny
            scale = group["lr"] * mine[chosen].to(norms).clamp_min(0) / squares.clamp_min(tiny)
            if group["max_step"]:
                scale = torch.minimum(scale, group["max_step"] / norms.clamp_min(tiny))
            # no step where the gradient is 0, or so small that its square underflows below the
            # smallest normal number (the step would be about f / tiny long)
            scale = torch.where(squares >= tiny, scale, torch.zeros_like(scale))
            steps = torch._foreach_mul(grads, list(scale.unbind()))
            if group["momentum"]:
                velocity = []
                for p, s in zip(params, steps):
                    state = self.state[p]
                    if "velocity" not in state:
                        state["velocity"] = torch.zeros_like(p)
                    velocity.append(state["velocity"])
                torch._foreach_mul_(velocity, group["momentum"])
                torch._foreach_add_(velocity, steps)
                steps = velocity
            torch._foreach_sub_(params, steps)
        return loss
