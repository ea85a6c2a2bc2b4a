"""Several metamers per reference with a diversity term (metamers.synthesis.diversity): the term
against hand computations and finite differences, the plain method as its special case, the
members in the artifact, and the checks of a method's ``diversity``."""

from __future__ import annotations

import copy
import json
import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from metamers.artifacts.metamers import read_metamer_batch, write_metamer_batch
from metamers.config import ConfigError, validate_config
from metamers.models import Classifier
from metamers.models.architectures import LeNet5
from metamers.synthesis import MetamerSynthesis, start_seed
from metamers.synthesis.batch import metamer_batch
from metamers.synthesis.diversity import (
    Diversity,
    diversity_settings,
    mean_pairwise,
    member_id,
    pairwise_distances,
)
from metamers.synthesis.methods import MethodError, resolve_method
from metamers.synthesis.objective import method_target


def _lenet(seed: int = 0, name: str = "lenet") -> Classifier:
    torch.manual_seed(seed)
    return Classifier(LeNet5(), mean=(0.1307,), std=(0.3081,), input_shape=(1, 28, 28), num_classes=10, name=name)


def _references(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(5))


def test_pairwise_distances_equal_scipys_pdist_and_a_hand_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7))
    d = pairwise_distances(torch.from_numpy(x), 2.5).numpy()
    expected = pdist(x) / 2.5
    np.testing.assert_allclose(d[np.triu_indices(5, 1)], expected, rtol=1e-12)
    np.testing.assert_allclose(d, d.T, rtol=0)
    hand = np.mean([np.linalg.norm(x[a] - x[b]) / 2.5 for a, b in itertools.combinations(range(5), 2)])
    np.testing.assert_allclose(mean_pairwise(torch.from_numpy(d)).item(), hand, rtol=1e-12)


def test_spread_normalises_by_each_references_norm_in_the_space(tiny_linear):
    reference = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    pixels = Diversity(3, 0.5, 1.0, reference)
    spread = pixels.spread(x, [0, 1]).numpy()
    for i in range(2):
        members = x[3 * i:3 * i + 3].flatten(1).numpy()
        np.testing.assert_allclose(spread[i], pdist(members).mean() / np.linalg.norm(reference[i].numpy()),
                                   rtol=1e-6)
    layer = Diversity(3, 0.5, 1.0, reference, tiny_linear, "relu")
    with torch.no_grad():
        acts, ref_acts = tiny_linear.net(x).numpy(), tiny_linear.net(reference).numpy()
    got = layer.spread(x, [0, 1]).detach().numpy()
    for i in range(2):
        np.testing.assert_allclose(got[i], pdist(acts[3 * i:3 * i + 3]).mean() / np.linalg.norm(ref_acts[i]),
                                   rtol=1e-5)
    # the penalty is -w K sum_i D_i
    np.testing.assert_allclose(pixels.penalty(x, [0, 1]).item(), -0.5 * 3 * spread.sum(), rtol=1e-6)


@pytest.mark.parametrize("space", ["pixels", "layer"])
def test_the_terms_gradient_equals_finite_differences(space, tiny_linear):
    torch.manual_seed(0)
    reference = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    model = None
    if space == "layer":
        model = copy.deepcopy(tiny_linear).double()
    term = Diversity(3, 0.7, 1.0, reference, model, "relu" if model is not None else None)
    x = torch.rand(6, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: term.penalty(v, [0, 1]), (x,), eps=1e-6, atol=1e-7)
    # and a central difference by hand on a few pixels
    (grad,) = torch.autograd.grad(term.penalty(x, [0, 1]), x)
    for index in [(0, 0, 1, 2), (4, 0, 3, 3)]:
        up, down = x.detach().clone(), x.detach().clone()
        up[index] += 1e-6
        down[index] -= 1e-6
        fd = (term.penalty(up, [0, 1]) - term.penalty(down, [0, 1])).item() / 2e-6
        assert grad[index].item() == pytest.approx(fd, rel=1e-5, abs=1e-9)


def _run(model, reference, entry, **options):
    method = resolve_method("adam", {"iterations": 15, **entry})
    target = method_target(model, "relu2", method)
    synth = MetamerSynthesis([target], reference, method, seed=3, image_ids=["a", "b", "c"][:len(reference)],
                             **options)
    return synth, synth.synthesize(progress=False)


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_k_1_is_the_plain_method_bit_for_bit(weight):
    model, reference = _lenet(), _references()
    _, plain = _run(model, reference, {})
    synth, one = _run(model, reference, {"diversity": {"k": 1, "weight": weight}})
    assert synth.members.tolist() == [0, 0, 0]
    for field in ("metamer", "start", "loss", "final_loss"):
        assert np.array_equal(getattr(plain, field), getattr(one, field)), field


def test_weight_0_is_k_independent_seeds_member_0_the_plain_metamer():
    """With weight 0, each member is its own run: member 0 from the reference's seed (the plain
    metamer, batch by batch), member m from that of "<id>/member<m>"."""
    model, reference = _lenet(), _references(2)
    _, plain = _run(model, reference, {}, batch_invariant=True)
    synth, several = _run(model, reference, {"diversity": {"k": 3, "weight": 0.0}}, batch_invariant=True)
    assert synth.image_ids == ["a"] * 3 + ["b"] * 3 and synth.members.tolist() == [0, 1, 2] * 2
    assert synth.start_seeds == [start_seed(3, member_id(i, m)) for i in "ab" for m in range(3)]
    assert len(set(synth.start_seeds)) == 6
    assert np.array_equal(several.metamer[[0, 3]], plain.metamer)
    assert np.array_equal(several.loss[[0, 3]], plain.loss)
    # a member's run does not depend on the other members: member 2 of "a" alone (its seed's run)
    _, alone = _run(model, reference[:1], {}, batch_invariant=True)
    assert not np.array_equal(several.metamer[2], alone.metamer[0])


def test_the_term_pushes_members_apart_and_the_trace_keeps_the_matching_loss():
    model, reference = _lenet(), _references(2)
    runs = {w: _run(model, reference, {"iterations": 40, "diversity": {"k": 3, "weight": w}}) for w in (0.0, 2.0)}

    def spread(result):
        x = torch.from_numpy(result.metamer).flatten(1).reshape(2, 3, -1)
        return np.mean([pdist(x[i].numpy()).mean() for i in range(2)])

    assert spread(runs[2.0][1]) > 1.5 * spread(runs[0.0][1])
    synth, result = runs[2.0]
    with torch.no_grad():  # the recorded final loss is each member's matching loss alone
        matching = synth.objective.losses(torch.from_numpy(result.metamer))
    np.testing.assert_allclose(result.final_loss, matching.numpy(), rtol=1e-5)


def test_until_stops_the_term_after_its_fraction_of_the_budget():
    term = Diversity(3, 1.0, 0.25, _references(1))
    assert [term.active(i, 100) for i in (0, 24, 25, 99)] == [True, True, False, False]
    assert not Diversity(1, 1.0, 1.0, _references(1)).active(0, 100)
    assert not Diversity(3, 0.0, 1.0, _references(1)).active(0, 100)


def test_members_are_stored_and_read_back_with_their_index(tmp_path):
    model, reference = _lenet(), _references(2)
    synth, result = _run(model, reference, {"diversity": {"k": 2, "weight": 0.1}})
    batch = metamer_batch(synth, result, [4, 7], "m", "lenet", "relu2", "b0", {"method": "m"}, True)
    path = write_metamer_batch(tmp_path / "b0.h5", batch)
    back = read_metamer_batch(path)
    assert back.image_ids == ["a", "a", "b", "b"]
    assert back.member.tolist() == [0, 1, 0, 1]
    assert back.labels.tolist() == [4, 4, 7, 7]
    assert np.array_equal(back.reference[0], back.reference[1])
    assert np.array_equal(back.metamer_uint8, batch.metamer_uint8)
    assert json.loads(back.attrs["diversity"]) == {"k": 2, "weight": 0.1, "space": "pixels", "until": 1.0}
    assert len(back.distances["metamer"]["ssim"]) == 4


def test_a_plain_artifact_has_member_0_everywhere(tmp_path):
    model, reference = _lenet(), _references(2)
    synth, result = _run(model, reference, {})
    back = read_metamer_batch(write_metamer_batch(tmp_path / "b.h5", metamer_batch(
        synth, result, [1, 2], "m", "lenet", "relu2", "b", {}, True)))
    assert back.member.tolist() == [0, 0] and back.attrs["diversity"] == "null"


@pytest.mark.parametrize("entry, message", [
    ({"k": 0, "weight": 1.0}, "k must be an integer of at least 1"),
    ({"k": 2}, r"needs k \(metamers per reference\) and weight"),
    ({"k": 2, "weight": -1.0}, "weight must be a number of at least 0"),
    ({"k": 2, "weight": 1.0, "until": 0}, r"until must be a fraction of the budget in \(0, 1\]"),
    ({"k": 2, "weight": 1.0, "space": "ssim"}, "space must be 'pixels' or {model: NAME, layer: LAYER}"),
    ({"k": 2, "weight": 1.0, "spread": 1}, r"diversity key\(s\) \['spread'\] unknown"),
])
def test_bad_diversity_entries_are_refused_by_name(entry, message):
    with pytest.raises(MethodError, match=message):
        resolve_method("adam", {"diversity": entry})


@pytest.mark.parametrize("preset", ["polyak", "gauss_newton"])
def test_optimizers_that_step_by_the_objectives_value_refuse_a_diversity_term(preset):
    with pytest.raises(MethodError, match="steps by the objective's value.*normalized_gradient, adam, sgd"):
        resolve_method(preset, {"diversity": {"k": 2, "weight": 1.0}})
    with pytest.raises(MethodError, match="steps by the objective's value"):
        resolve_method("adam", {"optimizer": "lbfgs", "lr": 1.0, "diversity": {"k": 2, "weight": 1.0}})


def test_a_diversity_space_must_be_another_model_or_layer_than_the_target():
    model, other, reference = _lenet(), _lenet(1, "other"), _references(1)
    method = resolve_method("adam", {"iterations": 2, "diversity": {"k": 2, "weight": 1.0,
                                                                     "space": {"model": "lenet", "layer": "relu2"}}})
    with pytest.raises(ValueError, match="is a target of the synthesis"):
        MetamerSynthesis([method_target(model, "relu2", method)], reference, method, 0, diversity_model=model)
    with pytest.raises(ValueError, match="pass that model as diversity_model"):
        MetamerSynthesis([method_target(model, "relu2", method)], reference, method, 0, diversity_model=other)
    ok = MetamerSynthesis([method_target(model, "relu1", method)], reference, method, 0, diversity_model=model)
    assert ok.diversity.space_name == "lenet/relu2"


def test_the_config_checks_a_diversity_spaces_model(config):
    config = copy.deepcopy(config)
    name = next(iter(config["methods"]))
    config["methods"][name]["diversity"] = {"k": 2, "weight": 0.1, "space": {"model": "no_such", "layer": "relu1"}}
    with pytest.raises(ConfigError, match=rf"methods.{name}.diversity.space.model: .*'no_such'"):
        validate_config(config)
    config["methods"][name]["diversity"] = {"k": 2, "weight": 0.1, "shape": 1}
    with pytest.raises(ConfigError, match=rf"methods.{name}.diversity"):
        validate_config(config)


def test_the_space_model_is_a_generation_jobs_model(config):
    config = copy.deepcopy(config)
    name = next(iter(config["methods"]))
    generator, evaluator = "lenet5_standard", "lenet5_robust"
    config["methods"][name]["diversity"] = {"k": 2, "weight": 0.1, "space": {"model": evaluator, "layer": "x"}}
    study = validate_config(config)
    assert study.job_models(name, generator) == [*study.generator_models(generator), evaluator]
    assert evaluator in study.generation_key(name, generator, study.generator_layers(generator)[0], "b0")["models"]
    assert diversity_settings(study.method_settings(name)["diversity"])["space"] == {"model": evaluator, "layer": "x"}


# --- diversity measured (metamers.stats.diversity) ------------------------------------------


def test_diversity_rows_equal_hand_computed_distances_and_skimages_ssim():
    from skimage.metrics import structural_similarity

    from metamers.stats.diversity import DIVERSITY_COLUMNS, diversity_rows

    rng = np.random.default_rng(4)
    n, k = 3, 3
    refs = rng.random((n, 1, 12, 12))
    mets = rng.random((n * k, 1, 12, 12))
    ids = [f"r{i}" for i in range(n) for _ in range(k)]
    members = [m for _ in range(n) for m in range(k)]
    order = rng.permutation(n * k)  # rows in any order
    feats, ref_feats = rng.normal(size=(n * k, 5)), rng.normal(size=(n, 5))
    passed = rng.random(n * k) > 0.5
    rows = diversity_rows({"method": "m", "generator": "g", "layer": "l", "layer_index": 0},
                          [ids[o] for o in order], [members[o] for o in order], mets[order], refs, passed[order],
                          {"e/relu": (feats[order], ref_feats)})
    assert list(rows.columns) == DIVERSITY_COLUMNS and len(rows) == 3 * n
    between = np.mean([np.linalg.norm(refs[a] - refs[b]) for a, b in itertools.combinations(range(n), 2)])
    between_f = np.mean([np.linalg.norm(ref_feats[a] - ref_feats[b]) for a, b in itertools.combinations(range(n), 2)])
    for i in range(n):
        mine = range(i * k, (i + 1) * k)
        pairs = list(itertools.combinations(mine, 2))
        d = [np.linalg.norm(mets[a] - mets[b]) for a, b in pairs]
        s = [structural_similarity(mets[a, 0], mets[b, 0], gaussian_weights=True, use_sample_covariance=False,
                                   data_range=1.0, sigma=1.5) for a, b in pairs]
        f = [np.linalg.norm(feats[a] - feats[b]) for a, b in pairs]
        by_space = rows[rows["image_id"] == f"r{i}"].set_index("space")
        assert by_space.at["pixels", "mean_distance"] == pytest.approx(np.mean(d), rel=1e-12)
        assert by_space.at["pixels", "min_distance"] == pytest.approx(np.min(d), rel=1e-12)
        assert by_space.at["pixels", "relative_mean"] == pytest.approx(np.mean(d) / between, rel=1e-12)
        assert by_space.at["ssim", "mean_distance"] == pytest.approx(np.mean(s), abs=1e-9)
        assert by_space.at["ssim", "min_distance"] == pytest.approx(np.max(s), abs=1e-9)  # the closest pair
        assert by_space.at["e/relu", "relative_min"] == pytest.approx(np.min(f) / between_f, rel=1e-12)
        assert by_space.at["pixels", "n_passing"] == passed[list(mine)].sum()


def test_diversity_rows_refuse_a_reference_without_all_its_members():
    from metamers.stats.diversity import by_reference

    with pytest.raises(ValueError, match=r"every reference needs members 0 to 1"):
        by_reference(np.zeros((3, 2)), ["a", "a", "b"], [0, 1, 0])


def test_the_library_api_makes_k_metamers_per_reference_with_a_layer_space(tmp_path):
    from metamers import Metamer, MetamerResult

    model, other, reference = _lenet(), _lenet(1, "other"), _references(2)
    result = Metamer(reference, model, "relu2", method="adam", iterations=8, image_ids=["a", "b"], labels=[3, 5],
                     diversity={"k": 3, "weight": 0.1, "space": {"model": "other", "layer": "relu3"}},
                     diversity_model=other).synthesize(progress=False)
    assert result.metamers.shape == (6, 1, 28, 28)
    summary = result.summary()
    assert summary["image_id"].tolist() == ["a"] * 3 + ["b"] * 3 and summary["member"].tolist() == [0, 1, 2] * 2
    assert summary["label"].tolist() == [3] * 3 + [5] * 3
    back = MetamerResult.load(result.save(tmp_path / "r.h5"))
    assert back.batch.member.tolist() == [0, 1, 2] * 2
    assert json.loads(back.batch.attrs["diversity"])["space"] == {"model": "other", "layer": "relu3"}


def test_the_generation_job_loads_a_layer_spaces_model(config, tmp_path):
    """A workflow method whose diversity space is another model's layer: the job loads that model
    (not a generator of the study) and its metamers differ there; the checkpoint's fingerprint
    holds that model's weights."""
    from metamers.jobs.generate import generate

    config = copy.deepcopy(config)
    config["images"].update(per_class=1, limit=2)
    config["images_per_job"] = 2
    config["generators"] = {"lenet5_standard": {"layers": ["relu1"]}}
    config["methods"] = {"adam": {"iterations": 3, "diversity": {
        "k": 2, "weight": 0.5, "space": {"model": "lenet5_robust", "layer": "relu3"}}}}
    study = validate_config(config)
    path = generate(study, "adam", "lenet5_standard", "relu1", "b000", tmp_path / "b000.h5", progress=False)
    batch = read_metamer_batch(path, activations=False)
    assert batch.member.tolist() == [0, 1, 0, 1]
    assert json.loads(batch.attrs["job_config"])["models"].keys() == {"lenet5_standard", "lenet5_robust"}
    assert json.loads(batch.attrs["diversity"])["space"] == {"model": "lenet5_robust", "layer": "relu3"}


def test_the_fingerprint_holds_the_space_models_weights():
    model, reference = _lenet(), _references(1)
    method = resolve_method("adam", {"iterations": 2, "diversity": {"k": 2, "weight": 1.0,
                                                                     "space": {"model": "other", "layer": "relu2"}}})
    prints = [MetamerSynthesis([method_target(model, "relu1", method)], reference, method, 0,
                               diversity_model=_lenet(seed, "other")).fingerprint() for seed in (1, 1, 2)]
    assert prints[0] == prints[1] != prints[2]


def test_k_1_or_weight_0_runs_where_a_reference_is_zero_in_the_space():
    zero = torch.zeros(1, 1, 28, 28)
    assert Diversity(1, 1.0, 1.0, zero).k == 1 and Diversity(3, 0.0, 1.0, zero).weight == 0
    with pytest.raises(ValueError, match="a reference is zero in the diversity space pixels"):
        Diversity(3, 1.0, 1.0, zero)


def test_the_summary_compares_a_term_with_the_studys_independent_seeds(config, tmp_path):
    import pandas as pd

    from metamers.jobs.quality import diversity_table, independent_seeds
    from metamers.stats.diversity import DIVERSITY_COLUMNS
    from metamers.stats.resampling import percentile_interval

    config = copy.deepcopy(config)
    config["methods"] = {"term": {"preset": "adam", "diversity": {"k": 2, "weight": 0.1}},
                         "seeds": {"preset": "adam", "diversity": {"k": 2, "weight": 0}},
                         "other_seeds": {"preset": "adam", "lr": 0.05, "diversity": {"k": 2, "weight": 0}}}
    study = validate_config(config)
    assert independent_seeds(study, "term") == "seeds" and independent_seeds(study, "seeds") is None
    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(6)]
    values = {"term": rng.uniform(2, 3, 6), "seeds": rng.uniform(1, 1.5, 6)}
    frames = [pd.DataFrame({"method": m, "generator": "g", "layer": "l", "layer_index": 0,
                            "image_id": ids if m == "term" else ids[::-1], "space": "pixels", "n_members": 2,
                            "n_passing": 2, "mean_distance": v if m == "term" else v[::-1], "min_distance": v,
                            "between_references": 10.0, "relative_mean": v / 10, "relative_min": v / 10})
              for m, v in values.items()]
    pd.concat(frames)[DIVERSITY_COLUMNS].to_csv(tmp_path / "rows.csv", index=False)
    diversity_table(study, [tmp_path / "rows.csv"], tmp_path / "d.csv", tmp_path / "s.csv")
    summary = pd.read_csv(tmp_path / "s.csv").set_index("method")
    assert summary.at["term", "independent_seeds"] == "seeds" and np.isnan(summary.at["seeds", "ratio_to_seeds"])
    assert summary.at["term", "ratio_to_seeds"] == pytest.approx(values["term"].mean() / values["seeds"].mean())
    n_boot = study["relations"]["n_bootstrap"]
    samples = np.random.default_rng([study["seed"], 6]).integers(0, 6, (n_boot, 6))  # paired by image id
    low, high = percentile_interval(values["term"][samples].mean(1) / values["seeds"][samples].mean(1),
                                    study["relations"]["confidence"])
    assert (summary.at["term", "ratio_ci_low"], summary.at["term", "ratio_ci_high"]) == pytest.approx((low, high))
