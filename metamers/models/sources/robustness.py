"""Source ``robustness``: a checkpoint of MadryLab's ``robustness`` library (Engstrom et al. 2019),
the adversarially trained ImageNet ResNet-50s of Feather et al. (2023): ``imagenet_l2_3_0.pt``
(L2, eps 3), ``imagenet_linf_4.pt`` and ``imagenet_linf_8.pt`` (L-infinity, eps 4/255 and 8/255).

Entry: ``{source: robustness, architecture: resnet50, path: FILE}``; ``architecture`` is a
torchvision classification model. The library saves ``{'model': state dict, ...}`` whose keys
are ``module.model.*`` (the network), ``module.attacker.model.*`` (the same network, held by
the attacker) and ``module.normalizer.new_mean/new_std`` (the input normalisation): the network
is read from the ``model.*`` keys and the normalisation from the normaliser's buffers (ImageNet's
mean and std when the file has none). The robustness library itself is not needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...registry import lookup
from .base import SOURCES, ModelLoadError, Source, classifier, file_named_by, read_state_dict

if TYPE_CHECKING:
    from ..classifier import Classifier

#: ImageNet's channel statistics (the robustness library's ImageNet normaliser).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

_files = file_named_by("path", "architecture")


def load_robustness(name: str, spec: Mapping[str, Any]) -> Classifier:
    import torchvision.models as tvm

    (path,) = _files(name, spec)
    arch = spec["architecture"]
    lookup(dict.fromkeys(tvm.list_models(module=tvm)), arch, "torchvision classification model", ModelLoadError,
           context=f"model {name!r}: ")
    state = read_state_dict(path, name)
    weights = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    if not weights:
        raise ModelLoadError(f"model {name!r}: {str(path)!r} has no 'model.*' keys; it is not a robustness-library "
                             f"checkpoint (keys start: {', '.join(sorted(state)[:3])})")
    fc = [v for k, v in weights.items() if k.endswith(".weight") and v.ndim == 2]
    num_classes = int(fc[-1].shape[0]) if fc else 1000
    net = tvm.get_model(arch, weights=None, num_classes=num_classes)
    try:
        net.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ModelLoadError(f"model {name!r}: weights in {str(path)!r} do not fit {arch}: {err}") from err
    mean, std = state.get("normalizer.new_mean"), state.get("normalizer.new_std")
    defaults = {
        "input_shape": (3, 224, 224),
        "num_classes": num_classes,
        "mean": tuple(mean.flatten().tolist()) if mean is not None else IMAGENET_MEAN,
        "std": tuple(std.flatten().tolist()) if std is not None else IMAGENET_STD,
    }
    return classifier(net, name, spec, defaults)


SOURCES.register("robustness", Source(_files, load_robustness))
