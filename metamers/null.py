"""The null of the metamer test from Python: how similar two different natural images get at a layer.

:func:`compute_null` runs a pool of natural images (never a reference) through a model and
draws random pairs of them (:func:`metamers.stats.nulls.compute_nulls`, as the workflow's
``null_distribution`` rule does); a metamer passes a statistic when it is at least as similar to
its reference as the most similar pair (published: the maximum of 1,000,000 pairs of training
images). A null of fewer than 1,000 images or 100,000 pairs is weak (its maximum is low, so
metamers pass too easily): it warns (:class:`WeakNullWarning`) and says so in :attr:`Null.weak`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .data.inputs import as_images, load_images
from .data.image_set import ImageSet
from .data.pixels import quantize
from .models.classifier import Classifier, weights_digest
from .stats.nulls import NullDistribution, compute_nulls
from .stats.pairs import n_possible_pairs, weak_null_reason

#: The statistics of the published metamer test (a config's ``metamer_test.statistics`` default).
DEFAULT_STATISTICS = ("spearman", "pearson", "snr_db")
#: Pairs of the published null.
PUBLISHED_PAIRS = 1_000_000


class WeakNullWarning(UserWarning):
    """A null drawn from too few images or pairs for its maximum to be a strict threshold."""


@dataclass(frozen=True)
class Null:
    """The null distributions of every statistic at one (model, layer).

    Attributes
    ----------
    model, layer
        Where the activations were read (the model's name).
    distributions
        Statistic -> :class:`~metamers.stats.nulls.NullDistribution` (threshold, quantiles,
        histogram).
    n_pool
        Pool images the pairs were drawn from.
    weak
        Why the null is weak, or None.
    weights
        The model's :func:`~metamers.models.classifier.weights_digest`: a null serves only the
        model it was computed on, whatever its name.
    """

    model: str
    layer: str
    distributions: dict[str, NullDistribution]
    n_pool: int
    weak: str | None
    weights: str = ""

    def belongs_to(self, model: Classifier, layer: str) -> bool:
        """Whether this is the null of ``layer`` of ``model`` (its name, and its weights when recorded)."""
        return (self.model, self.layer) == (model.name, layer) and (
            not self.weights or self.weights == weights_digest(model))

    @property
    def thresholds(self) -> dict[str, float]:
        """Statistic -> the threshold a metamer must reach."""
        return {name: float(d.threshold) for name, d in self.distributions.items()}

    @property
    def n_pairs(self) -> int:
        """Pairs drawn."""
        return int(next(iter(self.distributions.values())).n_pairs)

    def __repr__(self) -> str:
        thresholds = ", ".join(f"{k} {v:.4g}" for k, v in self.thresholds.items())
        weak = f", weak: {self.weak}" if self.weak else ""
        return f"Null({self.model}/{self.layer}: {self.n_pairs:,} pairs of {self.n_pool:,} images; {thresholds}{weak})"


def compute_null(
    model: Classifier,
    layer: str,
    pool: Any,
    statistics: Sequence[str] = DEFAULT_STATISTICS,
    n_pairs: int | None = None,
    seed: int = 0,
    threshold: str | float = "max",
    progress: bool = False,
) -> Null:
    """The null of ``statistics`` at ``layer`` of ``model`` over random pairs of ``pool`` images.

    Parameters
    ----------
    model, layer
        A :class:`~metamers.models.classifier.Classifier` (:func:`metamers.as_model`,
        :func:`metamers.load_model`) and one of its layers.
    pool
        Natural images that are not references (the workflow's pools are training images, never
        a reference; here that is the caller's to ensure): a tensor or array ``(K, C, H, W)``
        (float in [0, 1], read in 8 bits as image files are, or uint8), an
        :class:`~metamers.data.image_set.ImageSet`, a folder or an image set type
        (:func:`metamers.load_images`).
    n_pairs
        Distinct pairs drawn (default: 1,000,000 as published, or every pair of a smaller pool).
    seed, threshold
        The draw's seed; the threshold rule, ``"max"`` (published) or a quantile in (0, 1).

    Warns
    -----
    WeakNullWarning
        Fewer than 1,000 pool images or 100,000 pairs.

    Examples
    --------
    >>> import torch, warnings
    >>> from metamers import as_model, compute_null
    >>> model = as_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)), input_shape=(1, 4, 4))
    >>> pool = torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     null = compute_null(model, "1", pool)
    >>> null.n_pairs, null.weak
    (1225, 'drawn from 50 pool images (fewer than 1,000) and 1,225 pairs (fewer than 100,000)')
    >>> caught[0].category.__name__
    'WeakNullWarning'
    """
    if isinstance(pool, (str, bytes)) or hasattr(pool, "__fspath__"):
        pool = load_images(pool)
    if isinstance(pool, ImageSet):
        ids = list(pool.ids)
        k = len(ids)
        images: Any = lambda a, b: pool.tensor(ids[a:b], model.input_shape)  # noqa: E731 - loaded in chunks
    else:
        x = quantize(as_images(pool, model.input_shape, "the null pool"))
        k = len(x)
        images = x
    if threshold != "max" and not (isinstance(threshold, (int, float)) and 0 < float(threshold) < 1):
        raise ValueError(f"threshold is 'max' (published) or a quantile in (0, 1), got {threshold!r}")
    if n_pairs is not None and int(n_pairs) < 1:
        raise ValueError(f"n_pairs must be at least 1, got {n_pairs}")
    if k < 2:
        raise ValueError(f"the null pool has {k} image(s); a null needs pairs of different images")
    n_pairs = min(PUBLISHED_PAIRS, n_possible_pairs(k)) if n_pairs is None else int(n_pairs)
    if n_pairs > n_possible_pairs(k):
        raise ValueError(f"{n_pairs:,} pairs asked of a pool of {k:,} images, which has {n_possible_pairs(k):,}")
    nulls = compute_nulls(model, layer, images, list(statistics), n_pairs, seed, threshold,
                          n_pool=None if isinstance(images, torch.Tensor) else k, progress=progress)
    weak = weak_null_reason(k, n_pairs)
    if weak:
        warnings.warn(f"the null of {model.name}/{layer} is weak: {weak}; metamers pass its maximum more easily "
                      "than the published null's (1,000,000 pairs of training images)", WeakNullWarning, stacklevel=2)
    return Null(model.name, layer, nulls, k, weak, weights_digest(model))
