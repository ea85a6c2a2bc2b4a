"""Recognizability rows, the transfer table and the grid's pixel table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_artifacts import make_batch

from metamers.artifacts import read_metamer_batch, write_metamer_batch
from metamers.data import grid_selection, load_image_set
from metamers.figures.grid import grid_images
from metamers.models import load_model
from metamers.stats.recognizability import (
    RECOGNIZABILITY_COLUMNS,
    TRANSFER_COLUMNS,
    attach_verdicts,
    recognizability,
    transfer_table,
)


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": ["adam"] * 6,
            "generator": ["g"] * 6,
            "layer": ["l1", "l1", "l1", "l2", "l2", "l2"],
            "layer_index": [0, 0, 0, 1, 1, 1],
            "image_id": ["a", "b", "c"] * 2,
            "member": [0] * 6,
            "evaluator": ["e"] * 6,
            "evaluator_classes": [4] * 6,
            "true_label": [0, 1, 2, 0, 1, 2],
            "generator_pred_reference": [0, 1, 2, 0, 1, 2],
            "evaluator_pred_metamer": [0, 1, 3, 3, 3, 2],
            "evaluator_pred_reference": [0, 1, 2, 0, 1, 1],
        }
    )


def _test_rows(passed: dict[tuple[str, str], tuple[bool, bool]]) -> pd.DataFrame:
    """Metamer-test rows: per (layer, image) the (statistics, class) verdicts at the generation
    layer, plus a row at the other layer that must not matter."""
    rows = []
    for (layer, image), (stats, cls) in passed.items():
        for measured in ("l1", "l2"):
            rows.append({"method": "adam", "generator": "g", "layer": layer, "layer_index": int(layer[1]) - 1,
                         "image_id": image, "member": 0, "measured_layer": measured, "target": measured == layer,
                         "statistic": "spearman",
                         "passed": stats if measured == layer else not stats, "class_matches_reference": cls,
                         "pass_iteration": -1})
    return pd.DataFrame(rows)


def test_transfer_table_counts_only_passing_metamers():
    verdicts = {("l1", "a"): (True, True), ("l1", "b"): (True, False), ("l1", "c"): (True, True),
                ("l2", "a"): (False, True), ("l2", "b"): (True, False), ("l2", "c"): (False, True)}
    rows = attach_verdicts(_rows(), _test_rows(verdicts))
    assert list(rows.columns) == RECOGNIZABILITY_COLUMNS
    # a failing statistic or a changed class each fail the metamer; the other layer's rows do not count
    assert rows["passed_metamer_test"].tolist() == [True, False, True, False, False, False]
    table = transfer_table(rows)
    assert list(table.columns) == TRANSFER_COLUMNS
    assert table["layer"].tolist() == ["l1", "l2"]
    # l1: a (hit) and c (miss) pass, b (hit) fails -> 1 of 2 passing; 2 of 3 overall
    assert table["n_metamers_passing"].tolist() == [2, 0]
    assert table["accuracy_metamers_passing"].iloc[0] == pytest.approx(0.5)
    assert np.isnan(table["accuracy_metamers_passing"].iloc[1])  # no passing metamer: empty, not 0
    assert table["accuracy_metamers_all"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert table["accuracy_reference"].tolist() == pytest.approx([1.0, 2 / 3])
    assert table["n_metamers_all"].tolist() == [3, 3] and table["chance"].tolist() == [0.25, 0.25]
    # the empty cell stays empty in the CSV
    import io

    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    line = buffer.getvalue().splitlines()[2].split(",")
    assert line[TRANSFER_COLUMNS.index("accuracy_metamers_passing")] == ""


def test_a_classified_metamer_without_a_verdict_is_an_error():
    verdicts = {("l1", "a"): (True, True), ("l1", "b"): (True, True), ("l1", "c"): (True, True)}
    with pytest.raises(ValueError, match="3 classified metamer\\(s\\) have no metamer-test verdict, e.g. adam/g/l2/a"):
        attach_verdicts(_rows(), _test_rows(verdicts))


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
    rows = recognizability(read_metamer_batch(path, activations=False), model, ["relu1", "relu3"])
    assert list(rows.columns) == RECOGNIZABILITY_COLUMNS[:-1] and len(rows) == 4
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
    grid = grid_images([read_metamer_batch(p, activations=False) for p in paths], 2,
                       {"lenet5_standard": ["relu1", "relu3"]})
    assert grid["rows"].tolist() == ["reference", "adam | lenet5_standard | relu1", "adam | lenet5_standard | relu3"]
    assert grid["images"].shape == (3, 2, 28, 28, 1)
    first = make_batch(n=3, seed=1)  # relu1 came from seed 1
    np.testing.assert_array_equal(grid["images"][1, 0, ..., 0], first.metamer_uint8[0, 0])
