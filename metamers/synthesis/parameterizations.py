"""What synthesis optimises: the image's pixels, or coefficients that map to them, registered by
type in :data:`PARAMETERIZATIONS`.

A method's ``parameterization: {type, ...}`` chooses the variable ``p`` of each image that the
optimizer steps; the image is ``x = to_image(p)`` and ``p = from_image(x)`` maps an image back.
After every step the image is clamped to [0, 1] and mapped back to ``p`` (a projection), so every
iterate is an image in [0, 1] whatever the parameterization.

``pixels`` (published)
    ``p = x``.
``fourier``
    The image's orthonormal 2-D real Fourier coefficients (``torch.fft.rfft2(norm="ortho")``, real
    and imaginary parts as a last axis of 2), each divided by ``scale(f) = (max(f, 1/max(H, W)) *
    max(H, W))^-decay``, ``f`` its radial frequency in cycles per pixel: a unit step in ``p`` moves
    low frequencies more than high ones. This is the decorrelated, 1/f-scaled Fourier basis of
    feature visualisation (Olah et al. 2017), a diagonal preconditioner of pixel-space gradient
    steps. ``decay`` 0 is a plain orthonormal Fourier basis. ``to_image(from_image(x)) = x`` to
    float32 rounding.
``coarse_to_fine``
    Optimise a low-resolution image first. The image is a pyramid of ``levels`` levels, level ``k``
    an image of ``H / 2^(levels-1-k)`` x ``W / 2^(levels-1-k)`` pixels, each upsampled (nearest
    neighbour) to the full size and added up: ``x = sum_k gate_k up(p_k)``. Level 0 (the coarsest)
    is on from the start; level ``k`` joins at iteration ``k * open_every``; until then its gate is
    0, so it neither shows nor gets a gradient. ``from_image`` is the Laplacian pyramid (the block
    means, then each finer level the residual's block means), so with every level open
    ``to_image(from_image(x)) = x`` to float32 rounding, and before the first finer level opens
    every iterate is the block-mean image of the coarsest level (the starting point too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass
class ImageMap:
    """The two maps of a parameterization for images of one shape."""

    to_image: Callable[[torch.Tensor], torch.Tensor]
    from_image: Callable[[torch.Tensor], torch.Tensor]
    identity: bool = False
    at_iteration: Callable[[int], None] | None = None
    """Tell a map that changes over the run (``coarse_to_fine``) which iteration comes next."""

    def project_(self, params: list[torch.Tensor]) -> None:
        """Make each parameter of ``params`` (in place, no grad) that of its image clamped to [0, 1]."""
        import torch

        if self.identity:  # two multi-tensor operations for every image
            torch._foreach_clamp_min_(params, 0.0)
            torch._foreach_clamp_max_(params, 1.0)
        else:  # every image in one pass (the maps work image by image)
            projected = self.from_image(self.to_image(torch.cat(params)).clamp(0, 1))
            for p, q in zip(params, projected.split([len(p) for p in params])):
                p.copy_(q)


@dataclass(frozen=True)
class Parameterization:
    """A kind of parameterization.

    Attributes
    ----------
    make
        ``(image shape (C, H, W), **options) -> ImageMap``.
    keys
        The config keys (besides ``type``) that configure it.
    """

    make: Callable[..., ImageMap]
    keys: tuple[str, ...]


#: Parameterization type (a method's ``parameterization.type``) -> :class:`Parameterization`.
PARAMETERIZATIONS: Registry[Parameterization] = Registry("parameterization type")


def _pixels(shape: Sequence[int]) -> ImageMap:
    return ImageMap(lambda p: p, lambda x: x, identity=True)


def fourier_scale(height: int, width: int, decay: float = 1.0) -> torch.Tensor:
    """``(max(f, 1/max(H, W)) * max(H, W))^-decay`` on the :func:`torch.fft.rfft2` grid: 1 at the
    lowest frequencies, smaller above."""
    from .starts import radial_frequency

    size = max(height, width)
    return (radial_frequency(height, width).clamp_min(1.0 / size) * size).pow(-decay).float()


def _fourier(shape: Sequence[int], decay: float = 1.0) -> ImageMap:
    import torch

    height, width = int(shape[-2]), int(shape[-1])
    scale = fourier_scale(height, width, float(decay))[..., None]  # (H, W//2+1, 1): both parts

    def to_image(p: torch.Tensor) -> torch.Tensor:
        spectrum = torch.view_as_complex((p * scale.to(p.device)).contiguous())
        return torch.fft.irfft2(spectrum, s=(height, width), norm="ortho")

    def from_image(x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(torch.fft.rfft2(x, norm="ortho")) / scale.to(x.device)

    return ImageMap(to_image, from_image)


def _coarse_to_fine(shape: Sequence[int], levels: int = 3, open_every: int = 50) -> ImageMap:
    import torch
    import torch.nn.functional as F

    channels, height, width = (int(v) for v in shape[-3:])
    levels, open_every = int(levels), int(open_every)
    if levels < 1 or open_every < 1:
        raise ValueError(f"coarse_to_fine needs levels >= 1 and open_every >= 1, got {levels} and {open_every}")
    factor = 2 ** (levels - 1)
    if height % factor or width % factor:
        raise ValueError(f"coarse_to_fine with {levels} levels needs an image size divisible by {factor}, "
                         f"got {height} x {width}")
    sizes = [(height // 2 ** (levels - 1 - k), width // 2 ** (levels - 1 - k)) for k in range(levels)]
    counts = [channels * h * w for h, w in sizes]
    gates = [1.0] + [0.0] * (levels - 1)

    def at_iteration(it: int) -> None:
        for k in range(1, levels):
            gates[k] = 1.0 if it >= k * open_every else 0.0

    def upsample(level: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """A level's image at the full size (each pixel repeated; the finest level as it is)."""
        level = level.reshape(-1, channels, h, w)
        return level if (h, w) == (height, width) else \
            level.repeat_interleave(height // h, 2).repeat_interleave(width // w, 3)

    def to_image(p: torch.Tensor) -> torch.Tensor:
        out = None
        for k, (level, (h, w)) in enumerate(zip(p.split(counts, dim=1), sizes)):
            if gates[k] == 0.0:
                continue
            up = upsample(level, h, w)
            out = up if out is None else out + up
        return out

    def from_image(x: torch.Tensor) -> torch.Tensor:
        parts, residual = [], x
        for h, w in sizes[:-1]:  # each coarse level the block means of what the coarser ones leave
            level = F.avg_pool2d(residual, (height // h, width // w))
            parts.append(level.flatten(1))
            residual = residual - upsample(level, h, w)
        parts.append(residual.flatten(1))  # the finest level: the rest
        return torch.cat(parts, dim=1)

    return ImageMap(to_image, from_image, at_iteration=at_iteration)


PARAMETERIZATIONS.register("pixels", Parameterization(_pixels, ()))
PARAMETERIZATIONS.register("fourier", Parameterization(_fourier, ("decay",)))
PARAMETERIZATIONS.register("coarse_to_fine", Parameterization(_coarse_to_fine, ("levels", "open_every")))


def make_parameterization(settings: Mapping[str, Any] | None, shape: Sequence[int]) -> ImageMap:
    """The maps of ``settings`` (``{type: pixels}`` by default) for images of ``shape`` ``(C, H, W)``."""
    options = dict(settings or {})
    return PARAMETERIZATIONS[options.pop("type", "pixels")].make(shape, **options)
