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


@LOSSES.register("normalized_l2")
def normalized_l2(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``||a(x) - a(r)||_2 / ||a(r)||_2`` on the flattened activation of each image (Feather et al. 2023).

    A reference with an all-zero activation gives an infinite or undefined loss, which
    synthesis reports as an error rather than optimising towards.
    """
    diff = (candidate - reference).flatten(1)
    return diff.norm(dim=1) / reference.flatten(1).norm(dim=1)


@LOSSES.register("l2")
def l2(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Plain ``||a(x) - a(r)||_2`` per image."""
    return (candidate - reference).flatten(1).norm(dim=1)


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
