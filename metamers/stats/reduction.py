"""Reductions of wide layers before their activations are stored and compared, registered by
type in :data:`REDUCTIONS`.

A layer of 800,000 units over hundreds of images is gigabytes; the representation test stores
and compares at most ``max_dim`` values per image. A layer with at most ``max_dim`` units is
kept as it is, whatever the type. Wider layers:

``none``
    kept as they are (no limit).
``spatial_mean``
    a ``(C, H, W)`` layer becomes its ``C`` channel means (average pooling over space; a layer
    without spatial axes, or with more channels than ``max_dim``, is an error naming it). This
    keeps what each channel signals, not where: distances change.
``random_projection``
    ``y = x R / sqrt(k)``, ``R`` a ``units x k`` matrix of independent standard normals, ``k =
    max_dim`` (Johnson and Lindenstrauss 1984): inner products and distances are kept in
    expectation, with relative errors of order ``1 / sqrt(k)``. ``R`` is drawn block by block
    of :data:`BLOCK_UNITS` rows from a generator seeded by the reduction's seed and the block's
    index, so it is never held whole, and the same seed gives the same ``R`` on any machine.

Every artifact records the reduction it used (:meth:`Reduction.describe`); how far RSA and CKA
move under it is measured on a real layer by ``tests/test_representation.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from collections import OrderedDict

import numpy as np
import torch

from ..registry import Registry

#: Rows of the projection matrix drawn at a time (4096 x 4096 float32: 64 MB).
BLOCK_UNITS = 4096


#: Projection blocks kept for reuse, at most this many bytes in all (a job reduces the same layer
#: for its references and for every metamer set; drawing a 25,088 x 4,096 matrix takes a second).
CACHE_BYTES = 1 << 30
_BLOCKS: OrderedDict[tuple[int, int, int, int], torch.Tensor] = OrderedDict()


def _projection_block(seed: int, block: int, rows: int, k: int) -> torch.Tensor:
    """Rows ``block * BLOCK_UNITS ...`` of the seeded Gaussian matrix (the same values whether
    drawn now or kept from an earlier call)."""
    key = (int(seed), int(block), int(rows), int(k))
    if key in _BLOCKS:
        _BLOCKS.move_to_end(key)
        return _BLOCKS[key]
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), int(block)]).generate_state(1)[0]))
    values = torch.randn(rows, k, generator=gen, dtype=torch.float32)
    size = values.numel() * values.element_size()
    if size <= CACHE_BYTES:
        while _BLOCKS and sum(v.numel() * v.element_size() for v in _BLOCKS.values()) + size > CACHE_BYTES:
            _BLOCKS.popitem(last=False)
        _BLOCKS[key] = values
    return values


def random_projection(x: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """``x (n, units) R / sqrt(k)`` with the seeded Gaussian ``R`` of :mod:`this module <.reduction>`."""
    x = x.reshape(len(x), -1).float().cpu()
    out = torch.zeros(len(x), k, dtype=torch.float64)
    for block, start in enumerate(range(0, x.shape[1], BLOCK_UNITS)):
        part = x[:, start:start + BLOCK_UNITS]
        out += (part @ _projection_block(seed, block, part.shape[1], k)).double()
    return (out / np.sqrt(k)).float()


def spatial_mean(x: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Channel means of ``x (n, C, H, W)``."""
    if x.dim() < 3:
        raise ValueError(f"spatial_mean needs a layer with spatial axes, got activations of shape {tuple(x.shape)}")
    out = x.float().flatten(2).mean(dim=2)
    if out.shape[1] > k:
        raise ValueError(f"spatial_mean leaves {out.shape[1]} channels, more than max_dim {k}")
    return out


@dataclass(frozen=True)
class ReductionType:
    """A kind of reduction: ``apply(x (n, ...), max_dim, seed) -> (n, at most max_dim)``."""

    apply: Callable[[torch.Tensor, int, int], torch.Tensor] | None
    label: str


#: Reduction type -> :class:`ReductionType`.
REDUCTIONS: Registry[ReductionType] = Registry("reduction type")
REDUCTIONS.register("none", ReductionType(None, "none"))
REDUCTIONS.register("spatial_mean", ReductionType(spatial_mean, "channel means (spatial average pooling)"))
REDUCTIONS.register("random_projection", ReductionType(random_projection, "seeded Gaussian random projection"))


@dataclass(frozen=True)
class Reduction:
    """A configured reduction (``{type, max_dim, seed}``)."""

    type: str = "random_projection"
    max_dim: int = 4096
    seed: int = 0

    @classmethod
    def from_config(cls, settings: Mapping[str, Any] | None) -> Reduction:
        """From a config's ``representation.reduction`` mapping (defaults for missing keys)."""
        settings = dict(settings or {})
        REDUCTIONS.lookup(settings.get("type", cls.type), "representation.reduction.type")
        return cls(**settings)

    def applies(self, units: int) -> bool:
        """Whether a layer of ``units`` values is reduced."""
        return self.type != "none" and units > self.max_dim

    def __call__(self, x: torch.Tensor, salt: str = "") -> torch.Tensor:
        """``x (n, ...)`` reduced (or flattened, when narrow enough); ``salt`` (a layer's name)
        gives each layer its own projection from one seed."""
        units = int(np.prod(x.shape[1:]))
        if not self.applies(units):
            return x.reshape(len(x), -1)
        return REDUCTIONS[self.type].apply(x, self.max_dim, self.seed_for(salt))

    def seed_for(self, salt: str) -> int:
        """The seed of one layer's projection: the configured seed and the layer's name."""
        return int(np.random.SeedSequence([self.seed, *salt.encode()]).generate_state(1)[0])

    def describe(self, units: int, salt: str = "") -> dict[str, Any]:
        """What an artifact records: type, max_dim, seed, the layer's units and stored dimension."""
        return {"type": self.type if self.applies(units) else "none", "max_dim": self.max_dim,
                "seed": self.seed_for(salt) if self.applies(units) else self.seed, "units": units,
                "stored_dim": self.max_dim if self.applies(units) and self.type == "random_projection" else units}
