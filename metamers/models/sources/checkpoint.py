"""Source ``checkpoint``: an architecture of :data:`~metamers.models.architecture_specs.ARCHITECTURES`
plus a local state dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...registry import lookup
from .base import SOURCES, ModelLoadError, Source, classifier, file_named_by, load_weights

if TYPE_CHECKING:
    from ..classifier import Classifier


_files = file_named_by("path", "architecture")


def load_checkpoint(name: str, spec: Mapping[str, Any]) -> Classifier:
    from ..architecture_specs import ARCHITECTURES
    from ..architectures import build_architecture

    (path,) = _files(name, spec)
    defaults = lookup(ARCHITECTURES, spec["architecture"], "architecture", ModelLoadError, context=f"model {name!r}: ")
    net = load_weights(build_architecture(spec["architecture"], spec.get("num_classes")), path, name)
    return classifier(net, name, spec, defaults)


SOURCES.register("checkpoint", Source(_files, load_checkpoint))
