"""Pairs of distinct pool images for a null distribution: counting, indexing and drawing them."""

from __future__ import annotations

import math

import numpy as np

from ..registry import Registry


class NullError(ValueError):
    """A null distribution that cannot be computed as configured."""


def n_possible_pairs(k: int) -> int:
    """K(K-1)/2, the number of pairs of distinct items among ``k``."""
    return k * (k - 1) // 2


def images_for_pairs(n_pairs: int) -> int:
    """The smallest K with K(K-1)/2 >= ``n_pairs``."""
    k = (1 + math.isqrt(8 * n_pairs)) // 2
    while n_possible_pairs(k) < n_pairs:
        k += 1
    return k


#: A null drawn from fewer distinct pool images than this is weak (``weak_null``): its pairs
#: reuse each image K-1 times, so K images bound how much of the classes' natural variety the
#: null sees, whatever the number of pairs (published: 1,000,000 pairs of ImageNet's 1.28
#: million training images; the default study: 1,000,000 pairs of 5,000 MNIST digits).
MIN_NULL_IMAGES = 1000
#: A null of fewer distinct pairs than this is weak: its threshold, a maximum (or a high
#: quantile) of the pairs' similarities, rises with their number, so a null of few pairs sets a
#: low bar (16 images, 120 pairs: a Spearman threshold of 0.29 that noise-like metamers pass).
#: This is a tenth of the published 1,000,000.
MIN_NULL_PAIRS = 100_000


def weak_null_reason(n_pool: int, n_pairs: int) -> str | None:
    """Why a null of ``n_pairs`` distinct pairs of ``n_pool`` distinct images is weak, or None.

    Examples
    --------
    >>> weak_null_reason(5000, 1_000_000) is None
    True
    >>> weak_null_reason(16, 120)
    'drawn from 16 pool images (fewer than 1,000) and 120 pairs (fewer than 100,000)'
    """
    short = []
    if n_pool < MIN_NULL_IMAGES:
        short.append(f"{n_pool:,} pool images (fewer than {MIN_NULL_IMAGES:,})")
    if n_pairs < MIN_NULL_PAIRS:
        short.append(f"{n_pairs:,} pairs (fewer than {MIN_NULL_PAIRS:,})")
    return "drawn from " + " and ".join(short) if short else None


def pair_from_index(index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The pair ``(i, j)``, ``i < j``, at position ``index`` of the row-major upper triangle of a
    k x k matrix (position 0 is (0, 1), k-2 is (0, k-1), k-1 is (1, 2), ...)."""
    index = np.asarray(index, dtype=np.int64)
    total = n_possible_pairs(k)
    # Pairs left from row i on: (k-i)(k-i-1)/2. Solve for i by the square root, then correct
    # the float estimate by at most a step either way so that the result is exact.
    remaining = total - index
    i = k - 1 - np.floor((1 + np.sqrt(1 + 8 * (remaining - 1).astype(np.float64))) / 2).astype(np.int64)
    i = np.clip(i, 0, k - 2)
    row_start = lambda r: r * (2 * k - r - 1) // 2  # noqa: E731 - index of (r, r+1)
    i = np.where(row_start(i) > index, i - 1, i)
    i = np.where(row_start(i + 1) <= index, i + 1, i)
    j = index - row_start(i) + i + 1
    return i, j


#: How a null's pairs are drawn (``metamer_test.pair_sampling``): name -> what it does.
PAIR_SAMPLING: Registry[str] = Registry("pair sampling", NullError)
PAIR_SAMPLING.register("all_pairs", "distinct pairs from all K(K-1)/2 pairs of the pool")
PAIR_SAMPLING.register("disjoint", "no image in two pairs, as the published loader pairs its images")


def draw_pairs(
    k: int, n_pairs: int, seed: int, draw: int = 0, sampling: str = "all_pairs"
) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` distinct pairs of distinct items among ``k``, each as ``(reference, other)``.
    Draw ``draw`` of ``seed`` (independent streams).

    ``all_pairs`` (default): drawn uniformly without replacement from all K(K-1)/2 pairs (an
    image is in many pairs), the side that plays the reference drawn at random per pair.
    ``disjoint``: as the published code's loader does, ``2 n_pairs`` distinct images in random
    order, paired consecutively, so that no image is in two pairs (needs K >= 2 n_pairs).
    """
    PAIR_SAMPLING[sampling]
    rng = np.random.default_rng([int(seed), int(draw)])
    if sampling == "disjoint":
        if 2 * n_pairs > k:
            raise NullError(f"{n_pairs} disjoint pairs need {2 * n_pairs} images; the pool has {k}")
        order = rng.permutation(k)[: 2 * n_pairs]
        return order[0::2], order[1::2]
    total = n_possible_pairs(k)
    if n_pairs > total:
        raise NullError(f"{k} images give {total} pairs; {n_pairs} were requested")
    i, j = pair_from_index(np.sort(rng.choice(total, size=n_pairs, replace=False)), k)
    swap = rng.random(n_pairs) < 0.5
    return np.where(swap, j, i), np.where(swap, i, j)
