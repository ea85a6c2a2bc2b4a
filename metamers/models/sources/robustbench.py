"""Source ``robustbench``: a RobustBench model zoo entry, from a checkpoint already in ``model_dir``.

The checkpoint is first read with ``torch.load(weights_only=True)`` (:func:`~.base.read_state_dict`),
and robustbench's own reading of it is made ``weights_only`` too: nothing in the file runs.

Only entries that ``robustbench.utils.load_model`` builds from that one local file are loaded;
the others are refused (a :class:`~.base.ModelLoadError` saying why and what to use instead),
since robustbench would download their weights and never read ``model_dir``:

* entries whose name timm knows (``timm.is_model`` of :func:`robustbench_timm_name`, e.g.
  ``Debenedetti2022Light_XCiT-S12`` -> ``debenedetti2022light_xcit_s12_cifar10_linf``, which
  robustbench registers with timm): ``load_model`` checks this first, whatever the entry, and
  returns ``timm.create_model(..., pretrained=True)``. Use source ``timm`` with a local checkpoint.
* entries without a weight file (``gdrive_id`` None: built by their constructor, e.g. with timm's
  or torchvision's ``pretrained=True``), and ImageNet ``Standard`` models (torchvision's
  pretrained weights). Use source ``timm``, ``torchvision`` or ``checkpoint``.
* ensembles (a list of weight files).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pickle
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...registry import lookup
from .base import SOURCES, ModelLoadError, Source, classifier, missing_package, read_state_dict, require_keys

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


def robustbench_timm_name(name: str, dataset: str, threat_model: str) -> str:
    """The timm model name that ``robustbench.utils.load_model`` looks up first (as it spells it:
    e.g. ``debenedetti2022light_xcit_s12_cifar10_linf``); a name timm knows is built with
    ``timm.create_model(..., pretrained=True)`` (a download), not read from ``model_dir``."""
    threat = threat_model.replace("_3d", "")  # (robustbench reads corruptions_3d as corruptions)
    return f"{name.lower().replace('-', '_')}_{dataset.lower()}_{threat.lower()}"


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
        raise missing_package("source 'robustbench'", "robustbench", err) from err


@contextlib.contextmanager
def weights_only_torch_load() -> Iterator[None]:
    """Within the block, ``torch.load`` reads with ``weights_only=True`` whatever its caller asks
    (robustbench's ``load_model`` passes no ``weights_only``, and torch before 2.6 then unpickles
    anything); every checkpoint is also read with :func:`.base.read_state_dict` first."""
    import torch

    load = torch.load

    def safe_load(*args: Any, **kwargs: Any) -> Any:
        return load(*args, **{**kwargs, "weights_only": True})

    torch.load = safe_load
    try:
        yield
    finally:
        torch.load = load


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
    path = robustbench_checkpoint(spec["model_dir"], dataset, threat, spec["name"])
    _refuse_what_robustbench_downloads(name, spec["name"], dataset, threat, entry, path)
    if not path.is_file():
        raise ModelLoadError(
            f"model {name!r}: RobustBench checkpoint {str(path)!r} is missing; put the model's .pt file "
            "there (robustbench.utils.load_model would otherwise download it, which this tool never does)"
        )
    read_state_dict(path, name)  # refuses, naming the file, what torch.load(weights_only=True) does not read
    with weights_only_torch_load():  # and robustbench's own torch.load reads it so too
        try:
            net = rb_utils.load_model(
                model_name=spec["name"], model_dir=str(spec["model_dir"]), dataset=dataset, threat_model=threat
            )
        except pickle.UnpicklingError as err:  # the file changed since it was checked
            raise ModelLoadError(f"model {name!r}: cannot read weight file {str(path)!r}: {err}") from err
    # RobustBench models normalise inside and take [0, 1] inputs.
    return classifier(net, name, spec, {**shape, "mean": (0.0,), "std": (1.0,)})


def _refuse_what_robustbench_downloads(name: str, model: str, dataset: str, threat: str, entry: Mapping[str, Any],
                                       path: Path) -> None:
    """Refuse zoo entry ``model`` unless ``robustbench.utils.load_model`` builds it from the one
    local file ``path`` (the conditions, in its order, of robustbench's ``load_model``)."""
    import timm  # (robustbench.utils imports it, and registers its own models with it)

    timm_name = robustbench_timm_name(model, dataset, threat)
    if timm.is_model(timm_name):
        raise ModelLoadError(
            f"model {name!r}: robustbench builds {model!r} with timm.create_model({timm_name!r}, pretrained=True), "
            f"which downloads its weights and never reads {str(path)!r}; load it with source 'timm' and a local "
            "checkpoint of its weights instead"
        )
    gdrive = entry.get("gdrive_id")
    if isinstance(gdrive, list):
        raise ModelLoadError(
            f"model {name!r}: RobustBench's {model!r} is an ensemble of {len(gdrive)} networks (weight files), "
            "which this source does not load: it loads one network from one local checkpoint"
        )
    if gdrive is None or (dataset == "imagenet" and "Standard" in model):
        raise ModelLoadError(
            f"model {name!r}: RobustBench's {model!r} has no weight file robustbench reads from model_dir (its "
            "constructor fetches pretrained weights through timm or torchvision); load it with source 'timm' "
            "(with a local checkpoint), 'torchvision' or 'checkpoint' instead"
        )


SOURCES.register("robustbench", Source(_files, load_robustbench))
