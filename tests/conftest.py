"""Shared fixtures: the repository, ../shared, small models and the tests' own config.

Tests that need the real data and weights of ``../shared`` take the ``shared`` fixture: they
skip when it is absent, except where ``METAMERS_REQUIRE_SHARED=1`` (as ``.ci/run`` sets it),
which makes its absence a failure so that CI cannot pass by skipping them. ``METAMERS_SHARED``
points at another copy of it.
"""

from __future__ import annotations

import copy
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml

from metamers.models import Classifier

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METAMERS_SHARED", REPO.parent / "shared"))
#: The tests' own study (never the shipped config.yaml, which only the tests of that file read).
TEST_CONFIG = Path(__file__).resolve().parent / "config.yaml"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder of real data and weights (tests that need it skip without it, or
    fail under ``METAMERS_REQUIRE_SHARED=1``)."""
    if not SHARED.is_dir():
        reason = f"{SHARED} (real data and weights beside the repository) is absent"
        if os.environ.get("METAMERS_REQUIRE_SHARED") == "1":
            pytest.fail(f"{reason}, and METAMERS_REQUIRE_SHARED=1 forbids skipping the tests that need it")
        pytest.skip(reason)
    return SHARED


@pytest.fixture(scope="session")
def study_config() -> dict:
    """The tests' own study, ``tests/config.yaml`` (read once; copy it before changing it)."""
    return yaml.safe_load(TEST_CONFIG.read_text())


@pytest.fixture
def config(study_config) -> dict:
    """A deep copy of the tests' study, free to modify."""
    return copy.deepcopy(study_config)


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip idx file (the MNIST format), independently of the package."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="session")
def mnist_test(shared) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images (uint8, 28x28) and labels from ../shared."""
    root = shared / "data" / "mnist-test"
    return read_idx(root / "t10k-images-idx3-ubyte.gz"), read_idx(root / "t10k-labels-idx1-ubyte.gz")


class TinyLinear(nn.Module):
    """``a(x) = W vec(x)`` followed by a ReLU: small enough to differentiate by hand."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.fc.weight.data.copy_(weight)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.fc(self.flatten(x)))


@pytest.fixture
def tiny_linear() -> Classifier:
    """A frozen 1x4x4 -> 6 linear classifier with a fixed random weight (no normalisation)."""
    weight = torch.randn(6, 16, generator=torch.Generator().manual_seed(3))
    return Classifier(TinyLinear(weight), mean=(0.0,), std=(1.0,), input_shape=(1, 4, 4), num_classes=6,
                      name="tiny")
