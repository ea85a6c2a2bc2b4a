"""Image priors: per-image penalties on the pixels added to the synthesis objective, registered
by type in :data:`PRIORS` (Mahendran and Vedaldi 2015, "Understanding deep image
representations by inverting them").

A method's ``priors`` is a list of ``{type, weight, ...}``; image ``i``'s objective becomes
``loss_i + sum_p weight_p * prior_p(x_i)``. Every prior is a mean over pixels, so its scale does
not grow with the image size. None is used by default (the published objective has none).

``total_variation`` (``beta``, default 2)
    ``mean_{c,u,v} ((x[c,u+1,v] - x[c,u,v])^2 + (x[c,u,v+1] - x[c,u,v])^2)^(beta / 2)`` over the
    pixels that have both a lower and a right neighbour: the TV^beta regulariser, which favours
    piecewise smooth images (beta = 1 is the classic total variation, beta = 2 a quadratic
    smoothness penalty).
``alpha_norm`` (``alpha``, default 6)
    ``mean |x - 1/2|^alpha``: the alpha-norm regulariser of pixels centred on the middle of the
    [0, 1] range, which discourages extreme pixel values more the larger alpha is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Prior:
    """A kind of image prior.

    Attributes
    ----------
    fn
        ``(x (N, C, H, W), **options) -> (N,)`` per-image penalty.
    keys
        The config keys (besides ``type`` and ``weight``) that configure it.
    """

    fn: Callable[..., torch.Tensor]
    keys: tuple[str, ...]


#: Prior type (``priors[k].type`` of a method) -> :class:`Prior`.
PRIORS: Registry[Prior] = Registry("prior type")


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """TV^beta per image (see the module docstring)."""
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    squared = dx * dx + dy * dy
    # beta < 2: the power's gradient at a flat spot is infinite; a tiny offset keeps it finite
    value = squared if beta == 2 else (squared + 1e-12) ** (beta / 2)
    return value.flatten(1).mean(dim=1)


def alpha_norm(x: torch.Tensor, alpha: float = 6.0) -> torch.Tensor:
    """``mean |x - 1/2|^alpha`` per image."""
    return (x - 0.5).abs().pow(alpha).flatten(1).mean(dim=1)


PRIORS.register("total_variation", Prior(total_variation, ("beta",)))
PRIORS.register("alpha_norm", Prior(alpha_norm, ("alpha",)))


def prior_penalty(priors: Sequence[Mapping[str, Any]], x: torch.Tensor) -> torch.Tensor | None:
    """``sum_p weight_p * prior_p(x)`` per image ``(N,)``, or None when there are no priors."""
    total = None
    for entry in priors:
        options = {k: v for k, v in entry.items() if k not in ("type", "weight")}
        term = float(entry.get("weight", 1.0)) * PRIORS[entry["type"]].fn(x, **options)
        total = term if total is None else total + term
    return total
