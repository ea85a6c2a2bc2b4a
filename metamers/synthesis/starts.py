"""Starting points of synthesis, registered by type in :data:`STARTS`.

Every image's starting point is drawn on the CPU from its own seed, which comes from the base
seed and the image id alone (:func:`start_seed`): an image starts from the same point at every
layer, with every method and in any batch, on any device.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..registry import Registry

if TYPE_CHECKING:
    import torch


def start_seed(base_seed: int, image_id: str) -> int:
    """The seed of an image's starting point: from the base seed and the image id alone, so an
    image starts from the same point at every layer, with every method and in any batch."""
    digest = hashlib.sha256(f"start/{int(base_seed)}/{image_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True)
class Start:
    """A kind of starting point.

    Attributes
    ----------
    make
        ``(options, reference (N, C, H, W), seeds) -> starting images (N, C, H, W)`` in [0, 1].
    keys
        The config keys (besides ``type``) that configure it.
    """

    make: Callable[[Mapping[str, Any], torch.Tensor, Sequence[int]], torch.Tensor]
    keys: tuple[str, ...]


#: Starting-point type (a method's ``init.type``) -> :class:`Start`.
STARTS: Registry[Start] = Registry("init type")


def _noise(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """``clip_[0,1](N(mean, std^2))`` per pixel (Feather et al.: mean 0.5, std 0.05)."""
    import torch

    shape = tuple(reference.shape[1:])
    noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32)
                         for s in seeds])
    return (float(options.get("mean", 0.5)) + float(options.get("std", 0.05)) * noise).clamp(0, 1)


STARTS.register("noise", Start(_noise, ("mean", "std")))


def initial_images(init: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """The starting points of ``reference`` (on the CPU), image ``i`` drawn from ``seeds[i]``,
    as method setting ``init`` (``{type: noise, mean, std}`` by default) says."""
    if len(seeds) != len(reference):
        raise ValueError(f"{len(seeds)} seeds for {len(reference)} images")
    return STARTS[init.get("type", "noise")].make(init, reference.cpu(), seeds)
