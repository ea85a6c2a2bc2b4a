"""The representation test's rules, run directly through the rule table on a tiny real study:
the stored activations, every measure and the OOD AUROC against independent computations."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control
import torch

from metamers.artifacts.draws import read_draws
from metamers.artifacts.nulls import read_nulls
from metamers.artifacts.representations import read_activations
from metamers.config import validate_config
from metamers.jobs.representation import IMAGE_COLUMNS, OOD_COLUMNS, REPRESENTATION_COLUMNS
from metamers.models import load_model
from metamers.models.layers import LayerReader
from metamers.stats.metamer_test import metamer_verdicts
from metamers.stats.reduction import Reduction
from metamers.stats.resampling import aligned_bootstrap_samples, percentile_interval
from test_interval_forms import enumerated_linear_cka
from test_jobs import Files, rule

LAYERS = ["relu1", "linear2"]
EVALUATORS = {"lenet5_standard": {}, "lenet5_robust": {"layers": ["relu2", "linear2"]}}


@pytest.fixture(scope="module")
def study(study_config, tmp_path_factory):
    """6 digits, lenet5_standard at relu1 and linear2 (adam, 30 steps), read by both LeNets."""
    tmp = tmp_path_factory.mktemp("representation")
    config = copy.deepcopy(study_config)
    config["images"].update(per_class=1, limit=6)
    config["generators"] = {"lenet5_standard": {"layers": LAYERS}}
    config["evaluators"] = EVALUATORS
    config["methods"] = {"adam": {"iterations": 30, "lr": 0.05}}
    config["metamer_test"] = {"n_pairs": 200, "statistics": ["pearson", "snr_db"], "keep_values": True,
                              "pool": {"type": "mnist", "per_class": 3}}
    config["representation"] = {"n_permutations": 50, "n_bootstrap": 40, "reduction": {"max_dim": 1000, "seed": 3}}
    config = validate_config(config)
    nulls = {(m, layer): tmp / "nulls" / m / f"{layer}.h5" for m, ls in config.null_targets().items() for layer in ls}
    for (m, layer), path in nulls.items():
        rule("null_distribution", config, tmp, output=Files([str(path)]), generator=m, layer=layer)
    artifacts = [tmp / "metamers" / f"{layer}.h5" for layer in LAYERS]
    for layer, art in zip(LAYERS, artifacts):
        rule("generate", config, tmp, input=Files(nulls=[]), output=Files([str(art)]), method="adam",
             generator="lenet5_standard", layer=layer, batch="b000")
    test = tmp / "tables" / "metamer_test.csv"
    rule("metamer_test", config, tmp, input=Files(artifacts=list(map(str, artifacts)),
                                                  nulls=[str(nulls[("lenet5_standard", layer)]) for layer in LAYERS]),
         output=Files([str(test)]), method="adam", generator="lenet5_standard")
    out = {}
    for evaluator in EVALUATORS:
        acts = tmp / "representation" / f"{evaluator}.h5"
        rows, ood = tmp / "rows" / f"{evaluator}.csv", tmp / "ood" / f"{evaluator}.csv"
        images, draws = tmp / "images" / f"{evaluator}.csv", tmp / "draws" / f"{evaluator}.npz"
        rule("metamer_index", config, tmp, input=Files(artifacts=list(map(str, artifacts))),
             output=Files([str(tmp / "metamers" / "index.json")]), method="adam", generator="lenet5_standard")
        rule("representation_activations", config, tmp, input=Files(index=str(tmp / "metamers" / "index.json")),
             output=Files([str(acts)]), method="adam", generator="lenet5_standard", evaluator=evaluator)
        own = [str(nulls[(evaluator, layer)]) for layer in config.evaluator_layers(evaluator)]
        rule("representation", config, tmp, input=Files(activations=str(acts), metamer_test=str(test), nulls=own),
             output=Files(rows=str(rows), ood=str(ood), images=str(images), draws=str(draws)), method="adam",
             generator="lenet5_standard", evaluator=evaluator)
        out[evaluator] = SimpleNamespace(acts=acts, rows=rows, ood=ood, images=images, draws=draws, nulls=own)
    merged = SimpleNamespace(rows=tmp / "tables" / "representation.csv", ood=tmp / "tables" / "ood.csv",
                             images=tmp / "tables" / "representation_images.csv")
    rule("representation_table", config, tmp,
         input=Files(rows=[str(o.rows) for o in out.values()], ood=[str(o.ood) for o in out.values()],
                     images=[str(o.images) for o in out.values()]),
         output=Files(rows=str(merged.rows), ood=str(merged.ood), images=str(merged.images)))
    return SimpleNamespace(config=config, tmp=tmp, artifacts=artifacts, test=test, jobs=out, merged=merged)


def test_evaluator_layers_default_to_the_generator_layers_and_need_nulls(study, study_config):
    assert study.config["evaluators"] == {"lenet5_standard": {"layers": LAYERS},
                                          "lenet5_robust": {"layers": ["relu2", "linear2"]}}
    assert study.config.null_targets() == {"lenet5_standard": LAYERS, "lenet5_robust": ["relu2", "linear2"]}
    config = copy.deepcopy(study_config)
    config["generators"] = {"lenet5_standard": {"layers": LAYERS}}
    config["evaluators"] = ["lenet5_standard", "lenet5_robust"]  # the robust LeNet is matched by no generator:
    loaded = validate_config(config)                              # it classifies, but is not read
    assert loaded["evaluators"]["lenet5_robust"] == {"layers": []}
    assert loaded.representation_evaluators() == ["lenet5_standard"]
    assert validate_config(loaded) == loaded  # the mapping form is valid as it is
    with pytest.raises(KeyError, match="unknown evaluator 'vgg'; configured: lenet5_standard, lenet5_robust"):
        study.config.evaluator_layers("vgg")


def _activations(model, layers, images_uint8):
    reader = LayerReader(model, layers)
    with torch.no_grad():
        x = torch.from_numpy(images_uint8).float() / 255
        return reader(x), model(x)


def test_activation_artifact_holds_reduced_activations_logits_and_full_layer_statistics(study):
    from metamers.artifacts import read_metamer_batch

    model = load_model(study.config["models"], "lenet5_standard")
    data = read_activations(study.jobs["lenet5_standard"].acts)
    batches = {read_metamer_batch(p).attrs["layer"]: read_metamer_batch(p) for p in study.artifacts}
    assert data.image_ids == batches["relu1"].image_ids and data.layers == LAYERS
    reduce = Reduction("random_projection", 1000, 3)
    ref, ref_logits = _activations(model, LAYERS, batches["relu1"].reference)
    torch.testing.assert_close(torch.from_numpy(data.reference["relu1"]), reduce(ref["relu1"], "lenet5_standard/relu1"))
    np.testing.assert_allclose(data.reference["linear2"], ref["linear2"].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(data.reference["logits"], ref_logits.numpy(), rtol=0, atol=1e-6)
    assert data.reductions["relu1"]["type"] == "random_projection" and data.reductions["relu1"]["units"] == 25088
    assert data.reductions["linear2"] == {"type": "none", "max_dim": 1000, "seed": 3, "units": 10, "stored_dim": 10}
    for g, batch in batches.items():
        met, _ = _activations(model, LAYERS, batch.metamer_uint8)
        for layer in LAYERS:  # the statistics of the whole layer, not of its projection
            a, b = met[layer].flatten(1).double().numpy(), ref[layer].flatten(1).double().numpy()
            expected = [np.corrcoef(a[i], b[i])[0, 1] for i in range(len(a))]
            np.testing.assert_allclose(data.similarity[g][layer]["pearson"], expected, rtol=0, atol=1e-9)
    # the baseline: another image of each reference's class from the null pool, read like the references
    from metamers.data.image_set import load_image_set
    from metamers.data.pixels import quantize, to_uint8

    pool = load_image_set({"type": "mnist"})
    assert len(data.baseline_ids) == len(data.image_ids) and not set(data.baseline_ids) & set(data.image_ids)
    assert [pool.labels[i] for i in data.baseline_ids] == data.labels.tolist()
    pixels = to_uint8(quantize(pool.tensor(data.baseline_ids, batches["relu1"].reference.shape[1:]))).numpy()
    base, base_logits = _activations(model, LAYERS, pixels)
    np.testing.assert_allclose(data.baseline["linear2"], base["linear2"].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(data.baseline["logits"], base_logits.numpy(), rtol=0, atol=1e-6)
    assert data.attrs["evaluator"] == "lenet5_standard" and data.attrs["seed"] == "3"
    assert "torch" in data.attrs["packages"] and data.attrs["depths"] == '{"relu1": 0.2, "linear2": 1.0}'


def _feature_cka(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


@pytest.mark.parametrize("evaluator", list(EVALUATORS))
def test_measures_equal_independent_computations_from_the_stored_activations(study, evaluator):
    rows = pd.read_csv(study.jobs[evaluator].rows)
    assert list(rows.columns) == REPRESENTATION_COLUMNS
    data = read_activations(study.jobs[evaluator].acts)
    verdicts = metamer_verdicts(pd.read_csv(study.test)).set_index(["layer", "image_id"])["passed_metamer_test"]
    nulls = {read_nulls(p)[1]["layer"]: read_nulls(p)[0] for p in study.jobs[evaluator].nulls}
    n_measures = 10 + 2 * 2 + 1  # set measures; percentile and threshold per statistic; all statistics
    # and for the passing metamers each set measure's baseline and difference
    assert len(rows) == len(LAYERS) * len(data.layers) * (2 * n_measures + 2 * 10)
    for g in LAYERS:
        passing = np.array([bool(verdicts[(g, i)]) for i in data.image_ids])
        for passing_only, mask in ((True, passing), (False, np.ones(6, bool))):
            for layer in data.layers:
                mine = rows[(rows["layer"] == g) & (rows["passing_only"] == passing_only)
                            & (rows["evaluator_layer"] == layer)].set_index("measure")
                assert (mine["n_images"] == mask.sum()).all()
                a, b = data.reference[layer][mask].astype(np.float64), data.metamer[g][layer][mask].astype(np.float64)
                pearson = data.similarity[g][layer]["pearson"][mask]
                null = nulls[layer]["pearson"]
                assert mine.loc["at_threshold_pearson", "value"] == pytest.approx(np.mean(pearson >= null.threshold))
                pct = [100 * np.mean(null.values <= v) for v in pearson]
                assert mine.loc["null_percentile_pearson", "value"] == pytest.approx(np.median(pct), abs=1e-9)
                if mask.sum() < 4:
                    assert mine.loc["linear_cka", ["value", "ci_low", "p_value"]].isna().all()
                    continue
                iu = np.triu_indices(int(mask.sum()), 1)
                r = np.corrcoef(np.corrcoef(a)[iu], np.corrcoef(b)[iu])[0, 1]  # RDMs 1 - r: their correlation is the same
                assert mine.loc["rsa_correlation_pearson", "value"] == pytest.approx(r, abs=1e-9)
                assert mine.loc["linear_cka", "value"] == pytest.approx(_feature_cka(a, b), abs=1e-9)
                assert 1 / 51 <= mine.loc["linear_cka", "p_value"] <= 1
                assert mine["q_value"].isna().all()  # a job's table: q-values are the study's (representation_table)
                if not passing_only:  # the baseline is computed for the metamers that count
                    assert not mine.index.str.endswith("baseline").any()
                    continue
                # the natural-image baseline: the references against other images of their classes
                base = data.baseline[layer][mask].astype(np.float64)
                assert mine.loc["linear_cka_baseline", "value"] == pytest.approx(_feature_cka(a, base), abs=1e-9)
                assert mine.loc["linear_cka_minus_baseline", "value"] == pytest.approx(
                    _feature_cka(a, b) - _feature_cka(a, base), abs=1e-9)
                assert 1 / (1 + mine.loc["linear_cka", "n_bootstrap"]) <= mine.loc["linear_cka_minus_baseline",
                                                                                   "p_value"] <= 1
                resamples = np.where(mine.index.str.endswith("_minus_baseline"), mine["n_bootstrap"],
                                     mine["n_permutations"])  # a difference's p-value is a bootstrap test's
                floor = mine["p_value"] <= 1 / (1 + resamples) + 1e-12
                assert (mine.loc[mine["p_value"].notna(), "p_at_floor"].astype(bool) == floor[mine["p_value"].notna()]).all()
                assert (mine["seed"] == study.config["seed"]).all()


def test_the_stored_bootstrap_draws_are_the_aligned_samples_of_the_passing_sets(study):
    """The draws file holds, for every passing set measure, its values on the aligned bootstrap
    samples (recomputed here for linear CKA from the stored activations), and the table's
    interval is their percentile interval."""
    settings = study.config["representation"]
    for evaluator, job in study.jobs.items():
        got = read_draws(job.draws)
        data = read_activations(job.acts)
        assert (got.method, got.generator, got.evaluator) == ("adam", "lenet5_standard", evaluator)
        assert got.universe == list(data.image_ids) and got.seed == study.config["seed"]
        rows = pd.read_csv(job.rows)
        verdicts = metamer_verdicts(pd.read_csv(study.test)).set_index(["layer", "image_id"])["passed_metamer_test"]
        assert set(got.draws) == {(g, layer, m + suffix) for g in LAYERS for layer in data.layers
                                  for m in settings["measures"] for suffix in ("", "_baseline", "_minus_baseline")}
        for g in LAYERS:
            members = np.flatnonzero([bool(verdicts[(g, i)]) for i in data.image_ids])
            for layer in data.layers:
                draws = got.draws[(g, layer, "linear_cka")]
                assert draws.shape == (settings["n_bootstrap"],)
                if len(members) < 4:
                    assert np.isnan(draws).all()
                    continue
                samples = aligned_bootstrap_samples(members, len(data.image_ids), settings["n_bootstrap"],
                                                    study.config["seed"])
                a = data.reference[layer][members].astype(np.float64)
                b = data.metamer[g][layer][members].astype(np.float64)
                expected = [enumerated_linear_cka(a @ a.T, b @ b.T, s) for s in samples]  # copies left out
                np.testing.assert_allclose(draws, expected, rtol=1e-7, atol=1e-9)
                row = rows[(rows["layer"] == g) & rows["passing_only"] & (rows["evaluator_layer"] == layer)
                           & (rows["measure"] == "linear_cka")].iloc[0]
                assert (row["ci_low"], row["ci_high"]) == pytest.approx(percentile_interval(draws, 0.95))


def test_ood_auroc_and_msp_from_the_evaluators_logits(study):
    for evaluator, job in study.jobs.items():
        ood = pd.read_csv(job.ood)
        assert list(ood.columns) == OOD_COLUMNS and len(ood) == len(LAYERS) * 2
        data = read_activations(job.acts)
        row = ood[(ood["layer"] == "linear2") & ~ood["passing_only"]].iloc[0]
        softmax = lambda z: (np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1,  # noqa: E731
                                                                                                   keepdims=True))
        ref, met = softmax(data.reference["logits"].astype(float)).max(1), softmax(
            data.metamer["linear2"]["logits"].astype(float)).max(1)
        pairs = (ref[:, None] > met[None, :]).mean() + 0.5 * (ref[:, None] == met[None, :]).mean()
        assert row["auroc"] == pytest.approx(pairs) and row["median_msp_metamer"] == pytest.approx(np.median(met))


def test_representation_table_merges_every_job(study):
    for name in ("rows", "images"):
        merged = pd.read_csv(getattr(study.merged, name))
        parts = pd.concat([pd.read_csv(getattr(j, name)) for j in study.jobs.values()], ignore_index=True)
        if name == "rows":  # the merge adds the study's q-values: Benjamini-Hochberg over each measure's family
            family = parts["passing_only"] & parts["measure"].str.endswith("_minus_baseline")
            assert merged["q_value"][~family].isna().all() and merged["q_value"][family].notna().all()
            for _, rows in merged[family].groupby("measure"):
                np.testing.assert_allclose(rows["q_value"], false_discovery_control(rows["p_value"], method="bh"))
            merged = merged.assign(q_value=np.nan)
        pd.testing.assert_frame_equal(merged, parts)
    assert len(pd.read_csv(study.merged.ood)) == 2 * len(LAYERS) * 2


def test_image_table_holds_each_images_confidence_and_an_embedding_that_keeps_distances(study):
    images = pd.read_csv(study.jobs["lenet5_robust"].images)
    assert list(images.columns) == IMAGE_COLUMNS
    assert len(images) == len(LAYERS) * 2 * 6 * 2  # generation layers x evaluator layers x images x (reference, metamer)
    data = read_activations(study.jobs["lenet5_robust"].acts)
    sub = images[(images["layer"] == "relu1") & (images["evaluator_layer"] == "linear2")]
    logits = data.metamer["relu1"]["logits"].astype(np.float64)
    msp = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).max(1)
    np.testing.assert_allclose(sub[sub["set"] == "metamer"]["max_softmax"], msp, rtol=1e-9)
    # classical MDS: the 2-D distances approximate the correlation distances; the embedding's
    # Gram matrix is the best rank-2 approximation of the double-centred squared distances
    stacked = np.concatenate([data.reference["linear2"], data.metamer["relu1"]["linear2"]]).astype(np.float64)
    d = 1 - np.corrcoef(stacked)
    j = np.eye(12) - 1 / 12
    values = np.sort(np.linalg.eigvalsh(-0.5 * j @ (d * d) @ j))[::-1]
    xy = sub[["x", "y"]].to_numpy()
    xy = xy - xy.mean(0)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(xy.T @ xy))[::-1], values[:2], rtol=1e-6)


def test_representation_job_names_a_missing_null(study):
    job = study.jobs["lenet5_robust"]
    with pytest.raises(ValueError, match=r"no null of evaluator 'lenet5_robust' at layer\(s\) \['linear2'\]"):
        rule("representation", study.config, study.tmp,
             input=Files(activations=str(job.acts), metamer_test=str(study.test), nulls=job.nulls[:1]),
             output=Files(rows=str(study.tmp / "x.csv"), ood=str(study.tmp / "y.csv"), images=str(study.tmp / "z.csv"),
                          draws=str(study.tmp / "d.npz")),
             method="adam",
             generator="lenet5_standard", evaluator="lenet5_robust")
