"""Recognizability rows, the transfer table and the grid's pixel table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from metamers.artifacts import write_metamer_batch
from metamers.evaluation import (
    RECOGNIZABILITY_COLUMNS,
    TRANSFER_COLUMNS,
    grid_images,
    recognizability,
    transfer_table,
)
from metamers.images import grid_selection, load_image_set
from metamers.registry import load_model
from test_artifacts import make_batch


def test_transfer_table_by_hand():
    rows = pd.DataFrame(
        {
            "method": ["adam"] * 6,
            "generator": ["g"] * 6,
            "layer": ["l1", "l1", "l1", "l2", "l2", "l2"],
            "layer_index": [0, 0, 0, 1, 1, 1],
            "image_id": ["a", "b", "c"] * 2,
            "evaluator": ["e"] * 6,
            "evaluator_classes": [4] * 6,
            "true_label": [0, 1, 2, 0, 1, 2],
            "generator_pred_reference": [0, 1, 2, 0, 1, 2],
            "evaluator_pred_metamer": [0, 1, 3, 3, 3, 2],
            "evaluator_pred_reference": [0, 1, 2, 0, 1, 1],
        }
    )
    table = transfer_table(rows)
    assert list(table.columns) == TRANSFER_COLUMNS
    assert table["layer"].tolist() == ["l1", "l2"]
    assert table["accuracy_metamer"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert table["accuracy_reference"].tolist() == pytest.approx([1.0, 2 / 3])
    assert table["n_images"].tolist() == [3, 3] and table["chance"].tolist() == [0.25, 0.25]


def test_recognizability_of_metamers_equal_to_references(tmp_path):
    """When the saved metamer is the reference itself, the evaluator's two predictions agree
    and equal its prediction computed directly."""
    images = load_image_set({"type": "mnist", "per_class": 1, "seed": 0})
    ids = images.ids[:4]
    pixels = np.stack([images.pixels(i) for i in ids])[:, None]
    batch = make_batch(n=4)
    batch.image_ids, batch.labels = ids, np.array([images.labels[i] for i in ids])
    batch.reference, batch.metamer_uint8 = pixels, pixels.copy()
    path = write_metamer_batch(tmp_path / "a.h5", batch)
    model = load_model({"lenet": {"source": "advertorch", "weights": "clntrained"}}, "lenet")
    rows = recognizability([path], model, {"lenet5_standard": ["relu1", "relu3"]})
    assert list(rows.columns) == RECOGNIZABILITY_COLUMNS and len(rows) == 4
    with torch.no_grad():
        direct = model(torch.from_numpy(pixels).float() / 255).argmax(1).numpy()
    np.testing.assert_array_equal(rows["evaluator_pred_metamer"], direct)
    np.testing.assert_array_equal(rows["evaluator_pred_reference"], direct)
    assert rows["layer_index"].unique().tolist() == [1]
    assert rows["image_id"].tolist() == ids and rows["evaluator"].unique().tolist() == ["lenet"]


def test_grid_selection_takes_one_per_class_first():
    assert grid_selection(["a", "b", "c", "d", "e"], [0, 0, 1, 1, 2], 4) == ["a", "c", "e", "b"]


def test_grid_rows_follow_layer_order(tmp_path):
    paths = []
    for k, layer in enumerate(["relu3", "relu1"]):
        batch = make_batch(n=3, seed=k)
        batch.attrs = {**batch.attrs, "layer": layer}
        paths.append(write_metamer_batch(tmp_path / f"{layer}.h5", batch))
    grid = grid_images(paths, 2, {"lenet5_standard": ["relu1", "relu3"]})
    assert grid["rows"].tolist() == ["reference", "adam | lenet5_standard | relu1", "adam | lenet5_standard | relu3"]
    assert grid["images"].shape == (3, 2, 28, 28, 1)
    first = make_batch(n=3, seed=1)  # relu1 came from seed 1
    np.testing.assert_array_equal(grid["images"][1, 0, ..., 0], first.metamer_uint8[0, 0])
