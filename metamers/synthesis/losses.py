"""Per-image synthesis losses, registered by name in :data:`LOSSES`.

Every loss takes two activation batches of the same shape ``(N, ...)`` (a candidate's and the
reference's) and returns one value per image, shape ``(N,)``. Defining them needs no torch
import (they use tensor methods only), so the workflow validates a method's loss without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..registry import Registry

if TYPE_CHECKING:
    import torch

Loss = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
#: Loss name -> per-image loss ``(candidate, reference) -> (N,)``.
LOSSES: Registry[Loss] = Registry("loss")


_DIFFERENCE_NORM = None


def difference_norm(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``||a - b||_2`` of each image's flattened activations, ``(N,)``, with a backward pass of one
    multiplication (``g (a - b) / ||a - b||``, 0 where ``a = b``) instead of autograd's several
    passes through the norm: the loss is a large share of an iteration at cheap early layers."""
    global _DIFFERENCE_NORM
    if _DIFFERENCE_NORM is None:
        import torch

        class DifferenceNorm(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
                diff = (a - b).flatten(1)
                norm = torch.linalg.vector_norm(diff, dim=1)
                ctx.save_for_backward(diff, norm)
                ctx.shape = a.shape
                return norm

            @staticmethod
            def backward(ctx, grad: torch.Tensor):
                diff, norm = ctx.saved_tensors
                scale = (grad / norm.clamp_min(torch.finfo(norm.dtype).tiny))[:, None]
                da = (diff * scale).view(ctx.shape) if ctx.needs_input_grad[0] or ctx.needs_input_grad[1] else None
                return (da if ctx.needs_input_grad[0] else None), (-da if ctx.needs_input_grad[1] else None)

        _DIFFERENCE_NORM = DifferenceNorm
    return _DIFFERENCE_NORM.apply(candidate, reference)


@LOSSES.register("normalized_l2")
def normalized_l2(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``||a(x) - a(r)||_2 / ||a(r)||_2`` on the flattened activation of each image (Feather et al. 2023).

    A reference with an all-zero activation gives an infinite or undefined loss, which
    synthesis reports as an error rather than optimising towards.
    """
    return difference_norm(candidate, reference) / reference.flatten(1).norm(dim=1)


@LOSSES.register("l2")
def l2(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Plain ``||a(x) - a(r)||_2`` per image."""
    return difference_norm(candidate, reference)


@LOSSES.register("mse")
def mse(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per image: ``mean((a(x) - a(r))^2)``."""
    return (candidate - reference).flatten(1).pow(2).mean(dim=1)


@LOSSES.register("one_minus_pearson")
def one_minus_pearson(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``1 - r`` per image, ``r`` the Pearson correlation of the flattened activations (0 when
    they are an increasing affine map of each other, 2 when a decreasing one). A constant
    activation has no correlation: the loss is then undefined (NaN), which synthesis reports."""
    a = candidate.flatten(1)
    b = reference.flatten(1)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return 1 - (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))


#: Loss name -> its residual ``(candidate, reference) -> (N, D)``, for the losses whose zero set is
#: ``a(x) = a(r)``: the loss is the residual's norm (``normalized_l2``, ``l2``) or its squared norm
#: (``mse``), so zeroing the residual minimises the loss (the Gauss-Newton step,
#: :mod:`.gauss_newton`). ``one_minus_pearson`` has none: it is zero on a whole ray of activations.
RESIDUALS: dict[str, Loss] = {
    "normalized_l2": lambda a, b: (a - b).flatten(1) / b.flatten(1).norm(dim=1, keepdim=True),
    "l2": lambda a, b: (a - b).flatten(1),
    "mse": lambda a, b: (a - b).flatten(1) / a[0].numel() ** 0.5,
}
