"""The settings of a model the workflow trains (``source: train``), checked without torch:
:func:`resolve_training` fills in the defaults and names any unknown part or unused key.
Training itself is :mod:`.training`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..data.training_sets import TRAINING_SETS
from .architecture_specs import ARCHITECTURES

#: Training styles.
STYLES = ("standard", "pgd")
#: What every training entry has, and its defaults.
TRAINING_DEFAULTS: dict[str, Any] = {"style": "standard", "epochs": 3, "batch_size": 64, "lr": 0.05, "momentum": 0.9,
                                     "weight_decay": 0.0, "train_images": None}
#: The keys of adversarial training (style ``pgd``) and their defaults (Madry et al.'s MNIST ε).
PGD_DEFAULTS: dict[str, Any] = {"epsilon": 0.3, "steps": 7, "step_size": 0.1}
#: The held-out evaluation: number of held-out images (a fixed-seed sample; None: all)
#: and the L∞ PGD attack the robust accuracy is measured under.
EVALUATION_DEFAULTS: dict[str, Any] = {"images": 1000, "epsilon": 0.3, "steps": 20, "step_size": 0.03}


class TrainingError(ValueError):
    """A training entry that names an unknown part or a key that nothing uses."""


def resolve_training(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The full training settings of trained model ``name``: ``{architecture, seed, data,
    training, evaluation}`` with defaults filled in.

    Raises
    ------
    TrainingError
        An unknown architecture, style or training set, a key that the style does not use
        (``epsilon`` of standard training), or an architecture whose input does not fit the
        training set's images; the message names the model and the key.
    """
    context = f"model {name!r} (source train): "
    if spec.get("architecture") not in ARCHITECTURES:
        raise TrainingError(f"{context}unknown architecture {spec.get('architecture')!r}; valid: "
                            f"{', '.join(ARCHITECTURES)}")
    training = dict(spec.get("training", {}))
    style = training.get("style", "standard")
    if style not in STYLES:
        raise TrainingError(f"{context}unknown training style {style!r}; valid: {', '.join(STYLES)}")
    allowed = {**TRAINING_DEFAULTS, **(PGD_DEFAULTS if style == "pgd" else {})}
    extra = [k for k in training if k not in allowed]
    if extra:
        raise TrainingError(f"{context}training key(s) {extra} are not used by style {style!r}; its keys: "
                            f"{', '.join(allowed)}")
    data = dict(spec.get("data", {"type": "mnist"}))
    kind = data.get("type", "mnist")
    if kind not in TRAINING_SETS:
        raise TrainingError(f"{context}unknown training set {kind!r}; valid: {', '.join(TRAINING_SETS)}")
    extra = [k for k in data if k not in ("type", *TRAINING_SETS[kind].keys)]
    if extra:
        raise TrainingError(f"{context}data key(s) {extra} are not used by training set {kind!r}; its keys: "
                            f"type, {', '.join(TRAINING_SETS[kind].keys) or '(none)'}")
    arch = ARCHITECTURES[spec["architecture"]]
    if tuple(arch["input_shape"]) != TRAINING_SETS[kind].input_shape:
        raise TrainingError(f"{context}architecture {spec['architecture']!r} takes {tuple(arch['input_shape'])} "
                            f"inputs, but training set {kind!r} has {TRAINING_SETS[kind].input_shape} images")
    evaluation = dict(spec.get("evaluation", {}))
    extra = [k for k in evaluation if k not in EVALUATION_DEFAULTS]
    if extra:
        raise TrainingError(f"{context}evaluation key(s) {extra} are not used; its keys: "
                            f"{', '.join(EVALUATION_DEFAULTS)}")
    return {"architecture": spec["architecture"], "seed": int(spec.get("seed", 0)), "data": {"type": kind, **data},
            "training": {**allowed, **training}, "evaluation": {**EVALUATION_DEFAULTS, **evaluation}}
