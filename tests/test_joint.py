"""Joint generators: one metamer matched at several models' layers at once, from the config to
the metamer test of every member."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from metamers.artifacts import read_metamer_batch
from metamers.config import ConfigError, validate_config
from metamers.data.pixels import to_input
from metamers.jobs.generate import generate
from metamers.jobs.metamer_test import metamer_test
from metamers.jobs.nulls import null_distribution
from metamers.jobs.preflight import preflight
from metamers.models import Classifier, load_model
from metamers.models.layers import LayerReader
from metamers.synthesis import Objective, Target
from metamers.synthesis.losses import normalized_l2

JOINT = {"members": ["lenet5_standard", "lenet5_robust"], "layers": ["relu2", "linear2"]}


@pytest.fixture
def joint_config(config):
    config["images"].update(per_class=1, limit=2)
    config["generators"] = {"lenet5_standard": {"layers": ["relu1"]}, "lenets": JOINT}
    config["methods"] = {"adam": {"iterations": 30, "lr": 0.05, "check_every": 10, "on_success": "continue"}}
    config["metamer_test"] = {"n_pairs": 300, "statistics": ["pearson", "snr_db"], "n_draws": 1,
                              "pool": {"type": "mnist", "per_class": 5}}
    return validate_config(config)


def test_targets_of_a_joint_generator_have_normalized_weights_and_mapped_layers(joint_config):
    assert joint_config.generator_models("lenets") == ["lenet5_standard", "lenet5_robust"]
    assert [(t.model, t.layer, t.weight) for t in joint_config.generator_targets("lenets", "relu2")] == [
        ("lenet5_standard", "relu2", 0.5), ("lenet5_robust", "relu2", 0.5)]
    config = dict(joint_config)
    config["generators"] = {"lenets": {"members": [{"model": "lenet5_standard", "weight": 3},
                                                    {"model": "lenet5_robust", "weight": 1}],
                                       "layers": [{"name": "deep", "members": {"lenet5_standard": "relu3",
                                                                               "lenet5_robust": "linear2"}}]}}
    config = validate_config(config)
    assert [(t.model, t.layer, t.weight) for t in config.generator_targets("lenets", "deep")] == [
        ("lenet5_standard", "relu3", 0.75), ("lenet5_robust", "linear2", 0.25)]
    # the nulls the study needs: every (model, layer) target once, single generators' included
    assert joint_config.null_targets() == {"lenet5_standard": ["relu1", "relu2", "linear2"],
                                          "lenet5_robust": ["relu2", "linear2"]}


@pytest.mark.parametrize(("generators", "message"), [
    ({"lenets": {"members": ["lenet5_standard", "vgg"], "layers": ["relu2"]}},
     "generators.lenets: members: unknown model 'vgg'; configured: lenet5_standard, lenet5_robust"),
    ({"lenets": {"members": ["lenet5_standard", "lenet5_standard"], "layers": ["relu2"]}},
     r"generators.lenets: members: listed more than once: \['lenet5_standard'\]"),
    ({"lenet5_robust": {"members": ["lenet5_standard", "lenet5_robust"], "layers": ["relu2"]}},
     "generators.lenet5_robust: a joint generator needs a name of its own; 'lenet5_robust' is a configured model"),
    ({"lenets": {"members": ["lenet5_standard", "lenet5_robust"],
                 "layers": [{"name": "x", "members": {"lenet5_standard": "relu2", "other": "relu1"}}]}},
     r"generators.lenets: layer 'x': members \['other'\] are not members of 'lenets'"),
    ({"lenets": {"layers": ["relu2"]}},
     "generators.lenets: unknown model 'lenets'; configured: lenet5_standard, lenet5_robust \\(a joint generator "
     "lists its `members`\\)"),
])
def test_bad_joint_generators_are_named(config, generators, message):
    config["generators"] = generators
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


class Upsampled(torch.nn.Module):
    """A 'model' of 1 x 8 x 8 inputs: its logits are its input's pixels (a linear read-out)."""

    def forward(self, x):
        return x.flatten(1)


def test_each_member_sees_the_image_at_its_own_input_size():
    """The objective feeds a model of another input shape the image resized to it
    (metamers.data.pixels.to_input), and a joint loss is the sum of its weighted terms."""
    torch.manual_seed(0)
    small = Classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 5)), mean=(0.0,), std=(1.0,),
                       input_shape=(1, 4, 4), num_classes=5, name="small")
    big = Classifier(torch.nn.Sequential(Upsampled()), mean=(0.0,), std=(1.0,), input_shape=(1, 8, 8),
                     num_classes=64, name="big")
    ref = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    objective = Objective([Target(small, "1", 0.5), Target(big, "0", 0.5)], ref, "normalized_l2", [slice(0, 2)])
    with torch.no_grad():
        expected = 0.5 * normalized_l2(small.net(x), small.net(ref)) + 0.5 * normalized_l2(
            to_input(x, (1, 8, 8)).flatten(1), to_input(ref, (1, 8, 8)).flatten(1))
        torch.testing.assert_close(objective.losses(x), expected, rtol=1e-6, atol=1e-7)


def test_joint_job_matches_both_members_and_is_tested_by_each(joint_config, tmp_path):
    null_paths = []
    for model, layers in joint_config.null_targets().items():
        for layer in layers:
            null_paths.append(null_distribution(joint_config, model, layer, tmp_path / "nulls" / f"{model}-{layer}.h5"))
    relu2 = [p for p in null_paths if p.name.endswith("relu2.h5")]
    path = generate(joint_config, "adam", "lenets", "relu2", "b000", tmp_path / "joint.h5", progress=False,
                    null_paths=relu2)
    art = read_metamer_batch(path)
    targets = json.loads(art.attrs["targets"])
    assert [(t["model"], t["layer"], t["weight"], t["dim"]) for t in targets] == [
        ("lenet5_standard", "relu2", 0.5, 12544), ("lenet5_robust", "relu2", 0.5, 12544)]
    assert art.activations_metamer.shape == (2, 2 * 12544)
    assert sorted(art.test_values) == sorted(f"{m}:relu2:{s}" for m in ("lenet5_standard", "lenet5_robust")
                                             for s in ("pearson", "snr_db"))
    # the recorded objective is the sum of the two normalized terms, each computed here
    models = {m: load_model(joint_config["models"], m) for m in ("lenet5_standard", "lenet5_robust")}
    x, ref = torch.from_numpy(art.metamer), torch.from_numpy(art.reference).float() / 255
    with torch.no_grad():
        terms = [normalized_l2(LayerReader(m, ["relu2"])(x)["relu2"], LayerReader(m, ["relu2"])(ref)["relu2"])
                 for m in models.values()]
    np.testing.assert_allclose(art.final_loss, (0.5 * terms[0] + 0.5 * terms[1]).numpy(), rtol=1e-4)
    # the stored activations are each member's, side by side
    with torch.no_grad():
        robust = LayerReader(models["lenet5_robust"], ["relu2"])(torch.from_numpy(art.metamer_uint8).float() / 255)
    np.testing.assert_allclose(art.activations_metamer[:, 12544:], robust["relu2"].flatten(1).numpy(), rtol=2e-3,
                               atol=2e-3)

    other = generate(joint_config, "adam", "lenets", "linear2", "b000", tmp_path / "joint2.h5", progress=False,
                     null_paths=[p for p in null_paths if p.name.endswith("linear2.h5")])
    joint_nulls = [p for p in null_paths if not p.name.endswith("relu1.h5")]
    rows = pd.read_csv(metamer_test(joint_config, "lenets", [path, other], joint_nulls, tmp_path / "t.csv"))
    # every member tests every metamer at each of its layers; the targets are the generation layer's
    assert set(rows["measured_model"]) == {"lenet5_standard", "lenet5_robust"}
    assert set(zip(rows["layer"], rows["measured_layer"], rows["target"])) == {
        ("relu2", "relu2", True), ("relu2", "linear2", False), ("linear2", "linear2", True),
        ("linear2", "relu2", False)}
    own = rows[(rows["layer"] == "relu2") & rows["target"] & (rows["statistic"] == "pearson")]
    robust_rows = own[own["measured_model"] == "lenet5_robust"].set_index("image_id")
    with torch.no_grad():
        a = robust["relu2"].flatten(1).double().numpy()
        b = LayerReader(models["lenet5_robust"], ["relu2"])(ref)["relu2"].flatten(1).double().numpy()
    expected = [np.corrcoef(a[i], b[i])[0, 1] for i in range(2)]
    np.testing.assert_allclose(robust_rows.loc[art.image_ids, "value"], expected, rtol=1e-5)
    # a metamer passes only where it passes for both members (the in-loop test says the same)
    from metamers.stats.metamer_test import metamer_verdicts

    verdicts = metamer_verdicts(rows).set_index(["layer", "image_id"])
    targets_ok = own.groupby("image_id").apply(lambda g: bool(g["passed"].all() and g["class_matches_reference"].all()))
    for image_id, ok in targets_ok.items():
        assert bool(verdicts.loc[("relu2", image_id), "passed_metamer_test"]) == ok


def test_preflight_names_a_members_missing_layer(joint_config):
    config = dict(joint_config)
    config["generators"] = {"lenets": {"members": ["lenet5_standard", "lenet5_robust"],
                                       "layers": [{"name": "x", "members": {"lenet5_robust": "relu9"}}]}}
    config = validate_config(config)
    problems = preflight(config)
    assert any(p.startswith("generator 'lenets', layer 'x' (member 'lenet5_standard', layer 'x'): ") for p in problems)
    assert any(p.startswith("generator 'lenets', layer 'x' (member 'lenet5_robust', layer 'relu9'): ")
               for p in problems), problems


def test_gauss_newton_joint_job_at_the_logits_keeps_its_first_passing_iterates(joint_config, tmp_path):
    """A joint Gauss-Newton job at both LeNets' logits (20 residuals per image) with ``on_success:
    record``: the metamers match both members' logits, and the artifact keeps each image's first
    passing 8-bit iterate, whose correlations at both members are those the in-loop test recorded."""
    config = dict(joint_config)
    config["methods"] = {"gn": {"preset": "gauss_newton", "iterations": 30, "check_every": 1, "on_success": "record"}}
    config = validate_config(config)
    nulls = [null_distribution(config, m, "linear2", tmp_path / f"{m}-linear2.h5")
             for m in ("lenet5_standard", "lenet5_robust")]
    art = read_metamer_batch(generate(config, "gn", "lenets", "linear2", "b000", tmp_path / "gn.h5", progress=False,
                                      null_paths=nulls))
    assert (art.final_loss < 0.01 * art.loss[:, 0]).all(), (art.final_loss, art.loss[:, 0])  # both logits matched
    assert (art.pass_iteration >= 1).all() and art.first_pass_uint8 is not None
    assert not np.array_equal(art.first_pass_uint8, art.metamer_uint8)  # the last iterates went on
    ref = torch.from_numpy(art.reference).float() / 255
    first = torch.from_numpy(art.first_pass_uint8).float() / 255
    for name in ("lenet5_standard", "lenet5_robust"):
        model = load_model(config["models"], name)
        with torch.no_grad():
            a, b = model(first).double().numpy(), model(ref).double().numpy()
        for i, p in enumerate(art.pass_iteration):
            k = list(art.test_iterations).index(p)
            assert art.test_passed[i, k] and not art.test_passed[i, :k].any()
            np.testing.assert_allclose(art.test_values[f"{name}:linear2:pearson"][i, k], np.corrcoef(a[i], b[i])[0, 1],
                                       rtol=1e-5)
