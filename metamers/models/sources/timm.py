"""Source ``timm``: a timm architecture with weights from a local checkpoint file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import SOURCES, ModelLoadError, Source, classifier, file_named_by, load_weights, missing_package

if TYPE_CHECKING:
    from ..classifier import Classifier


_files = file_named_by("checkpoint", "name")


def load_timm(name: str, spec: Mapping[str, Any]) -> Classifier:
    try:
        import timm
    except ImportError as err:
        raise missing_package("source 'timm'", "timm", err) from err

    (path,) = _files(name, spec)
    arch = spec["name"]
    if not timm.is_model(arch):
        raise ModelLoadError(f"model {name!r}: unknown timm model {arch!r}; see timm.list_models() for the valid names")
    kwargs = {"num_classes": spec["num_classes"]} if "num_classes" in spec else {}
    net = load_weights(timm.create_model(arch, pretrained=False, **kwargs), path, name)
    cfg = net.pretrained_cfg
    defaults = {
        "input_shape": tuple(cfg["input_size"]),
        "num_classes": net.num_classes,
        "mean": tuple(cfg["mean"]),
        "std": tuple(cfg["std"]),
    }
    return classifier(net, name, spec, defaults)


SOURCES.register("timm", Source(_files, load_timm))
