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

    def project_(self, params: list[torch.Tensor]) -> None:
        """Make each parameter of ``params`` (in place, no grad) that of its image clamped to [0, 1]."""
        import torch

        if self.identity:  # two multi-tensor operations for every image
            torch._foreach_clamp_min_(params, 0.0)
            torch._foreach_clamp_max_(params, 1.0)
        else:
            for p in params:
                p.copy_(self.from_image(self.to_image(p).clamp(0, 1)))


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


PARAMETERIZATIONS.register("pixels", Parameterization(_pixels, ()))
PARAMETERIZATIONS.register("fourier", Parameterization(_fourier, ("decay",)))


def make_parameterization(settings: Mapping[str, Any] | None, shape: Sequence[int]) -> ImageMap:
    """The maps of ``settings`` (``{type: pixels}`` by default) for images of ``shape`` ``(C, H, W)``."""
    options = dict(settings or {})
    return PARAMETERIZATIONS[options.pop("type", "pixels")].make(shape, **options)
