"""Starting points of synthesis, registered by type in :data:`STARTS`.

Every image's starting point is drawn on the CPU from its own seed, which comes from the base
seed and the image id alone (:func:`start_seed`): an image starts from the same point at every
layer, with every method and in any batch, on any device. Starting points derived from the
reference use the 8-bit reference that synthesis matches.

``noise`` (published)
    ``clip_[0,1](N(mean, std^2))`` per pixel.
``uniform``
    ``U(low, high)`` per pixel.
``reference_noise``
    ``clip_[0,1](r + N(0, sigma^2))``: the reference plus Gaussian noise.
``blend``
    ``alpha r + (1 - alpha) n``, ``n`` the ``noise`` start (``mean``, ``std``); exact, in [0, 1].
``lowpass``
    The reference without its spatial frequencies above ``cutoff`` times the Nyquist frequency
    (an ideal radial filter per channel).
``phase_scrambled``
    The reference's amplitude spectrum with the phases of white noise (the mean kept).
``other_class``
    A natural image of another class: an image of the null pool (training images, never a
    reference) whose label differs from the reference's, drawn by the image's seed.
``pool_mean``
    The mean image of the null pool, the same for every reference.

The last two need the pool (:class:`StartData`); the generation job loads it when a method
starts from one of them.

``lowpass`` and ``phase_scrambled`` are not clipped: clipping would put energy back above the
cut-off and change the amplitude spectrum. They may leave [0, 1] a little; synthesis clamps
every iterate to [0, 1] after its first step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..registry import Registry

if TYPE_CHECKING:
    import torch


def start_seed(base_seed: int, image_id: str) -> int:
    """The seed of an image's starting point: from the base seed and the image id alone, so an
    image starts from the same point at every layer, with every method and in any batch."""
    digest = hashlib.sha256(f"start/{int(base_seed)}/{image_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True)
class StartData:
    """What starting points made from other images need.

    Attributes
    ----------
    labels
        The references' labels ``(N,)``.
    pool
        The null pool's images ``(K, C, H, W)`` in [0, 1], at the references' shape.
    pool_labels
        Their labels ``(K,)``.
    """

    labels: Sequence[int]
    pool: torch.Tensor
    pool_labels: Sequence[int]


@dataclass(frozen=True)
class Start:
    """A kind of starting point.

    Attributes
    ----------
    make
        ``(options, reference (N, C, H, W), seeds, data) -> starting images (N, C, H, W)`` in [0, 1];
        ``data`` is a :class:`StartData` where :attr:`needs_pool`, else None.
    keys
        The config keys (besides ``type``) that configure it.
    needs_pool
        It is made from the null pool's images.
    """

    make: Callable[[Mapping[str, Any], torch.Tensor, Sequence[int], StartData | None], torch.Tensor]
    keys: tuple[str, ...]
    needs_pool: bool = False


#: Starting-point type (a method's ``init.type``) -> :class:`Start`.
STARTS: Registry[Start] = Registry("init type")


def _draw(kind: str, reference: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """Per image, standard normal (``randn``) or uniform (``rand``) values of the reference's
    shape, drawn on the CPU from the image's seed."""
    import torch

    shape = tuple(reference.shape[1:])
    draw = getattr(torch, kind)
    return torch.stack([draw(shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32)
                        for s in seeds])


def _noise(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
           data: StartData | None = None) -> torch.Tensor:
    """``clip_[0,1](N(mean, std^2))`` per pixel (Feather et al.: mean 0.5, std 0.05)."""
    noise = _draw("randn", reference, seeds)
    return (float(options.get("mean", 0.5)) + float(options.get("std", 0.05)) * noise).clamp(0, 1)


def _uniform(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
             data: StartData | None = None) -> torch.Tensor:
    low, high = float(options.get("low", 0.0)), float(options.get("high", 1.0))
    return low + (high - low) * _draw("rand", reference, seeds)


def _reference_noise(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
                     data: StartData | None = None) -> torch.Tensor:
    return (reference + float(options.get("sigma", 0.1)) * _draw("randn", reference, seeds)).clamp(0, 1)


def _blend(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
           data: StartData | None = None) -> torch.Tensor:
    alpha = float(options.get("alpha", 0.5))
    return alpha * reference + (1 - alpha) * _noise(options, reference, seeds)


def radial_frequency(height: int, width: int) -> torch.Tensor:
    """``|f|`` in cycles per pixel on the grid of :func:`torch.fft.rfft2` of an ``height x width`` image."""
    import torch

    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    return (fy**2 + fx**2).sqrt()


def _lowpass(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
             data: StartData | None = None) -> torch.Tensor:
    import torch

    height, width = reference.shape[-2:]
    keep = radial_frequency(height, width) <= float(options.get("cutoff", 0.25)) * 0.5
    spectrum = torch.fft.rfft2(reference.to(torch.float64)) * keep
    return torch.fft.irfft2(spectrum, s=(height, width)).to(torch.float32)


def _phase_scrambled(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
                     data: StartData | None = None) -> torch.Tensor:
    import torch

    height, width = reference.shape[-2:]
    amplitude = torch.fft.rfft2(reference.to(torch.float64)).abs()
    # the phases of real white noise: the symmetries that make the image real come with them
    phase = torch.fft.rfft2(_draw("randn", reference, seeds).to(torch.float64)).angle()
    phase[..., 0, 0] = 0.0  # keep the mean
    return torch.fft.irfft2(amplitude * torch.exp(1j * phase), s=(height, width)).to(torch.float32)


def _other_class(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
                 data: StartData | None = None) -> torch.Tensor:
    import torch

    pool_labels = np.asarray(data.pool_labels)
    out = []
    for label, seed in zip(data.labels, seeds):
        others = np.flatnonzero(pool_labels != int(label))
        if not len(others):
            raise ValueError(f"the null pool has no image of a class other than {int(label)}")
        pick = int(torch.randint(len(others), (1,), generator=torch.Generator().manual_seed(int(seed))))
        out.append(data.pool[int(others[pick])])
    return torch.stack(out).to(torch.float32)


def _pool_mean(options: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
               data: StartData | None = None) -> torch.Tensor:
    import torch

    mean = data.pool.to(torch.float64).mean(0).to(torch.float32)
    return mean.expand(len(seeds), *mean.shape).clone()


STARTS.register("noise", Start(_noise, ("mean", "std")))
STARTS.register("uniform", Start(_uniform, ("low", "high")))
STARTS.register("reference_noise", Start(_reference_noise, ("sigma",)))
STARTS.register("blend", Start(_blend, ("alpha", "mean", "std")))
STARTS.register("lowpass", Start(_lowpass, ("cutoff",)))
STARTS.register("phase_scrambled", Start(_phase_scrambled, ()))
STARTS.register("other_class", Start(_other_class, (), needs_pool=True))
STARTS.register("pool_mean", Start(_pool_mean, (), needs_pool=True))


def initial_images(init: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int],
                   data: StartData | None = None) -> torch.Tensor:
    """The starting points of ``reference`` (on the CPU), image ``i`` drawn from ``seeds[i]``,
    as method setting ``init`` (``{type: noise, mean, std}`` by default) says. ``reference`` is
    the (8-bit) reference in [0, 1] that the starting points derived from it start from; ``data``
    holds the labels and the null pool that ``other_class`` and ``pool_mean`` start from.

    Raises
    ------
    ValueError
        A start that needs the pool was given none, or the seeds do not match the images.
    """
    if len(seeds) != len(reference):
        raise ValueError(f"{len(seeds)} seeds for {len(reference)} images")
    kind = init.get("type", "noise")
    start = STARTS[kind]
    if start.needs_pool:
        if data is None:
            raise ValueError(f"init type {kind!r} starts from the null pool's images; none was given")
        if len(data.labels) != len(reference):
            raise ValueError(f"{len(data.labels)} labels for {len(reference)} images")
        if tuple(data.pool.shape[1:]) != tuple(reference.shape[1:]):
            raise ValueError(f"the pool's images are {tuple(data.pool.shape[1:])}, the references "
                             f"{tuple(reference.shape[1:])}")
    return start.make(init, reference.cpu(), seeds, data)
