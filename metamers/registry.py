"""The model registry: one place that turns a config entry into a ready classifier.

A config entry names a model and its *source*::

    models:
      lenet5_standard: {source: advertorch, weights: clntrained}
      resnet18:        {source: torchvision, name: resnet18, weights: ResNet18_Weights.IMAGENET1K_V1}
      rb_standard:     {source: robustbench, name: Standard, dataset: cifar10,
                        threat_model: Linf, model_dir: models}
      vit_tiny:        {source: timm, name: vit_tiny_patch16_224, checkpoint: ckpt/vit.pth}
      resnet20:        {source: checkpoint, architecture: cifar_resnet20,
                        path: ../shared/weights/cifar10-resnet/resnet20-12fca82f.th}

Every loaded model is a :class:`Classifier`: in eval mode, with frozen parameters, taking
inputs in [0, 1] and normalising them itself, and declaring its input shape and class count.
Nothing here downloads: a missing weight file is an error that says which file to put where.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .architectures import ARCHITECTURES, build_architecture
from .weight_files import (  # noqa: F401 - path helpers, defined once there, re-exported here
    ADVERTORCH_WEIGHTS,
    ModelLoadError,
    _require,
    advertorch_weight_file,
    advertorch_weights_dir,
    model_spec,
    robustbench_checkpoint,
    torch_hub_checkpoint,
    torch_hub_dir,
    torchvision_weights,
    weight_files,
)


class Classifier(nn.Module):
    """A frozen image classifier taking inputs in [0, 1].

    Parameters
    ----------
    net
        The network; its named modules are the layers that can be read.
    mean, std
        Per-channel normalisation applied inside :meth:`forward`.
    input_shape
        ``(channels, height, width)`` the network expects.
    num_classes
        Length of the logit vector.
    name
        The registry name the model was loaded under.
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        input_shape: Sequence[int],
        num_classes: int,
        name: str = "",
    ) -> None:
        super().__init__()
        self.net = net
        channels = int(input_shape[0])
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        if mean_t.shape[0] not in (1, channels) or std_t.shape[0] not in (1, channels):
            raise ValueError(f"model {name!r}: mean/std need 1 or {channels} values")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.name = name
        freeze(self)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    def layer_names(self) -> list[str]:
        """Names of every module of the network, in definition order (the readable layers)."""
        return [n for n, _ in self.net.named_modules() if n]


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode, no parameter gradients, and no in-place activations.

    In-place activations would overwrite a captured layer output with the next
    operation's result, so they are switched off (this changes no value).
    """
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for m in model.modules():
        if hasattr(m, "inplace") and isinstance(m.inplace, bool):
            m.inplace = False
    return model


def _load_state_dict(path: Path, model: str) -> dict[str, torch.Tensor]:
    """Read a state dict from a checkpoint, unwrapping ``state_dict``/``model`` and ``module.``."""
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


def _load_into(net: nn.Module, state: Mapping[str, torch.Tensor], model: str, path: Path) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelLoadError(f"model {model!r}: weights in {str(path)!r} do not fit: {err}") from err


def _overrides(spec: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Input shape, class count and normalisation: the config may override the source's."""
    return {k: spec.get(k, defaults[k]) for k in ("input_shape", "num_classes", "mean", "std")}


# --------------------------------------------------------------------------- sources


def load_advertorch(name: str, spec: Mapping[str, Any]) -> Classifier:
    """The standard (``clntrained``) or adversarially trained (``advtrained``) MNIST LeNet-5."""
    path = advertorch_weight_file(name, spec)
    net = build_architecture("lenet5")
    _load_into(net, _load_state_dict(path, name), name, path)
    return Classifier(net, name=name, **_overrides(spec, ARCHITECTURES["lenet5"]))


def load_torchvision(name: str, spec: Mapping[str, Any]) -> Classifier:
    """A torchvision classification model with weights named by their enum, read from the cache."""
    import torchvision.models as tvm

    weights = torchvision_weights(name, spec)
    arch = spec["name"]
    path = torch_hub_checkpoint(weights.url)
    if not path.is_file():
        raise ModelLoadError(
            f"model {name!r}: weights {spec['weights']} are not in the torch hub cache; "
            f"put the file {path.name!r} (from {weights.url}) at {str(path)!r} "
            "(set TORCH_HOME to use another cache); nothing is downloaded"
        )
    net = tvm.get_model(arch, weights=None, num_classes=len(weights.meta["categories"]))
    _load_into(net, _load_state_dict(path, name), name, path)
    transform = weights.transforms()
    crop = transform.crop_size[0]
    defaults = {
        "input_shape": (3, crop, crop),
        "num_classes": len(weights.meta["categories"]),
        "mean": tuple(transform.mean),
        "std": tuple(transform.std),
    }
    return Classifier(net, name=name, **_overrides(spec, defaults))


def _import_robustbench():
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


ROBUSTBENCH_DATASETS = {
    "cifar10": {"input_shape": (3, 32, 32), "num_classes": 10},
    "cifar100": {"input_shape": (3, 32, 32), "num_classes": 100},
    "imagenet": {"input_shape": (3, 224, 224), "num_classes": 1000},
}


def load_robustbench(name: str, spec: Mapping[str, Any]) -> Classifier:
    """A RobustBench model zoo entry, from a checkpoint already in ``model_dir``."""
    _require(spec, name, ["name", "dataset", "threat_model", "model_dir"])
    dataset, threat = spec["dataset"], spec["threat_model"]
    if dataset not in ROBUSTBENCH_DATASETS:
        raise ModelLoadError(
            f"model {name!r}: unknown robustbench dataset {dataset!r}; valid: {', '.join(ROBUSTBENCH_DATASETS)}"
        )
    rb_utils = _import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    zoo = model_dicts[BenchmarkDataset(dataset)]
    threats = [t.value for t in zoo]
    if threat not in threats:
        raise ModelLoadError(f"model {name!r}: unknown threat model {threat!r}; valid: {', '.join(threats)}")
    entries = zoo[ThreatModel(threat)]
    if spec["name"] not in entries:
        raise ModelLoadError(
            f"model {name!r}: {spec['name']!r} is not in RobustBench's {dataset}/{threat} zoo; "
            f"valid: {', '.join(entries)}"
        )
    entry = entries[spec["name"]]
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
    defaults = {**ROBUSTBENCH_DATASETS[dataset], "mean": (0.0,), "std": (1.0,)}
    return Classifier(net, name=name, **_overrides(spec, defaults))


def load_timm(name: str, spec: Mapping[str, Any]) -> Classifier:
    """A timm architecture with weights from a local checkpoint file."""
    import timm

    _require(spec, name, ["name", "checkpoint"])
    arch = spec["name"]
    if not timm.is_model(arch):
        raise ModelLoadError(
            f"model {name!r}: unknown timm model {arch!r}; see timm.list_models() for the valid names"
        )
    kwargs = {"num_classes": spec["num_classes"]} if "num_classes" in spec else {}
    net = timm.create_model(arch, pretrained=False, **kwargs)
    path = Path(spec["checkpoint"])
    _load_into(net, _load_state_dict(path, name), name, path)
    cfg = net.pretrained_cfg
    defaults = {
        "input_shape": tuple(cfg["input_size"]),
        "num_classes": net.num_classes,
        "mean": tuple(cfg["mean"]),
        "std": tuple(cfg["std"]),
    }
    return Classifier(net, name=name, **_overrides(spec, defaults))


def load_checkpoint(name: str, spec: Mapping[str, Any]) -> Classifier:
    """A registry architecture (:data:`~metamers.architectures.ARCHITECTURES`) plus a local state dict."""
    _require(spec, name, ["architecture", "path"])
    arch = spec["architecture"]
    if arch not in ARCHITECTURES:
        raise ModelLoadError(
            f"model {name!r}: unknown architecture {arch!r}; valid: {', '.join(sorted(ARCHITECTURES))}"
        )
    defaults = ARCHITECTURES[arch]
    net = build_architecture(arch, spec.get("num_classes"))
    path = Path(spec["path"])
    _load_into(net, _load_state_dict(path, name), name, path)
    return Classifier(net, name=name, **_overrides(spec, defaults))


#: Source name -> loader ``(model_name, spec) -> Classifier``.
SOURCES: dict[str, Callable[[str, Mapping[str, Any]], Classifier]] = {
    "advertorch": load_advertorch,
    "torchvision": load_torchvision,
    "robustbench": load_robustbench,
    "timm": load_timm,
    "checkpoint": load_checkpoint,
}


def load_model(
    models: Mapping[str, Mapping[str, Any]], name: str, device: torch.device | str = "cpu"
) -> Classifier:
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
    source = spec.get("source")
    if source not in SOURCES:
        raise KeyError(
            f"model {name!r}: unknown source {source!r}; valid sources: {', '.join(SOURCES)}"
        )
    return SOURCES[source](name, spec).to(device)
