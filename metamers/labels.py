"""Label spaces: which classes a model's logits and an image set's labels name, and the class
maps that join them (torch-free, so the config is checked while the workflow builds its DAG).

Every model has a label space (:func:`model_label_space`): the entry's ``classes``, or what its
source says (advertorch: ``mnist``; a trained model: its training set; RobustBench: its data set;
torchvision, timm, efficientnet_lite and robustness: ``imagenet``; a checkpoint: ``mnist`` for
28 x 28 architectures and ``cifar10`` for the CIFAR ResNets). An image set's labels are in its
``labels`` space (:func:`image_label_space`: ``mnist`` for the MNIST sets, ``fashion_mnist`` for
the Fashion-MNIST sets; a folder's ``labels`` key, or none).

An evaluator classifies in the images' space directly when the spaces are the same (or the
images declare none: the label is then the logit's index). Otherwise a class map of the config
(``class_maps: {IMAGE_SPACE: {from: MODEL_SPACE, path: FILE}}``) joins them: ``FILE`` is JSON
``{"categories": {class name: [model class indices]}}``, the class names those of the image
set's classes, and the decision is the category of the highest-ranked logit among the mapped
classes (Geirhos et al. 2019; Feather et al. 2023: the 16-way ImageNet decision of a 1000-way
model, their ``force_16_choice`` of ``analysis_scripts/helpers_16_choice.py``, which walks the
logits from the highest down and takes the first class in any category). A class in no
category never decides, so the map decides: the published one (208 ImageNet classes; it looks a
class up by its human name, which puts class 544 "Dutch oven" in ``oven``) or the strict one by
WordNet id (207; 544 in none). An evaluator that no map joins is a config error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .registry import Registry

if TYPE_CHECKING:
    import torch

#: Label space -> its number of classes.
LABEL_SPACES: Registry[int] = Registry("label space")
for _name, _n in (("mnist", 10), ("fashion_mnist", 10), ("cifar10", 10), ("cifar100", 100), ("imagenet", 1000),
                  ("imagenet16", 16)):
    LABEL_SPACES.register(_name, _n)

#: A checkpoint architecture -> the label space it is defined for.
_ARCHITECTURE_SPACES = {"lenet5": "mnist", "mlp": "mnist", "small_cnn": "mnist", "cifar_resnet20": "cifar10",
                        "cifar_resnet32": "cifar10", "cifar_resnet44": "cifar10", "cifar_resnet56": "cifar10"}


#: An image set type -> the label space of its labels (a folder's is its ``labels`` key).
IMAGE_SET_SPACES = {"mnist": "mnist", "mnist_test": "mnist", "fashion_mnist": "fashion_mnist",
                    "fashion_mnist_test": "fashion_mnist"}


def model_label_space(config: Mapping[str, Any], name: str) -> str:
    """The label space of configured model ``name``'s logits."""
    spec = config["models"][name]
    if "classes" in spec:
        return str(spec["classes"])
    source = spec.get("source")
    if source == "advertorch":
        return "mnist"
    if source == "train":
        return str(spec.get("data", {}).get("type", "mnist"))
    if source == "robustbench":
        return str(spec.get("dataset"))
    if source == "checkpoint":
        return _ARCHITECTURE_SPACES.get(str(spec.get("architecture")), f"{name} (undeclared)")
    return "imagenet"  # torchvision, timm, efficientnet_lite, robustness


def image_label_space(config: Mapping[str, Any]) -> str | None:
    """The label space of the reference images' labels (None: undeclared, labels are logit indices)."""
    images = config["images"]
    if images.get("labels"):
        return str(images["labels"])
    return IMAGE_SET_SPACES.get(images["type"])


def decides_through_map(config: Mapping[str, Any], model: str) -> bool:
    """Whether configured ``model`` decides in the images' label space through a class map: the
    images declare a space other than the model's, and ``class_maps`` maps into it from the
    model's space."""
    space, images = model_label_space(config, model), image_label_space(config)
    entry = config.get("class_maps", {}).get(images)
    return images is not None and space != images and entry is not None and entry["from"] == space


def class_map_problem(config: Mapping[str, Any], evaluator: str) -> str | None:
    """Why ``evaluator``'s classes cannot be put in the images' label space (None: they can)."""
    model, images = model_label_space(config, evaluator), image_label_space(config)
    if images is None or model == images or decides_through_map(config, evaluator):
        return None
    entry = config.get("class_maps", {}).get(images)
    found = f" (class_maps.{images} maps from {entry['from']!r})" if entry is not None else ""
    return (f"evaluator {evaluator!r} classifies in label space {model!r}, the images {config['images']['type']!r} "
            f"are labelled in {images!r}, and no class map joins them{found}: add class_maps: {{{images}: "
            f"{{from: {model}, path: FILE}}}} or give the model its classes")


@dataclass(frozen=True)
class ClassMap:
    """Model classes -> image labels: ``target[k]`` is the image label of model class ``k``, -1 for
    a class that no category takes."""

    source: str
    target_space: str
    target: np.ndarray
    path: str

    @property
    def mapped(self) -> np.ndarray:
        return np.flatnonzero(self.target >= 0)

    def decide(self, logits: np.ndarray) -> np.ndarray:
        """The image label of each row of ``logits (N, K)``: the category of its highest-ranked
        logit among the mapped classes (the published rule: the first class in any category,
        walking the logits from the highest down; of exactly tied logits, the lowest index)."""
        logits = np.asarray(logits)
        self._check(logits.shape[1])
        mapped = self.mapped
        return self.target[mapped[np.argmax(logits[:, mapped], axis=1)]]

    def decide_tensor(self, logits: torch.Tensor) -> torch.Tensor:
        """:meth:`decide` for a torch tensor, on its device."""
        import torch

        self._check(logits.shape[1])
        mapped = torch.as_tensor(self.mapped, device=logits.device)
        return torch.as_tensor(self.target, device=logits.device)[mapped[logits[:, mapped].argmax(1)]]

    def _check(self, n: int) -> None:
        if n != len(self.target):
            raise ValueError(f"class map {self.path!r} is for {len(self.target)} classes, the logits have {n}")


def decide(logits: torch.Tensor, class_map: ClassMap | None = None) -> torch.Tensor:
    """A model's class for each row of ``logits (N, K)``: the highest logit's index, or with
    ``class_map`` the image label it decides (:meth:`ClassMap.decide`). Every decision a model
    makes (its class for a reference, the class test of the metamer test, an evaluator's
    classification) goes through here."""
    return logits.argmax(1) if class_map is None else class_map.decide_tensor(logits)


def load_class_map(config: Mapping[str, Any], class_index: Mapping[str, int]) -> ClassMap:
    """The class map into the images' label space, its category names given image labels by
    ``class_index`` (the image set's class name -> label).

    Raises
    ------
    ValueError
        The file is unreadable or not of the documented form, a category is not a class of the
        images, a model class is in two categories, or an index is outside the model's classes.
    """
    space = image_label_space(config)
    entry = config["class_maps"][space]
    path = str(entry["path"])
    try:
        categories = json.loads(Path(path).read_text())["categories"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"class map {path!r}: cannot read {{'categories': {{name: [indices]}}}}: {err}") from err
    n = LABEL_SPACES.lookup(entry["from"], f"class_maps.{space}.from: ")
    unknown = sorted(set(categories) - set(class_index))
    if unknown:
        raise ValueError(f"class map {path!r}: categories {unknown} are not classes of the images "
                         f"({', '.join(sorted(class_index))})")
    target = np.full(n, -1, dtype=np.int64)
    for name, indices in categories.items():
        for k in indices:
            if not 0 <= int(k) < n:
                raise ValueError(f"class map {path!r}: category {name!r} has class {k}, outside 0..{n - 1}")
            if target[int(k)] >= 0:
                raise ValueError(f"class map {path!r}: class {k} is in two categories")
            target[int(k)] = int(class_index[name])
    return ClassMap(entry["from"], space, target, path)
