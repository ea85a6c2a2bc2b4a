"""Fashion-MNIST image sets (Xiao et al. 2017), from Debian's ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``) or another folder with the same four idx files (key
``root``): ``fashion_mnist_test`` (the 10,000 test images, held out from the training of the
models trained on training set ``fashion_mnist``) and ``fashion_mnist`` (the 60,000 *training*
images: the null pool that belongs with ``fashion_mnist_test``). Both are sampled per class like
the MNIST sets; their labels are in label space ``fashion_mnist``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .image_set import IMAGE_SETS, ImageSet, ImageSetType, stratified_sample
from .training_sets import FASHION_MNIST_ROOT, fashion_mnist_files, read_idx

#: The ten classes, in label order (the data set's own names): class name -> label.
FASHION_MNIST_CLASSES = {name: k for k, name in enumerate(
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))}
#: Image set type -> (split, id prefix).
_SPLITS = {"fashion_mnist": ("train", "fashion-mnist"), "fashion_mnist_test": ("test", "fashion-mnist-test")}


def _files(kind: str, root: str) -> dict[str, Any]:
    split = _SPLITS[kind][0]
    files = fashion_mnist_files(root, (split,), what=f"image set {kind!r}", key="root")
    return {"x": files[f"{split}_x"], "y": files[f"{split}_y"]}


@functools.lru_cache(maxsize=4)
def _labels(kind: str, root: str) -> np.ndarray:
    return read_idx(_files(kind, root)["y"]).astype(np.int64)


@functools.lru_cache(maxsize=2)
def _pixels(kind: str, root: str) -> np.ndarray:
    """The split's images (N, 28, 28) uint8, read once per process (on the first image asked for)."""
    return read_idx(_files(kind, root)["x"])


def _image(kind: str, root: str, k: int) -> np.ndarray:
    return _pixels(kind, root)[k]


def _image_set(kind: str, cfg: Mapping[str, Any]) -> ImageSet:
    """Images of split ``kind`` sampled per class; ids ``<prefix>-NNNNN``, NNNNN the index in the split."""
    root = str(cfg.get("root", FASHION_MNIST_ROOT))
    y = _labels(kind, root)
    idx = stratified_sample(y, cfg.get("per_class"), int(cfg.get("seed", 0)), f"image set {kind!r}", cfg.get("limit"))
    prefix = _SPLITS[kind][1]
    ids = [f"{prefix}-{int(k):05d}" for k in idx]
    pixels: dict[str, Callable[[], np.ndarray]] = {i: functools.partial(_image, kind, root, int(k))
                                                   for i, k in zip(ids, idx)}
    return ImageSet(kind, ids, {i: int(y[k]) for i, k in zip(ids, idx)}, pixels, held_out=kind == "fashion_mnist_test",
                    class_index=dict(FASHION_MNIST_CLASSES))


def fashion_mnist_images(cfg: Mapping[str, Any]) -> ImageSet:
    """Fashion-MNIST's 60,000 training images (6,000 per class), sampled per class; ``held_out``
    False: a null pool."""
    return _image_set("fashion_mnist", cfg)


def fashion_mnist_test_images(cfg: Mapping[str, Any]) -> ImageSet:
    """Fashion-MNIST's 10,000 test images (1,000 per class), held out from training, sampled per
    class; their null pool by default is the training images (``fashion_mnist``, with the same
    ``root``)."""
    return _image_set("fashion_mnist_test", cfg)


IMAGE_SETS.register("fashion_mnist", ImageSetType(fashion_mnist_images))
IMAGE_SETS.register("fashion_mnist_test", ImageSetType(fashion_mnist_test_images,
                                                      default_pool={"type": "fashion_mnist"}))
