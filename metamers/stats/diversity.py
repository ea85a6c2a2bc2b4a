"""How different a reference's several metamers are from each other (a method's ``diversity``).

Per reference with ``K`` metamers ("members"), in a space (the pixels, or an evaluator's layer):
the mean and the smallest of the ``K (K - 1) / 2`` Euclidean distances between its members, each
also relative to the mean distance between *different* references in that space (so 1 means
"as far apart as two different natural images of the set"). In SSIM (:mod:`.distances`), a
similarity: the mean and the largest SSIM between two members (the closest pair).

A method with ``diversity: {weight: 0}`` makes ``K`` metamers from ``K`` independent seeds: the
baseline that a diversity term is compared with (:func:`diversity_rows` of both; the study's
``diversity_summary.csv`` and ``bench/diversity.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist

#: Columns of ``diversity.csv``: one row per (method, generator, layer, image, space), ``space``
#: ``pixels``, ``ssim`` or ``<evaluator>/<layer>``. ``mean_distance``, ``min_distance``: the mean and
#: smallest pairwise distance among the reference's ``n_members`` metamers (for ``ssim``: the mean
#: and the largest pairwise SSIM); ``relative_mean``, ``relative_min``: divided by
#: ``between_references``, the mean distance between two different references in that space
#: (empty for ``ssim``); ``n_passing``: how many of the members passed the metamer test.
DIVERSITY_COLUMNS = ["method", "generator", "layer", "layer_index", "image_id", "space", "n_members", "n_passing",
                     "mean_distance", "min_distance", "between_references", "relative_mean", "relative_min"]
#: The space of pixel distances, and of SSIMs, in :data:`DIVERSITY_COLUMNS`.
PIXELS, SSIM = "pixels", "ssim"


def between_references(features: np.ndarray) -> float:
    """The mean Euclidean distance between two different rows of ``features`` ``(n, D)`` (NaN
    below 2 rows)."""
    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    return float(pdist(features).mean()) if len(features) > 1 else np.nan


def member_distances(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and smallest pairwise Euclidean distance among each reference's members:
    ``features`` ``(n, K, D)`` -> two ``(n,)`` arrays (NaN for ``K`` below 2)."""
    features = np.asarray(features, dtype=np.float64)
    n, k = features.shape[:2]
    if k < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    d = np.stack([pdist(features[i].reshape(k, -1)) for i in range(n)])
    return d.mean(1), d.min(1)


def member_ssims(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and largest SSIM (:data:`~.distances.DISTANCES` ``ssim``) between two members of
    each reference: ``images`` ``(n, K, C, H, W)`` in [0, 1] -> two ``(n,)`` arrays."""
    import torch

    from .distances import DISTANCES

    n, k = images.shape[:2]
    if k < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    pairs = list(combinations(range(k), 2))
    a = torch.from_numpy(np.ascontiguousarray(images[:, [p[0] for p in pairs]].reshape(-1, *images.shape[2:])))
    b = torch.from_numpy(np.ascontiguousarray(images[:, [p[1] for p in pairs]].reshape(-1, *images.shape[2:])))
    s = DISTANCES["ssim"].fn(a.double(), b.double()).numpy().reshape(n, len(pairs))
    return s.mean(1), s.max(1)


def by_reference(values: np.ndarray, image_ids: Sequence[str], members: Sequence[int]) -> tuple[list[str], np.ndarray]:
    """Rows of metamers ``values`` ``(M, ...)`` (with their references' ids and member indices, in
    any order) as ``(references, K, ...)``, references in first-seen order and members by index.

    Raises
    ------
    ValueError
        Some reference lacks a member another has.
    """
    ids = list(dict.fromkeys(str(i) for i in image_ids))
    k = int(max(members)) + 1 if len(members) else 0
    position = {(str(i), int(m)): r for r, (i, m) in enumerate(zip(image_ids, members))}
    missing = [(i, m) for i in ids for m in range(k) if (i, m) not in position]
    if missing:
        raise ValueError(f"metamers of {len(missing)} (reference, member) pair(s) are missing, e.g. {missing[:3]}: "
                         f"every reference needs members 0 to {k - 1}")
    order = [position[(i, m)] for i in ids for m in range(k)]
    values = np.asarray(values)
    return ids, values[order].reshape(len(ids), k, *values.shape[1:])


def diversity_rows(key: Mapping[str, object], image_ids: Sequence[str], members: Sequence[int],
                   metamers: np.ndarray, references: np.ndarray, passed: Sequence[bool] | None = None,
                   spaces: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> pd.DataFrame:
    """Rows of :data:`DIVERSITY_COLUMNS` for one (method, generator, layer)'s metamers.

    Parameters
    ----------
    key
        The rows' ``method``, ``generator``, ``layer``, ``layer_index``.
    image_ids, members
        Each metamer's reference and member index.
    metamers
        The metamers ``(M, C, H, W)`` in [0, 1] (8-bit images read as floats).
    references
        The distinct references ``(n, C, H, W)`` in [0, 1], in first-seen order of ``image_ids``
        (for the mean distance between references in pixels).
    passed
        Per metamer, whether it passed the metamer test (None: unknown, ``n_passing`` empty).
    spaces
        ``{name: (metamer features (M, D), reference features (n, D))}``: an evaluator's layers.
    """
    ids, images = by_reference(metamers, image_ids, members)
    n, k = images.shape[:2]
    n_passing = (by_reference(np.asarray(passed, dtype=float), image_ids, members)[1].sum(1)
                 if passed is not None else np.full(n, np.nan))
    out = []

    def add(space: str, mean: np.ndarray, low: np.ndarray, between: float) -> None:
        out.append(pd.DataFrame({**key, "image_id": ids, "space": space, "n_members": k, "n_passing": n_passing,
                                 "mean_distance": mean, "min_distance": low, "between_references": between,
                                 "relative_mean": mean / between, "relative_min": low / between}))

    mean, low = member_distances(images.reshape(n, k, -1))
    add(PIXELS, mean, low, between_references(np.asarray(references).reshape(len(references), -1)))
    mean, high = member_ssims(images)
    add(SSIM, mean, high, np.nan)
    for space, (features, reference_features) in (spaces or {}).items():
        mean, low = member_distances(by_reference(features, image_ids, members)[1])
        add(space, mean, low, between_references(reference_features))
    return pd.concat(out, ignore_index=True)[DIVERSITY_COLUMNS]
