"""How two models of a study are related: the transfer question each (generator, evaluator) pair asks.

Every model has three tags (a model entry's ``tags`` sets any of them; :func:`model_tags`
derives the rest from its source):

``family``
    The architecture: a trained or checkpoint model's ``architecture``; ``lenet5`` for the
    advertorch LeNets; a torchvision or timm model's ``name``; a RobustBench entry's ``name``
    (set ``family`` to group RobustBench models by architecture).
``training``
    ``standard`` or ``robust`` (adversarially trained): a trained model's style (``pgd`` is
    robust), advertorch's ``advtrained`` weights, a RobustBench entry other than ``Standard``.
``instance``
    What tells two models of one family and training apart: a trained model's seed, else the
    model's name.

:func:`relation` names the relation of a generator's metamers to an evaluator
(:data:`RELATIONS`). A joint generator is ``self`` for its members and, for any other model,
the relation its members share, or ``mixed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


#: Training tags.
TRAININGS = ("standard", "robust")
#: Relations, from the closest to the most distant, with what they mean.
RELATIONS: dict[str, str] = {
    "self": "the generator's own model",
    "same_architecture_other_instance": "the same architecture and training, another instance (seed)",
    "same_architecture_standard_to_robust": "the same architecture, a standard generator, a robust evaluator",
    "same_architecture_robust_to_standard": "the same architecture, a robust generator, a standard evaluator",
    "other_architecture": "another architecture with the same training",
    "other_architecture_standard_to_robust": "another architecture, a standard generator, a robust evaluator",
    "other_architecture_robust_to_standard": "another architecture, a robust generator, a standard evaluator",
    "mixed": "a joint generator whose members relate to the evaluator differently",
}
#: The tag keys a model entry's ``tags`` may set.
TAG_KEYS = ("family", "training", "instance")


def model_tags(config: Mapping[str, Any], name: str) -> dict[str, str]:
    """``{family, training, instance}`` of configured model ``name`` (given tags first)."""
    spec = config["models"][name]
    source = spec.get("source")
    given = dict(spec.get("tags", {}))
    if source == "train":
        style = spec.get("training", {}).get("style", "standard")
        derived = {"family": spec["architecture"], "training": "robust" if style == "pgd" else "standard",
                   "instance": f"seed {int(spec.get('seed', 0))}"}
    elif source == "advertorch":
        derived = {"family": "lenet5", "training": "robust" if spec.get("weights") == "advtrained" else "standard"}
    elif source == "robustbench":
        derived = {"family": str(spec.get("name")), "training": "standard" if spec.get("name") == "Standard"
                   else "robust"}
    elif source == "checkpoint":
        derived = {"family": str(spec.get("architecture")), "training": "standard"}
    else:  # torchvision, timm
        derived = {"family": str(spec.get("name", name)), "training": "standard"}
    tags = {"instance": name, **derived, **{k: str(v) for k, v in given.items()}}
    if tags["training"] not in TRAININGS:
        raise KeyError(f"model {name!r}: training tag {tags['training']!r}; valid: {', '.join(TRAININGS)}")
    return tags


def model_relation(config: Mapping[str, Any], generator_model: str, evaluator: str) -> str:
    """The relation of a single model's metamers to evaluator ``evaluator``."""
    if generator_model == evaluator:
        return "self"
    g, e = model_tags(config, generator_model), model_tags(config, evaluator)
    prefix = "same_architecture" if g["family"] == e["family"] else "other_architecture"
    if g["training"] != e["training"]:
        return f"{prefix}_{g['training']}_to_{e['training']}"
    if prefix == "other_architecture":
        return "other_architecture"
    return "same_architecture_other_instance" if g["instance"] != e["instance"] else "self"


def relation(config: Mapping[str, Any], generator: str, evaluator: str) -> str:
    """The relation of generator ``generator``'s metamers to ``evaluator`` (:data:`RELATIONS`)."""
    members = config.generator_models(generator)
    if config.is_joint(generator):
        if evaluator in members:
            return "self"
        found = {model_relation(config, m, evaluator) for m in members}
        return found.pop() if len(found) == 1 else "mixed"
    return model_relation(config, members[0], evaluator)


def model_order(config: Mapping[str, Any]) -> list[str]:
    """The study's models ordered by family, then training (standard first), then instance, for
    matrices whose neighbours should be related."""

    def key(name: str) -> tuple:
        tags = model_tags(config, name)
        return tags["family"], TRAININGS.index(tags["training"]), tags["instance"]

    return sorted(config.study_models(), key=key)
