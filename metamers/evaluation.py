"""Recognizability: how every evaluator classifies every metamer, and the transfer table.

Only real metamers count (as published: other networks classify only metamers that passed
the metamer test): ``recognizability.csv`` records per metamer whether it passed the test at
its generation layer, and ``transfer.csv`` gives the accuracy over passing metamers with
their number, beside the accuracy over all metamers in separate columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .artifacts import read_metamer_batch
from .images import grid_selection, to_input
from .metamer_test import METAMER_KEY, metamer_verdicts
from .registry import Classifier

#: Columns of ``recognizability.csv``, one row per (method, generator, layer, image, evaluator).
RECOGNIZABILITY_COLUMNS = [
    "method",
    "generator",
    "layer",
    "layer_index",
    "image_id",
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
def predict(model: Classifier, images_uint8: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Classes that ``model`` assigns to 8-bit images ``(N, C, H, W)``, adapted to its input."""
    device = next(iter(model.buffers())).device
    out = []
    for start in range(0, len(images_uint8), chunk):
        x = torch.from_numpy(np.asarray(images_uint8[start : start + chunk])).float() / 255
        out.append(model(to_input(x, model.input_shape).to(device)).argmax(1).cpu())
    return torch.cat(out).numpy() if out else np.empty(0, dtype=np.int64)


def recognizability(
    artifacts: Iterable[str | Path],
    evaluator: Classifier,
    layer_order: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    """Classify every metamer (8-bit form) and its reference with ``evaluator``.

    Parameters
    ----------
    artifacts
        Metamer artifact paths.
    evaluator
        The classifying model.
    layer_order
        Generator -> its layers from early to late (gives ``layer_index``).
    """
    frames = []
    for path in artifacts:
        batch = read_metamer_batch(path, activations=False)
        gen, layer = batch.attrs["generator"], batch.attrs["layer"]
        frames.append(
            pd.DataFrame(
                {
                    "method": batch.attrs["method"],
                    "generator": gen,
                    "layer": layer,
                    "layer_index": list(layer_order[gen]).index(layer),
                    "image_id": batch.image_ids,
                    "evaluator": evaluator.name,
                    "evaluator_classes": evaluator.num_classes,
                    "true_label": batch.labels,
                    "generator_pred_reference": batch.generator_prediction,
                    "evaluator_pred_metamer": predict(evaluator, batch.metamer_uint8),
                    "evaluator_pred_reference": predict(evaluator, batch.reference),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=CLASSIFICATION_COLUMNS)
    return pd.concat(frames, ignore_index=True)[CLASSIFICATION_COLUMNS]


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


def grid_images(
    artifacts: Iterable[str | Path], count: int, layer_order: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The small table of pixels that the metamer grid figure reads.

    Returns a dict with ``image_ids`` (K,), ``rows`` (R,) labels (``reference`` first, then
    ``method | generator | layer``) and ``images`` ``(R, K, H, W, C)`` uint8, every image
    adapted to the largest size and channel count among the artifacts.
    """
    batches = [read_metamer_batch(p, activations=False) for p in artifacts]
    if not batches:
        raise ValueError("no metamer artifacts to show")
    ids, labels = [], []
    for b in batches:
        for i, label in zip(b.image_ids, b.labels):
            if i not in ids:
                ids.append(i)
                labels.append(int(label))
    chosen = grid_selection(ids, labels, count)
    channels = max(b.reference.shape[1] for b in batches)
    height = max(b.reference.shape[2] for b in batches)
    width = max(b.reference.shape[3] for b in batches)
    shape = (channels, height, width)

    def lookup(attr: str, keep: Iterable) -> dict[str, np.ndarray]:
        out = {}
        for b in keep:
            for k, i in enumerate(b.image_ids):
                if i in chosen and i not in out:
                    x = torch.from_numpy(getattr(b, attr)[k : k + 1]).float() / 255
                    out[i] = (to_input(x, shape)[0].permute(1, 2, 0) * 255).round().byte().numpy()
        return out

    refs = lookup("reference", batches)
    rows, images = ["reference"], [np.stack([refs[i] for i in chosen])]
    keys = sorted(
        {(b.attrs["method"], b.attrs["generator"], b.attrs["layer"]) for b in batches},
        key=lambda k: (k[0], k[1], list(layer_order[k[1]]).index(k[2])),
    )
    blank = np.zeros((height, width, channels), np.uint8)
    for key in keys:
        group = [b for b in batches if (b.attrs["method"], b.attrs["generator"], b.attrs["layer"]) == key]
        mets = lookup("metamer_uint8", group)
        rows.append(" | ".join(key))
        images.append(np.stack([mets.get(i, blank) for i in chosen]))
    return {"image_ids": np.asarray(chosen), "rows": np.asarray(rows), "images": np.stack(images)}
