"""Inverting representations (Mahendran and Vedaldi 2015): the inversion itself on a real LeNet,
the config section, the ``inversion`` and ``inversion_table`` rules on a tiny real study (checked
against independent recomputations), and the inversion panels figure."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from metamers.artifacts.files import ArtifactError
from metamers.artifacts.inversions import read_inversions
from metamers.artifacts.metamers import read_metamer_batch
from metamers.config import ConfigError, validate_config
from metamers.data import load_image_set, quantize
from metamers.figures import study_figures
from metamers.figures.inversion import inversion_panels, panel_layout
from metamers.jobs.inversion import INVERSION_COLUMNS, inversion_ids
from metamers.models import load_model
from metamers.models.layers import LayerReader
from metamers.stats.distances import pixel_distances
from metamers.synthesis.inversion import invert
from metamers.synthesis.methods import resolve_method
from metamers.synthesis.priors import total_variation
from test_jobs import Files, rule

LAYERS = ["relu1", "linear2"]
INVERTED = {"lenet5_standard": ["relu1", "relu3"], "lenet5_robust": ["relu2"]}


@pytest.fixture(scope="module")
def digits(study_config):
    images = load_image_set({**study_config["images"], "per_class": 1, "limit": 4})
    model = load_model(study_config["models"], "lenet5_standard")
    return SimpleNamespace(model=model, ids=images.ids, x=quantize(images.tensor(images.ids, model.input_shape)))


def test_an_inversion_at_an_early_layer_is_closer_to_the_reference_than_noise(digits):
    method = resolve_method("inversion", {"iterations": 150})
    result = invert(digits.model, "relu1", digits.x, method, 0, digits.ids, batch_invariant=False)
    ref = digits.x.flatten(1)
    to_ref = (torch.from_numpy(result.inverted).flatten(1) - ref).norm(dim=1)
    start = (torch.from_numpy(result.start).flatten(1) - ref).norm(dim=1)
    uniform = (torch.rand(digits.x.shape, generator=torch.Generator().manual_seed(1)).flatten(1) - ref).norm(dim=1)
    assert (to_ref < 0.5 * start).all() and (to_ref < 0.5 * uniform).all(), (to_ref, start, uniform)
    # the recorded mismatch is the normalized distance of the inversion's representation
    reader = LayerReader(digits.model, ["relu1"])
    with torch.no_grad():
        got = reader(torch.from_numpy(result.inverted))["relu1"].flatten(1).double()
        want = reader(digits.x)["relu1"].flatten(1).double()
    np.testing.assert_allclose(result.mismatch, ((got - want).norm(dim=1) / want.norm(dim=1)).numpy(), rtol=1e-5)
    assert (result.mismatch < 0.2).all()


def test_the_inversion_priors_smooth_an_inversion_of_the_logits(digits):
    """Without priors the logits' inversion is high-frequency noise; total variation removes it."""
    with_priors = resolve_method("inversion", {"iterations": 150})
    without = resolve_method("inversion", {"iterations": 150, "priors": []})
    tv = {}
    for name, method in (("priors", with_priors), ("none", without)):
        result = invert(digits.model, "linear2", digits.x, method, 0, digits.ids, batch_invariant=False)
        tv[name] = total_variation(torch.from_numpy(result.inverted))
    assert (tv["priors"] < 0.5 * tv["none"]).all(), tv


def test_a_batch_invariant_inversion_of_an_image_is_its_inversion_alone(digits):
    method = resolve_method("inversion", {"iterations": 20})
    batch = invert(digits.model, "relu3", digits.x, method, 0, digits.ids, batch_invariant=True)
    alone = invert(digits.model, "relu3", digits.x[2:3], method, 0, digits.ids[2:3], batch_invariant=True)
    np.testing.assert_array_equal(batch.inverted[2:3], alone.inverted)
    np.testing.assert_array_equal(batch.loss[2:3], alone.loss)


def test_an_inversion_runs_no_metamer_test(digits, study_config):
    method = resolve_method("inversion", {"check_every": 10})
    with pytest.raises(ValueError, match="an inversion runs no metamer test; its method has check_every 10"):
        invert(digits.model, "relu1", digits.x, method, 0, digits.ids)
    config = copy.deepcopy(study_config)
    config["inversion"] = {"method": {"check_every": 10}}
    with pytest.raises(ConfigError, match=r"inversion.method: check_every is 10, but an inversion runs no metamer test"):
        validate_config(config)


def test_inversion_config_defaults_and_errors(study_config):
    config = validate_config(study_config)
    assert config.inversion_layers() == {name: entry["layers"] for name, entry in config["evaluators"].items()}
    assert config["inversion"]["images"] == 1 and config.inversion_method()["priors"] == [
        {"type": "total_variation", "weight": 1.0, "beta": 2.0}, {"type": "alpha_norm", "weight": 1.0, "alpha": 6.0}]
    assert "inversion_panels" in study_figures(config)
    off = validate_config({**copy.deepcopy(study_config), "inversion": {"images": 0}})
    assert off.inversion_layers() == {} and "inversion_panels" not in study_figures(off)
    bad = {**copy.deepcopy(study_config), "inversion": {"layers": {"lenet5_nope": ["relu1"]}}}
    with pytest.raises(ConfigError, match=r"inversion.layers: unknown evaluator 'lenet5_nope'; configured: "
                                          r"lenet5_standard, lenet5_robust"):
        validate_config(bad)
    with pytest.raises(ConfigError, match=r"inversion.method.preset: 'nope' is not one of \['feather2023'"):
        validate_config({**copy.deepcopy(study_config), "inversion": {"method": {"preset": "nope"}}})
    with pytest.raises(ConfigError, match=r"inversion.method: method 'inversion': key\(s\) \['momentum'\] are not "
                                          r"used by optimizer 'adam'"):
        validate_config({**copy.deepcopy(study_config), "inversion": {"method": {"momentum": 0.9}}})


@pytest.fixture(scope="module")
def study(study_config, tmp_path_factory):
    """3 digits, lenet5_standard at relu1 and linear2 (adam, 6 steps; feather2023, 6 steps), the
    standard LeNet inverted at relu1 and relu3, the robust one (matched by no generator) at relu2."""
    tmp = tmp_path_factory.mktemp("inversion")
    config = copy.deepcopy(study_config)
    config["images"].update(per_class=1, limit=3)
    config["generators"] = {"lenet5_standard": {"layers": LAYERS}}
    config["methods"] = {"adam": {"iterations": 6}, "feather2023": {"iterations": 6}}
    config["inversion"] = {"images": 2, "layers": INVERTED, "method": {"iterations": 40}}
    config = validate_config(config)
    artifacts = [tmp / "metamers" / m / f"{layer}.h5" for m in config["methods"] for layer in LAYERS]
    for m in config["methods"]:
        for layer in LAYERS:
            rule("generate", config, tmp, input=Files(nulls=[]), output=Files([str(tmp / "metamers" / m / f"{layer}.h5")]),
                 method=m, generator="lenet5_standard", layer=layer, batch="b000")
    out = {e: tmp / "inversions" / f"{e}.h5" for e in INVERTED}
    for evaluator, path in out.items():  # the artifacts in another order than the config's
        rule("inversion", config, tmp, input=Files(artifacts=list(map(str, artifacts[::-1]))), output=Files([str(path)]),
             evaluator=evaluator)
    tables = SimpleNamespace(csv=tmp / "tables" / "inversions.csv", npz=tmp / "tables" / "inversions.npz")
    rule("inversion_table", config, tmp, input=Files(map(str, out.values())),
         output=Files(csv=str(tables.csv), npz=str(tables.npz)))
    return SimpleNamespace(config=config, tmp=tmp, artifacts=artifacts, out=out, tables=tables)


def test_inversion_rows_are_each_reference_then_its_metamers_from_one_start(study):
    ids = inversion_ids(study.config)
    assert len(ids) == 2 and ids == load_image_set(study.config["images"]).ids[:2]  # one per class first
    data = read_inversions(study.out["lenet5_standard"])
    sets = [(m, "lenet5_standard", layer) for m in ("adam", "feather2023") for layer in LAYERS]
    expected = [row for i in ids for row in [(i, "reference", "", "", ""), *[(i, "metamer", *s) for s in sets]]]
    got = list(zip(*(data.rows[c] for c in ("image_id", "kind", "method", "generator", "layer"))))
    assert got == expected and data.layers == INVERTED["lenet5_standard"]
    for k, (image_id, kind, method, _, layer) in enumerate(got):
        if kind == "metamer":
            art = read_metamer_batch(study.tmp / "metamers" / method / f"{layer}.h5", activations=False)
            np.testing.assert_array_equal(data.source[k], art.metamer_uint8[art.image_ids.index(image_id)])
            assert data.label[k] == art.labels[art.image_ids.index(image_id)]
        first = got.index((image_id, "reference", "", "", ""))
        np.testing.assert_array_equal(data.start[k], data.start[first])  # one start per reference,
        if kind == "metamer":                                              # not its metamers' own
            assert not np.array_equal(data.start[k], art.start_uint8[art.image_ids.index(image_id)] / 255)
            assert np.abs(data.start[k] - art.start_uint8[art.image_ids.index(image_id)] / 255).max() > 0.05
    assert not np.array_equal(data.start[0], data.start[len(sets) + 1])  # the two references' differ
    assert data.attrs["seed"] == 0 and "torch" in data.attrs["packages"] and '"priors"' in data.attrs["method"]


def test_stored_inversions_equal_a_direct_inversion_and_their_mismatch(study):
    data = read_inversions(study.out["lenet5_robust"])
    model = load_model(study.config["models"], "lenet5_robust")
    x = torch.from_numpy(data.source).float() / 255
    result = invert(model, "relu2", x, study.config.inversion_method(), 0, [f"inversion/{i}" for i in data.rows["image_id"]],
                    batch_invariant=False)  # inversion.batch_invariant's default: one pass for all images
    assert study.config["inversion"]["batch_invariant"] is False
    np.testing.assert_array_equal(data.inverted["relu2"], result.inverted)
    np.testing.assert_array_equal(data.loss["relu2"], result.loss)
    reader = LayerReader(model, ["relu2"])
    with torch.no_grad():
        got = reader(torch.from_numpy(data.inverted["relu2"]))["relu2"].flatten(1).double()
        want = reader(x)["relu2"].flatten(1).double()
    np.testing.assert_allclose(data.mismatch["relu2"], ((got - want).norm(dim=1) / want.norm(dim=1)).numpy(),
                               rtol=1e-5)
    # 40 steps with the priors bring every representation much closer than the start's
    with torch.no_grad():
        start = reader(torch.from_numpy(data.start))["relu2"].flatten(1).double()
    assert (data.mismatch["relu2"] < 0.5 * ((start - want).norm(dim=1) / want.norm(dim=1)).numpy()).all()


def test_inversion_table_rows_index_their_pixels_and_distances(study):
    table = pd.read_csv(study.tables.csv, keep_default_na=False)
    assert list(table.columns) == INVERSION_COLUMNS and table["row"].tolist() == list(range(len(table)))
    with np.load(study.tables.npz) as npz:
        source, inverted = npz["source"], npz["inverted"]
    n_sources = 2 * (1 + 2 * len(LAYERS))
    assert len(table) == n_sources * sum(map(len, INVERTED.values())) == len(source) == len(inverted)
    for evaluator, layers in INVERTED.items():
        data = read_inversions(study.out[evaluator])
        for layer in layers:
            mine = table[(table["evaluator"] == evaluator) & (table["evaluator_layer"] == layer)]
            assert mine["image_id"].tolist() == data.rows["image_id"]
            rows = mine["row"].to_numpy()
            np.testing.assert_array_equal(source[rows], data.source)
            np.testing.assert_array_equal(inverted[rows], np.round(data.inverted[layer] * 255).astype(np.uint8))
            inv = torch.from_numpy(inverted[rows]).float() / 255
            first = {i: k for k, (i, kind) in enumerate(zip(data.rows["image_id"], data.rows["kind"]))
                     if kind == "reference"}
            ref_rows = [first[i] for i in data.rows["image_id"]]
            reference = torch.from_numpy(data.source[ref_rows]).float() / 255
            expect = pixel_distances(inv, reference, ["l2", "ssim"])
            np.testing.assert_allclose(mine["reference_l2"], expect["l2"].numpy(), rtol=1e-9)
            np.testing.assert_allclose(mine["reference_ssim"], expect["ssim"].numpy(), rtol=1e-9)
            refs = mine[mine["kind"] == "reference"]
            np.testing.assert_allclose(refs["source_ssim"], refs["reference_ssim"], rtol=0)
            np.testing.assert_allclose(mine["mismatch"], data.mismatch[layer], rtol=1e-12)
    # the standard LeNet's relu1 keeps the digit: its reference inversions resemble the reference
    early = table[(table["evaluator_layer"] == "relu1") & (table["kind"] == "reference")]
    assert (early["reference_ssim"] > 0.5).all(), early


def test_a_corrupt_inversion_artifact_is_named(study, tmp_path):
    import h5py
    import shutil

    from metamers.artifacts.files import seal

    path = tmp_path / "bad.h5"
    shutil.copy(study.out["lenet5_robust"], path)
    with h5py.File(path, "a") as f:  # sealed again: the schema check behind the checksums
        del f["mismatch/relu2"]
        seal(f)
    with pytest.raises(ArtifactError, match=rf"inversion artifact '{path}' lacks dataset\(s\) \['mismatch/relu2'\]"):
        read_inversions(path)
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(ArtifactError,
                       match=rf"inversion artifact '{path}' has schema version 99; this version reads 2 \(remedy: "):
        read_inversions(path)


def test_inversion_panels_show_every_source_and_inversion_at_its_place(study):
    table = pd.read_csv(study.tables.csv, keep_default_na=False)
    with np.load(study.tables.npz) as npz:
        pixels = {k: npz[k] for k in npz.files}
    panels = panel_layout(table)
    eval_layers = sum(map(len, INVERTED.values()))
    # per image and method: a row of the reference and its 2 metamers, then one row per evaluator layer
    assert len(panels) == 2 * 2 * (1 + eval_layers) * (1 + len(LAYERS))
    assert max(p["grid_row"] for p in panels) + 1 == 2 * 2 * (1 + eval_layers)
    fig = inversion_panels(table, pixels)
    axes = np.array(fig.axes).reshape(2 * 2 * (1 + eval_layers), 1 + len(LAYERS))
    for p in panels:
        drawn = axes[p["grid_row"], p["grid_col"]].images[0].get_array()
        want = pixels["source" if p["what"] == "source" else "inverted"][p["row"]][0]
        np.testing.assert_array_equal(np.asarray(drawn), want)
        row = table.iloc[p["row"]]
        if p["what"] == "inverted":
            assert p["row_label"] == f"{row['evaluator']}\n{row['evaluator_layer']}"
            assert axes[p["grid_row"], p["grid_col"]].get_xlabel() == f"{row['reference_ssim']:.2f}"
        if p["grid_col"] > 0:  # a metamer column: the block's method, and the column's generator and layer
            assert row["kind"] == "metamer" and row["method"] == p["block"][1]
            assert p["col_label"] == f"{row['generator']}\n{row['layer']}"
        else:
            assert row["kind"] == "reference"
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(ValueError, match=r"the inversion table has no rows"):
        inversion_panels(table.iloc[:0], pixels)
