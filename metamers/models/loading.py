"""Configured models: their entries, their weight files, and loading them.

:func:`load_model` turns a config entry into a ready :class:`~metamers.models.classifier.Classifier`
(in eval mode, frozen, taking inputs in [0, 1]); :func:`weight_files` names the files it would
read without loading it or importing torch (only the ``torchvision`` source imports torchvision,
whose weights enum gives the file), so that the workflow can make them inputs of the rules that
load them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..registry import lookup
from .sources import SOURCES

if TYPE_CHECKING:
    import torch

    from .classifier import Classifier


def model_spec(models: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    """The config entry of model ``name``; unknown names list the configured ones."""
    return lookup(models, name, "model", listed="configured")


def weight_files(models: Mapping[str, Mapping[str, Any]], name: str) -> list[Path]:
    """The weight file(s) that loading configured model ``name`` reads, without loading it.

    Parameters
    ----------
    models
        The ``models`` section of the config (name -> entry with a ``source``).
    name
        The model.

    Returns
    -------
    list of Path
        The files, whether or not they exist.

    Raises
    ------
    KeyError
        Unknown model name (the message lists the configured ones) or unknown source.
    ModelLoadError
        A missing key, or values that name no file (as :func:`load_model`).
    """
    spec = model_spec(models, name)
    return SOURCES.lookup(spec.get("source"), context=f"model {name!r}: ").weight_files(name, spec)


def load_model(models: Mapping[str, Mapping[str, Any]], name: str, device: torch.device | str = "cpu") -> Classifier:
    """Load configured model ``name`` onto ``device``.

    Parameters
    ----------
    models
        The ``models`` section of the config (name -> entry with a ``source``).
    name
        The model to load.
    device
        Where to put it.

    Raises
    ------
    KeyError
        Unknown model name (the message lists the configured ones) or unknown source.
    ModelLoadError
        The source cannot produce the model (missing file, unknown architecture, ...).
    """
    spec = model_spec(models, name)
    return SOURCES.lookup(spec.get("source"), context=f"model {name!r}: ").load(name, spec).to(device)


def existing_weight_files(models: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """The weight files of configured models ``names`` (of the ``models`` section; a study's are
    :meth:`~metamers.study.Study.study_models`) that exist on disk now.

    The workflow makes these inputs of its rules, so that replacing a weight file reruns the
    jobs that read it; a missing file (or a model whose files cannot be named: unknown source,
    missing key) is left out here and reported by the pre-flight check instead.

    Returns
    -------
    list of str
        Sorted, without duplicates.
    """
    found: set[str] = set()
    for name in names:
        try:
            files = weight_files(models, name)
        except Exception:  # noqa: BLE001 - the pre-flight check reports why this model has no files
            continue
        found.update(str(p) for p in files if p.is_file())
    return sorted(found)
