"""Source ``torchvision``: a torchvision classification model, its weights named by their enum
(``ResNet18_Weights.IMAGENET1K_V1``) and read from the torch hub cache."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...registry import lookup
from .base import SOURCES, ModelLoadError, Source, classifier, load_weights, require_keys

if TYPE_CHECKING:
    from ..classifier import Classifier


def torch_hub_dir() -> Path:
    """torch.hub's cache folder, by torch's rule but without importing torch.hub.

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
    """The torchvision weights enum member of entry ``spec`` (``name``, ``weights``).

    Raises
    ------
    ModelLoadError
        A missing key, an unknown architecture or unknown weights (the message lists the valid ones).
    """
    import torchvision.models as tvm

    require_keys(spec, name, ["name", "weights"])
    arch = spec["name"]
    lookup(dict.fromkeys(tvm.list_models(module=tvm)), arch, "torchvision classification model", ModelLoadError,
           context=f"model {name!r}: ")
    try:
        return tvm.get_weight(spec["weights"])
    except (ValueError, KeyError, AttributeError) as err:
        valid = [f"{type(w).__name__}.{w.name}" for w in tvm.get_model_weights(arch)]
        raise ModelLoadError(
            f"model {name!r}: unknown weights {spec['weights']!r} for {arch}; valid: {', '.join(valid)}"
        ) from err


def load_torchvision(name: str, spec: Mapping[str, Any]) -> Classifier:
    import torchvision.models as tvm

    weights = torchvision_weights(name, spec)
    path = torch_hub_checkpoint(weights.url)
    if not path.is_file():
        raise ModelLoadError(
            f"model {name!r}: weights {spec['weights']} are not in the torch hub cache; "
            f"put the file {path.name!r} (from {weights.url}) at {str(path)!r} "
            "(set TORCH_HOME to use another cache); nothing is downloaded"
        )
    net = tvm.get_model(spec["name"], weights=None, num_classes=len(weights.meta["categories"]))
    load_weights(net, path, name)
    transform = weights.transforms()
    crop = transform.crop_size[0]
    defaults = {
        "input_shape": (3, crop, crop),
        "num_classes": len(weights.meta["categories"]),
        "mean": tuple(transform.mean),
        "std": tuple(transform.std),
    }
    return classifier(net, name, spec, defaults)


SOURCES.register(
    "torchvision",
    Source(lambda name, spec: [torch_hub_checkpoint(torchvision_weights(name, spec).url)], load_torchvision),
)
