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
    ``D = M(r, m) - M(r, b)``. Its interval is the percentile interval of the paired bootstrap
    differences ``D_b`` (the same image samples for both terms), and its p-value the one-sided
    bootstrap test of ``D <= 0`` (:func:`bootstrap_p_value`: ``(1 + #{D_b <= 0}) / (1 + B)``, the
    level at which the one-sided percentile interval would first reach 0).

Why not a permutation test that swaps each metamer with its baseline image at random: a
swapped set mixes metamers and natural images in one RDM, whose metamer-to-image distances
never occur in the observed statistic; when metamers differ from natural images as a group (a
shared offset of their activations, which leaves their own RDM unchanged) such a test rejects
a true null far more often than its level says (a simulation in the review of 0.13.0). The
bootstrap compares the two sets only through their own matrices.

A p-value at its floor ``1 / (1 + B)`` says only that ``p <= 1 / (1 + B)``: rows say so
(``p_at_floor``). :func:`q_values` controls the false discovery rate (Benjamini-Hochberg) over a
family of such p-values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import false_discovery_control

from .representation import SetGrams, set_measures
from .resampling import percentile_interval

#: Suffixes of the baseline's measure names.
BASELINE, DIFFERENCE = "_baseline", "_minus_baseline"


def bootstrap_p_value(draws: np.ndarray | None) -> float:
    """One-sided bootstrap p-value of ``D <= 0`` from the bootstrap differences ``draws``:
    ``(1 + #{D_b <= 0}) / (1 + B)`` over the defined samples (none: NaN)."""
    if draws is None:
        return float("nan")
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return float("nan")
    return float((1 + np.count_nonzero(draws <= 0)) / (1 + len(draws)))


def baseline_rows(reference, baseline: np.ndarray, metamer_rows: Sequence[dict], n_permutations: int,
                  n_bootstrap: int, confidence: float, seed: int, threads: int = 1,
                  samples: np.ndarray | None = None) -> list[dict]:
    """Rows ``<M>_baseline`` and ``<M>_minus_baseline`` (module docstring) for every measure of
    ``metamer_rows`` (:func:`~.representation.set_measures`' rows of the same references and
    their metamers, with the same ``samples``, so that the differences are paired). Each row has
    the keys of ``set_measures``' rows (``draws``: the bootstrap values, or the paired
    differences)."""
    ref = reference if isinstance(reference, SetGrams) else SetGrams(reference)
    names = [row["measure"] for row in metamer_rows]
    base_rows = set_measures(ref, baseline, names, n_permutations, n_bootstrap, confidence, seed, threads,
                             samples=samples)
    out = []
    for met, base in zip(metamer_rows, base_rows):
        name = met["measure"]
        out.append({**base, "measure": name + BASELINE})
        draws = met["draws"] - base["draws"] if met["draws"] is not None and base["draws"] is not None else None
        low, high = percentile_interval(draws, confidence) if draws is not None else (np.nan, np.nan)
        out.append({**met, "measure": name + DIFFERENCE, "value": met["value"] - base["value"], "ci_low": low,
                    "ci_high": high, "p_value": bootstrap_p_value(draws), "draws": draws,
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


def at_floor(p_values: Sequence[float], n_resamples: Sequence[int] | int) -> np.ndarray:
    """Whether each p-value is at its floor ``1 / (1 + n_resamples)`` (permutations, or bootstrap
    samples for a difference from the baseline)."""
    p = np.asarray(p_values, dtype=np.float64)
    floor = 1.0 / (1.0 + np.asarray(n_resamples, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return np.isfinite(p) & (p <= floor * (1 + 1e-9))
