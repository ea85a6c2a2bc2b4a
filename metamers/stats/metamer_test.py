"""The metamer test (Feather et al. 2023): a metamer counts when its generator cannot tell it
from its reference.

1. At a measured layer, each statistic between the metamer's and the reference's
   activations is at least the null threshold (the most similar pair of different natural
   images): the published code fails a metamer only when a statistic is *below* the null's
   maximum, so a tie passes (``comparison: greater`` is the strict alternative). An
   undefined (NaN) value never passes.
2. The generator assigns the metamer the class it assigns the reference.

A metamer *counts* (in recognizability and transfer) only when it passes both parts at its
generation layer (:func:`metamer_verdicts`).

Measured on the 8-bit images that are saved and shown to other models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd
import torch

from ..artifacts.metamers import MetamerBatch
from ..data.pixels import from_uint8
from ..labels import ClassMap, decide
from ..models.classifier import Classifier
from ..models.layers import LayerReader
from ..synthesis.objective import model_input
from ..tables import concat_tables
from .comparisons import compare
from .distances import DISTANCES
from .nulls import NullDistribution
from .statistics import STATISTICS

#: Per-image distance columns: ``metamer_<distance>`` (8-bit metamer vs reference) and
#: ``start_<distance>`` (starting point vs reference), for every :data:`~.distances.DISTANCES`.
DISTANCE_COLUMNS = [f"{group}_{name}" for group in ("metamer", "start") for name in DISTANCES]

#: Columns of ``metamer_test.csv``: one row per (method, generator, layer, image, member, measured
#: layer, statistic). ``member``: the metamer's index among its reference's (a method's
#: ``diversity``; 0 for one metamer per reference).
METAMER_TEST_COLUMNS = [
    "method",
    "generator",
    "layer",
    "layer_index",
    "image_id",
    "member",
    "measured_model",
    "measured_layer",
    "measured_layer_index",
    "target",
    "statistic",
    "value",
    "threshold",
    "threshold_rule",
    "n_pairs",
    "comparison",
    "passed",
    "true_label",
    "generator_pred_reference",
    "generator_pred_metamer",
    "class_matches_reference",
    "class_matches_label",
    "pass_iteration",
    *DISTANCE_COLUMNS,
    "seconds_per_iteration",
]

#: Columns of ``metamer_test_summary.csv``: one row per (method, generator, layer).
SUMMARY_COLUMNS = [
    "method",
    "generator",
    "layer",
    "layer_index",
    "n_images",
    "fraction_statistics_pass",
    "fraction_class_pass",
    "fraction_metamers",
    "median_pass_iteration",
    *(f"median_{c}" for c in DISTANCE_COLUMNS),
    "ms_per_iteration",
]


@torch.no_grad()
def measure(
    model: Classifier, layers: Sequence[str], metamer: torch.Tensor, reference: torch.Tensor,
    statistics: Iterable[str],
) -> dict[str, dict[str, torch.Tensor]]:
    """``{layer: {statistic: (N,) values}}`` between metamer and reference batches in [0, 1]."""
    reader = LayerReader(model, list(layers))
    a_met, a_ref = reader(metamer), reader(reference)
    return {layer: {s: STATISTICS[s].paired(a_met[layer], a_ref[layer]).cpu() for s in statistics} for layer in layers}


def batch_targets(batch: MetamerBatch) -> list[tuple[str, str]]:
    """The (model, layer) targets an artifact's metamers were made to match."""
    return [(t["model"], t["layer"]) for t in json.loads(batch.attrs["targets"])]


def metamer_test_rows(
    model: Classifier,
    batch: MetamerBatch,
    nulls: Mapping[str, Mapping[str, NullDistribution]],
    layer_order: Sequence[str],
    comparison: str = "at_least",
    generator_layers: Sequence[str] | None = None,
    class_map: ClassMap | None = None,
) -> pd.DataFrame:
    """The metamer test of the metamers of one artifact by ``model`` (the generator, or a member
    of a joint generator) at every layer in ``layer_order`` (the model's measured layers, early
    to late), against ``nulls[layer][statistic]`` by ``comparison``: rows of
    :data:`METAMER_TEST_COLUMNS`. ``target`` marks the rows of a (model, layer) that the metamers
    were made to match; ``generator_layers`` (default ``layer_order``) gives ``layer_index``.
    ``class_map`` (a model whose classes are not the images' labels) makes ``model``'s classes
    its decisions in the images' label space, as published for the 16-way ImageNet decision
    (the class test compares the 16-way decisions of metamer and reference)."""
    stats = sorted({s for layer in layer_order for s in nulls[layer]})
    met = model_input(from_uint8(batch.metamer_uint8).to(model.device), model)
    ref = model_input(from_uint8(batch.reference).to(model.device), model)
    values = measure(model, layer_order, met, ref, stats)
    with torch.no_grad():
        pred_met = decide(model(met), class_map).cpu().numpy()
        pred_ref = decide(model(ref), class_map).cpu().numpy()
    targets = batch_targets(batch)
    order = list(generator_layers if generator_layers is not None else layer_order)
    frames = []
    for k, measured in enumerate(layer_order):
        for name, null in nulls[measured].items():
            v = values[measured][name].numpy()
            frames.append(
                pd.DataFrame(
                    {
                        "method": batch.attrs["method"],
                        "generator": batch.attrs["generator"],
                        "layer": batch.attrs["layer"],
                        "layer_index": order.index(batch.attrs["layer"]),
                        "image_id": batch.image_ids,
                        "member": batch.member,
                        "measured_model": model.name,
                        "measured_layer": measured,
                        "measured_layer_index": k,
                        "target": (model.name, measured) in targets,
                        "statistic": name,
                        "value": v,
                        "threshold": null.threshold,
                        "threshold_rule": null.threshold_rule,
                        "n_pairs": null.n_pairs,
                        "comparison": comparison,
                        "passed": compare(v, null.threshold, comparison),
                        "true_label": batch.labels,
                        "generator_pred_reference": pred_ref,
                        "generator_pred_metamer": pred_met,
                        "class_matches_reference": pred_met == pred_ref,
                        "class_matches_label": pred_met == batch.labels,
                        "pass_iteration": batch.pass_iteration,
                        **{f"{g}_{d}": batch.distances[g][d] for g in ("metamer", "start") for d in DISTANCES},
                        "seconds_per_iteration": batch.attrs["seconds_per_iteration"],
                    }
                )
            )
    return concat_tables(frames, METAMER_TEST_COLUMNS)


#: Key of one metamer in every table.
METAMER_KEY = ["method", "generator", "layer", "image_id", "member"]
#: Columns of :func:`metamer_verdicts`.
VERDICT_COLUMNS = [*METAMER_KEY, "layer_index", "statistics_pass", "class_pass", "passed_metamer_test",
                   "pass_iteration", *DISTANCE_COLUMNS, "seconds_per_iteration"]


def metamer_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per metamer (``METAMER_KEY``): whether every configured statistic passed at its
    generation layer (``statistics_pass``; for a joint generator, at every member's target
    layer), whether the generator (every member) kept the reference's class (``class_pass``),
    and both (``passed_metamer_test``: the metamers that count); with the per-image distance and
    timing columns where ``rows`` has them."""
    own = rows[rows["target"].astype(bool)]
    per_image = own.groupby([*METAMER_KEY, "layer_index"], sort=False).agg(
        statistics_pass=("passed", "all"),
        class_pass=("class_matches_reference", "all"),
        pass_iteration=("pass_iteration", "first"),
        **{c: (c, "first") for c in (*DISTANCE_COLUMNS, "seconds_per_iteration") if c in own},
    ).reset_index()
    per_image["statistics_pass"] = per_image["statistics_pass"].astype(bool)
    per_image["class_pass"] = per_image["class_pass"].astype(bool)
    per_image["passed_metamer_test"] = per_image["statistics_pass"] & per_image["class_pass"]
    return per_image[[c for c in VERDICT_COLUMNS if c in per_image]]


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (method, generator, layer): the fraction of images whose every statistic passes at
    the generation layer, whose class matches, and that pass both (the metamers); the median
    first passing iteration (of the images that passed in the loop), the median distances of the
    metamers and of their starting points from the references, and the median time of one step
    of a job's batch in milliseconds."""
    per_image = metamer_verdicts(rows)
    per_image["pass_iteration"] = per_image["pass_iteration"].where(per_image["pass_iteration"] >= 0)
    out = (
        per_image.groupby(["method", "generator", "layer", "layer_index"], sort=False)
        .agg(
            n_images=("passed_metamer_test", "size"),
            fraction_statistics_pass=("statistics_pass", "mean"),
            fraction_class_pass=("class_pass", "mean"),
            fraction_metamers=("passed_metamer_test", "mean"),
            median_pass_iteration=("pass_iteration", "median"),
            **{f"median_{c}": (c, "median") for c in DISTANCE_COLUMNS},
            ms_per_iteration=("seconds_per_iteration", "median"),
        )
        .reset_index()
    )
    out["ms_per_iteration"] *= 1000
    return out.sort_values(["method", "generator", "layer_index"], ignore_index=True)[SUMMARY_COLUMNS]
