"""Where each configured model's weights live, found without loading the model or importing torch.

The workflow asks for the weight files of models while it builds its DAG, for thousands of
jobs, so this module imports neither torch nor a model library: only the ``torchvision``
source imports torchvision (lazily), because its weights enum gives the file's URL.
:mod:`metamers.registry` imports the path helpers from here, so each is defined once.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


class ModelLoadError(RuntimeError):
    """A model could not be loaded from its configured source."""


def _require(spec: Mapping[str, Any], model: str, keys: Sequence[str]) -> None:
    """Raise :class:`ModelLoadError` naming the ``keys`` that entry ``spec`` of ``model`` lacks."""
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ModelLoadError(
            f"model {model!r} (source {spec.get('source')!r}) is missing key(s) {missing}"
        )


def model_spec(models: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    """The config entry of model ``name``; unknown names list the configured ones."""
    if name not in models:
        raise KeyError(f"unknown model {name!r}; configured models: {', '.join(sorted(models)) or '(none)'}")
    return models[name]


# --------------------------------------------------------------------------- path helpers


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
        raise ModelLoadError("source 'advertorch' needs the advertorch package: pip install advertorch==0.2.3")
    return Path(list(spec.submodule_search_locations)[0]) / "trained_models"


def advertorch_weight_file(name: str, spec: Mapping[str, Any]) -> Path:
    """The LeNet-5 file of ``advertorch`` entry ``spec`` (``weights: clntrained | advtrained``).

    Raises
    ------
    ModelLoadError
        ``weights`` is missing or unknown (the message lists the valid values), or advertorch
        is not installed.
    """
    _require(spec, name, ["weights"])
    if spec["weights"] not in ADVERTORCH_WEIGHTS:
        raise ModelLoadError(
            f"model {name!r}: unknown advertorch weights {spec['weights']!r}; "
            f"valid: {', '.join(ADVERTORCH_WEIGHTS)}"
        )
    return advertorch_weights_dir() / ADVERTORCH_WEIGHTS[spec["weights"]]


def torch_hub_dir() -> Path:
    """torch.hub's cache folder, by torch's rule but without importing torch.

    ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``
    (as :func:`torch.hub.get_dir`). When torch.hub is already imported and
    :func:`torch.hub.set_dir` was called, its folder is returned instead.
    """
    hub = sys.modules.get("torch.hub")
    override = getattr(hub, "_hub_dir", None) if hub is not None else None
    if override:
        return Path(override)
    torch_home = os.path.expanduser(
        os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    )
    return Path(torch_home) / "hub"


def torch_hub_checkpoint(url: str) -> Path:
    """Where torch.hub looks for the weights of ``url`` (``$TORCH_HOME/hub/checkpoints/<file>``)."""
    return torch_hub_dir() / "checkpoints" / os.path.basename(url)


def torchvision_weights(name: str, spec: Mapping[str, Any]) -> Any:
    """The torchvision weights enum member of entry ``spec`` (``name``, ``weights``); imports torchvision.

    Raises
    ------
    ModelLoadError
        A missing key, an unknown architecture or unknown weights (the message lists the valid ones).
    """
    import torchvision.models as tvm

    _require(spec, name, ["name", "weights"])
    arch = spec["name"]
    available = tvm.list_models(module=tvm)
    if arch not in available:
        raise ModelLoadError(
            f"model {name!r}: unknown torchvision classification model {arch!r}; "
            f"valid: {', '.join(available)}"
        )
    try:
        return tvm.get_weight(spec["weights"])
    except (ValueError, KeyError, AttributeError) as err:
        valid = [f"{type(w).__name__}.{w.name}" for w in tvm.get_model_weights(arch)]
        raise ModelLoadError(
            f"model {name!r}: unknown weights {spec['weights']!r} for {arch}; valid: {', '.join(valid)}"
        ) from err


def robustbench_checkpoint(model_dir: str | Path, dataset: str, threat_model: str, name: str) -> Path:
    """The file RobustBench reads: ``<model_dir>/<dataset>/<threat_model>/<name>.pt``."""
    return Path(model_dir) / dataset / threat_model / f"{name}.pt"


# --------------------------------------------------------------------------- per source


def _advertorch_files(name: str, spec: Mapping[str, Any]) -> list[Path]:
    return [advertorch_weight_file(name, spec)]


def _torchvision_files(name: str, spec: Mapping[str, Any]) -> list[Path]:
    return [torch_hub_checkpoint(torchvision_weights(name, spec).url)]


def _robustbench_files(name: str, spec: Mapping[str, Any]) -> list[Path]:
    _require(spec, name, ["name", "dataset", "threat_model", "model_dir"])
    return [robustbench_checkpoint(spec["model_dir"], spec["dataset"], spec["threat_model"], spec["name"])]


def _timm_files(name: str, spec: Mapping[str, Any]) -> list[Path]:
    _require(spec, name, ["name", "checkpoint"])
    return [Path(spec["checkpoint"])]


def _checkpoint_files(name: str, spec: Mapping[str, Any]) -> list[Path]:
    _require(spec, name, ["architecture", "path"])
    return [Path(spec["path"])]


#: Source name -> ``(model_name, spec) -> weight files`` (the sources of :data:`metamers.registry.SOURCES`).
WEIGHT_FILES: dict[str, Callable[[str, Mapping[str, Any]], list[Path]]] = {
    "advertorch": _advertorch_files,
    "torchvision": _torchvision_files,
    "robustbench": _robustbench_files,
    "timm": _timm_files,
    "checkpoint": _checkpoint_files,
}


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
        The files, whether or not they exist. Only the ``torchvision`` source imports torch
        (through torchvision, for the URL of its weights).

    Raises
    ------
    KeyError
        Unknown model name (the message lists the configured ones) or unknown source.
    ModelLoadError
        A missing key, or values that name no file (as :func:`metamers.registry.load_model`).
    """
    spec = model_spec(models, name)
    source = spec.get("source")
    if source not in WEIGHT_FILES:
        raise KeyError(
            f"model {name!r}: unknown source {source!r}; valid sources: {', '.join(WEIGHT_FILES)}"
        )
    return WEIGHT_FILES[source](name, spec)


def study_models(config: Mapping[str, Any]) -> list[str]:
    """The models a study loads: its generators, then its evaluators, each once, in config order."""
    return list(dict.fromkeys([*config.get("generators", {}), *config.get("evaluators", [])]))


def existing_weight_files(config: Mapping[str, Any]) -> list[str]:
    """The weight files of every generator and evaluator model that exist on disk now.

    The workflow makes these inputs of its rules, so that replacing a weight file reruns the
    jobs that read it; a missing file (or a model whose files cannot be named: unknown source,
    missing key) is left out here and reported by the pre-flight job instead.

    Parameters
    ----------
    config
        The workflow config (``models``, ``generators``, ``evaluators``).

    Returns
    -------
    list of str
        Sorted, without duplicates.
    """
    found: set[str] = set()
    for name in study_models(config):
        try:
            files = weight_files(config["models"], name)
        except Exception:  # noqa: BLE001 - the pre-flight job reports why this model has no files
            continue
        found.update(str(p) for p in files if p.is_file())
    return sorted(found)
