"""How far a metamer (or a starting point) is from its reference in pixels, registered by name
in :data:`DISTANCES`.

A metamer must be physically distinct from its reference: a method that passes the metamer
test by staying next to the reference is not faster. Every artifact records, per image, these
distances between the 8-bit metamer and the 8-bit reference, and between the starting point
and the reference (:func:`pixel_distances`). Images are ``(N, C, H, W)`` in [0, 1].

``l2``
    ``||x - r||_2`` over all pixels and channels.
``rms``
    ``||x - r||_2 / sqrt(C H W)``: the root-mean-square difference per pixel (in [0, 1]).
``ssim``
    The structural similarity index of Wang et al. (2004) with their standard settings: an
    11 x 11 Gaussian window of sigma 1.5 (truncated at 3.5 sigma and normalised, as
    :func:`scipy.ndimage.gaussian_filter` makes it), ``K1 = 0.01``, ``K2 = 0.03``, data range 1,
    population (co)variances, averaged over the positions where the window lies inside the image
    and then over channels. It equals :func:`skimage.metrics.structural_similarity` with
    ``gaussian_weights=True, use_sample_covariance=False, data_range=1`` (and ``channel_axis``
    for colour). 1 for identical images; it is a similarity, so larger means closer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..registry import Registry

if TYPE_CHECKING:
    import torch

#: Gaussian window of the SSIM (Wang et al. 2004).
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


@dataclass(frozen=True)
class Distance:
    """A pixel distance.

    Attributes
    ----------
    fn
        ``(x (N, C, H, W), reference (N, C, H, W)) -> (N,)`` float64 values.
    label
        Axis label, with its unit.
    similarity
        Larger is closer (SSIM) rather than farther (L2).
    """

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    label: str
    similarity: bool = False


#: Distance name -> :class:`Distance`.
DISTANCES: Registry[Distance] = Registry("distance")


def _l2(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return (x.double() - reference.double()).flatten(1).norm(dim=1)


def _rms(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return _l2(x, reference) / math.sqrt(x[0].numel())


def gaussian_window(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> torch.Tensor:
    """The normalised 1-D Gaussian of :func:`scipy.ndimage.gaussian_filter`: radius
    ``int(truncate * sigma + 0.5)``, float64."""
    import torch

    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def ssim(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image (see the module docstring), float64 ``(N,)``.

    Raises
    ------
    ValueError
        The images are smaller than the 11 x 11 window.
    """
    import torch.nn.functional as F

    w = gaussian_window()
    size = len(w)
    n, c, h, width = x.shape
    if h < size or width < size:
        raise ValueError(f"SSIM needs images of at least {size} x {size} pixels, got {h} x {width}")
    kernel = (w[:, None] * w[None, :]).expand(c, 1, size, size).to(x.device)

    def blur(image: torch.Tensor) -> torch.Tensor:  # the window where it lies inside the image
        return F.conv2d(image, kernel, groups=c)

    a, b = x.double(), reference.double()
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # data range 1
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(2).mean(dim=2).mean(dim=1)


DISTANCES.register("l2", Distance(_l2, "pixel L2 distance to the reference"))
DISTANCES.register("rms", Distance(_rms, "RMS pixel difference from the reference (0-1 scale)"))
DISTANCES.register("ssim", Distance(ssim, "SSIM with the reference", similarity=True))


def pixel_distances(x: torch.Tensor, reference: torch.Tensor, names: Sequence[str] | None = None
                    ) -> dict[str, torch.Tensor]:
    """``{name: (N,) float64}`` for every distance in ``names`` (default: all of
    :data:`DISTANCES`) between images ``x`` and ``reference``, both ``(N, C, H, W)`` in [0, 1]."""
    if tuple(x.shape) != tuple(reference.shape):
        raise ValueError(f"images {tuple(x.shape)} and references {tuple(reference.shape)} differ in shape")
    return {name: DISTANCES[name].fn(x, reference).cpu() for name in (names or list(DISTANCES))}


def at_equal_distance(distances: Sequence[float], iterations: Sequence[float], distance: float) -> float:
    """The iterations a family of starting points needs at a given distance from the references.

    A starting point made from the reference (the reference plus noise of σ, a blend of weight α,
    a low-pass reference of cut-off c) has a knob that trades speed for distance: the nearer the
    start, the sooner a metamer passes, and the nearer the metamer stays. Its members are compared
    with another start (the published noise) at that start's metamer distance: the iterations
    there are interpolated between the two members whose metamer distances bracket it, linearly
    in distance and in the logarithm of the tests until the first pass, ``iterations + 1`` (the
    start's own test counted: a start may pass at iteration 0; iterations fall roughly
    geometrically as a start nears the reference).

    Parameters
    ----------
    distances
        Each member's median metamer distance from the references (any order; NaN members,
        such as one whose images never passed, are left out).
    iterations
        Each member's median first passing iteration (0: its start passed).
    distance
        The distance to compare at.

    Returns
    -------
    float
        The interpolated iterations; a member's own when it lies at ``distance``; NaN when no two
        members bracket ``distance`` (every member's metamers are nearer, or all farther: the
        family cannot be compared there without extrapolating).

    Raises
    ------
    ValueError
        The lengths differ, or an iteration count is negative.
    """
    d = np.asarray(distances, dtype=float)
    it = np.asarray(iterations, dtype=float)
    if d.shape != it.shape or d.ndim != 1:
        raise ValueError(f"{d.size} distances and {it.size} iteration counts: one of each per member")
    keep = np.isfinite(d) & np.isfinite(it)
    d, it = d[keep], it[keep]
    if (it < 0).any():
        raise ValueError(f"iteration counts must not be negative, got {it[it < 0].tolist()}")
    if not math.isfinite(distance) or d.size == 0 or not d.min() <= distance <= d.max():
        return math.nan
    at = np.flatnonzero(d == distance)
    if at.size:
        return float(np.expm1(np.mean(np.log1p(it[at]))))
    lo, hi = d[d < distance].max(), d[d > distance].min()  # the nearest members on either side
    w = (distance - lo) / (hi - lo)  # (members at the same distance: their geometric mean)
    return float(np.expm1((1 - w) * np.log1p(it[d == lo]).mean() + w * np.log1p(it[d == hi]).mean()))
