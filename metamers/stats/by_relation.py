"""Transfer by relation: recognizability and the representation test aggregated over the
(generator, evaluator) pairs of each relation (:mod:`metamers.relations`), per method and
normalized depth of the generation layer, with crossed bootstrap intervals over images and
models together (:mod:`metamers.stats.crossed`).

``transfer_by_relation.csv`` (:data:`BY_RELATION_COLUMNS`), one row per (method, relation, depth
bin, measure):

``recognizability``
    The fraction of the passing metamers (pooled over every pair of the relation whose
    generation layer falls in the bin) that the evaluator assigns the reference's class. Its
    factors: the reference images and the models (:func:`model_factors`: generators and
    evaluators, or one factor of models in both roles where a model is both, as in ``self`` and
    another seed); each metamer read by an evaluator is a row.
a representation measure (``debiased_cka``, ``rsa_correlation_pearson``, ...)
    Per (method, generator, generation layer, evaluator): the measure over the passing metamers
    averaged over the evaluator's layers, then the mean over the relation's sets in the bin.
    Its factors: generators and evaluators as above, and the images resampled inside each set's
    value: the sets' aligned bootstrap values (sample ``b`` of every set resamples the same
    reference images as far as the sets share them:
    :func:`metamers.stats.resampling.aligned_bootstrap_samples`). ``n_images`` is the number of
    reference images of the universe the samples are drawn from.

``<measure>_minus_baseline`` (with ``representation.baseline``)
    The same for each set's difference from the natural-image baseline
    (:mod:`metamers.stats.baseline`), with ``p_value``, one-sided, from the crossed interval's
    ``t`` (``value / sqrt(variance)`` at ``ci_dof``: do metamers keep more of the references'
    structure than other images of their classes, over images and models?), and ``q_value``,
    Benjamini-Hochberg over the family of every row of that difference in the table
    (:func:`with_q_values`).

``ci_low``/``ci_high`` is the crossed interval (:func:`~metamers.stats.crossed.crossed_interval`,
``t`` at ``ci_dof`` degrees of freedom); ``ci_note`` says why a row has none (one generator or
evaluator: no interval over models) or that it rests on few models (fewer than
:data:`~metamers.stats.crossed.FEW_LEVELS`). ``ci_images_low``/``ci_images_high``, a diagnostic,
resamples the images alone (the models fixed). ``n_generators``, ``n_evaluators``, ``n_images``:
the levels of each factor; ``n_pairs``: the (generator, evaluator) pairs; ``n_sets``: the
(generator, generation layer, evaluator) sets; ``n_unstable_sets``: those whose measure is
marked unstable (too few images for its bootstrap, :func:`metamers.stats.representation.unstable`,
at any evaluator layer); ``n_metamers``: the passing metamers pooled.

Depth bins: the generation layer's normalized depth (:func:`metamers.models.layers.layer_depth`;
0 input, 1 the last leaf module; a joint generator's is the mean of its targets') falls in
``[edges[k], edges[k+1])``; depth 1 (the logits of a feed-forward network) is a bin of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scipy import stats

from .baseline import DIFFERENCE, q_values
from .crossed import CrossedInterval, InnerFactor, crossed_interval
from .representation import MEASURES

#: Columns of ``transfer_by_relation.csv``.
BY_RELATION_COLUMNS = ["method", "relation", "depth_bin", "depth_low", "depth_high", "measure", "value", "ci_low",
                       "ci_high", "ci_dof", "ci_note", "p_value", "q_value", "ci_images_low", "ci_images_high",
                       "n_generators",
                       "n_evaluators", "n_images", "n_pairs", "n_sets", "n_unstable_sets", "n_metamers", "n_bootstrap",
                       "confidence", "seed"]
#: The label of the bin of depth 1.
LOGITS_BIN = "1 (logits)"


def depth_bin(depth: float, edges: Sequence[float]) -> tuple[str, float, float]:
    """``(label, low, high)`` of the bin of ``depth``: ``[edges[k], edges[k+1])``, or depth 1 alone."""
    if depth >= 1.0:
        return LOGITS_BIN, 1.0, 1.0
    edges = np.asarray(edges, dtype=float)
    k = int(np.clip(np.searchsorted(edges, depth, side="right") - 1, 0, len(edges) - 2))
    return f"{edges[k]:.2f}-{edges[k + 1]:.2f}", float(edges[k]), float(edges[k + 1])


def measure_bounds(measure: str) -> tuple[float, float]:
    """The range of a representation measure's values: RSA and CKA in [-1, 1], a difference of
    two of them in [-2, 2]; unbounded for any other name."""
    base = measure.removesuffix(DIFFERENCE)
    if base not in MEASURES.names():
        return -np.inf, np.inf
    return (-2.0, 2.0) if measure.endswith(DIFFERENCE) else (-1.0, 1.0)


def model_factors(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The model factors of a relation's rows (:mod:`metamers.stats.crossed`): one factor
    ``models`` of two roles (``(N, 2)``: generator, evaluator) when some model is both a
    generator and an evaluator of the rows, else ``generators`` and ``evaluators``."""
    generators, evaluators = rows["generator"].to_numpy(), rows["evaluator"].to_numpy()
    if set(generators) & set(evaluators):
        return {"models": np.stack([generators, evaluators], axis=1)}
    return {"generators": generators, "evaluators": evaluators}


def _interval_columns(result: CrossedInterval, rows: pd.DataFrame, n_bootstrap: int) -> dict:
    images = result.one_factor.get("images", (np.nan, np.nan))
    return {"value": result.value, "ci_low": result.low, "ci_high": result.high, "ci_dof": result.dof,
            "ci_note": result.note, "ci_images_low": images[0], "ci_images_high": images[1],
            "n_generators": rows["generator"].nunique(), "n_evaluators": rows["evaluator"].nunique(),
            "n_images": result.levels.get("images", np.nan),
            "n_pairs": int(rows.groupby(["generator", "evaluator"]).ngroups), "n_bootstrap": n_bootstrap}


def recognizability_by_relation(rows: pd.DataFrame, n_bootstrap: int, confidence: float, seed: int) -> list[dict]:
    """Rows of ``recognizability`` from the passing metamers ``rows`` (columns method, relation,
    depth_bin, depth_low, depth_high, generator, layer, evaluator, image_id, correct)."""
    out = []
    keys = ["method", "relation", "depth_bin", "depth_low", "depth_high"]
    for key, group in rows.groupby(keys, sort=False):
        factors = {"images": group["image_id"].to_numpy(), **model_factors(group)}
        result = crossed_interval(group["correct"].to_numpy(dtype=float), factors, n_bootstrap, confidence, seed,
                                  bounds=(0.0, 1.0), scale_name="logit")
        out.append({**dict(zip(keys, key)), "measure": "recognizability",
                    **_interval_columns(result, group, n_bootstrap),
                    "n_sets": int(group.groupby(["generator", "layer", "evaluator"]).ngroups),
                    "n_unstable_sets": 0, "n_metamers": len(group)})
    return out


def representation_by_relation(sets: pd.DataFrame, n_bootstrap: int, confidence: float, seed: int,
                               draws: dict[tuple, np.ndarray] | None = None, n_images: int | None = None
                               ) -> list[dict]:
    """Rows of each representation measure from ``sets``: one row per (method, generator,
    generation layer, evaluator, measure) with its value averaged over the evaluator's layers
    (columns method, relation, depth_bin, depth_low, depth_high, generator, layer, evaluator,
    measure, value, n_images). ``draws`` maps the same key ``(method, generator, layer,
    evaluator, measure)`` to the set's aligned bootstrap values (averaged over the evaluator's
    layers), the images' factor; ``n_images`` is the size of their universe. Without draws (or
    with a set missing from them) a row has no interval and its note says so; with them, their
    number of samples replaces ``n_bootstrap``."""
    out = []
    keys = ["method", "relation", "depth_bin", "depth_low", "depth_high", "measure"]
    for key, group in sets.dropna(subset=["value"]).groupby(keys, sort=False):
        mine = [(draws or {}).get((r.method, r.generator, r.layer, r.evaluator, r.measure)) for r in group.itertuples()]
        values = group["value"].to_numpy(dtype=float)
        if all(d is not None for d in mine) and n_images:
            inner = InnerFactor("images", np.stack(mine, axis=1), int(n_images))
            result = crossed_interval(values, model_factors(group), inner.draws.shape[0], confidence, seed, inner,
                                      measure_bounds(key[-1]))
            boot = inner.draws.shape[0]
        else:
            result = CrossedInterval(float(values.mean()), np.nan, np.nan, np.nan, np.nan, {},
                                     "no bootstrap values of the sets' images: no interval")
            boot = 0
        p = float(stats.t.sf(result.value / np.sqrt(result.variance), result.dof)) \
            if key[-1].endswith(DIFFERENCE) and result.variance > 0 else np.nan
        out.append({**dict(zip(keys, key)), **_interval_columns(result, group, boot), "p_value": p,
                    "n_sets": len(group), "n_metamers": int(group["n_images"].sum()),
                    "n_unstable_sets": int(group["unstable"].astype(bool).sum()) if "unstable" in group else 0})
    return out


def with_q_values(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``q_value``: Benjamini-Hochberg over each family of a measure's differences
    from the natural-image baseline (every method, relation and depth bin of the table)."""
    table = table.copy()
    table["q_value"] = np.nan
    family = table["measure"].astype(str).str.endswith(DIFFERENCE)
    for _, index in table[family].groupby("measure").groups.items():
        table.loc[index, "q_value"] = q_values(table.loc[index, "p_value"].to_numpy(dtype=float))
    return table
