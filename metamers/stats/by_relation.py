"""Transfer by relation: recognizability and the representation test aggregated over the
(generator, evaluator) pairs of each relation (:mod:`metamers.relations`), per method and
normalized depth of the generation layer, with bootstrap intervals over images and over pairs.

``transfer_by_relation.csv`` (:data:`BY_RELATION_COLUMNS`), one row per (method, relation, depth
bin, measure):

``recognizability``
    The fraction of the passing metamers (pooled over every pair of the relation whose
    generation layer falls in the bin) that the evaluator assigns the reference's class. Its
    interval over images resamples the reference images (all of an image's metamers together);
    over pairs, the (generator, evaluator) pairs; both with replacement, percentile intervals.
a representation measure (``debiased_cka``, ``rsa_correlation_pearson``, ...)
    Per (method, generator, generation layer, evaluator): the measure over the passing metamers
    averaged over the evaluator's layers, then the mean over the relation's sets in the bin.
    Its interval over pairs resamples the pairs; over images, it is the percentile interval of
    the same mean of the sets' aligned bootstrap values (sample ``b`` of every set resamples the
    same reference images as far as the sets share them:
    :func:`metamers.stats.resampling.aligned_bootstrap_samples`), so the references shared by
    the sets are resampled together. ``n_images`` is then the number of reference images of the
    universe the samples are drawn from.

Depth bins: the generation layer's normalized depth (:func:`metamers.models.layers.layer_depth`;
0 input, 1 the last leaf module; a joint generator's is the mean of its targets') falls in
``[edges[k], edges[k+1])``; depth 1 (the logits of a feed-forward network) is a bin of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .resampling import percentile_interval

#: Columns of ``transfer_by_relation.csv``.
BY_RELATION_COLUMNS = ["method", "relation", "depth_bin", "depth_low", "depth_high", "measure", "value",
                       "ci_images_low", "ci_images_high", "ci_pairs_low", "ci_pairs_high", "n_pairs", "n_sets",
                       "n_metamers", "n_images", "n_bootstrap", "confidence", "seed"]
#: The label of the bin of depth 1.
LOGITS_BIN = "1 (logits)"


def depth_bin(depth: float, edges: Sequence[float]) -> tuple[str, float, float]:
    """``(label, low, high)`` of the bin of ``depth``: ``[edges[k], edges[k+1])``, or depth 1 alone."""
    if depth >= 1.0:
        return LOGITS_BIN, 1.0, 1.0
    edges = np.asarray(edges, dtype=float)
    k = int(np.clip(np.searchsorted(edges, depth, side="right") - 1, 0, len(edges) - 2))
    return f"{edges[k]:.2f}-{edges[k + 1]:.2f}", float(edges[k]), float(edges[k + 1])


def _ratio_interval(sums: np.ndarray, counts: np.ndarray, n_bootstrap: int, confidence: float,
                    rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of ``sum(sums) / sum(counts)`` over clusters resampled with replacement."""
    k = len(sums)
    if k < 2 or n_bootstrap == 0:
        return np.nan, np.nan
    draws = rng.integers(0, k, size=(n_bootstrap, k))
    multiplicity = np.zeros((n_bootstrap, k))
    np.add.at(multiplicity, (np.repeat(np.arange(n_bootstrap), k), draws.ravel()), 1)
    return percentile_interval((multiplicity @ sums) / (multiplicity @ counts), confidence)


def _clusters(frame: pd.DataFrame, keys: Sequence[str], value: str) -> tuple[np.ndarray, np.ndarray]:
    grouped = frame.groupby(list(keys), sort=True)[value]
    return grouped.sum().to_numpy(dtype=float), grouped.size().to_numpy(dtype=float)


def recognizability_by_relation(rows: pd.DataFrame, n_bootstrap: int, confidence: float, seed: int) -> list[dict]:
    """Rows of ``recognizability`` from the passing metamers ``rows`` (columns method, relation,
    depth_bin, depth_low, depth_high, generator, evaluator, image_id, correct)."""
    out = []
    keys = ["method", "relation", "depth_bin", "depth_low", "depth_high"]
    for key, group in rows.groupby(keys, sort=False):
        rng = np.random.default_rng(seed)
        images = _clusters(group, ["image_id"], "correct")
        pairs = _clusters(group, ["generator", "evaluator"], "correct")
        lo_i, hi_i = _ratio_interval(*images, n_bootstrap, confidence, rng)
        lo_p, hi_p = _ratio_interval(*pairs, n_bootstrap, confidence, rng)
        out.append({**dict(zip(keys, key)), "measure": "recognizability", "value": float(group["correct"].mean()),
                    "ci_images_low": lo_i, "ci_images_high": hi_i, "ci_pairs_low": lo_p, "ci_pairs_high": hi_p,
                    "n_pairs": len(pairs[0]), "n_sets": int(group.groupby(["generator", "layer", "evaluator"]).ngroups),
                    "n_metamers": len(group), "n_images": len(images[0])})
    return out


def representation_by_relation(sets: pd.DataFrame, n_bootstrap: int, confidence: float, seed: int,
                               draws: dict[tuple, np.ndarray] | None = None, n_images: int | None = None
                               ) -> list[dict]:
    """Rows of each representation measure from ``sets``: one row per (method, generator,
    generation layer, evaluator, measure) with its value averaged over the evaluator's layers
    (columns method, relation, depth_bin, depth_low, depth_high, generator, layer, evaluator,
    measure, value, n_images). ``draws`` maps the same key ``(method, generator, layer,
    evaluator, measure)`` to the set's aligned bootstrap values (averaged over the evaluator's
    layers) for the interval over images; ``n_images`` is the size of their universe."""
    out = []
    keys = ["method", "relation", "depth_bin", "depth_low", "depth_high", "measure"]
    for key, group in sets.dropna(subset=["value"]).groupby(keys, sort=False):
        rng = np.random.default_rng(seed)
        pairs = _clusters(group, ["generator", "evaluator"], "value")
        lo_p, hi_p = _ratio_interval(*pairs, n_bootstrap, confidence, rng)
        lo_i = hi_i = np.nan
        if draws:
            mine = [draws.get((r.method, r.generator, r.layer, r.evaluator, r.measure)) for r in group.itertuples()]
            if all(d is not None for d in mine) and len(mine[0]):
                lo_i, hi_i = percentile_interval(np.mean(np.stack(mine), axis=0), confidence)
        out.append({**dict(zip(keys, key)), "value": float(group["value"].mean()), "ci_images_low": lo_i,
                    "ci_images_high": hi_i, "ci_pairs_low": lo_p, "ci_pairs_high": hi_p, "n_pairs": len(pairs[0]),
                    "n_sets": len(group), "n_metamers": int(group["n_images"].sum()),
                    "n_images": n_images if draws else np.nan})
    return out
