"""The damped Gauss-Newton step, per image, for narrow layers.

A metamer zeroes a residual: the difference between its activations and the reference's at
each target (:meth:`metamers.synthesis.objective.Objective.residuals`). The Gauss-Newton step
linearises the residual ``r(x)`` at the iterate, ``r(x + d) ~ r + J d``, and takes the shortest
``d`` (in L2 over the parameters: the pixels, or a parameterization's coefficients) that zeroes
the linear model, damped as in Levenberg and Marquardt's method: ``d = -J^T (J J^T + lambda I)^-1 r``
(``J`` the residual's Jacobian, ``M`` rows by the image's ``P`` parameters; ``lambda`` a fixed
damping relative to the Jacobian's scale; no step is rejected, so the objective is not
guaranteed to fall at every step). Where the network is linear between its ReLU kinks (a ReLU
network's logits), one undamped full step that stays inside [0, 1] lands on the metamer nearest
the iterate; from noise it takes a few. As it changes the image no more than the linear model
needs, its metamers stay about as far from their references as their starting points. At a
layer matched with the straight-through ReLU, ``J`` is the straight-through Jacobian.

Forming ``J`` costs one backward pass per row (batched over rows by ``torch.autograd.grad``'s
``is_grads_batched``), so the step is meant for narrow targets, the logits above all:
:func:`check_outputs` rejects targets whose activations have more than ``max_outputs`` values
per image (the loop when it is set up, the pre-flight check before any job). It steps a
residual, not a scalar objective: a method with this optimizer takes a loss with a residual
(:data:`~.losses.RESIDUALS`: ``normalized_l2``, ``l2``, ``mse``) and no image priors
(:func:`metamers.synthesis.methods.resolve_method` checks both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch.optim import Optimizer

from .normalized_gradient import evaluate

#: The most residual values per image (rows of its Jacobian) by default: ImageNet's 1,000 logits.
MAX_OUTPUTS = 1024


def residual_jacobian(residual: torch.Tensor, params: Sequence[torch.Tensor], chunk: int = 256) -> torch.Tensor:
    """The Jacobian of each image's residual with respect to its own parameter.

    Parameters
    ----------
    residual
        ``(B, M)``: row ``b`` depends on ``params[b]`` alone (the images of a batch do not interact).
    params
        ``B`` parameters, each ``(1, ...)`` with ``P`` values.
    chunk
        At most this many backward passes (rows times images) run together
        (``is_grads_batched``): memory grows with it.

    Returns
    -------
    torch.Tensor
        ``(B, M, P)``: ``J[b, m]`` the gradient of ``residual[b, m]`` with respect to ``params[b]``.
    """
    b, m = residual.shape
    if len(params) != b:
        raise ValueError(f"residual has {b} images but {len(params)} parameters were given")
    rows = max(1, chunk // b)  # output rows per batched backward pass, each for every image
    out = torch.empty(b, m, params[0].numel(), dtype=params[0].dtype, device=params[0].device)
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        # one-hot output directions: row k of the chunk selects output start + k of every image
        eye = torch.zeros(stop - start, b, m, dtype=residual.dtype, device=residual.device)
        eye[torch.arange(stop - start, device=eye.device), :, torch.arange(start, stop, device=eye.device)] = 1
        grads = torch.autograd.grad(residual, list(params), grad_outputs=eye, is_grads_batched=True,
                                    retain_graph=stop < m)
        for i, g in enumerate(grads):
            out[i, start:stop] = g.reshape(stop - start, -1)
    return out


class TooManyOutputs(ValueError):
    """The targets are too wide for a Gauss-Newton step (more values per image than ``max_outputs``)."""


def check_outputs(sizes: Sequence[tuple[str, int]], max_outputs: int) -> None:
    """Raise :class:`TooManyOutputs` when the targets' activations, ``(name, values per image)``,
    have more than ``max_outputs`` values per image in all: the Jacobian has one row per value."""
    total = sum(n for _, n in sizes)
    if total > max_outputs:
        listed = ", ".join(f"{name} {n:,}" for name, n in sizes)
        raise TooManyOutputs(
            f"optimizer 'gauss_newton' forms each image's Jacobian, one backward pass per matched activation, "
            f"and its targets have {total:,} values per image ({listed}), above max_outputs {max_outputs:,}: use it "
            "at narrow layers such as the logits, or raise max_outputs"
        )


class GaussNewton(Optimizer):
    """``x_i <- x_i - lr * J_i^T (J_i J_i^T + lambda_i I)^-1 r_i`` for each image ``i``, with
    ``lambda_i = damping * mean(diag(J_i J_i^T))`` (so the damping is relative to the Jacobian's
    scale; a floor of 1e-12 of it keeps the system solvable where ``J_i`` has dependent rows). An
    image whose Jacobian is zero (a frozen image, say) or whose system is not finite takes no step.

    The synthesis loop hands over each image's residual and its Jacobian with :meth:`set_system`
    before the update, in the order of the parameters, over every group. The system is solved in
    float64, one image at a time, so an image's step is the same in any batch.

    Parameters
    ----------
    params
        One parameter per image (``(1, ...)``), or parameter groups of them.
    lr
        The fraction of the Gauss-Newton step taken (1: the full step).
    damping
        Levenberg-Marquardt's damping, relative to the mean squared norm of the Jacobian's rows
        (0: the pure Gauss-Newton step; larger: shorter steps that turn toward the gradient).
    max_outputs
        The most residual values per image (rows of the Jacobian) it accepts; the synthesis loop
        checks its targets against it (:func:`check_outputs`).
    """

    #: The synthesis loop hands this optimizer each image's residual and Jacobian (:meth:`set_system`)
    #: instead of back-propagating a scalar objective.
    takes_jacobian = True

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1.0, damping: float = 0.01,
                 max_outputs: int = MAX_OUTPUTS) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not damping >= 0:
            raise ValueError(f"damping must be >= 0, got {damping}")
        if not (isinstance(max_outputs, int) and max_outputs >= 1):
            raise ValueError(f"max_outputs must be a positive integer, got {max_outputs!r}")
        super().__init__(params, {"lr": lr, "damping": damping})
        self.max_outputs = max_outputs
        self._system: tuple[torch.Tensor, torch.Tensor] | None = None

    def set_system(self, residuals: torch.Tensor, jacobians: torch.Tensor) -> None:
        """Each image's residual ``(N, M)`` and its Jacobian ``(N, M, P)`` at the current iterate,
        in the order of the parameters."""
        if residuals.dim() != 2 or jacobians.dim() != 3 or jacobians.shape[:2] != residuals.shape:
            raise ValueError(f"residuals must be (N, M) and Jacobians (N, M, P), got {tuple(residuals.shape)} "
                             f"and {tuple(jacobians.shape)}")
        self._system = (residuals.detach(), jacobians.detach())

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):  # noqa: D102
        loss = evaluate(closure)
        system, self._system = self._system, None
        if system is None:
            raise RuntimeError("GaussNewton needs each image's residual and Jacobian: call set_system before each step")
        residuals, jacobians = system
        count = sum(len(group["params"]) for group in self.param_groups)
        if len(residuals) != count:
            raise RuntimeError(f"GaussNewton steps {count} images but was given {len(residuals)} residuals")
        k = 0
        for group in self.param_groups:
            for p in group["params"]:
                j = jacobians[k].double()
                r = residuals[k].double()
                k += 1
                gram = j @ j.T
                scale = gram.diagonal().mean()
                # no step without a gradient, or where the residual is not finite (the loop reports it)
                if not (torch.isfinite(scale) and scale > 0 and torch.isfinite(r).all()):
                    continue
                damping = scale * max(group["damping"], 1e-12)
                y = torch.linalg.solve(gram + damping * torch.eye(len(r), dtype=gram.dtype, device=gram.device), r)
                p.sub_((group["lr"] * (j.T @ y)).to(p.dtype).view_as(p))
        return loss
