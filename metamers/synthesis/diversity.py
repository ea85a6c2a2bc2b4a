"""Several metamers of each reference, optimised together and pushed apart (a method's ``diversity``).

A method with ``diversity: {k: K, weight: w, space: S}`` makes ``K`` metamers ("members") of every
reference at once. Metamers from different seeds end up close together (plenoptic issue 159);
here the objective of a reference's members is their summed matching objective minus ``w K``
times their mean pairwise distance in space ``S``::

    F_i = sum_a L(x_a) - w K D_i,    D_i = 2 / (K (K - 1)) sum_{a < b} ||f(x_a) - f(x_b)|| / ||f(r_i)||

so that per member, ``F_i / K`` is the mean matching loss minus ``w`` times the mean pairwise
distance. ``f`` is the pixels (``space: pixels``) or the activations of a (model, layer) that is
not a target of the synthesis (``space: {model, layer}``), flattened; dividing by the norm of the
reference's ``f`` makes a distance scale-free, as the published ``normalized_l2`` loss is, so a
weight means the same at every layer and in pixels. The term acts for the first ``until`` of the
budget (a fraction, default 1: the whole run); after it, the members converge to metamers from
where it left them.

Every member starts from its own seed: member 0 from the reference's
(:func:`~.starts.start_seed` of its id, so ``K = 1`` is the plain method bit for bit), member
``m > 0`` from that of ``"<id>/member<m>"``. With ``weight: 0`` the ``K`` members are ``K``
independent runs of the method from ``K`` seeds, the baseline a diversity term is compared with.

The members of the synthesis are its rows, reference-major (row ``i K + m`` is member ``m`` of
reference ``i``); the trace and final losses record each member's matching loss (without the
term), and the method's checks and stopping apply to each member as to any metamer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # (the settings are checked without torch: the study imports them)
    import torch

    from ..models.classifier import Classifier

#: The keys of a method's ``diversity`` entry.
DIVERSITY_KEYS = ("k", "weight", "space", "until")
#: The space of the distances when a method's ``diversity`` names none.
PIXELS = "pixels"


def diversity_settings(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A method's ``diversity`` entry with its defaults (``space: pixels``, ``until: 1``), or None
    without one.

    Raises
    ------
    ValueError
        A key that is not in :data:`DIVERSITY_KEYS`, a ``k`` below 1, a negative weight, an
        ``until`` outside (0, 1], or a space that is neither ``pixels`` nor ``{model, layer}``.
    """
    if entry is None:
        return None
    if not isinstance(entry, Mapping):
        raise ValueError(f"diversity is a mapping with keys {', '.join(DIVERSITY_KEYS)}, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(DIVERSITY_KEYS))
    if unknown:
        raise ValueError(f"diversity key(s) {unknown} unknown; its keys: {', '.join(DIVERSITY_KEYS)}")
    if "k" not in entry or "weight" not in entry:
        raise ValueError(f"diversity needs k (metamers per reference) and weight; got {sorted(entry)}")
    k, weight, until = entry["k"], entry["weight"], entry.get("until", 1.0)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"diversity k must be an integer of at least 1 (metamers per reference), got {k!r}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ValueError(f"diversity weight must be a number of at least 0, got {weight!r}")
    if isinstance(until, bool) or not isinstance(until, (int, float)) or not 0 < until <= 1:
        raise ValueError(f"diversity until must be a fraction of the budget in (0, 1], got {until!r}")
    space = entry.get("space", PIXELS)
    if space != PIXELS:
        if not isinstance(space, Mapping) or sorted(space) != ["layer", "model"]:
            raise ValueError(f"diversity space must be {PIXELS!r} or {{model: NAME, layer: LAYER}}, got {space!r}")
        space = {"model": str(space["model"]), "layer": str(space["layer"])}
    return {"k": int(k), "weight": float(weight), "space": space, "until": float(until)}


def members_of(k: int, n: int) -> np.ndarray:
    """The member index of each of the ``n K`` rows of ``n`` references' ``k`` members (reference-major)."""
    return np.tile(np.arange(k, dtype=np.int64), n)


def member_id(image_id: str, member: int) -> str:
    """What seeds member ``member`` of reference ``image_id``: the id itself for member 0."""
    return str(image_id) if member == 0 else f"{image_id}/member{member}"


def pairwise_distances(features: torch.Tensor, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """The ``(K, K)`` Euclidean distances between the rows of ``features`` ``(K, D)``, divided by
    ``scale``; differentiable (the square root of the summed squares, which has a gradient
    wherever two rows differ)."""
    import torch

    diff = features[:, None, :] - features[None, :, :]
    return torch.sqrt((diff * diff).sum(-1) + torch.finfo(features.dtype).tiny) / scale


def mean_pairwise(distances: torch.Tensor) -> torch.Tensor:
    """The mean of the ``K (K - 1) / 2`` distances above the diagonal of ``(K, K)`` ``distances``."""
    import torch

    k = distances.shape[-1]
    upper = torch.triu_indices(k, k, 1, device=distances.device)
    return distances[..., upper[0], upper[1]].mean(-1)


@dataclass
class Diversity:
    """The diversity term of a synthesis.

    Parameters
    ----------
    k, weight, until
        Members per reference, the weight, and the fraction of the budget it acts for.
    reference
        The ``N`` distinct (8-bit) references ``(N, C, H, W)``.
    model, layer
        The space of the distances: a (model, layer), or None for the pixels.
    batch_invariant
        Run each member through ``model`` alone (as the synthesis runs its images).
    """

    k: int
    weight: float
    until: float
    reference: torch.Tensor
    model: Classifier | None = None
    layer: str | None = None
    batch_invariant: bool = True

    def __post_init__(self) -> None:
        import torch

        from ..models.layers import LayerReader

        self._reader = LayerReader(self.model, [self.layer]) if self.model is not None else None
        with torch.no_grad():
            self.scale = torch.linalg.vector_norm(self.features(self.reference), dim=1)  # (N,)
        if self.k > 1 and self.weight > 0 and not bool((self.scale > 0).all()):
            raise ValueError(f"a reference is zero in the diversity space {self.space_name}: its distances "
                             "cannot be normalised")

    @property
    def space_name(self) -> str:
        """``pixels`` or ``model/layer``."""
        return PIXELS if self.model is None else f"{self.model.name}/{self.layer}"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened space of images ``x`` ``(M, C, H, W)``: ``(M, D)``."""
        import torch

        from .objective import model_input

        if self._reader is None:
            return x.flatten(1)
        parts = [slice(i, i + 1) for i in range(len(x))] if self.batch_invariant else [slice(0, len(x))]
        return torch.cat([self._reader(model_input(x[p], self.model))[self.layer].flatten(1) for p in parts])

    def spread(self, x: torch.Tensor, references: Sequence[int]) -> torch.Tensor:
        """The mean pairwise distance ``D_i`` among the members ``x`` ``(len(references) K, C, H, W)``
        of each of ``references`` (indices into :attr:`reference`): ``(len(references),)``."""
        import torch

        feats = self.features(x).reshape(len(references), self.k, -1)
        return torch.stack([mean_pairwise(pairwise_distances(feats[j], self.scale[r]))
                            for j, r in enumerate(references)])

    def active(self, iteration: int, iterations: int) -> bool:
        """Whether the term acts at ``iteration`` of a budget of ``iterations``."""
        return self.k > 1 and self.weight > 0 and iteration < self.until * iterations

    def penalty(self, x: torch.Tensor, references: Sequence[int]) -> torch.Tensor:
        """The term's part of the objective for the members ``x`` of ``references``: ``-w K sum_i D_i``."""
        return -self.weight * self.k * self.spread(x, references).sum()
