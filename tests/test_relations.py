"""Relations between the models of a constructed zoo: every (generator, evaluator) pair's
transfer question, from tags derived from each model's source or given in its entry."""

from __future__ import annotations

import pytest

from metamers.config import validate_config
from metamers.relations import RELATIONS, model_tags, relation

ZOO = {
    "lenet_std": {"source": "advertorch", "weights": "clntrained"},
    "lenet_rob": {"source": "advertorch", "weights": "advtrained"},
    "mlp_s0": {"source": "train", "architecture": "mlp", "seed": 0},
    "mlp_s1": {"source": "train", "architecture": "mlp", "seed": 1},
    "mlp_pgd": {"source": "train", "architecture": "mlp", "seed": 0, "training": {"style": "pgd"}},
    "lenet_s2": {"source": "train", "architecture": "lenet5", "seed": 2},
    "resnet20": {"source": "checkpoint", "architecture": "cifar_resnet20", "path": "x.th"},
    "rb_wide": {"source": "robustbench", "name": "Carmon2019", "dataset": "cifar10", "threat_model": "Linf",
                "model_dir": "m", "tags": {"family": "wrn28"}},
    "rb_std": {"source": "robustbench", "name": "Standard", "dataset": "cifar10", "threat_model": "Linf",
               "model_dir": "m", "tags": {"family": "wrn28"}},
}


@pytest.fixture(scope="module")
def zoo(study_config):
    # images of undeclared labels: the zoo mixes MNIST and CIFAR-10 models, which no class map joins
    config = {**study_config, "models": ZOO, "images": {"type": "folder", "root": "images"}}
    config["generators"] = {name: {"layers": ["relu1"]} for name in ("lenet_std", "lenet_rob", "mlp_s0", "mlp_pgd")}
    config["generators"]["both"] = {"members": ["lenet_std", "mlp_s0"], "layers": ["relu1"]}
    config["generators"]["mixed"] = {"members": ["lenet_std", "lenet_rob"], "layers": ["relu1"]}
    config["evaluators"] = list(ZOO)
    return validate_config(config)


def test_tags_are_derived_from_each_source_or_given(zoo):
    assert model_tags(zoo, "lenet_rob") == {"family": "lenet5", "training": "robust", "instance": "lenet_rob"}
    assert model_tags(zoo, "mlp_s1") == {"family": "mlp", "training": "standard", "instance": "seed 1"}
    assert model_tags(zoo, "mlp_pgd")["training"] == "robust"
    assert model_tags(zoo, "resnet20") == {"family": "cifar_resnet20", "training": "standard", "instance": "resnet20"}
    assert model_tags(zoo, "rb_wide") == {"family": "wrn28", "training": "robust", "instance": "rb_wide"}
    assert model_tags(zoo, "rb_std")["training"] == "standard"


@pytest.mark.parametrize(("generator", "evaluator", "expected"), [
    ("lenet_std", "lenet_std", "self"),
    ("mlp_s0", "mlp_s1", "same_architecture_other_instance"),
    ("lenet_std", "lenet_s2", "same_architecture_other_instance"),   # advertorch's LeNet and a trained one
    ("mlp_s0", "mlp_pgd", "same_architecture_standard_to_robust"),
    ("mlp_pgd", "mlp_s1", "same_architecture_robust_to_standard"),
    ("lenet_std", "lenet_rob", "same_architecture_standard_to_robust"),
    ("lenet_std", "mlp_s0", "other_architecture"),
    ("lenet_rob", "mlp_pgd", "other_architecture"),
    ("mlp_s0", "lenet_rob", "other_architecture_standard_to_robust"),
    ("lenet_rob", "resnet20", "other_architecture_robust_to_standard"),
    ("both", "mlp_s0", "self"),                                        # a member of the joint generator
    ("both", "lenet_rob", "mixed"),                                    # same architecture to one, other to the other
    ("both", "mlp_s1", "mixed"),
    ("both", "resnet20", "other_architecture"),                        # both members: other, standard
    ("mixed", "resnet20", "mixed"),
])
def test_relations_of_a_constructed_zoo(zoo, generator, evaluator, expected):
    assert relation(zoo, generator, evaluator) == expected
    assert expected in RELATIONS


def test_every_pair_has_a_known_relation_and_self_only_on_the_diagonal(zoo):
    for g in zoo["generators"]:
        for e in zoo["evaluators"]:
            r = relation(zoo, g, e)
            assert r in RELATIONS
            assert (r == "self") == (e == g or e in zoo["generators"][g].get("members", []))
