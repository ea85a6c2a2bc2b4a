"""The metamer test: pools, stopping at success, the per-layer test table and its summary."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from test_artifacts import make_batch

from metamers.artifacts import read_metamer_batch, write_metamer_batch
from metamers.data import load_image_set
from metamers.data.pixels import to_uint8
from metamers.data.pools import pool_images
from metamers.labels import ClassMap
from metamers.models import load_model
from metamers.stats.metamer_test import (
    DISTANCE_COLUMNS,
    METAMER_TEST_COLUMNS,
    SUMMARY_COLUMNS,
    metamer_test_rows,
    summarize,
)
from metamers.stats.nulls import NullDistribution
from metamers.stats.pairs import NullError
from metamers.synthesis import MetamerSynthesis
from metamers.synthesis.methods import resolve_method
from metamers.synthesis.objective import Objective, Target

MNIST_2 = {"type": "mnist", "per_class": 2, "seed": 0}


def test_held_out_references_take_the_training_digits_as_their_pool():
    refs = load_image_set({"type": "mnist_test", "per_class": 2, "seed": 0})
    assert refs.held_out
    pool, ids = pool_images(dict(type="mnist_test", per_class=2, seed=0), None, refs.ids, n_pairs=1_000_000)
    assert pool.name == "mnist" and not pool.held_out
    assert ids == pool.ids and len(ids) == 5000  # the whole pool: 12,497,500 possible pairs
    assert not set(ids) & set(refs.ids)


def test_default_pool_is_the_source_minus_the_references():
    refs = load_image_set(MNIST_2).ids
    pool, ids = pool_images(MNIST_2, None, refs, n_pairs=1000)
    assert len(ids) == 4980 and not set(ids) & set(refs)
    assert ids == [i for i in pool.ids if i not in set(refs)]


def test_references_are_left_out_of_a_configured_pool_with_a_warning(caplog):
    refs = load_image_set(MNIST_2).ids
    with caplog.at_level(logging.WARNING, logger="metamers.data.pools"):
        _, ids = pool_images(MNIST_2, {"type": "mnist"}, refs, n_pairs=10)
    assert f"the null pool holds 20 reference image(s), left out of the null: {', '.join(sorted(refs))}" in caplog.text
    assert len(ids) == 4980 and not set(ids) & set(refs)


def test_too_small_pool_gives_the_numbers(shared):
    folder = {"type": "folder", "root": str(shared / "data" / "imagenet16")}
    with pytest.raises(NullError, match="the null pool has 47 images, which give 1081 pairs; 2000 pairs need at least 64 images"):
        pool_images(folder, folder, [], n_pairs=2000)


@pytest.fixture(scope="module")
def lenet():
    return load_model({"lenet5_standard": {"source": "advertorch", "weights": "clntrained"}}, "lenet5_standard")


def test_stopping_at_success_freezes_each_image(lenet):
    images = load_image_set({"type": "mnist", "per_class": 1, "seed": 0, "limit": 3})
    ref = images.tensor(images.ids, lenet.input_shape)
    settings = resolve_method("adam", {"iterations": 400, "check_every": 5, "on_success": "stop"})
    thresholds = {"snr_db": 25.0, "pearson": 0.9}
    synth = MetamerSynthesis.single(lenet, "relu2", ref, settings, seed=3, thresholds=thresholds)
    snapshots, skipped = [], []
    check = synth.check

    def checked(*frozen_and_last):
        """The check as run (frozen images skipped), against the check of every image."""
        snapshots.append(synth.x.detach().clone())
        ok, values = check(*frozen_and_last)
        every_ok, every_values = check()
        assert torch.equal(ok, every_ok)  # a frozen image still passes, with the values it had
        for name, v in values.items():
            torch.testing.assert_close(v, every_values[name], rtol=0, atol=1e-6)
        skipped.append(int(frozen_and_last[0].sum()) if frozen_and_last[1] is not None else 0)
        return ok, values

    synth.check = checked
    result = synth.synthesize(progress=False)
    assert max(skipped) > 0  # some checks ran without the images that had passed
    assert (result.pass_iteration > 0).all() and len(set(result.pass_iteration.tolist())) > 1
    assert result.iterations_run == result.pass_iteration.max() < 400
    assert np.isnan(result.loss[:, result.iterations_run:]).all()
    assert not np.isnan(result.loss[:, : result.iterations_run]).any()
    for i, p in enumerate(result.pass_iteration):
        k = list(result.test_iterations).index(p)
        assert result.test_passed[i, k:].all() and not result.test_passed[i, :k].any()
        # from its pass iteration on, the image's pixels do not change
        for later in snapshots[k:]:
            assert torch.equal(later[i], snapshots[k][i])
        assert np.array_equal(result.metamer[i], snapshots[k][i].numpy())
        for values in result.test_values.values():
            assert np.all(values[i, k:] == values[i, k])
    # while an image that passed later still moved after the first image froze
    late = int(np.argmax(result.pass_iteration))
    k_early = list(result.test_iterations).index(result.pass_iteration.min())
    assert not torch.equal(snapshots[k_early][late], snapshots[k_early + 1][late])


def test_continue_runs_to_the_budget_and_records_the_first_pass(lenet):
    images = load_image_set({"type": "mnist", "per_class": 1, "seed": 0, "limit": 2})
    ref = images.tensor(images.ids, lenet.input_shape)
    settings = resolve_method("adam", {"iterations": 200, "check_every": 25, "on_success": "continue"})
    result = MetamerSynthesis.single(lenet, "relu2", ref, settings, seed=3,
                              thresholds={"pearson": 0.97}).synthesize(progress=False)
    assert result.iterations_run == 200 and not np.isnan(result.loss).any()
    assert result.test_iterations.tolist() == list(range(0, 201, 25))
    for i, p in enumerate(result.pass_iteration):
        first = result.test_iterations[result.test_passed[i]].min()
        assert p == first
    assert result.test_values["pearson"].shape == (2, 9)


def test_record_runs_like_continue_and_tests_each_image_only_until_its_first_pass(lenet):
    """``record``: every image runs to the budget with the trajectory of ``continue`` (same last
    iterate and losses), its first pass is the same, it is not tested after it (its later checks
    repeat the values it passed with), and ``first_pass`` is its iterate at that check."""
    images = load_image_set({"type": "mnist", "per_class": 1, "seed": 0, "limit": 3})
    ref = images.tensor(images.ids, lenet.input_shape)
    out = {}
    for mode in ("continue", "record"):
        settings = resolve_method("adam", {"iterations": 300, "check_every": 5, "on_success": mode})
        synth = MetamerSynthesis.single(lenet, "relu2", ref, settings, seed=3,
                                        thresholds={"snr_db": 25.0, "pearson": 0.9})
        tested = []
        check = synth.check

        def counting(frozen=None, last=None, check=check, tested=tested):
            tested.append(0 if frozen is None else int((~frozen).sum()))
            return check(frozen, last)

        synth.check = counting
        out[mode] = (synth.synthesize(progress=False), tested)
    (cont, n_cont), (rec, n_rec) = out["continue"], out["record"]
    assert (rec.pass_iteration >= 0).all() and rec.iterations_run == 300
    assert len(set(rec.pass_iteration.tolist())) > 1  # the images pass at different checks
    np.testing.assert_array_equal(rec.metamer, cont.metamer)
    np.testing.assert_array_equal(rec.loss, cont.loss)
    np.testing.assert_array_equal(rec.pass_iteration, cont.pass_iteration)
    assert cont.first_pass is None
    # each check tests the images that have not passed before it, and none after the last first pass
    checks = range(0, int(rec.pass_iteration.max()) + 1, 5)
    assert n_rec == [int((rec.pass_iteration >= t).sum()) for t in checks]
    assert rec.test_iterations.tolist() == list(checks) and len(n_cont) == 61
    for i, p in enumerate(rec.pass_iteration):
        k = list(rec.test_iterations).index(p)
        assert (rec.test_values["pearson"][i, k:] == rec.test_values["pearson"][i, k]).all()
        # the kept iterate is the one tested then: its 8-bit image has the recorded values
        kept = to_uint8(torch.from_numpy(rec.first_pass[i:i + 1])).float() / 255
        again = synth.objective.test(kept, synth.reference_classes,
                                     "at_least", torch.tensor([i]))[1]
        for name in ("pearson", "snr_db"):
            assert float(again[name]) == pytest.approx(float(rec.test_values[name][i, k]), abs=1e-5)
    assert not np.array_equal(rec.first_pass, rec.metamer)
    np.testing.assert_array_equal(rec.first_pass_or_metamer(), rec.first_pass)  # every image passed
    np.testing.assert_array_equal(cont.first_pass_or_metamer(), cont.metamer)  # no first passes kept
    rec.first_pass[1] = np.nan  # an image that never passed: its metamer stands in
    mixed = rec.first_pass_or_metamer()
    np.testing.assert_array_equal(mixed[1], rec.metamer[1])
    np.testing.assert_array_equal(mixed[[0, 2]], rec.first_pass[[0, 2]])


def test_checking_needs_thresholds(lenet):
    with pytest.raises(ValueError, match="checks the metamer test every 10 iterations, which needs the null thresholds"):
        MetamerSynthesis.single(lenet, "relu1", torch.rand(1, 1, 28, 28), resolve_method("adam", {"check_every": 10}), seed=0)


def _null(stat: str, threshold: float) -> NullDistribution:
    return NullDistribution(stat, threshold, "max", 1000, 0, {1.0: threshold}, np.ones(3), np.arange(4.0),
                            np.array([threshold]))


@pytest.mark.parametrize("comparison", ["at_least", "greater"])
def test_metamer_test_table_by_hand(lenet, tmp_path, comparison):
    """A metamer equal to its reference has rho = r = 1 and an infinite SNR: it passes every
    threshold below those values, and a threshold of exactly 1 under the published rule only."""
    images = load_image_set({"type": "mnist", "per_class": 1, "seed": 0, "limit": 3})
    pixels = np.stack([images.pixels(i) for i in images.ids])[:, None]
    batch = make_batch(n=3)
    batch.image_ids, batch.labels = images.ids, np.array([images.labels[i] for i in images.ids])
    batch.reference, batch.metamer_uint8 = pixels, pixels.copy()
    batch.metamer_uint8[2] = 255 - pixels[2]  # the third "metamer" is the negative image
    with torch.no_grad():
        pred = lenet(torch.from_numpy(pixels).float() / 255).argmax(1).numpy()
    batch.generator_prediction = pred
    batch.attrs = {**batch.attrs, "layer": "relu1", "generator": "lenet5_standard",
                   "targets": json.dumps([{"model": "lenet5_standard", "layer": "relu1", "weight": 1.0}])}
    path = write_metamer_batch(tmp_path / "a.h5", batch)
    nulls = {
        "relu1": {"spearman": _null("spearman", 0.9), "snr_db": _null("snr_db", 20.0)},
        "linear2": {"spearman": _null("spearman", 1.0), "snr_db": _null("snr_db", 20.0)},
    }
    rows = metamer_test_rows(lenet, read_metamer_batch(path, activations=False), nulls, ["relu1", "linear2"],
                             comparison)
    assert list(rows.columns) == METAMER_TEST_COLUMNS and len(rows) == 3 * 2 * 2
    assert (rows["comparison"] == comparison).all()
    compare = np.greater_equal if comparison == "at_least" else np.greater
    np.testing.assert_array_equal(rows["passed"], compare(rows["value"], rows["threshold"]))
    same = rows[rows["image_id"] != images.ids[2]]
    assert (same.loc[same["statistic"] == "spearman", "value"] == 1.0).all()  # exactly
    assert np.isinf(same.loc[same["statistic"] == "snr_db", "value"]).all()
    assert same.loc[same["measured_layer"] == "relu1", "passed"].all()
    tie = same.loc[(same["measured_layer"] == "linear2") & (same["statistic"] == "spearman"), "passed"]
    assert tie.all() if comparison == "at_least" else not tie.any()
    assert same["class_matches_reference"].all()
    neg = rows[rows["image_id"] == images.ids[2]]
    assert not neg["passed"].all()
    summary = summarize(rows)
    assert list(summary.columns) == SUMMARY_COLUMNS and len(summary) == 1
    neg_class = bool(neg["class_matches_reference"].iloc[0])
    neg_stats = bool(neg.loc[neg["measured_layer"] == "relu1", "passed"].all())
    assert summary["fraction_statistics_pass"].iloc[0] == pytest.approx((2 + neg_stats) / 3)
    assert summary["fraction_metamers"].iloc[0] == pytest.approx((2 + (neg_stats and neg_class)) / 3)
    assert summary["median_pass_iteration"].iloc[0] == 10  # make_batch: -1, 10, 10


def test_a_mapped_generator_tests_its_class_in_the_images_label_space(lenet, tmp_path):
    """As published for the 16-way ImageNet decision: the class test compares the mapped
    decisions of metamer and reference, in the metamer test's table and in the loop's test."""
    images = load_image_set({"type": "mnist", "per_class": 1, "seed": 0, "limit": 3})
    pixels = np.stack([images.pixels(i) for i in images.ids])[:, None]
    negative = 255 - pixels
    with torch.no_grad():
        raw_ref = lenet(torch.from_numpy(pixels).float() / 255).argmax(1).numpy()
        raw_neg = lenet(torch.from_numpy(negative).float() / 255).argmax(1).numpy()
    differ = np.flatnonzero(raw_ref != raw_neg)
    assert len(differ) >= 1, "the negatives should change some class"
    k = differ[0]
    target = np.ones(10, dtype=np.int64)  # every class decides 1, but the two classes of image k decide 0
    target[[raw_ref[k], raw_neg[k]]] = 0
    target[int(np.setdiff1d(np.arange(10), [raw_ref[k], raw_neg[k]])[0])] = -1  # one unmapped class
    cmap = ClassMap("mnist", "two", target, "two.json")
    batch = make_batch(n=3)
    batch.image_ids, batch.labels = images.ids, np.array([images.labels[i] for i in images.ids])
    batch.reference, batch.metamer_uint8 = pixels, negative
    batch.attrs = {**batch.attrs, "layer": "relu1", "generator": "lenet5_standard",
                   "targets": json.dumps([{"model": "lenet5_standard", "layer": "relu1", "weight": 1.0}])}
    written = read_metamer_batch(write_metamer_batch(tmp_path / "a.h5", batch), activations=False)
    nulls = {"relu1": {"spearman": _null("spearman", 0.5)}}
    raw = metamer_test_rows(lenet, written, nulls, ["relu1"])
    mapped = metamer_test_rows(lenet, written, nulls, ["relu1"], class_map=cmap)
    np.testing.assert_array_equal(raw["generator_pred_metamer"], raw_neg)
    with torch.no_grad():
        logits_ref = lenet(torch.from_numpy(pixels).float() / 255).numpy()
        logits_neg = lenet(torch.from_numpy(negative).float() / 255).numpy()
    np.testing.assert_array_equal(mapped["generator_pred_reference"], cmap.decide(logits_ref))
    np.testing.assert_array_equal(mapped["generator_pred_metamer"], cmap.decide(logits_neg))
    assert not raw["class_matches_reference"].iloc[k] and mapped["class_matches_reference"].iloc[k]
    np.testing.assert_array_equal(mapped["class_matches_label"], cmap.decide(logits_neg) == batch.labels)
    # the loop's test: the same decisions, on the same 8-bit images
    ref01 = torch.from_numpy(pixels).float() / 255
    objective = Objective([Target(lenet, "relu1", thresholds={"spearman": -1.0}, class_map=cmap)], ref01,
                          "normalized_l2", [slice(0, 3)])
    (classes,) = objective.reference_classes()
    np.testing.assert_array_equal(classes.numpy(), cmap.decide(logits_ref))
    passed, _ = objective.test(torch.from_numpy(negative).float() / 255, [classes], "at_least")
    np.testing.assert_array_equal(passed.numpy(), cmap.decide(logits_neg) == cmap.decide(logits_ref))
    assert passed[k]


def test_summary_counts_only_the_generation_layer():
    rows = pd.DataFrame({
        "method": "m", "generator": "g", "layer": "l1", "layer_index": 0, "image_id": ["a", "a", "b", "b"], "member": 0,
        "measured_layer": ["l1", "l2", "l1", "l2"], "target": [True, False, True, False], "statistic": "pearson",
        "passed": [True, False, False, True],
        "class_matches_reference": [True, True, True, True], "pass_iteration": [5, 5, -1, -1],
        **{c: [1.0, 1.0, 3.0, 3.0] for c in DISTANCE_COLUMNS}, "seconds_per_iteration": [0.002] * 4,
    })
    rows.loc[rows["image_id"] == "b", "start_ssim"] = 0.5
    summary = summarize(rows)
    assert summary["fraction_statistics_pass"].tolist() == [0.5]
    assert summary["fraction_metamers"].tolist() == [0.5]
    assert summary["median_pass_iteration"].tolist() == [5]
    assert summary["median_metamer_l2"].tolist() == [2.0]  # one value per image: (1 + 3) / 2
    assert summary["median_start_ssim"].tolist() == [0.75]
    assert summary["ms_per_iteration"].tolist() == [pytest.approx(2.0)]


def test_null_job_writes_a_reproducible_null_file(config, tmp_path):
    import json

    from metamers.artifacts.nulls import read_nulls
    from metamers.config import validate_config
    from metamers.jobs.nulls import null_distribution as null_job

    config["images"] = {"type": "mnist_test", "per_class": 1, "seed": 0}
    config["metamer_test"] = {"n_pairs": 45, "statistics": ["spearman", "snr_db"], "seed": 4, "n_draws": 3}
    config = validate_config(config)
    path = null_job(config, "lenet5_robust", "relu3", tmp_path / "a.h5")
    nulls, attrs = read_nulls(path)
    assert sorted(nulls) == ["snr_db", "spearman"]
    assert attrs["n_pool"] == 5000 and attrs["layer"] == "relu3" and attrs["seed"] == "4" and attrs["n_draws"] == 3
    assert attrs["pool"] == "mnist" and attrs["pool_held_out"] == 0  # training digits
    import h5py

    with h5py.File(path) as f:
        pool_ids = [i.decode() for i in f["pool_ids"][()]]
    references = load_image_set(config["images"]).ids
    assert len(pool_ids) == 5000 and not set(pool_ids) & set(references)
    assert json.loads(attrs["job_config"])["metamer_test"]["n_pairs"] == 45
    assert all(null.n_pairs == 45 and null.histogram.sum() == 45 for null in nulls.values())
    assert all(len(null.draw_thresholds) == 3 and null.draw_thresholds[0] == null.threshold for null in nulls.values())
    again, _ = read_nulls(null_job(config, "lenet5_robust", "relu3", tmp_path / "b.h5"))
    assert again["spearman"].threshold == nulls["spearman"].threshold
    with pytest.raises(KeyError, match="generator 'lenet5_robust': unknown layer 'conv9'; configured: relu1"):
        null_job(config, "lenet5_robust", "conv9", tmp_path / "c.h5")
    with pytest.raises(KeyError, match="unknown generator 'vgg'; configured: lenet5_standard, lenet5_robust"):
        null_job(config, "vgg", "relu3", tmp_path / "c.h5")
    assert not (tmp_path / "c.h5").exists()
