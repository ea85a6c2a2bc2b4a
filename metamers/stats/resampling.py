"""Resampling of images for the representation test: permutations, bootstrap samples, p-values
and percentile intervals.

Every representation measure compares two sets of the same ``n`` images (references and their
metamers) through ``n x n`` matrices (distance or Gram matrices). Both schemes resample *images*,
never single cells of a matrix:

* a **permutation** ``pi`` relabels the metamers: the metamer matrix becomes ``M[pi][:, pi]``
  (rows and columns together), which breaks the pairing of each metamer with its reference and
  keeps each set's own structure. The p-value is ``(1 + #{T_pi >= T}) / (1 + n_permutations)``:
  one-sided, since a metamer set keeps a representation's structure when its similarity is
  larger than that of mislabelled images.
* a **bootstrap sample** draws ``n`` images with replacement, the same draw for both sets. In a
  distance matrix over the sample, a pair of two copies of one image is a self-pair (a distance
  of 0 by construction, not a measurement): it is dropped, as rsatoolbox does. Pair ``(i, j)``,
  ``i < j``, of the original images then appears ``m_i * m_j`` times in the sample, ``m`` the
  multiplicities of the draw (:func:`pair_weights`), so every statistic of a sample is the
  statistic of the original pairs weighted by those counts. The interval is the percentile
  interval of the bootstrap values.

All draws come from a :class:`numpy.random.Generator` seeded by the caller, so every p-value
and interval is reproducible from the recorded seed.

**Aligned bootstrap samples** (:func:`aligned_bootstrap_samples`) let intervals over images be
pooled across metamer sets that hold different subsets of one study's reference images (each
generator and layer has its own passing metamers): sample ``b`` of every set is read from one
shared stream of reference draws (``seed`` and ``b`` fix it), keeping the first ``n`` draws that
are members of the set. Each sample is then an ordinary bootstrap sample of the set (``n`` draws,
independent and uniform over its members), and two sets resample the same references in sample
``b`` as far as they share them; the mean of the sets' ``b``-th values is a bootstrap value of
the sets' mean measure, which gives the interval over images of
:mod:`metamers.stats.by_relation`.
"""

from __future__ import annotations

import numpy as np


def permutations(n: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_permutations, n)`` random permutations of ``range(n)``."""
    if n < 2:
        raise ValueError(f"permutations need at least 2 images, got {n}")
    return np.argsort(rng.random((n_permutations, n)), axis=1)


def bootstrap_samples(n: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_bootstrap, n)`` indices of images drawn with replacement (each row one sample)."""
    if n < 2:
        raise ValueError(f"a bootstrap over images needs at least 2 images, got {n}")
    return rng.integers(0, n, size=(n_bootstrap, n))


def aligned_bootstrap_samples(members: np.ndarray, n_universe: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """``(n_bootstrap, n)`` bootstrap samples of the ``n`` images ``members`` (distinct positions
    in a universe of ``n_universe`` reference images), as indices into ``members``, aligned with
    every other set of the same universe, seed and ``n_bootstrap`` (module docstring).

    Row ``b`` takes the first ``n`` entries of the stream ``b`` of uniform draws from the universe
    (chunks of ``n_universe`` draws from ``default_rng([seed, k])``) that fall in ``members``.
    """
    members = np.asarray(members, dtype=np.int64)
    n = len(members)
    if n < 2:
        raise ValueError(f"a bootstrap over images needs at least 2 images, got {n}")
    if len(np.unique(members)) != n or members.min() < 0 or members.max() >= n_universe:
        raise ValueError(f"members must be distinct positions in 0..{n_universe - 1}")
    position = np.full(n_universe, -1, dtype=np.int64)
    position[members] = np.arange(n)
    out = np.empty((n_bootstrap, n), dtype=np.int64)
    filled = np.zeros(n_bootstrap, dtype=np.int64)
    chunk = 0
    while (filled < n).any():
        hits = position[np.random.default_rng([seed, chunk]).integers(0, n_universe, size=(n_bootstrap, n_universe))]
        for b in np.flatnonzero(filled < n):
            found = hits[b][hits[b] >= 0][: n - filled[b]]
            out[b, filled[b] : filled[b] + len(found)] = found
            filled[b] += len(found)
        chunk += 1
    return out


def multiplicities(samples: np.ndarray, n: int) -> np.ndarray:
    """``(B, n)`` how many times each image is in each bootstrap sample ``samples (B, n)``."""
    samples = np.atleast_2d(samples)
    out = np.zeros((len(samples), n), dtype=np.int64)
    np.add.at(out, (np.arange(len(samples))[:, None], samples), 1)
    return out


def pair_weights(samples: np.ndarray, n: int) -> np.ndarray:
    """``(B, n (n - 1) / 2)`` the number of times each pair ``(i, j)``, ``i < j`` (in the order of
    :func:`numpy.triu_indices` ``(n, 1)``) appears among the distinct-image pairs of each sample:
    ``m_i * m_j``. Self-pairs (two copies of one image) are not pairs of the sample."""
    m = multiplicities(samples, n).astype(np.float64)
    i, j = np.triu_indices(n, 1)
    return m[:, i] * m[:, j]


def p_value(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value ``(1 + #{null >= observed}) / (1 + len(null))``.

    A NaN observed value gives NaN; NaN null values (a degenerate permutation) count as not
    exceeding it."""
    if not np.isfinite(observed):
        return float("nan")
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.count_nonzero(null >= observed)) / (1 + len(null)))


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The ``confidence`` percentile interval of bootstrap ``values`` (NaN values, from samples
    where a statistic is undefined, are left out; all NaN gives NaN bounds)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
