"""Per-image synthesis losses between a candidate's and the reference's activations.

Every loss takes two activation batches of the same shape ``(N, ...)`` and returns one
value per image, shape ``(N,)``. Looked up by name in :data:`LOSSES`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def normalized_l2(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``||a(x) - a(r)||_2 / ||a(r)||_2`` on the flattened activation of each image (Feather et al. 2023).

    A reference with an all-zero activation gives an infinite or undefined loss, which
    synthesis reports as an error rather than optimising towards.
    """
    diff = (candidate - reference).flatten(1)
    return diff.norm(dim=1) / reference.flatten(1).norm(dim=1)


def l2(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Plain ``||a(x) - a(r)||_2`` per image."""
    return (candidate - reference).flatten(1).norm(dim=1)


#: Loss name -> per-image loss function.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "normalized_l2": normalized_l2,
    "l2": l2,
}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name]
