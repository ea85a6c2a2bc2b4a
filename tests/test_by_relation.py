"""Transfer by relation: depth bins, pooled recognizability with cluster-bootstrap intervals over
images and over model pairs (against explicit resampling), and the rule on a two-LeNet study."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from metamers.artifacts.draws import RepresentationDraws, read_draws, write_draws
from metamers.artifacts.files import ArtifactError
from metamers.config import validate_config
from metamers.jobs.relations import LAYER_DEPTH_COLUMNS, PAIR_COLUMNS, generation_depths
from metamers.stats.by_relation import (
    BY_RELATION_COLUMNS,
    LOGITS_BIN,
    depth_bin,
    recognizability_by_relation,
    representation_by_relation,
)
from metamers.stats.resampling import aligned_bootstrap_samples, percentile_interval
from test_jobs import Files, rule


@pytest.mark.parametrize(("depth", "expected"), [
    (0.0, ("0.00-0.25", 0.0, 0.25)), (0.2, ("0.00-0.25", 0.0, 0.25)), (0.25, ("0.25-0.50", 0.25, 0.5)),
    (0.9, ("0.75-1.00", 0.75, 1.0)), (0.999, ("0.75-1.00", 0.75, 1.0)), (1.0, (LOGITS_BIN, 1.0, 1.0)),
])
def test_depth_bins_are_half_open_and_the_logits_are_their_own(depth, expected):
    assert depth_bin(depth, [0, 0.25, 0.5, 0.75, 1]) == expected


def _metamers(rng):
    rows = []
    for g, e in [("g1", "e1"), ("g1", "e2"), ("g2", "e1")]:
        for image in range(6):
            rows.append({"method": "m", "relation": "r", "depth_bin": "b", "depth_low": 0.0, "depth_high": 0.5,
                         "generator": g, "layer": "l", "evaluator": e, "image_id": f"i{image}",
                         "correct": float(rng.random() < 0.6)})
    return pd.DataFrame(rows)


def test_recognizability_is_pooled_with_intervals_over_images_and_pairs():
    frame = _metamers(np.random.default_rng(3))
    (row,) = recognizability_by_relation(frame, 500, 0.9, seed=7)
    assert row["value"] == pytest.approx(frame["correct"].mean())
    assert (row["n_pairs"], row["n_sets"], row["n_metamers"], row["n_images"]) == (3, 3, 18, 6)
    # the same draws, resampled explicitly: all rows of a drawn image (pair) each time it is drawn
    rng = np.random.default_rng(7)
    for unit, low, high in ((["image_id"], "ci_images_low", "ci_images_high"),
                            (["generator", "evaluator"], "ci_pairs_low", "ci_pairs_high")):
        groups = [g["correct"].to_numpy() for _, g in frame.groupby(unit, sort=True)]
        draws = rng.integers(0, len(groups), size=(500, len(groups)))
        values = [np.concatenate([groups[k] for k in d]).mean() for d in draws]
        assert (row[low], row[high]) == pytest.approx(percentile_interval(np.array(values), 0.9), abs=1e-12)
    assert row["ci_images_low"] <= row["value"] <= row["ci_images_high"]


def test_representation_measures_average_sets_and_resample_pairs():
    sets = pd.DataFrame({"method": "m", "relation": "r", "depth_bin": "b", "depth_low": 0.0, "depth_high": 0.5,
                         "generator": ["g1", "g1", "g2"], "layer": ["a", "b", "a"], "evaluator": "e",
                         "measure": "debiased_cka", "value": [0.2, 0.4, 0.9], "n_images": [10, 10, 8]})
    (row,) = representation_by_relation(sets, 200, 0.95, seed=0)
    assert row["value"] == pytest.approx(0.5) and (row["n_pairs"], row["n_sets"], row["n_metamers"]) == (2, 3, 28)
    assert np.isnan(row["ci_images_low"]) and 0.3 - 1e-12 <= row["ci_pairs_low"] <= row["ci_pairs_high"] <= 0.9
    (single,) = representation_by_relation(sets[sets["generator"] == "g2"], 200, 0.95, seed=0)
    assert np.isnan(single["ci_pairs_low"])  # one pair: nothing to resample


def test_transfer_by_relation_rule_on_two_lenets(study_config, tmp_path):
    config = copy.deepcopy(study_config)
    config["generators"]["lenets_joint"] = {"members": ["lenet5_standard", "lenet5_robust"], "layers": ["relu2"]}
    config = validate_config(config)
    depths = tmp_path / "layer_depths.csv"
    rule("layer_depths", config, tmp_path, output=Files([str(depths)]))
    table = pd.read_csv(depths)
    assert list(table.columns) == LAYER_DEPTH_COLUMNS
    assert table.set_index(["model", "layer"])["depth"].to_dict()[("lenet5_standard", "relu2")] == 0.5  # 5th of 10
    assert generation_depths(config, table)[("lenets_joint", "relu2")] == 0.5
    rows = []
    for g, layer in [("lenet5_standard", "relu1"), ("lenet5_robust", "linear2"), ("lenets_joint", "relu2")]:
        for e in ("lenet5_standard", "lenet5_robust"):
            for k in range(4):
                rows.append({"method": "adam", "generator": g, "layer": layer, "layer_index": 0,
                             "image_id": f"i{k}", "evaluator": e, "evaluator_classes": 10, "true_label": k,
                             "generator_pred_reference": k, "evaluator_pred_metamer": k if k < 3 or g != e else 0,
                             "evaluator_pred_reference": k, "passed_metamer_test": k != 3 or e == "lenet5_robust"})
    rec = tmp_path / "recognizability.csv"
    pd.DataFrame(rows).to_csv(rec, index=False)
    rep = tmp_path / "representation.csv"
    pd.DataFrame([{"method": "adam", "generator": "lenet5_robust", "layer": "linear2", "passing_only": True,
                   "evaluator": "lenet5_standard", "evaluator_layer": el, "measure": "debiased_cka", "value": v,
                   "n_images": 4} for el, v in (("relu1", 0.2), ("relu2", 0.6))]).to_csv(rep, index=False)
    # the set's aligned bootstrap values at its two evaluator layers (a representation job's draws file)
    rng = np.random.default_rng(5)
    layer_draws = {("linear2", el, "debiased_cka"): rng.normal(v, 0.1, 200) for el, v in (("relu1", 0.2), ("relu2", 0.6))}
    draws_file = write_draws(tmp_path / "d.npz", RepresentationDraws("adam", "lenet5_robust", "lenet5_standard",
                                                                     layer_draws, ["i0", "i1", "i2", "i3"], 0, 200))
    out, pairs = tmp_path / "transfer_by_relation.csv", tmp_path / "transfer_pairs.csv"
    rule("transfer_by_relation", config, tmp_path, input=Files(recognizability=str(rec), representation=str(rep),
                                                                depths=str(depths), draws=[str(draws_file)]),
         output=Files(table=str(out), pairs=str(pairs)))
    got = pd.read_csv(out)
    assert list(got.columns) == BY_RELATION_COLUMNS
    key = got.set_index(["relation", "depth_bin", "measure"])
    # the robust LeNet's logit metamers read by the standard one: 3 passing, all recognized
    assert key.loc[("same_architecture_robust_to_standard", LOGITS_BIN, "recognizability"), "value"] == 1.0
    assert key.loc[("same_architecture_robust_to_standard", LOGITS_BIN, "recognizability"), "n_metamers"] == 3
    # self at the logits: the robust LeNet on its own 4 passing metamers, one wrong
    assert key.loc[("self", LOGITS_BIN, "recognizability"), "value"] == 0.75
    # the joint generator is self for both members at relu2 (depth 0.5): 3 + 4 passing metamers
    joint = key.loc[("self", "0.50-0.75", "recognizability")]
    assert joint["value"] == 1.0 and joint["n_pairs"] == 2 and joint["n_metamers"] == 7
    cka = key.loc[("same_architecture_robust_to_standard", LOGITS_BIN, "debiased_cka")]
    assert cka["value"] == pytest.approx(0.4)
    expected = np.percentile((layer_draws[("linear2", "relu1", "debiased_cka")] +
                              layer_draws[("linear2", "relu2", "debiased_cka")]) / 2, [2.5, 97.5])
    assert (cka["ci_images_low"], cka["ci_images_high"]) == pytest.approx(tuple(expected))
    assert cka["n_images"] == 4 and np.isnan(cka["ci_pairs_low"])  # one pair: no interval over pairs
    assert set(got["relation"]) == {"self", "same_architecture_standard_to_robust", "same_architecture_robust_to_standard"}
    per_pair = pd.read_csv(pairs).set_index(["generator", "layer", "evaluator"])
    assert len(per_pair) == 6 and list(pd.read_csv(pairs).columns) == PAIR_COLUMNS
    assert per_pair.loc[("lenet5_robust", "linear2", "lenet5_robust"), "accuracy_metamers_passing"] == 0.75
    assert per_pair.loc[("lenet5_standard", "relu1", "lenet5_standard"), "n_metamers_passing"] == 3
    assert per_pair.loc[("lenets_joint", "relu2", "lenet5_robust"), "relation"] == "self"


def test_aligned_bootstrap_samples_resample_shared_references_together():
    universe, n_boot = 12, 4000
    big = np.array([0, 2, 3, 5, 7, 8, 11])
    small = np.array([2, 5, 11])  # a subset: fewer passing metamers
    s_big = aligned_bootstrap_samples(big, universe, n_boot, seed=7)
    s_small = aligned_bootstrap_samples(small, universe, n_boot, seed=7)
    assert s_big.shape == (n_boot, 7) and s_small.shape == (n_boot, 3)
    assert np.array_equal(s_small, aligned_bootstrap_samples(small, universe, n_boot, seed=7))  # seeded
    assert not np.array_equal(s_small, aligned_bootstrap_samples(small, universe, n_boot, seed=8))
    # each sample is an ordinary bootstrap sample: every member equally likely, draws independent
    counts = np.bincount(s_small.ravel(), minlength=3) / s_small.size
    np.testing.assert_allclose(counts, 1 / 3, atol=0.01)
    pairs = np.bincount(3 * s_small[:, 0] + s_small[:, 1], minlength=9) / n_boot
    np.testing.assert_allclose(pairs, 1 / 9, atol=0.015)
    # aligned: the small set's members that the big set's sample b drew come first in its own sample b
    for b in range(200):
        shared = [small.tolist().index(x) for x in big[s_big[b]] if x in small]
        assert s_small[b, : len(shared)].tolist() == shared[:3]
    with pytest.raises(ValueError, match="at least 2 images"):
        aligned_bootstrap_samples(np.array([3]), universe, 10, 0)
    with pytest.raises(ValueError, match="distinct positions in 0..11"):
        aligned_bootstrap_samples(np.array([3, 12]), universe, 10, 0)


def test_draws_files_round_trip_and_must_be_aligned(tmp_path):
    from metamers.jobs.relations import set_draws

    a = RepresentationDraws("adam", "g", "e", {("l", "el1", "m"): np.arange(3.0), ("l", "el2", "m"): np.ones(3)},
                            ["i0", "i1"], 0, 3)
    got = read_draws(write_draws(tmp_path / "a.npz", a))
    assert got.universe == ["i0", "i1"] and set(got.draws) == set(a.draws) and (got.method, got.evaluator) == ("adam", "e")
    np.testing.assert_array_equal(got.draws[("l", "el1", "m")], np.arange(3.0))
    draws, n = set_draws([tmp_path / "a.npz"])
    np.testing.assert_array_equal(draws[("adam", "g", "l", "e", "m")], [0.5, 1.0, 1.5])  # mean over evaluator layers
    assert n == 2
    write_draws(tmp_path / "b.npz", RepresentationDraws("adam", "h", "e", {}, ["i0", "i2"], 0, 3))
    with pytest.raises(ArtifactError, match="b.npz' are not aligned with .*a.npz'"):
        set_draws([tmp_path / "a.npz", tmp_path / "b.npz"])
    (tmp_path / "c.npz").write_bytes(b"not a file")
    with pytest.raises(ArtifactError, match="cannot read representation draws .*c.npz"):
        read_draws(tmp_path / "c.npz")
