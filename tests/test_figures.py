"""What the convergence figures draw, against the table they are drawn from."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TEST_CONFIG

from metamers.figures import iterations_vs_distance, pass_by_iteration


def _rows() -> pd.DataFrame:
    """metamer_test.csv rows: 2 methods x 1 generator x 2 layers x 4 images, two measured layers each
    (only the generation layer's row counts)."""
    frames = []
    first = {("fast", "relu1"): [10, 20, 30, -1], ("slow", "relu1"): [100, 300, -1, -1],
             ("fast", "relu3"): [40, 40, 50, 60], ("slow", "relu3"): [-1, -1, -1, 900]}
    for (method, layer), passes in first.items():
        for measured in ("relu1", "relu3"):
            frames.append(pd.DataFrame({
                "method": method, "generator": "g", "layer": layer, "layer_index": ["relu1", "relu3"].index(layer),
                "image_id": [f"i{k}" for k in range(4)], "member": 0, "measured_layer": measured,
                "statistic": "pearson",
                "pass_iteration": passes if measured == layer else [7, 7, 7, 7],  # other layers' rows: ignored
                "metamer_l2": np.arange(4) + (0.5 if method == "fast" else 5.0),
            }))
    return pd.concat(frames, ignore_index=True)


def test_pass_by_iteration_draws_the_cumulative_share_of_images_that_passed():
    fig = pass_by_iteration(_rows())
    drawn = {(ax.get_title(), line.get_label()): line for ax in fig.axes for line in ax.get_lines()}
    fast1 = drawn[("g · relu1", "fast")]
    np.testing.assert_array_equal(fast1.get_xdata()[1:4], [10, 20, 30])
    np.testing.assert_allclose(fast1.get_ydata(), [0, 25, 50, 75, 75])  # 3 of 4 passed, the 4th never
    np.testing.assert_allclose(drawn[("g · relu3", "slow")].get_ydata(), [0, 25, 25])
    assert all(ax.get_xscale() == "log" for ax in fig.axes if ax.get_lines())


def test_iterations_vs_distance_has_one_point_per_passing_image():
    fig = iterations_vs_distance(_rows())
    points = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    assert len(points) == 3 + 2 + 4 + 1  # the images that passed at their generation layer
    expected = sorted([(0.5, 10), (1.5, 20), (2.5, 30), (5.0, 100), (6.0, 300), (0.5, 40), (1.5, 40), (2.5, 50),
                       (3.5, 60), (8.0, 900)])
    assert sorted(map(tuple, points.tolist())) == expected
    assert fig.axes[0].get_xlabel().startswith("pixel L2 distance")


def test_layer_markers_follow_depth_when_a_joint_generator_starts_deeper():
    rows = _rows()
    joint = rows[rows["layer"] == "relu3"].assign(generator="joint", layer_index=0)
    fig = iterations_vs_distance(pd.concat([joint, rows], ignore_index=True))
    labels = fig.legends[0].texts if fig.legends else []
    names = [t.get_text() for t in labels]
    assert names.index("relu1") < names.index("relu3")


def _representation_rows() -> pd.DataFrame:
    """representation.csv rows: 1 method, 1 generator at 2 layers, 2 evaluators at 2 layers each,
    passing-only and all sets, two measures with known values."""
    rows = []
    for g_index, g in enumerate(["relu1", "relu3"]):
        for evaluator in ("e1", "e2"):
            for e_index, layer in enumerate(["a", "b"]):
                for passing in (True, False):
                    for measure in ("debiased_cka", "at_threshold_all"):
                        value = 0.1 * (g_index + 1) + 0.01 * (e_index + 1) + (0.5 if evaluator == "e2" else 0)
                        rows.append({"method": "m", "generator": "g", "layer": g, "layer_index": g_index,
                                     "passing_only": passing, "evaluator": evaluator, "evaluator_layer": layer,
                                     "evaluator_depth": (e_index + 1) / 2, "measure": measure,
                                     "value": value if passing else -9.0})
    return pd.DataFrame(rows)


def test_representation_heatmap_shows_the_passing_sets_values_by_layer():
    from metamers.figures import representation_heatmap

    fig = representation_heatmap(_representation_rows(), measures=("debiased_cka", "at_threshold_all"))
    heatmaps = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in heatmaps][:2] == ["m\ng → e1", "m\ng → e2"] and len(heatmaps) == 4
    texts = [t.get_text() for t in heatmaps[1].texts]
    assert texts == ["0.61", "0.62", "0.71", "0.72"]  # rows: generation layers; columns: evaluator layers
    assert [t.get_text() for t in heatmaps[1].get_yticklabels()] == ["relu1", "relu3"]
    assert heatmaps[0].get_ylabel() == "generation layer"


def test_representation_vs_recognizability_has_one_point_per_set_and_evaluator():
    from metamers.figures import representation_vs_recognizability
    from metamers.figures.representation import representation_points

    rows = _representation_rows()
    transfer = pd.DataFrame([{"method": "m", "generator": "g", "layer": g, "evaluator": e,
                              "accuracy_metamers_passing": acc, "n_metamers_passing": 5}
                             for (g, e), acc in {("relu1", "e1"): 0.2, ("relu1", "e2"): 0.9, ("relu3", "e1"): 0.4,
                                                 ("relu3", "e2"): 1.0}.items()])
    points = representation_points(rows, transfer, "debiased_cka")
    # the mean over the evaluator's two layers (0.01 and 0.02 added)
    assert sorted(points["representation"].round(4)) == [0.115, 0.215, 0.615, 0.715]
    fig = representation_vs_recognizability(rows, transfer)
    offsets = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    assert sorted(map(tuple, np.round(offsets, 4).tolist())) == [(20.0, 0.115), (40.0, 0.215), (90.0, 0.615),
                                                                 (100.0, 0.715)]
    r = np.corrcoef([0.2, 0.9, 0.4, 1.0], [0.115, 0.615, 0.215, 0.715])[0, 1]
    assert fig.axes[0].get_title().startswith(f"Pearson r = {r:.2f}")


def test_ood_by_layer_draws_each_evaluators_auroc_by_generation_layer():
    from metamers.figures import ood_by_layer

    ood = pd.DataFrame([{"method": "m", "generator": "g", "layer": g, "layer_index": i, "passing_only": p,
                         "evaluator": "e1", "auroc": a if p else 0.0}
                        for i, (g, a) in enumerate([("relu1", 0.55), ("relu3", 0.9)]) for p in (True, False)])
    fig = ood_by_layer(ood)
    line = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "g → e1"][0]
    np.testing.assert_allclose(line.get_ydata(), [0.55, 0.9])
    assert fig.axes[0].get_ylabel().startswith("AUROC")


def _image_rows() -> pd.DataFrame:
    """representation_images.csv rows: generator g at relu1, 3 images, read by itself and by e2 at two layers."""
    rows = []
    for evaluator in ("g", "e2"):
        for layer in ("a", "relu1"):
            for k in range(3):
                for s, offset in (("reference", 0.0), ("metamer", 1.0)):
                    rows.append({"method": "m", "generator": "g", "layer": "relu1", "layer_index": 0, "member": 0,
                                 "evaluator": evaluator, "evaluator_layer": layer, "image_id": f"i{k}", "set": s,
                                 "passed_metamer_test": k != 2, "max_softmax": 0.9 if s == "reference" else 0.3 + 0.1 * k,
                                 "x": k + offset + (10 if evaluator == "e2" and layer == "relu1" else 0), "y": -k})
    return pd.DataFrame(rows)


def test_mds_embedding_joins_each_metamer_to_its_reference_as_another_model_reads_them():
    from metamers.figures import mds_embedding

    fig = mds_embedding(_image_rows())
    ax = fig.axes[0]
    assert ax.get_title() == "g · relu1\nread by e2 at relu1"  # another model, at the layer of the same name
    joins = [ln for ln in ax.get_lines()]
    assert sorted((tuple(ln.get_xdata()), tuple(ln.get_ydata())) for ln in joins) == [
        ((10.0, 11.0), (0, 0)), ((11.0, 12.0), (-1, -1)), ((12.0, 13.0), (-2, -2))]
    passed, failed = ax.collections[1].get_offsets(), ax.collections[2].get_offsets()
    assert passed.tolist() == [[11.0, 0.0], [12.0, -1.0]] and failed.tolist() == [[13.0, -2.0]]


def test_msp_histograms_count_references_once_and_only_passing_metamers():
    from metamers.figures import msp_histograms

    fig = msp_histograms(_image_rows())
    ax = [a for a in fig.axes if a.get_title() == "m · read by e2"][0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["references (n=3)", "passing metamers (n=2)"]
    heights = [round(p.get_height(), 6) for p in ax.patches if p.get_height() > 0]
    assert sorted(heights) == [50.0, 50.0, 100.0]  # references all at 0.9; the two passing metamers at 0.3 and 0.4


def test_transfer_by_relation_draws_one_line_per_relation_with_its_crossed_interval():
    from metamers.figures import transfer_by_relation

    rows = []
    for relation, base in (("self", 1.0), ("other_architecture", 0.5)):
        for k, (label, low, high) in enumerate((("0.00-0.50", 0.0, 0.5), ("1 (logits)", 1.0, 1.0))):
            for measure in ("recognizability", "debiased_cka"):
                value = base - 0.1 * k
                rows.append({"method": "m", "relation": relation, "depth_bin": label, "depth_low": low,
                             "depth_high": high, "measure": measure, "value": value, "ci_low": value - 0.05,
                             "ci_high": value + 0.05})
    fig = transfer_by_relation(pd.DataFrame(rows))
    top, bottom = fig.axes[0], fig.axes[1]
    assert top.get_ylabel() == "passing metamers recognized (%)" and bottom.get_ylabel() == "debiased CKA"
    series = {c.get_label(): c for c in top.containers}
    assert sorted(series) == ["other architecture", "self"]
    np.testing.assert_allclose(series["self"].lines[0].get_ydata(), [100, 90])   # recognizability in percent
    np.testing.assert_allclose(series["other architecture"].lines[0].get_ydata(), [50, 40])
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["0.00-0.50", "1 (logits)"]
    spans = sorted(round(float(seg[1][1] - seg[0][1]), 6) for c in bottom.containers
                   for seg in c.lines[2][0].get_segments())
    assert spans == [0.1] * 4  # every interval bar spans ci_high - ci_low
    empty = transfer_by_relation(pd.DataFrame(rows).iloc[:0])
    assert "no metamer passed" in empty.axes[0].texts[0].get_text()


def test_transfer_matrix_pools_a_bins_layers_and_orders_models():
    from metamers.figures import transfer_matrix

    rows = [{"method": "m", "generator": g, "layer": layer, "evaluator": e, "depth_bin": b, "depth_low": lo,
             "depth_high": hi, "n_metamers_passing": n, "accuracy_metamers_passing": acc}
            for g, layer, b, lo, hi, e, n, acc in [
                ("a", "l1", "0.00-0.50", 0.0, 0.5, "a", 4, 1.0), ("a", "l2", "0.00-0.50", 0.0, 0.5, "a", 1, 0.0),
                ("a", "l1", "0.00-0.50", 0.0, 0.5, "b", 4, 0.5), ("b", "l1", "0.00-0.50", 0.0, 0.5, "a", 2, 0.5),
                ("a", "l3", "1 (logits)", 1.0, 1.0, "b", 3, 1 / 3)]]
    fig = transfer_matrix(pd.DataFrame(rows), order=["b", "a"])
    first, logits = [ax for ax in fig.axes if ax.get_title()][:2]
    assert first.get_title() == "m\ndepth 0.00-0.50" and logits.get_title() == "m\ndepth 1 (logits)"
    assert [t.get_text() for t in first.get_yticklabels()] == ["b", "a"]  # the given order
    assert [t.get_text() for t in first.get_xticklabels()] == ["b", "a"]
    # rows b, a; columns b, a: (b, b) none; (b, a) 50; (a, b) 50; (a, a) (4 + 0) / 5 = 80
    assert [t.get_text() for t in first.texts] == ["50", "50", "80"]
    assert [t.get_text() for t in logits.texts] == ["33"]


def test_joint_vs_single_compares_joint_and_member_metamers_on_held_out_evaluators_only():
    from metamers.config import validate_config
    from metamers.figures import joint_vs_single
    from metamers.figures.joint import joint_sets, joint_vs_single_rows

    accuracy = {("j", "relu2", "held1"): 1.0, ("j", "relu2", "held2"): 0.9, ("j", "relu2", "a"): 1.0,
                ("a", "relu2", "held1"): 0.8, ("a", "relu2", "held2"): 0.7, ("a", "relu2", "a"): 1.0,
                ("b", "relu3", "held1"): 0.5, ("b", "relu3", "held2"): math.nan,  # none of b's passed
                ("b", "relu2", "held1"): 0.1}  # b at another layer than its joint term: not shown
    transfer = pd.DataFrame([{"method": "m", "generator": g, "layer": layer, "evaluator": e,
                              "accuracy_metamers_passing": acc, "n_metamers_passing": 0 if math.isnan(acc) else 4,
                              "chance": 0.1} for (g, layer, e), acc in accuracy.items()])
    joint = {"generator": "j", "layer": "relu2", "members": [["a", "relu2"], ["b", "relu3"]]}
    rows = joint_vs_single_rows(transfer, joint)
    assert set(rows["evaluator"]) == {"held1", "held2"}  # member a is not held out
    got = {(r.metamers, r.evaluator): r.percent for r in rows.itertuples()}
    assert got == pytest.approx({("joint: j | relu2", "held1"): 100.0, ("joint: j | relu2", "held2"): 90.0,
                                 ("single: a | relu2", "held1"): 80.0, ("single: a | relu2", "held2"): 70.0,
                                 ("single: b | relu3", "held1"): 50.0, ("single: b | relu3", "held2"): math.nan},
                                nan_ok=True)
    fig = joint_vs_single(transfer, [joint])
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches if p.get_height() > 0)
    assert heights == [50.0, 70.0, 80.0, 90.0, 100.0]  # one bar each, the empty one not drawn
    assert fig.axes[0].get_ylabel().startswith("passing metamers")
    # the config side: every layer of each joint generator with its members' layers
    config = validate_config({**yaml.safe_load(TEST_CONFIG.read_text()),
                              "generators": {"lenet5_standard": {"layers": ["relu1"]},
                                             "both": {"members": ["lenet5_standard", "lenet5_robust"],
                                                      "layers": ["relu2", {"name": "deep", "members": {
                                                          "lenet5_standard": "relu3", "lenet5_robust": "linear2"}}]}}})
    assert joint_sets(config) == [
        {"generator": "both", "layer": "relu2", "members": [["lenet5_standard", "relu2"], ["lenet5_robust", "relu2"]]},
        {"generator": "both", "layer": "deep", "members": [["lenet5_standard", "relu3"], ["lenet5_robust", "linear2"]]}]
