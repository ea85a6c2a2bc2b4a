"""Source ``robustbench``: a RobustBench model zoo entry, from a checkpoint already in ``model_dir``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...registry import lookup
from .base import SOURCES, ModelLoadError, Source, classifier, require_keys

if TYPE_CHECKING:
    from ..classifier import Classifier

#: RobustBench dataset -> the input shape and class count of its models.
ROBUSTBENCH_DATASETS = {
    "cifar10": {"input_shape": (3, 32, 32), "num_classes": 10},
    "cifar100": {"input_shape": (3, 32, 32), "num_classes": 100},
    "imagenet": {"input_shape": (3, 224, 224), "num_classes": 1000},
}


def robustbench_checkpoint(model_dir: str | Path, dataset: str, threat_model: str, name: str) -> Path:
    """The file RobustBench reads: ``<model_dir>/<dataset>/<threat_model>/<name>.pt``."""
    return Path(model_dir) / dataset / threat_model / f"{name}.pt"


def _files(name: str, spec: Mapping[str, Any]) -> list[Path]:
    require_keys(spec, name, ["name", "dataset", "threat_model", "model_dir"])
    return [robustbench_checkpoint(spec["model_dir"], spec["dataset"], spec["threat_model"], spec["name"])]


def import_robustbench():
    """Import ``robustbench.utils``; its PyPI dependency ships AutoAttack as ``pyautoattack``
    while robustbench imports ``autoattack``, so alias the one to the other when needed."""
    if importlib.util.find_spec("autoattack") is None and importlib.util.find_spec("pyautoattack"):
        import pyautoattack
        import pyautoattack.state

        sys.modules.setdefault("autoattack", pyautoattack)
        sys.modules.setdefault("autoattack.state", pyautoattack.state)
    try:
        return importlib.import_module("robustbench.utils")
    except ImportError as err:
        raise ModelLoadError(f"source 'robustbench' cannot import robustbench: {err}") from err


def load_robustbench(name: str, spec: Mapping[str, Any]) -> Classifier:
    require_keys(spec, name, ["name", "dataset", "threat_model", "model_dir"])
    dataset, threat = spec["dataset"], spec["threat_model"]
    shape = lookup(ROBUSTBENCH_DATASETS, dataset, "robustbench dataset", ModelLoadError, context=f"model {name!r}: ")
    rb_utils = import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    zoo = model_dicts[BenchmarkDataset(dataset)]
    lookup({t.value: t for t in zoo}, threat, "threat model", ModelLoadError, context=f"model {name!r}: ")
    entry = lookup(zoo[ThreatModel(threat)], spec["name"], f"RobustBench {dataset}/{threat} model", ModelLoadError,
                   context=f"model {name!r}: ")
    if isinstance(entry.get("gdrive_id"), list) or entry.get("gdrive_id") is None or (
        dataset == "imagenet" and "Standard" in spec["name"]
    ):
        raise ModelLoadError(
            f"model {name!r}: RobustBench's {spec['name']!r} is not read from one local checkpoint "
            "(an ensemble, or weights fetched by torchvision/timm); load it with source "
            "'torchvision', 'timm' or 'checkpoint' instead"
        )
    path = robustbench_checkpoint(spec["model_dir"], dataset, threat, spec["name"])
    if not path.is_file():
        raise ModelLoadError(
            f"model {name!r}: RobustBench checkpoint {str(path)!r} is missing; put the model's .pt file "
            "there (robustbench.utils.load_model would otherwise download it, which this tool never does)"
        )
    net = rb_utils.load_model(
        model_name=spec["name"], model_dir=str(spec["model_dir"]), dataset=dataset, threat_model=threat
    )
    # RobustBench models normalise inside and take [0, 1] inputs.
    return classifier(net, name, spec, {**shape, "mean": (0.0,), "std": (1.0,)})


SOURCES.register("robustbench", Source(_files, load_robustbench))
