"""Make ``mnist_test_subset.npz``: 100 MNIST test digits per class (1,000 in all).

Usage, from the repository root::

    python metamers/data/make_mnist_test_subset.py [IDX_DIR]

``IDX_DIR`` holds ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
(default ``../shared/data/mnist-test`` relative to the repository root). Within each
class, 100 indices are drawn without replacement by ``numpy.random.default_rng(0)``
(classes 0 to 9 in turn, one generator) and sorted; the arrays are ordered by label,
then by index. Deterministic: re-running gives byte-identical arrays.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO / ".." / "shared" / "data" / "mnist-test"
OUTPUT = Path(__file__).resolve().parent / "mnist_test_subset.npz"
PER_CLASS = 100
SEED = 0


def read_idx(path: Path) -> np.ndarray:
    """A gzip idx file (unsigned-byte data) as an array of its stored shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def choose(labels: np.ndarray, per_class: int = PER_CLASS, seed: int = SEED) -> np.ndarray:
    """``per_class`` indices of every label, seeded, sorted within each class, in label order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(10):
        idx = np.flatnonzero(labels == label)
        chosen.append(np.sort(rng.choice(idx, size=per_class, replace=False)))
    return np.concatenate(chosen).astype(np.int64)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE,
                        help="folder of the t10k-*.gz idx files (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="npz to write (default: %(default)s)")
    args = parser.parse_args(argv)
    images = read_idx(args.source / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(args.source / "t10k-labels-idx1-ubyte.gz")
    if images.shape != (10000, 28, 28) or labels.shape != (10000,):
        raise ValueError(f"expected the 10,000-image MNIST test set, got {images.shape} and {labels.shape}")
    indices = choose(labels)
    np.savez_compressed(
        args.output,
        pixels=np.ascontiguousarray(images[indices], dtype=np.uint8),
        labels=labels[indices].astype(np.int64),
        indices=indices,
    )
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, {indices.size} images)")


if __name__ == "__main__":
    main()
