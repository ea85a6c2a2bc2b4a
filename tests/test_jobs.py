"""Every rule's job function, run directly (without Snakemake) through the rule table, on a tiny
study: each output checked against an independent computation from the job's inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from metamers.artifacts import read_metamer_batch
from metamers.artifacts.nulls import read_nulls
from metamers.config import validate_config
from metamers.figures import FIGURES
from metamers.jobs.figures import figure
from metamers.jobs.rules import RULES, run_rule
from metamers.models import load_model
from metamers.models.layers import LayerReader
from metamers.stats.metamer_test import METAMER_TEST_COLUMNS, SUMMARY_COLUMNS
from metamers.stats.recognizability import RECOGNIZABILITY_COLUMNS, TRANSFER_COLUMNS

LAYERS = ["relu1", "linear2"]


class Files(list):
    """A Snakemake ``input``/``output`` list: items, and names for some of them."""

    def __init__(self, items=(), **named):
        super().__init__([*items, *[v for vs in named.values() for v in (vs if isinstance(vs, list) else [vs])]])
        for key, value in named.items():
            setattr(self, key, value)


def rule(name: str, config: dict, tmp, input=Files(), output=Files(), **wildcards) -> object:
    """Run rule ``name``'s job as the workflow's script does, with a fake ``snakemake`` object."""
    smk = SimpleNamespace(rule=name, config=config, input=input, output=output,
                          wildcards=SimpleNamespace(**wildcards), log=[str(tmp / "logs" / f"{name}.log")])
    return run_rule(smk)


@pytest.fixture(scope="module")
def study(study_config, tmp_path_factory):
    """A tiny study run job by job: 2 images, lenet5_standard at relu1 and linear2, adam for 6 steps."""
    import copy

    tmp = tmp_path_factory.mktemp("jobs")
    config = copy.deepcopy(study_config)
    config["images"].update(per_class=1, limit=2)
    config["generators"] = {"lenet5_standard": {"layers": LAYERS}}
    config["methods"] = {"adam": {"iterations": 6}}
    config["metamer_test"] = {"n_pairs": 100, "statistics": ["pearson", "snr_db"], "pool": {"type": "mnist",
                                                                                          "per_class": 3}}
    config["figures"] = {"grid_images": 2, "formats": ["png", "pdf"]}
    config["inversion"] = {"images": 2, "method": {"iterations": 8}}
    config = validate_config(config)
    paths = SimpleNamespace(
        nulls=[tmp / "nulls" / f"{layer}.h5" for layer in LAYERS],
        artifacts=[tmp / "metamers" / f"{layer}.h5" for layer in LAYERS],
        test=tmp / "tables" / "metamer_test" / "adam.csv",
        rows=tmp / "tables" / "metamer_test.csv", summary=tmp / "tables" / "metamer_test_summary.csv",
        thresholds=tmp / "tables" / "null_thresholds.csv", histograms=tmp / "tables" / "null_histograms.csv",
        recog=tmp / "tables" / "recognizability" / "adam.csv", recognizability=tmp / "tables" / "recognizability.csv",
        transfer=tmp / "tables" / "transfer.csv", grid=tmp / "tables" / "metamer_grid.npz",
    )
    for layer, null, art in zip(LAYERS, paths.nulls, paths.artifacts):
        rule("null_distribution", config, tmp, output=Files([str(null)]), generator="lenet5_standard", layer=layer)
        rule("generate", config, tmp, input=Files(nulls=[]), output=Files([str(art)]), method="adam",
             generator="lenet5_standard", layer=layer, batch="b000")
    rule("null_tables", config, tmp, input=Files(map(str, paths.nulls)),
         output=Files(thresholds=str(paths.thresholds), histograms=str(paths.histograms)))
    rule("metamer_test", config, tmp, input=Files(artifacts=list(map(str, paths.artifacts)),
                                                  nulls=list(map(str, paths.nulls))),
         output=Files([str(paths.test)]), method="adam", generator="lenet5_standard")
    rule("metamer_test_table", config, tmp, input=Files([str(paths.test)]),
         output=Files(rows=str(paths.rows), summary=str(paths.summary)))
    rule("recognizability", config, tmp, input=Files(artifacts=list(map(str, paths.artifacts))),
         output=Files([str(paths.recog)]), method="adam", generator="lenet5_standard")
    rule("transfer_table", config, tmp, input=Files(recognizability=[str(paths.recog)], metamer_test=str(paths.rows)),
         output=Files(recognizability=str(paths.recognizability), transfer=str(paths.transfer)))
    rule("grid_images", config, tmp, input=Files(map(str, paths.artifacts)), output=Files([str(paths.grid)]))
    # the representation test (only lenet5_standard is read: no generator matches the robust one)
    acts, parts = tmp / "representation" / "lenet5_standard.h5", tmp / "tables" / "parts"
    rule("metamer_index", config, tmp, input=Files(artifacts=list(map(str, paths.artifacts))),
         output=Files([str(tmp / "metamers" / "index.json")]), method="adam", generator="lenet5_standard")
    rule("representation_activations", config, tmp, input=Files(index=str(tmp / "metamers" / "index.json")),
         output=Files([str(acts)]), method="adam", generator="lenet5_standard", evaluator="lenet5_standard")
    rule("representation", config, tmp, input=Files(activations=str(acts), metamer_test=str(paths.test),
                                                    nulls=list(map(str, paths.nulls))),
         output=Files(rows=str(parts / "r.csv"), ood=str(parts / "o.csv"), images=str(parts / "i.csv"),
                      draws=str(parts / "d.npz")),
         method="adam", generator="lenet5_standard", evaluator="lenet5_standard")
    rule("representation_table", config, tmp,
         input=Files(rows=[str(parts / "r.csv")], ood=[str(parts / "o.csv")], images=[str(parts / "i.csv")]),
         output=Files(rows=str(tmp / "tables" / "representation.csv"), ood=str(tmp / "tables" / "ood.csv"),
                      images=str(tmp / "tables" / "representation_images.csv")))
    rule("layer_depths", config, tmp, output=Files([str(tmp / "tables" / "layer_depths.csv")]))
    rule("transfer_by_relation", config, tmp,
         input=Files(recognizability=str(paths.recognizability), representation=str(tmp / "tables" / "representation.csv"),
                     depths=str(tmp / "tables" / "layer_depths.csv"), draws=[str(parts / "d.npz")]),
         output=Files(table=str(tmp / "tables" / "transfer_by_relation.csv"),
                      pairs=str(tmp / "tables" / "transfer_pairs.csv")))
    inverted = tmp / "inversions" / "lenet5_standard.h5"
    rule("inversion", config, tmp, input=Files(artifacts=list(map(str, paths.artifacts))), output=Files([str(inverted)]),
         evaluator="lenet5_standard")
    rule("inversion_table", config, tmp, input=Files([str(inverted)]),
         output=Files(csv=str(tmp / "tables" / "inversions.csv"), npz=str(tmp / "tables" / "inversions.npz")))
    quality = tmp / "tables" / "image_quality" / "adam.csv"
    rule("image_quality", config, tmp, input=Files(artifacts=list(map(str, paths.artifacts))),
         output=Files([str(quality)]), method="adam", generator="lenet5_standard")
    rule("image_quality_table", config, tmp, input=Files(quality=[str(quality)], metamer_test=str(paths.rows)),
         output=Files([str(tmp / "tables" / "image_quality.csv")]))
    # the same study with two metamers of each image (a diversity term), for its tables and figures
    k2 = tmp / "k2"
    config_k2 = validate_config({**config.to_dict(), "methods": {"adam": {"iterations": 6, "diversity": {
        "k": 2, "weight": 0.1}}}})
    arts = [k2 / "metamers" / f"{layer}.h5" for layer in LAYERS]
    for layer, art in zip(LAYERS, arts):
        rule("generate", config_k2, tmp, input=Files(nulls=[]), output=Files([str(art)]), method="adam",
             generator="lenet5_standard", layer=layer, batch="b000")
    rule("metamer_test", config_k2, tmp, input=Files(artifacts=list(map(str, arts)), nulls=list(map(str, paths.nulls))),
         output=Files([str(k2 / "tables" / "metamer_test" / "adam.csv")]), method="adam", generator="lenet5_standard")
    rule("metamer_test_table", config_k2, tmp, input=Files([str(k2 / "tables" / "metamer_test" / "adam.csv")]),
         output=Files(rows=str(k2 / "tables" / "metamer_test.csv"), summary=str(k2 / "tables" / "summary.csv")))
    rule("grid_images", config_k2, tmp, input=Files(map(str, arts)), output=Files([str(k2 / "tables" / "metamer_grid.npz")]))
    rule("diversity", config_k2, tmp, input=Files(artifacts=list(map(str, arts)),
                                                  metamer_test=str(k2 / "tables" / "metamer_test.csv"), activations=[]),
         output=Files([str(k2 / "tables" / "diversity" / "adam.csv")]), method="adam", generator="lenet5_standard")
    rule("diversity_table", config_k2, tmp, input=Files([str(k2 / "tables" / "diversity" / "adam.csv")]),
         output=Files(rows=str(k2 / "tables" / "diversity.csv"), summary=str(k2 / "tables" / "diversity_summary.csv")))
    return SimpleNamespace(config=config, paths=paths, tmp=tmp, k2=k2, config_k2=config_k2, k2_artifacts=arts,
                           model=load_model(config["models"], "lenet5_standard"))


def test_null_tables_hold_each_null_files_threshold(study):
    table = pd.read_csv(study.paths.thresholds)
    assert len(table) == len(LAYERS) * 2
    for path in study.paths.nulls:
        nulls, attrs = read_nulls(path)
        for name, null in nulls.items():
            row = table[(table["layer"] == attrs["layer"]) & (table["statistic"] == name)].iloc[0]
            assert row["threshold"] == pytest.approx(null.threshold, rel=1e-12) and row["n_pairs"] == 100
            assert bool(row["weak_null"])  # 100 pairs (fewer than 100,000)
    histograms = pd.read_csv(study.paths.histograms)
    assert (histograms.groupby(["layer", "statistic"])["count"].sum() == 100).all()


def test_metamer_test_values_and_verdicts_by_hand(study):
    rows = pd.read_csv(study.paths.test)
    assert list(rows.columns) == METAMER_TEST_COLUMNS and len(rows) == 2 * len(LAYERS) * len(LAYERS) * 2
    reader = LayerReader(study.model, LAYERS)
    for path in study.paths.artifacts:
        art = read_metamer_batch(path)
        with torch.no_grad():
            met = reader(torch.from_numpy(art.metamer_uint8).float() / 255)
            ref = reader(torch.from_numpy(art.reference).float() / 255)
        for layer in LAYERS:
            for i, image in enumerate(art.image_ids):
                r = np.corrcoef(met[layer][i].flatten().double().numpy(), ref[layer][i].flatten().double().numpy())[0, 1]
                row = rows[(rows["layer"] == art.attrs["layer"]) & (rows["measured_layer"] == layer)
                           & (rows["image_id"] == image) & (rows["statistic"] == "pearson")].iloc[0]
                assert row["value"] == pytest.approx(r, abs=1e-9)
                assert row["passed"] == (row["value"] >= row["threshold"])  # the published rule: ties pass


def test_metamer_test_table_merges_and_summarizes(study):
    rows = pd.read_csv(study.paths.rows)
    assert rows.equals(pd.read_csv(study.paths.test))
    summary = pd.read_csv(study.paths.summary)
    assert list(summary.columns) == SUMMARY_COLUMNS and summary["layer"].tolist() == LAYERS
    own = rows[rows["measured_layer"] == rows["layer"]]
    for _, row in summary.iterrows():
        mine = own[own["layer"] == row["layer"]]
        per_image = mine.groupby("image_id").apply(lambda g: g["passed"].all() and g["class_matches_reference"].all(),
                                                   include_groups=False)
        assert row["fraction_metamers"] == pytest.approx(per_image.mean()) and row["n_images"] == 2


def test_recognizability_is_each_evaluators_own_prediction(study):
    rows = pd.read_csv(study.paths.recog)
    assert list(rows.columns) == RECOGNIZABILITY_COLUMNS[:-1]
    assert sorted(set(rows["evaluator"])) == sorted(study.config["evaluators"]) and len(rows) == 2 * 2 * len(LAYERS)
    for evaluator in study.config["evaluators"]:
        model = load_model(study.config["models"], evaluator)
        for path in study.paths.artifacts:
            art = read_metamer_batch(path, activations=False)
            with torch.no_grad():
                pred = model(torch.from_numpy(art.metamer_uint8).float() / 255).argmax(1).numpy()
            mine = rows[(rows["evaluator"] == evaluator) & (rows["layer"] == art.attrs["layer"])]
            np.testing.assert_array_equal(mine["evaluator_pred_metamer"], pred)


def test_transfer_table_accuracies_by_hand(study):
    recognized = pd.read_csv(study.paths.recognizability)
    assert list(recognized.columns) == RECOGNIZABILITY_COLUMNS
    verdicts = pd.read_csv(study.paths.rows)
    own = verdicts[verdicts["measured_layer"] == verdicts["layer"]]
    passed = own.groupby(["layer", "image_id"]).apply(
        lambda g: bool(g["passed"].all() and g["class_matches_reference"].all()), include_groups=False)
    for _, row in recognized.iterrows():
        assert row["passed_metamer_test"] == passed[(row["layer"], row["image_id"])]
    transfer = pd.read_csv(study.paths.transfer)
    assert list(transfer.columns) == TRANSFER_COLUMNS and len(transfer) == len(LAYERS) * 2
    for _, row in transfer.iterrows():
        mine = recognized[(recognized["layer"] == row["layer"]) & (recognized["evaluator"] == row["evaluator"])]
        hit = mine["evaluator_pred_metamer"] == mine["true_label"]
        assert row["accuracy_metamers_all"] == pytest.approx(hit.mean())
        assert row["n_metamers_passing"] == mine["passed_metamer_test"].sum()


def test_grid_images_hold_the_artifacts_pixels(study):
    with np.load(study.paths.grid) as npz:
        grid = {k: npz[k] for k in npz.files}
    assert grid["rows"].tolist() == ["reference", *[f"adam | lenet5_standard | {layer}" for layer in LAYERS]]
    art = read_metamer_batch(study.paths.artifacts[1], activations=False)
    assert grid["image_ids"].tolist() == art.image_ids
    np.testing.assert_array_equal(grid["images"][0, ..., 0], art.reference[:, 0])
    np.testing.assert_array_equal(grid["images"][2, ..., 0], art.metamer_uint8[:, 0])


#: Figures of a method with a diversity term: drawn from the study with two metamers per image.
DIVERSE = {"member_grid", "diversity_vs_pass"}


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_job_draws_every_format_from_its_tables(study, name):
    root = study.k2 if name in DIVERSE else study.tmp
    tables = [str(root / "tables" / t) for t in FIGURES[name].tables]
    out = [str(study.tmp / "figures" / f"{name}.{fmt}") for fmt in ("png", "pdf")]
    rule("figure", study.config_k2 if name in DIVERSE else study.config, study.tmp, input=Files(tables),
         output=Files(out), figure=name)
    with Image.open(out[0]) as im:
        assert im.format == "PNG" and min(im.size) > 200
    assert open(out[1], "rb").read(5) == b"%PDF-"


def test_figure_job_names_its_tables_when_given_others(study):
    with pytest.raises(ValueError, match=r"figure 'null_histograms' is drawn from 3 table\(s\)"):
        figure(study.config, "null_histograms", [str(study.paths.transfer)], [str(study.tmp / "x.png")])
    with pytest.raises(KeyError, match="unknown figure 'nope'; valid: metamer_grid"):
        figure(study.config, "nope", [], [])


def test_a_rule_without_a_job_is_named(study):
    with pytest.raises(KeyError, match="unknown rule 'all'; valid: train_model, generate, null_distribution"):
        rule("all", study.config, study.tmp)
    assert (study.tmp / "logs" / "all.log").read_text().count("unknown rule 'all'") >= 1  # the log says why
    # every rule of the workflow that runs a script runs one job of the table, and the table has no other
    import re
    from pathlib import Path

    smk = "".join(p.read_text() for p in (Path(__file__).resolve().parents[1] / "rules").glob("*.smk"))
    scripted = [m.group(1) for m in re.finditer(r"^rule (\w+):(.*?)(?=^rule |\Z)", smk, re.M | re.S)
                if "script:" in m.group(2)]
    assert sorted(RULES) == sorted(scripted) and len(RULES) == 22


def test_image_quality_rows_by_hand(study):
    from metamers.jobs.quality import QUALITY_COLUMNS
    from metamers.stats.quality import gmsd, niqe

    table = pd.read_csv(study.tmp / "tables" / "image_quality.csv")
    assert list(table.columns) == QUALITY_COLUMNS
    art = read_metamer_batch(study.paths.artifacts[0], activations=False)
    mets = table[(table["kind"] == "metamer") & (table["layer"] == art.attrs["layer"])].set_index("image_id")
    np.testing.assert_allclose(mets.loc[art.image_ids, "niqe"], niqe(art.metamer_uint8), rtol=1e-9)
    np.testing.assert_allclose(mets.loc[art.image_ids, "gmsd"], gmsd(art.metamer_uint8, art.reference), rtol=1e-9)
    refs = table[table["kind"] == "reference"].set_index("image_id")
    np.testing.assert_allclose(refs.loc[art.image_ids, "niqe"], niqe(art.reference), rtol=1e-9)
    assert (mets["fidelity_evaluators"] == "lenet5_robust").all()  # the evaluator the generator is not


def test_members_go_through_the_metamer_test_and_the_diversity_table(study):
    from metamers.stats.diversity import member_distances

    tests = pd.read_csv(study.k2 / "tables" / "metamer_test.csv")
    assert sorted(set(zip(tests["image_id"], tests["member"]))) == sorted(
        (i, m) for i in read_metamer_batch(study.k2_artifacts[0], activations=False).image_ids[::2] for m in (0, 1))
    rows = pd.read_csv(study.k2 / "tables" / "diversity.csv")
    art = read_metamer_batch(study.k2_artifacts[1], activations=False)
    mean, _ = member_distances(art.metamer_uint8.reshape(-1, 2, 28 * 28).astype(float) / 255)
    mine = rows[(rows["space"] == "pixels") & (rows["layer"] == art.attrs["layer"])]
    np.testing.assert_allclose(mine["mean_distance"], mean, rtol=1e-12)
    summary = pd.read_csv(study.k2 / "tables" / "diversity_summary.csv")
    assert set(summary["space"]) == {"pixels", "ssim"} and (summary["k"] == 2).all()
    with np.load(study.k2 / "tables" / "metamer_grid.npz") as grid:
        assert grid["member_images"].shape[1] == 1 + 2 and grid["member_rows"][0].startswith("adam | lenet5_standard")
