"""Transfer by relation: depth bins, pooled recognizability and representation measures with
crossed intervals over images and models (:mod:`metamers.stats.crossed`), and the rule on a
two-LeNet study."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import scipy.stats

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
    with_q_values,
)
from metamers.stats.baseline import q_values
from metamers.stats.crossed import InnerFactor, crossed_interval
from metamers.stats.resampling import aligned_bootstrap_samples
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


def test_recognizability_is_pooled_with_a_crossed_interval_over_images_generators_and_evaluators():
    frame = _metamers(np.random.default_rng(3))
    (row,) = recognizability_by_relation(frame, 500, 0.9, seed=7)
    assert row["value"] == pytest.approx(frame["correct"].mean())
    assert (row["n_pairs"], row["n_sets"], row["n_metamers"], row["n_images"]) == (3, 3, 18, 6)
    assert (row["n_generators"], row["n_evaluators"]) == (2, 2)
    # the project's crossed interval with images, generators and evaluators as its factors
    expected = crossed_interval(frame["correct"].to_numpy(), {"images": frame["image_id"], "generators":
                                frame["generator"], "evaluators": frame["evaluator"]}, 500, 0.9, 7, bounds=(0, 1),
                                scale_name="logit")
    assert (row["ci_low"], row["ci_high"], row["ci_dof"]) == (expected.low, expected.high, expected.dof)
    assert row["ci_note"] == "rests on few models (2 generators, 2 evaluators)"
    assert (row["ci_images_low"], row["ci_images_high"]) == expected.one_factor["images"]
    assert 0 <= row["ci_low"] <= row["value"] <= row["ci_high"] <= 1
    # self: every generator is its evaluator, one factor of models
    own = frame.assign(evaluator=frame["generator"])
    (row,) = recognizability_by_relation(own, 500, 0.9, seed=7)
    expected = crossed_interval(own["correct"].to_numpy(), {"images": own["image_id"], "models": own["generator"]},
                                500, 0.9, 7, bounds=(0, 1), scale_name="logit")
    assert (row["ci_low"], row["ci_high"]) == (expected.low, expected.high)
    # one generator: no interval over models, and the row says why
    (row,) = recognizability_by_relation(frame[frame["generator"] == "g1"], 500, 0.9, seed=7)
    assert np.isnan(row["ci_low"]) and row["ci_note"] == "one level of generators: no interval over generators"


def test_representation_measures_average_sets_with_images_resampled_inside_each_set():
    sets = pd.DataFrame({"method": "m", "relation": "r", "depth_bin": "b", "depth_low": 0.0, "depth_high": 0.5,
                         "generator": ["g1", "g1", "g2", "g2"], "layer": ["a", "b", "a", "a"],
                         "evaluator": ["e1", "e1", "e1", "e2"], "measure": "debiased_cka",
                         "value": [0.2, 0.4, 0.9, 0.7], "n_images": [10, 10, 8, 8]})
    (row,) = representation_by_relation(sets, 200, 0.95, seed=0)  # no draws: no interval
    assert row["value"] == pytest.approx(0.55) and (row["n_pairs"], row["n_sets"], row["n_metamers"]) == (3, 4, 36)
    assert np.isnan(row["ci_low"]) and row["ci_note"] == "no bootstrap values of the sets' images: no interval"
    rng = np.random.default_rng(1)
    draws = {("m", r.generator, r.layer, r.evaluator, "debiased_cka"): rng.normal(r.value, 0.05, 300)
             for r in sets.itertuples()}
    (row,) = representation_by_relation(sets, 200, 0.95, 0, draws, n_images=12)
    inner = InnerFactor("images", np.stack(list(draws.values()), axis=1), 12)
    expected = crossed_interval(sets["value"].to_numpy(), {"generators": sets["generator"],
                                "evaluators": sets["evaluator"]}, 300, 0.95, 0, inner, bounds=(-1, 1))
    assert (row["ci_low"], row["ci_high"], row["n_bootstrap"], row["n_images"]) == (expected.low, expected.high,
                                                                                    300, 12)
    assert row["ci_low"] == -1.0  # 2 generators and 2 evaluators: a wide interval, clipped to the measure's range
    assert row["ci_low"] <= row["value"] <= row["ci_high"] and np.isnan(row["p_value"])
    # a difference from the baseline: a one-sided p-value from the crossed t, q-values over its family
    diffs = pd.concat([sets.assign(measure="debiased_cka_minus_baseline", depth_bin=b, value=sets["value"] - shift)
                       for b, shift in (("b1", 0.0), ("b2", 0.5))])
    diff_draws = {(k[0], k[1], k[2], k[3], "debiased_cka_minus_baseline"): v - shift
                  for shift in (0.0,) for k, v in draws.items()}
    rows = representation_by_relation(diffs[diffs["depth_bin"] == "b1"], 200, 0.95, 0, diff_draws, n_images=12)
    expected = crossed_interval(sets["value"].to_numpy(), {"generators": sets["generator"],
                                "evaluators": sets["evaluator"]}, 300, 0.95, 0, inner)
    assert rows[0]["p_value"] == pytest.approx(scipy.stats.t.sf(expected.value / np.sqrt(expected.variance),
                                                                expected.dof))
    table = with_q_values(pd.DataFrame([{**rows[0], "measure": "debiased_cka_minus_baseline"},
                                        {**rows[0], "measure": "debiased_cka_minus_baseline", "p_value": 0.5},
                                        {**rows[0], "measure": "debiased_cka", "p_value": 0.01}]))
    assert table["q_value"].tolist()[:2] == pytest.approx(list(q_values([rows[0]["p_value"], 0.5])))
    assert np.isnan(table["q_value"].iloc[2])


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
                             "image_id": f"i{k}", "member": 0, "evaluator": e, "evaluator_classes": 10, "true_label": k,
                             "generator_pred_reference": k, "evaluator_pred_metamer": k if k < 3 or g != e else 0,
                             "evaluator_pred_reference": k, "passed_metamer_test": k != 3 or e == "lenet5_robust"})
    rec = tmp_path / "recognizability.csv"
    pd.DataFrame(rows).to_csv(rec, index=False)
    rep = tmp_path / "representation.csv"
    # two members' sets (a diversity term's), of 4 and 3 passing metamers, with the same values
    pd.DataFrame([{"method": "adam", "generator": "lenet5_robust", "layer": "linear2", "member": m, "passing_only": True,
                   "evaluator": "lenet5_standard", "evaluator_layer": el, "measure": "debiased_cka", "value": v,
                   "n_images": n, "unstable": True} for m, n in ((0, 4), (1, 3))
                  for el, v in (("relu1", 0.2), ("relu2", 0.6))]).to_csv(rep, index=False)
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
    assert cka["n_unstable_sets"] == 1  # 4 images: too few for a stable debiased CKA
    assert cka["n_metamers"] == 4 + 3  # each member's set once, at any evaluator layer
    assert cka["n_images"] == 4 and np.isnan(cka["ci_low"])  # one generator and evaluator: no interval over models
    assert cka["ci_note"] == "one level of generators, evaluators: no interval over generators, evaluators"
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
