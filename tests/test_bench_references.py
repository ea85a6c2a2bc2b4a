"""The generation benchmark's reference sets (``bench/generation.py --reference-set``): each set
is other images, a reference never sits in its own null pool, and the default set is the one
that the benchmark has always used."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch


@pytest.fixture(scope="module")
def generation(repo, shared, monkeypatch_module):
    monkeypatch_module.setenv("METAMERS_SHARED", str(shared))
    threads = torch.get_num_threads()  # the benchmark runs one thread per process
    spec = importlib.util.spec_from_file_location("bench_generation", repo / "bench" / "generation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("bench_generation", None)
    spec.loader.exec_module(module)
    yield module
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def test_cifar_reference_sets_are_disjoint_and_outside_their_pool(generation, shared):
    files = sorted((shared / "data" / "cifar10-samples").glob("*.png"))
    seen = []
    for reference_set in (0, 1):
        ids, x, pool = generation.references("resnet20", 8, reference_set)
        assert ids == [f.stem for f in files[8 * reference_set:8 * reference_set + 8]]
        # a reference is not among its null pool's images (the pool: the natural images and the
        # CIFAR-10 samples that are not references)
        flat_pool, flat_x = pool.flatten(1), x.flatten(1)
        assert torch.cdist(flat_x, flat_pool).min() > 0
        assert len(pool) == len(list((shared / "data" / "imagenet16").rglob("*.jpg"))) + len(files) - 8
        seen.append(set(ids))
    assert not seen[0] & seen[1]
    # the set wraps around the 20 samples
    ids, _, _ = generation.references("resnet20", 8, 2)
    assert ids == [f.stem for f in files[16:]] + [f.stem for f in files[:4]]
    labels = generation.start_data("resnet20", 8, 1)
    assert labels.labels == [int(i.rsplit("_", 1)[1]) for i in generation.references("resnet20", 8, 1)[0]]


def test_lenet_reference_sets(generation):
    from metamers.data import load_image_set

    default, other = (generation.references("lenet5_robust", 8, k)[0] for k in (0, 1))
    assert default == load_image_set({"type": "mnist_test", "per_class": 1, "seed": 0}).ids[:8]
    assert not set(default) & set(other)


def test_too_many_cifar_references(generation):
    with pytest.raises(ValueError, match="ResNet-20's cases take 1 to 20 references"):
        generation.references("resnet20", 21)
