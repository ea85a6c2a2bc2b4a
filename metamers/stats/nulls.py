"""Null distributions: how similar the activations of two *different* natural images get.

For a (model, layer), every image of the pool (training images, never a reference) is run
through the network once and kept in an :class:`~metamers.stats.activation_store.ActivationStore`,
which yields the K x K Gram matrices of the transformed activations in bounded memory. A null
is ``n_pairs`` distinct pairs of distinct pool images drawn at random from all K(K-1)/2 pairs
(published: 1,000,000 pairs of training images), the side that plays the reference in the
SNR drawn at random per pair. Since a maximum over a million values depends on the draw,
``n_draws`` independent draws (seeds ``(seed, 0), (seed, 1), ...``) give the threshold's spread;
the first draw's threshold is the one the metamer test uses. The threshold is the maximum
(published) or a quantile, stored with the number of pairs it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models.classifier import Classifier
from ..models.layers import LayerReader
from .activation_store import ActivationStore
from .pairs import NullError, draw_pairs
from .statistics import STATISTICS

log = logging.getLogger(__name__)

#: Quantiles stored with every null (besides the threshold).
STORED_QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)
HISTOGRAM_BINS = 100


def threshold_of(values: np.ndarray, rule: str | float) -> float:
    """``max`` of the defined (non-NaN) values, or quantile ``rule`` (a number in (0, 1))."""
    defined = np.asarray(values, dtype=np.float64)
    defined = defined[~np.isnan(defined)]
    if defined.size == 0:
        raise NullError("every pair of the null is undefined (constant activations)")
    return float(defined.max()) if rule == "max" else float(np.quantile(defined, float(rule)))


@dataclass
class NullDistribution:
    """The null of one statistic at one (model, layer).

    ``threshold`` is the first draw's (the one the metamer test uses); ``draw_thresholds``
    holds every draw's, for the spread. Quantiles, histogram and ``values`` are the first
    draw's.
    """

    statistic: str
    threshold: float
    threshold_rule: str
    n_pairs: int
    n_undefined: int
    quantiles: dict[float, float]
    histogram: np.ndarray
    bin_edges: np.ndarray
    draw_thresholds: np.ndarray
    values: np.ndarray | None = field(default=None, repr=False)


#: A pool given as a tensor of images, or as ``(start, stop) -> images start..stop`` (loaded on demand).
Pool = torch.Tensor | Callable[[int, int], torch.Tensor]


@torch.no_grad()
def compute_nulls(
    model: Classifier,
    layer: str,
    pool: Pool,
    statistics: Sequence[str],
    n_pairs: int,
    seed: int,
    threshold: str | float = "max",
    n_draws: int = 1,
    pair_sampling: str = "all_pairs",
    n_pool: int | None = None,
    chunk_columns: int = 4096,
    batch_size: int = 256,
    memory_gb: float = 1.0,
    scratch_dir: str | Path | None = None,
    keep_values: bool = False,
    progress: bool = False,
) -> dict[str, NullDistribution]:
    """Null distributions of ``statistics`` at ``layer`` over random pairs of ``pool`` images.

    Parameters
    ----------
    model, layer
        Where the activations are read.
    pool
        ``(K, *model.input_shape)`` images in [0, 1], or a function giving images
        ``start..stop`` (then ``n_pool`` is K), so that a large pool is never in memory at once.
    n_pairs
        Pairs per draw (at most K(K-1)/2), drawn by :func:`draw_pairs`.
    seed, n_draws, pair_sampling
        Draw ``d`` of ``n_draws`` uses the stream ``(seed, d)``; draw 0 gives the threshold.
        ``pair_sampling``: see :func:`draw_pairs`.
    threshold
        ``"max"`` or a quantile in (0, 1).
    chunk_columns, memory_gb, scratch_dir
        Bound the memory (see :class:`~metamers.stats.activation_store.ActivationStore`): the pool's
        activations stay in memory up to ``memory_gb`` and go to a scratch file beyond.
    batch_size
        Images per forward pass (at most; fewer for wide layers, to stay in the budget).
    """
    from tqdm.auto import tqdm

    for name in statistics:
        STATISTICS[name]  # unknown names list the valid ones
    if n_draws < 1:
        raise NullError(f"n_draws must be at least 1, got {n_draws}")
    k = len(pool) if isinstance(pool, torch.Tensor) else n_pool
    if k is None:
        raise ValueError("a pool given as a function needs n_pool")
    images = (lambda a, b: pool[a:b]) if isinstance(pool, torch.Tensor) else pool
    device = model.device
    reader = LayerReader(model, [layer])
    dim = reader(images(0, 1).to(device))[layer][0].numel()
    with ActivationStore(k, dim, statistics, chunk_columns, int(memory_gb * 2**30), scratch_dir) as store:
        step = max(1, min(batch_size, store.rows_per_block()))
        for start in tqdm(range(0, k, step), desc=f"null {model.name}/{layer}", disable=not progress):
            store.add(start, reader(images(start, min(k, start + step)).to(device))[layer])
        grams = store.grams(device)
    draws = [draw_pairs(k, n_pairs, seed, d, pair_sampling) for d in range(n_draws)]
    out = {}
    for name in statistics:
        per_draw = []
        for reference, other in draws:
            per_draw.append(STATISTICS[name].from_gram(
                grams[name], torch.from_numpy(reference).to(device), torch.from_numpy(other).to(device),
            ).cpu().numpy())
        values = per_draw[0]
        defined = values[~np.isnan(values)]
        finite = defined[np.isfinite(defined)]
        hist, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
        out[name] = NullDistribution(
            statistic=name,
            threshold=threshold_of(values, threshold),
            threshold_rule=str(threshold),
            n_pairs=int(n_pairs),
            n_undefined=int(np.isnan(values).sum()),
            quantiles=dict(zip(STORED_QUANTILES, np.quantile(defined, STORED_QUANTILES).tolist())),
            histogram=hist,
            bin_edges=edges,
            draw_thresholds=np.array([threshold_of(v, threshold) for v in per_draw]),
            values=values if keep_values else None,
        )
    return out


def null_percentile(null: NullDistribution, values) -> np.ndarray:
    """Percent (0-100) of the null's defined pair values at or below each of ``values``: from the
    stored values when the null kept them (``keep_values``), else from its histogram (linear
    within a bin; exact at the bin edges, below the minimum 0, at or above the maximum 100).
    A NaN value gives NaN."""
    values = np.asarray(values, dtype=np.float64)
    if null.values is not None:
        defined = np.sort(null.values[~np.isnan(null.values)].astype(np.float64))
        out = 100 * np.searchsorted(defined, values, side="right") / len(defined)
    else:
        cdf = np.r_[0.0, np.cumsum(null.histogram)] / max(1, null.histogram.sum())
        out = 100 * np.interp(values, null.bin_edges, cdf, left=0.0, right=1.0)
    return np.where(np.isnan(values), np.nan, out)
