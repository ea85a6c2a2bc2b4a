"""Source ``train``: a model the workflow trains itself (rule ``train_model``,
:mod:`metamers.models.training`), loaded from the checkpoint that rule writes.

The checkpoint's path is ``<results>/models/<name>.pt``; :func:`metamers.config.validate_config`
fills it into the entry as ``path``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import SOURCES, ModelLoadError, Source, classifier, file_named_by, load_weights

if TYPE_CHECKING:
    from ..classifier import Classifier


_files = file_named_by("path", "architecture")


def untrained(name: str, spec: Mapping[str, Any]) -> Classifier:
    """The model's architecture with the initial weights of its seed (what training starts from):
    the pre-flight check reads its layers before the model is trained."""
    import torch

    from ..architecture_specs import ARCHITECTURES
    from ..architectures import build_architecture
    from ..training_settings import TrainingError, resolve_training

    try:
        settings = resolve_training(name, spec)
    except TrainingError as err:
        raise ModelLoadError(str(err)) from None
    torch.manual_seed(settings["seed"])
    return classifier(build_architecture(settings["architecture"]), name, spec, ARCHITECTURES[settings["architecture"]])


def load_trained(name: str, spec: Mapping[str, Any]) -> Classifier:
    from ..architecture_specs import ARCHITECTURES
    from ..architectures import build_architecture
    from ..training_settings import TrainingError, resolve_training

    (path,) = _files(name, spec)
    try:
        settings = resolve_training(name, spec)
    except TrainingError as err:
        raise ModelLoadError(str(err)) from None
    if not Path(path).is_file():
        raise ModelLoadError(f"model {name!r} is trained by the workflow (rule train_model); its checkpoint "
                             f"{str(path)!r} does not exist yet")
    net = load_weights(build_architecture(settings["architecture"]), Path(path), name)
    return classifier(net, name, spec, ARCHITECTURES[settings["architecture"]])


SOURCES.register("train", Source(_files, load_trained))
