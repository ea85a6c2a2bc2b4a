"""Recognizability: how every evaluator classifies every metamer, and the transfer table.

Only real metamers count (as published: other networks classify only metamers that passed
the metamer test): ``recognizability.csv`` records per metamer whether it passed the test at
its generation layer, and ``transfer.csv`` gives the accuracy over passing metamers with
their number, beside the accuracy over all metamers in separate columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..artifacts.metamers import MetamerBatch
from ..data.pixels import from_uint8, to_input
from ..labels import ClassMap, decide
from ..models.classifier import Classifier
from .metamer_test import METAMER_KEY, metamer_verdicts

#: Columns of ``recognizability.csv``, one row per (method, generator, layer, image, member, evaluator)
#: (``member``: :data:`~.metamer_test.METAMER_TEST_COLUMNS`).
RECOGNIZABILITY_COLUMNS = [
    "method",
    "generator",
    "layer",
    "layer_index",
    "image_id",
    "member",
    "evaluator",
    "evaluator_classes",
    "true_label",
    "generator_pred_reference",
    "evaluator_pred_metamer",
    "evaluator_pred_reference",
    "passed_metamer_test",
]
#: Columns of :func:`recognizability` (before :func:`attach_verdicts` adds ``passed_metamer_test``).
CLASSIFICATION_COLUMNS = RECOGNIZABILITY_COLUMNS[:-1]

#: Columns of ``transfer.csv``, one row per (method, generator, layer, evaluator):
#: accuracy over the metamers that passed the metamer test (empty when none did) with their
#: number, and over all metamers, and on the references.
TRANSFER_COLUMNS = [
    "method",
    "generator",
    "layer",
    "layer_index",
    "evaluator",
    "n_metamers_passing",
    "accuracy_metamers_passing",
    "n_metamers_all",
    "accuracy_metamers_all",
    "accuracy_reference",
    "chance",
]


@torch.no_grad()
def predict(model: Classifier, images_uint8: np.ndarray, chunk: int = 256, class_map: ClassMap | None = None
            ) -> np.ndarray:
    """Classes that ``model`` assigns to 8-bit images ``(N, C, H, W)``, adapted to its input: its
    highest logit, or with ``class_map`` the image label it decides (:func:`metamers.labels.decide`)."""
    out = []
    for start in range(0, len(images_uint8), chunk):
        x = from_uint8(images_uint8[start : start + chunk])
        logits = model(to_input(x, model.input_shape).to(model.device)).cpu()
        out.append(decide(logits, class_map))
    return torch.cat(out).numpy() if out else np.empty(0, dtype=np.int64)


def recognizability(batch: MetamerBatch, evaluator: Classifier, layer_order: Sequence[str],
                    class_map: ClassMap | None = None, n_classes: int | None = None) -> pd.DataFrame:
    """How ``evaluator`` classifies the metamers of one artifact (8-bit form) and their
    references: rows of :data:`CLASSIFICATION_COLUMNS`.

    Parameters
    ----------
    batch
        A metamer artifact's content.
    evaluator
        The classifying model.
    layer_order
        The generator's layers from early to late (gives ``layer_index``).
    class_map, n_classes
        Decide in the images' label space through this map, of ``n_classes`` classes
        (``evaluator_classes``, so chance is ``1 / n_classes``); default the evaluator's own classes.
    """
    return pd.DataFrame(
        {
            "method": batch.attrs["method"],
            "generator": batch.attrs["generator"],
            "layer": batch.attrs["layer"],
            "layer_index": list(layer_order).index(batch.attrs["layer"]),
            "image_id": batch.image_ids,
            "member": batch.member,
            "evaluator": evaluator.name,
            "evaluator_classes": n_classes if class_map is not None and n_classes else evaluator.num_classes,
            "true_label": batch.labels,
            "generator_pred_reference": batch.generator_prediction,
            "evaluator_pred_metamer": predict(evaluator, batch.metamer_uint8, class_map=class_map),
            "evaluator_pred_reference": predict(evaluator, batch.reference, class_map=class_map),
        }
    )[CLASSIFICATION_COLUMNS]


def attach_verdicts(rows: pd.DataFrame, test_rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` of :func:`recognizability` with each metamer's ``passed_metamer_test`` (at its
    generation layer, every configured statistic and the class) from the metamer test's rows.

    Raises
    ------
    ValueError
        A classified metamer that the metamer test has no verdict for (names the first few).
    """
    verdicts = metamer_verdicts(test_rows)[[*METAMER_KEY, "passed_metamer_test"]]
    out = rows.drop(columns=["passed_metamer_test"], errors="ignore").merge(
        verdicts, on=METAMER_KEY, how="left", validate="many_to_one")
    missing = out[out["passed_metamer_test"].isna()]
    if len(missing):
        names = ["/".join(map(str, k)) for k in missing[METAMER_KEY].drop_duplicates().head(5).itertuples(index=False)]
        raise ValueError(f"{len(missing)} classified metamer(s) have no metamer-test verdict, e.g. {', '.join(names)}")
    out["passed_metamer_test"] = out["passed_metamer_test"].astype(bool)
    return out[RECOGNIZABILITY_COLUMNS]


def transfer_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of every evaluator on the metamers of every (method, generator, layer): over the
    metamers that passed the metamer test (NaN where none did) and over all of them."""
    keys = ["method", "generator", "layer", "layer_index", "evaluator"]
    passing = rows["passed_metamer_test"].astype(bool)
    hit = rows["evaluator_pred_metamer"] == rows["true_label"]
    df = rows.assign(
        hit_metamer=hit,
        hit_passing=hit.astype(float).where(passing),  # NaN for failed metamers: the mean skips them
        passing=passing,
        hit_reference=rows["evaluator_pred_reference"] == rows["true_label"],
    )
    out = (
        df.groupby(keys, sort=False)
        .agg(
            n_metamers_passing=("passing", "sum"),
            accuracy_metamers_passing=("hit_passing", "mean"),
            n_metamers_all=("image_id", "size"),
            accuracy_metamers_all=("hit_metamer", "mean"),
            accuracy_reference=("hit_reference", "mean"),
            evaluator_classes=("evaluator_classes", "first"),
        )
        .reset_index()
    )
    out["n_metamers_passing"] = out["n_metamers_passing"].astype(int)
    out["chance"] = 1.0 / out.pop("evaluator_classes")
    return out.sort_values(["method", "generator", "layer_index", "evaluator"], ignore_index=True)[
        TRANSFER_COLUMNS
    ]
