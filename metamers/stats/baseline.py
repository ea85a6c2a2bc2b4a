"""The natural-image baseline of the representation test: how much more of the references'
structure a metamer set keeps than other natural images of the same classes do.

The representation test's own p-value asks whether metamers are related to their references at
all, a null that is false by construction (a metamer is made from its reference). The baseline
asks what a reader wants to know instead. For each reference ``j`` a *baseline image* ``b_j``
is another natural image of the same class, from the null pool, never a reference
(:func:`metamers.data.pools.baseline_images`). For each set measure ``M`` and set of ``n``
references ``r`` with metamers ``m`` (:func:`baseline_rows`):

``<M>_baseline``
    ``M(r, b)``: the measure between the references and the baseline images (with its own
    permutation p-value and bootstrap interval, as :func:`~.representation.set_measures` gives).
``<M>_minus_baseline``
    ``D = M(r, m) - M(r, b)``; its interval is the percentile interval of the paired bootstrap
    differences (the same image samples for both terms); its p-value is one-sided, from a
    **paired swap test**: under the null hypothesis that each metamer and its baseline image
    are exchangeable in how they relate to the references, swapping ``m_j`` and ``b_j`` for a
    random subset of the images leaves the distribution of ``D`` unchanged, so
    ``p = (1 + #{D_s >= D}) / (1 + S)`` over ``S`` random swap patterns ``s`` (each image
    swapped with probability 1/2). Both sets' RDMs and Gram matrices of a pattern are read from
    those of the ``2n`` metamers and baseline images together (a distance between two images
    does not depend on the other images), so a pattern costs two comparisons.

A p-value at its floor ``1 / (1 + S)`` says only ``p <= 1 / (1 + S)``: rows say so
(``p_at_floor``). :func:`q_values` controls the false discovery rate (Benjamini-Hochberg) over a
family of such p-values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import false_discovery_control, rankdata

from .cka import CKA_MEASURES
from .rdm import RDM_KINDS, upper
from .representation import MEASURES, SetGrams, set_measures
from .resampling import percentile_interval
from .rsa import RDM_COMPARISONS

#: Suffixes of the baseline's measure names.
BASELINE, DIFFERENCE = "_baseline", "_minus_baseline"


def swap_patterns(n: int, n_swaps: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_swaps, n)`` booleans: which images swap metamer and baseline image in each pattern."""
    return rng.random((n_swaps, n)) < 0.5


class _Joint:
    """The references and the ``2n`` metamers and baseline images of one set at one layer."""

    def __init__(self, reference: SetGrams, metamer: np.ndarray, baseline: np.ndarray) -> None:
        self.reference = reference
        self.n = len(metamer)
        self.grams = SetGrams(np.concatenate([np.asarray(metamer), np.asarray(baseline)]))

    def value(self, name: str, index: np.ndarray) -> float:
        """Measure ``name`` between the references and the images ``index`` of the joint set."""
        m = MEASURES.lookup(name, "representation.measures")
        sub = np.ix_(index, index)
        if m.family == "rsa":
            return RDM_COMPARISONS[m.method].value(upper(self.reference.rdm(m.rdm_kind)),
                                                   upper(self.grams.rdm(m.rdm_kind)[sub]))
        return CKA_MEASURES[m.method].value(self.reference.gram, self.grams.gram[sub])

    def difference(self, name: str, swapped: np.ndarray) -> float:
        """``M(r, one side) - M(r, the other)`` with the images ``swapped`` exchanged."""
        own = np.arange(self.n) + self.n * swapped
        other = np.arange(self.n) + self.n * ~swapped
        return self.value(name, own) - self.value(name, other)

    def differences(self, name: str, patterns: np.ndarray) -> np.ndarray:
        """:meth:`difference` for every pattern of ``patterns (S, n)``: vectorized for Pearson,
        cosine and Spearman RSA over defined distances, one pattern at a time otherwise."""
        m = MEASURES.lookup(name, "representation.measures")
        if m.family == "rsa" and m.method in VECTORIZED:
            x = upper(self.reference.rdm(m.rdm_kind))
            joint = self.grams.rdm(m.rdm_kind)
            if not (np.isnan(x).any() or np.isnan(joint).any()):
                i, j = np.triu_indices(self.n, 1)
                sides = [np.arange(self.n) + self.n * side for side in (patterns, ~patterns)]
                own, other = (_rowwise(m.method, x, joint[idx[:, i], idx[:, j]]) for idx in sides)
                return own - other
        return np.array([self.difference(name, s) for s in patterns])


#: RSA comparisons whose swap null :meth:`_Joint.differences` computes for all patterns at once.
VECTORIZED = ("pearson", "cosine", "spearman")


def _rowwise(method: str, x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Comparison ``method`` of vector ``x`` with each row of ``ys`` (no undefined entries)."""
    if method == "spearman":
        x, ys = rankdata(x), rankdata(ys, axis=1)
    if method in ("pearson", "spearman"):
        x, ys = x - x.mean(), ys - ys.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ys @ x / np.sqrt((ys * ys).sum(axis=1) * (x @ x))


def swap_p_value(observed: float, null: np.ndarray) -> float:
    """One-sided ``(1 + #{null >= observed}) / (1 + len(null))`` (NaN observed: NaN; NaN null
    values count as not exceeding it)."""
    if not np.isfinite(observed):
        return float("nan")
    return float((1 + np.count_nonzero(np.asarray(null) >= observed)) / (1 + len(null)))


def baseline_rows(reference, metamer: np.ndarray, baseline: np.ndarray, metamer_rows: Sequence[dict],
                  n_permutations: int, n_bootstrap: int, confidence: float, seed: int, threads: int = 1,
                  samples: np.ndarray | None = None) -> list[dict]:
    """Rows ``<M>_baseline`` and ``<M>_minus_baseline`` (module docstring) for every measure of
    ``metamer_rows`` (:func:`~.representation.set_measures`' rows of the same references and
    metamers, with the same ``samples``, so that the differences are paired); ``n_permutations``
    swap patterns give the difference's p-value. Each row has the keys of ``set_measures``'
    rows (``draws``: the bootstrap values, or the paired differences)."""
    ref = reference if isinstance(reference, SetGrams) else SetGrams(reference)
    names = [row["measure"] for row in metamer_rows]
    base_rows = set_measures(ref, baseline, names, n_permutations, n_bootstrap, confidence, seed, threads,
                             samples=samples)
    joint = _Joint(ref, metamer, baseline)
    patterns = swap_patterns(len(metamer), n_permutations, np.random.default_rng([seed, 2])) \
        if n_permutations else None
    out = []
    for met, base in zip(metamer_rows, base_rows):
        name = met["measure"]
        out.append({**base, "measure": name + BASELINE})
        value = met["value"] - base["value"]
        draws = met["draws"] - base["draws"] if met["draws"] is not None and base["draws"] is not None else None
        low, high = percentile_interval(draws, confidence) if draws is not None else (np.nan, np.nan)
        p = np.nan
        if patterns is not None:
            p = swap_p_value(value, joint.differences(name, patterns))
        out.append({**met, "measure": name + DIFFERENCE, "value": value, "ci_low": low, "ci_high": high,
                    "p_value": p, "draws": draws,
                    "n_pairs_dropped": max(met["n_pairs_dropped"], base["n_pairs_dropped"])})
    return out


def q_values(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg q-values of ``p_values`` (NaN stay NaN and are not counted in the family).

    >>> q_values([0.01, 0.04, np.nan, 0.03]).round(3).tolist()
    [0.03, 0.04, nan, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


def at_floor(p_values: Sequence[float], n_permutations: Sequence[int] | int) -> np.ndarray:
    """Whether each p-value is at its permutation floor ``1 / (1 + n_permutations)``."""
    p = np.asarray(p_values, dtype=np.float64)
    floor = 1.0 / (1.0 + np.asarray(n_permutations, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return np.isfinite(p) & (p <= floor * (1 + 1e-9))
