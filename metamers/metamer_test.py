"""The metamer test (Feather et al. 2023): a metamer counts when its generator cannot tell it
from its reference.

1. At a measured layer, each statistic between the metamer's and the reference's
   activations *exceeds* the null threshold (the most similar pair of different natural
   images); an undefined (NaN) value never passes.
2. The generator assigns the metamer the class it assigns the reference.

Measured on the 8-bit images that are saved and shown to other models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch

from .artifacts import read_metamer_batch
from .layers import LayerReader
from .nulls import NullDistribution
from .registry import Classifier
from .statistics import statistic

#: Columns of ``metamer_test.csv``: one row per (method, generator, layer, image, measured layer, statistic).
METAMER_TEST_COLUMNS = [
    "method",
    "generator",
    "layer",
    "layer_index",
    "image_id",
    "measured_layer",
    "measured_layer_index",
    "statistic",
    "value",
    "threshold",
    "threshold_rule",
    "n_pairs",
    "passed",
    "true_label",
    "generator_pred_reference",
    "generator_pred_metamer",
    "class_matches_reference",
    "class_matches_label",
    "pass_iteration",
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
]


def passes(values: Mapping[str, torch.Tensor], thresholds: Mapping[str, float]) -> torch.Tensor:
    """True where every statistic exceeds its threshold (NaN fails)."""
    out = None
    for name, threshold in thresholds.items():
        ok = values[name] > threshold  # NaN > t is False
        out = ok if out is None else out & ok
    if out is None:
        raise ValueError("no statistics to test")
    return out


@torch.no_grad()
def measure(
    model: Classifier, layers: Sequence[str], metamer: torch.Tensor, reference: torch.Tensor,
    statistics: Iterable[str],
) -> dict[str, dict[str, torch.Tensor]]:
    """``{layer: {statistic: (N,) values}}`` between metamer and reference batches in [0, 1]."""
    reader = LayerReader(model, list(layers))
    a_met, a_ref = reader(metamer), reader(reference)
    return {layer: {s: statistic(s)(a_met[layer], a_ref[layer]).cpu() for s in statistics} for layer in layers}


def run_metamer_test(
    model: Classifier,
    artifacts: Iterable[str | Path],
    nulls: Mapping[str, Mapping[str, NullDistribution]],
    layer_order: Sequence[str],
) -> pd.DataFrame:
    """The metamer test of every metamer in ``artifacts`` (all made by ``model``) at every
    layer in ``layer_order``, against ``nulls[layer][statistic]``."""
    device = next(iter(model.buffers())).device
    stats = sorted({s for layer in layer_order for s in nulls[layer]})
    frames = []
    for path in artifacts:
        batch = read_metamer_batch(path, activations=False)
        met = torch.from_numpy(batch.metamer_uint8).float().div(255).to(device)
        ref = torch.from_numpy(batch.reference).float().div(255).to(device)
        values = measure(model, layer_order, met, ref, stats)
        with torch.no_grad():
            pred_met = model(met).argmax(1).cpu().numpy()
        pred_ref = batch.generator_prediction
        for k, measured in enumerate(layer_order):
            for name, null in nulls[measured].items():
                v = values[measured][name].numpy()
                frames.append(
                    pd.DataFrame(
                        {
                            "method": batch.attrs["method"],
                            "generator": batch.attrs["generator"],
                            "layer": batch.attrs["layer"],
                            "layer_index": list(layer_order).index(batch.attrs["layer"]),
                            "image_id": batch.image_ids,
                            "measured_layer": measured,
                            "measured_layer_index": k,
                            "statistic": name,
                            "value": v,
                            "threshold": null.threshold,
                            "threshold_rule": null.threshold_rule,
                            "n_pairs": null.n_pairs,
                            "passed": v > null.threshold,
                            "true_label": batch.labels,
                            "generator_pred_reference": pred_ref,
                            "generator_pred_metamer": pred_met,
                            "class_matches_reference": pred_met == pred_ref,
                            "class_matches_label": pred_met == batch.labels,
                            "pass_iteration": batch.pass_iteration,
                        }
                    )
                )
    if not frames:
        return pd.DataFrame(columns=METAMER_TEST_COLUMNS)
    return pd.concat(frames, ignore_index=True)[METAMER_TEST_COLUMNS]


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (method, generator, layer): the fraction of images whose every statistic passes at
    the generation layer, whose class matches, and that pass both (the metamers)."""
    own = rows[rows["measured_layer"] == rows["layer"]]
    per_image = own.groupby(["method", "generator", "layer", "layer_index", "image_id"], sort=False).agg(
        statistics_pass=("passed", "all"),
        class_pass=("class_matches_reference", "first"),
        pass_iteration=("pass_iteration", "first"),
    )
    per_image["metamer"] = per_image["statistics_pass"] & per_image["class_pass"]
    per_image["pass_iteration"] = per_image["pass_iteration"].where(per_image["pass_iteration"] >= 0)
    out = (
        per_image.groupby(["method", "generator", "layer", "layer_index"], sort=False)
        .agg(
            n_images=("metamer", "size"),
            fraction_statistics_pass=("statistics_pass", "mean"),
            fraction_class_pass=("class_pass", "mean"),
            fraction_metamers=("metamer", "mean"),
            median_pass_iteration=("pass_iteration", "median"),
        )
        .reset_index()
    )
    return out.sort_values(["method", "generator", "layer_index"], ignore_index=True)[SUMMARY_COLUMNS]
