"""Source ``advertorch``: the standard (``clntrained``) or adversarially trained (``advtrained``)
MNIST LeNet-5 whose weights the ``advertorch`` package ships."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...registry import lookup
from .base import SOURCES, ModelLoadError, Source, classifier, load_weights, missing_package, require_keys

if TYPE_CHECKING:
    from ..classifier import Classifier

#: ``weights`` value of an ``advertorch`` entry -> file name in :func:`advertorch_weights_dir`.
ADVERTORCH_WEIGHTS = {
    "clntrained": "mnist_lenet5_clntrained.pt",
    "advtrained": "mnist_lenet5_advtrained.pt",
}


def advertorch_weights_dir() -> Path:
    """Folder of the LeNet-5 weights shipped by ``advertorch`` (found without importing it:
    ``advertorch`` itself does not import with current torch, and its examples have side effects)."""
    spec = importlib.util.find_spec("advertorch_examples")
    if spec is None or not spec.submodule_search_locations:
        raise missing_package("source 'advertorch'", "advertorch")
    return Path(list(spec.submodule_search_locations)[0]) / "trained_models"


def advertorch_weight_file(name: str, spec: Mapping[str, Any]) -> Path:
    """The LeNet-5 file of entry ``spec`` (``weights: clntrained | advtrained``).

    Raises
    ------
    ModelLoadError
        ``weights`` is missing or unknown (the message lists the valid values), or advertorch
        is not installed.
    """
    require_keys(spec, name, ["weights"])
    file = lookup(ADVERTORCH_WEIGHTS, spec["weights"], "advertorch weights", ModelLoadError,
                  context=f"model {name!r}: ")
    return advertorch_weights_dir() / file


def load_advertorch(name: str, spec: Mapping[str, Any]) -> Classifier:
    from ..architecture_specs import ARCHITECTURES
    from ..architectures import build_architecture

    path = advertorch_weight_file(name, spec)
    net = load_weights(build_architecture("lenet5"), path, name)
    return classifier(net, name, spec, ARCHITECTURES["lenet5"])


SOURCES.register("advertorch", Source(lambda name, spec: [advertorch_weight_file(name, spec)], load_advertorch))
