"""The representation test's set measures: does a metamer set keep the structure of the
references' representations at an evaluator's layer? Registered by name in :data:`MEASURES`.

Each measure compares the activations of ``n`` references and of their ``n`` metamers (same
order) at one layer:

``rsa_<kind>_<comparison>``
    the RDMs of both sets (``kind`` in :data:`metamers.stats.rdm.RDM_KINDS`: ``correlation``,
    ``euclidean``) compared by ``comparison`` (:data:`metamers.stats.rsa.RDM_COMPARISONS`:
    ``pearson``, ``spearman``, ``kendall_tau_a``, ``cosine``);
``linear_cka``, ``debiased_cka``
    (:data:`metamers.stats.cka.CKA_MEASURES`).

:func:`set_measures` gives each measure's value, a one-sided permutation p-value (metamers
relabelled, rows and columns together) and a bootstrap percentile interval (images resampled,
self-pairs dropped), :mod:`.resampling`. One draw of permutations and one of bootstrap samples,
from the given seed, serve every measure, so measures are compared on the same resamples.
Everything runs on ``n x n`` matrices computed once per set (:func:`metamers.stats.rdm.gram_and_sums`):
the cost of a resample does not grow with the layer's width.

An RSA measure compares the pairs of images whose distance is defined in both RDMs: the
correlation distance of an image with constant activations is undefined (NaN), and its pairs are
dropped, as rsatoolbox drops them (:mod:`.rsa`; every resample drops its own). A row's
``n_pairs_dropped`` counts the pairs the value leaves out (of the ``n (n - 1) / 2``; 0 for CKA).

A bootstrap sample repeats some images: every measure leaves out what compares two copies of one
image, or of one pair of images, with each other (:mod:`.rsa`, :mod:`.cka`), so that a sample's
value is the statistic of distinct images weighted by their multiplicities (counted, such
comparisons pulled the samples of close metamer sets away from the estimate, which their
intervals then missed). A row's ``unstable`` says that its interval is not to be read: debiased
CKA over fewer than :data:`~.cka.MIN_STABLE_IMAGES` images, whose bootstrap values are
heavy-tailed (:attr:`Measure.min_stable_images`, :func:`unstable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..registry import Registry
from .cka import CKA_MEASURES
from .rdm import RDM_KINDS, gram_and_sums, upper
from .resampling import bootstrap_samples, p_value, percentile_interval, permutations
from .rsa import RDM_COMPARISONS, undefined_pairs


@dataclass(frozen=True)
class Measure:
    """A set measure: an RDM comparison of RDMs of one kind, or a CKA measure."""

    family: str             # "rsa" or "cka"
    method: str             # the comparison or CKA measure's name
    rdm_kind: str | None    # the RDM kind, for "rsa"
    label: str
    min_stable_images: int = 0  # below this many images its interval is unstable (0: never)


#: Measure name -> :class:`Measure`.
MEASURES: Registry[Measure] = Registry("representation measure")
for _kind in RDM_KINDS:
    for _comparison, _impl in RDM_COMPARISONS.items():
        MEASURES.register(f"rsa_{_kind}_{_comparison}",
                          Measure("rsa", _comparison, _kind, f"{_impl.label} ({RDM_KINDS[_kind].label})"))
for _name, _impl in CKA_MEASURES.items():
    MEASURES.register(_name, Measure("cka", _name, None, _impl.label, _impl.min_stable_images))

#: Columns of :func:`set_measures`' rows. ``n_pairs_dropped``: the pairs of images an RSA
#: measure's value leaves out because their distance is undefined (NaN) in either RDM (0 for CKA).
#: ``unstable``: the interval is unstable at this number of images (:func:`unstable`).
SET_MEASURE_COLUMNS = ["measure", "value", "ci_low", "ci_high", "p_value", "n_images", "n_pairs_dropped",
                       "unstable", "n_permutations", "n_bootstrap", "confidence", "seed"]


def unstable(measure: str, n_images: int) -> bool:
    """Whether the bootstrap interval of ``measure`` over ``n_images`` images is unstable
    (:attr:`Measure.min_stable_images`). ``measure`` is a name of :data:`MEASURES`, or one made
    from it by a suffix ``_<suffix>`` (a row derived from the measure's over the same images,
    such as the natural-image baseline's)."""
    base = max((name for name in MEASURES.names() if measure == name or measure.startswith(name + "_")),
               key=len, default=measure)
    return n_images < MEASURES.lookup(base, "representation.measures: ").min_stable_images


class SetGrams:
    """The float64 Gram matrix and activation sums of one set of images at one layer."""

    def __init__(self, activations) -> None:
        self.gram, self.sums, self.units = gram_and_sums(activations)
        self._rdms: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.gram)

    def rdm(self, kind: str) -> np.ndarray:
        """The ``(n, n)`` RDM of kind ``kind`` (computed once)."""
        if kind not in self._rdms:
            self._rdms[kind] = RDM_KINDS.lookup(kind).from_gram(self.gram, self.sums, self.units)
        return self._rdms[kind]


def set_measures(reference, metamer, measures: Sequence[str] | None = None, n_permutations: int = 1000,
                 n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0,
                 threads: int = 1, samples: np.ndarray | None = None) -> list[dict]:
    """Every measure of ``measures`` (default: all of :data:`MEASURES`) between the references'
    and the metamers' activations (arrays ``(n, ...)`` or :class:`SetGrams`, images in the same
    order): one row per measure with ``value``, ``p_value`` (``n_permutations`` permutations;
    0 permutations give NaN), the ``confidence`` bootstrap interval ``ci_low``/``ci_high``
    (``n_bootstrap`` samples; 0 give NaN), the number of images, ``n_pairs_dropped`` (pairs
    with an undefined distance, left out of an RSA measure) and ``unstable`` (:func:`unstable`).
    ``threads``: threads for the comparisons that loop over resamples (Kendall's tau-a, and
    Spearman's bootstrap). ``samples`` ``(B, n)`` replaces the seeded bootstrap samples (aligned
    ones: :func:`~.resampling.aligned_bootstrap_samples`); each row's ``draws`` holds its
    bootstrap values (None without samples)."""
    ref = reference if isinstance(reference, SetGrams) else SetGrams(reference)
    met = metamer if isinstance(metamer, SetGrams) else SetGrams(metamer)
    if len(ref) != len(met):
        raise ValueError(f"{len(ref)} references but {len(met)} metamers: the sets must pair image by image")
    names = list(measures) if measures is not None else MEASURES.names()
    chosen = {name: MEASURES.lookup(name, "representation.measures: ") for name in names}
    n = len(ref)
    rng = np.random.default_rng(seed)
    perms = permutations(n, n_permutations, rng) if n_permutations else None
    if samples is None:
        samples = bootstrap_samples(n, n_bootstrap, rng) if n_bootstrap else None
    elif len(samples) == 0:
        samples = None
    elif samples.shape[1] != n or samples.min() < 0 or samples.max() >= n:
        raise ValueError(f"bootstrap samples of shape {samples.shape} do not index {n} images")
    rows = []
    for name, m in chosen.items():
        if m.family == "rsa":
            impl = RDM_COMPARISONS[m.method]
            x, y_matrix = upper(ref.rdm(m.rdm_kind)), met.rdm(m.rdm_kind)
            y = upper(y_matrix)
            dropped = undefined_pairs(x, y)
            value = impl.value(x, y)
            null = impl.permuted(x, y_matrix, perms, threads) if perms is not None else None
            boot = impl.bootstrap(x, y, samples, threads) if samples is not None else None
        else:
            impl = CKA_MEASURES[m.method]
            dropped = 0
            value = impl.value(ref.gram, met.gram)
            null = impl.permuted(ref.gram, met.gram, perms) if perms is not None else None
            boot = impl.bootstrap(ref.gram, met.gram, samples) if samples is not None else None
        low, high = percentile_interval(boot, confidence) if boot is not None else (np.nan, np.nan)
        rows.append({"measure": name, "value": value, "ci_low": low, "ci_high": high,
                     "p_value": p_value(value, null) if null is not None else np.nan, "n_images": n,
                     "n_pairs_dropped": dropped, "unstable": n < m.min_stable_images,
                     "n_permutations": n_permutations, "n_bootstrap": n_bootstrap,
                     "confidence": confidence, "seed": seed, "draws": boot})
    return rows
