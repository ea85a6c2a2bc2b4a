"""configs/fashion_mnist_zoo.yaml, the replicated zoo (issue 26): the Fashion-MNIST image sets it
reads, the study it describes (three architectures of three seeds, two of them also PGD-trained,
every model a generator at three depths and an evaluator), its DAG, and a shrunk copy run end to
end whose transfer_by_relation.csv has every relation, each resting on several models.

The real Fashion-MNIST is Debian's dataset-fashion-mnist (``.ci/run`` installs it where missing);
the tests that read it skip without it, except under ``METAMERS_REQUIRE_SHARED=1`` (as ``.ci/run``
sets it), where its absence fails them. The image-set tests on idx files written here need nothing.
"""

from __future__ import annotations

import copy
import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, read_idx

from metamers.config import load_config, validate_config
from metamers.data import default_pool, load_image_set
from metamers.data.fashion_mnist import FASHION_MNIST_CLASSES
from metamers.data.pixels import ImageError
from metamers.data.training_sets import FASHION_MNIST_FILES, FASHION_MNIST_ROOT
from metamers.labels import image_label_space, model_label_space
from metamers.relations import model_tags, relation

ZOO = REPO / "configs" / "fashion_mnist_zoo.yaml"
#: The relations a replicated zoo is for; each must rest on several generators and evaluators.
RELATIONS = ["self", "same_architecture_other_instance", "same_architecture_standard_to_robust",
             "same_architecture_robust_to_standard", "other_architecture"]


@pytest.fixture(scope="session")
def fashion_mnist() -> Path:
    """Debian's Fashion-MNIST folder (skips without it; fails under METAMERS_REQUIRE_SHARED=1)."""
    root = Path(FASHION_MNIST_ROOT)
    missing = [name for name in FASHION_MNIST_FILES.values() if not (root / name).is_file()]
    if missing:
        reason = (f"Fashion-MNIST is not installed ({root} lacks {', '.join(missing)}: "
                  "apt-get install dataset-fashion-mnist)")
        if os.environ.get("METAMERS_REQUIRE_SHARED") == "1":
            pytest.fail(f"{reason}, and METAMERS_REQUIRE_SHARED=1 forbids skipping the tests that need it")
        pytest.skip(reason)
    return root


# --------------------------------------------------------------------------- the image sets


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file (gzip) of uint8 ``array``: magic 0 0 8 ndim, big-endian dimensions, the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture
def fake_fashion(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """A folder with Fashion-MNIST's four idx files: 40 training and 30 test images of 10 classes."""
    rng = np.random.default_rng(5)
    arrays = {"train_x": rng.integers(0, 256, (40, 28, 28)), "train_y": np.arange(40) % 10,
              "test_x": rng.integers(0, 256, (30, 28, 28)), "test_y": (np.arange(30) * 7) % 10}
    for key, name in FASHION_MNIST_FILES.items():
        _write_idx(tmp_path / name, arrays[key])
    return tmp_path, arrays


def test_the_fashion_mnist_image_sets_read_the_test_and_training_split(fake_fashion):
    root, arrays = fake_fashion
    test = load_image_set({"type": "fashion_mnist_test", "root": str(root), "per_class": 2, "seed": 0})
    assert test.held_out and test.name == "fashion_mnist_test" and len(test.ids) == 20
    labels = [test.labels[i] for i in test.ids]
    assert labels == sorted(labels) and np.bincount(labels).tolist() == [2] * 10
    for image_id in test.ids:
        k = int(re.fullmatch(r"fashion-mnist-test-(\d{5})", image_id).group(1))
        assert test.labels[image_id] == arrays["test_y"][k]
        np.testing.assert_array_equal(test.pixels(image_id), arrays["test_x"][k])
    assert test.class_index == FASHION_MNIST_CLASSES and FASHION_MNIST_CLASSES["Ankle boot"] == 9
    assert load_image_set({"type": "fashion_mnist_test", "root": str(root), "per_class": 2, "seed": 1}).ids != test.ids
    train = load_image_set({"type": "fashion_mnist", "root": str(root)})
    assert not train.held_out and train.ids == [f"fashion-mnist-{k:05d}" for k in np.argsort(arrays["train_y"],
                                                                                             kind="stable")]
    np.testing.assert_array_equal(train.pixels("fashion-mnist-00013"), arrays["train_x"][13])
    # the test images' null pool: the training images of the same folder
    assert default_pool({"type": "fashion_mnist_test", "root": str(root)}) == {"type": "fashion_mnist",
                                                                               "root": str(root)}
    assert default_pool({"type": "fashion_mnist_test"}) == {"type": "fashion_mnist"}
    assert default_pool({"type": "mnist_test"}) == {"type": "mnist"}


def test_a_missing_fashion_mnist_file_is_named(fake_fashion):
    root, _ = fake_fashion
    (root / FASHION_MNIST_FILES["test_y"]).unlink()
    with pytest.raises(ImageError, match=r"image set 'fashion_mnist_test': missing \[.*t10k-labels-idx1-ubyte.gz'\] "
                                         r"\(install Debian's dataset-fashion-mnist, or give root"):
        load_image_set({"type": "fashion_mnist_test", "root": str(root)})
    assert len(load_image_set({"type": "fashion_mnist", "root": str(root)}).ids) == 40  # needs only its own split


def test_fashion_mnist_images_are_labelled_in_fashion_mnists_label_space():
    config = validate_config(load_config(ZOO))  # (validation reads no image)
    assert image_label_space(config) == "fashion_mnist"
    assert {model_label_space(config, m) for m in config["models"]} == {"fashion_mnist"}


def test_debians_fashion_mnist_is_what_the_image_sets_read(fashion_mnist):
    """The installed package's files, read independently (conftest.read_idx): 60,000 training and
    10,000 test images, 1,000 test images per class; the image sets give the same pixels and labels."""
    test_x, test_y = (read_idx(fashion_mnist / FASHION_MNIST_FILES[k]) for k in ("test_x", "test_y"))
    train_y = read_idx(fashion_mnist / FASHION_MNIST_FILES["train_y"])
    assert test_x.shape == (10000, 28, 28) and len(train_y) == 60000
    assert np.bincount(test_y).tolist() == [1000] * 10 and np.bincount(train_y).tolist() == [6000] * 10
    test = load_image_set({"type": "fashion_mnist_test", "per_class": 6, "seed": 0})
    for image_id in test.ids[::7]:
        k = int(image_id.rsplit("-", 1)[1])
        assert test.labels[image_id] == test_y[k]
        np.testing.assert_array_equal(test.pixels(image_id), test_x[k])


# --------------------------------------------------------------------------- the full zoo


def _depths(config) -> dict[tuple[str, str], float]:
    """(generator, layer) -> the layer's normalized depth, from an untrained network of its architecture."""
    from metamers.models.architecture_specs import ARCHITECTURES
    from metamers.models.architectures import build_architecture
    from metamers.models.classifier import Classifier
    from metamers.models.layers import layer_depth

    nets = {}
    depths = {}
    for generator in config["generators"]:
        arch = config["models"][generator]["architecture"]
        if arch not in nets:
            spec = ARCHITECTURES[arch]
            nets[arch] = Classifier(build_architecture(arch), mean=spec["mean"], std=spec["std"],
                                    input_shape=spec["input_shape"], num_classes=10, name=arch)
        for layer in config.generator_layers(generator):
            assert layer in nets[arch].layer_names(), (generator, layer)
            depths[(generator, layer)] = layer_depth(nets[arch], layer)
    return depths


def test_the_zoo_is_replicated_and_every_relation_rests_on_several_models():
    """At least 3 architectures x 3 seeds of standard training and 2 architectures of PGD training
    with 3 seeds; every model a generator at three depths (early to late, the logits last) and an
    evaluator; 60 held-out references, nulls from training images; and in every depth bin of the
    relations table, each relation present has at least 3 generators and 3 evaluators."""
    config = validate_config(load_config(ZOO))
    models = config["models"]
    assert len(models) == 15 and all(m["source"] == "train" and m["data"]["type"] == "fashion_mnist"
                                     for m in models.values())
    tags = {name: model_tags(config, name) for name in models}
    seeds: dict[tuple[str, str], set[str]] = {}
    for t in tags.values():
        seeds.setdefault((t["family"], t["training"]), set()).add(t["instance"])
    standard = {f for (f, training), s in seeds.items() if training == "standard" and len(s) >= 3}
    robust = {f for (f, training), s in seeds.items() if training == "robust" and len(s) >= 3}
    assert standard == {"mlp", "lenet5", "small_cnn"} and robust == {"mlp", "small_cnn"}
    assert all(models[m]["training"]["style"] == "pgd" for m in models if tags[m]["training"] == "robust")
    assert list(config["generators"]) == list(models) and list(config["evaluators"]) == list(models)
    depths = _depths(config)
    for generator in config["generators"]:
        mine = [depths[(generator, layer)] for layer in config.generator_layers(generator)]
        assert len(mine) == 3 and mine == sorted(set(mine)) and mine[-1] == 1.0, (generator, mine)
    assert config["images"] == {"type": "fashion_mnist_test", "per_class": 6, "seed": 0}  # 60 held-out images
    assert config["metamer_test"]["pool"]["type"] == "fashion_mnist"  # training images
    assert list(config["methods"]) == ["feather2023"] and config["results"] == "results/fashion_mnist_zoo"

    from metamers.stats.by_relation import depth_bin

    edges = config["relations"]["depth_bins"]
    found: dict[tuple[str, str], tuple[set, set]] = {}
    for (generator, layer), depth in depths.items():
        for evaluator in config["evaluators"]:
            key = (relation(config, generator, evaluator), depth_bin(depth, edges)[0])
            found.setdefault(key, (set(), set()))
            found[key][0].add(generator)
            found[key][1].add(evaluator)
    assert {r for r, _ in found} >= set(RELATIONS)
    bins = {b for _, b in found}
    assert len(bins) == 4
    for name in RELATIONS:  # each relation in every bin (the early one: the CNNs' relu1; the late one: the MLPs' relu2)
        present = {b for r, b in found if r == name}
        assert present == bins, (name, present)
    for key, (generators, evaluators) in found.items():
        assert len(generators) >= 3 and len(evaluators) >= 3, (key, generators, evaluators)


def _snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.mark.workflow
def test_the_zoos_dag(fashion_mnist, tmp_path):
    """The dry run of the zoo as the README runs it (from the repository root, --configfile): 15
    trainings, a generation job and a null per (model, layer) (45 each: the 60 references in one
    job), a metamer test and a recognizability table per generator, the representation test for
    each of the 15 x 15 (generator, evaluator) pairs, no inversion."""
    out = _snakemake("-n", "--nolock", "--cores", "2", "--directory", str(tmp_path), "--configfile", str(ZOO),
                     cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:]
    counts = _job_counts(out.stdout)
    assert {rule: counts.get(rule) for rule in ("train_model", "generate", "null_distribution", "metamer_test",
                                                "recognizability", "representation_activations", "representation",
                                                "inversion")} == {
        "train_model": 15, "generate": 45, "null_distribution": 45, "metamer_test": 15, "recognizability": 15,
        "representation_activations": 225, "representation": 225, "inversion": None}
    assert "results/fashion_mnist_zoo/metamers/feather2023/small_cnn_pgd_seed2/relu2/b000.h5" in out.stdout


# --------------------------------------------------------------------------- a shrunk copy, run end to end

#: The shrunk zoo: two MLPs and a small CNN of standard training and a PGD-trained MLP.
SHRUNK_MODELS = ["mlp_seed0", "mlp_seed1", "small_cnn_seed0", "mlp_pgd_seed0"]
#: Its (generator, evaluator) pairs per relation, counted by hand (every model a generator and an evaluator).
SHRUNK_PAIRS = {"self": 4, "same_architecture_other_instance": 2,  # mlp_seed0 <-> mlp_seed1
                "same_architecture_standard_to_robust": 2,  # the two MLPs -> the PGD-trained one
                "same_architecture_robust_to_standard": 2,
                "other_architecture": 4,  # the two MLPs <-> the small CNN, both ways
                "other_architecture_standard_to_robust": 1, "other_architecture_robust_to_standard": 1}


def shrunk_zoo(config: dict) -> dict:
    """The zoo config cut to a few minutes on 2 cores: :data:`SHRUNK_MODELS`, each trained for two
    epochs on 5,000 images and generating at its middle layer and its logits; 10 references (one
    per class) in one job; the zoo's method (2,000 iterations); a null of 2,000 pairs of 100
    training images; 20 permutations and bootstrap samples."""
    study = copy.deepcopy(config)
    study["models"] = {name: study["models"][name] for name in SHRUNK_MODELS}
    for spec in study["models"].values():
        spec["training"] = {**spec["training"], "epochs": 2, "train_images": 5000}
        spec["evaluation"] = {**spec["evaluation"], "images": 200, "steps": 3}
    study["generators"] = {name: {"layers": study["generators"][name]["layers"][1:]} for name in SHRUNK_MODELS}
    study["evaluators"] = list(SHRUNK_MODELS)
    study["images"] = {**study["images"], "per_class": 1}
    study["images_per_job"] = 10
    study["metamer_test"] = {**study["metamer_test"], "n_pairs": 2000,
                             "pool": {**study["metamer_test"]["pool"], "per_class": 10}}
    study["representation"] = {**study["representation"], "n_permutations": 20, "n_bootstrap": 20}
    study["relations"] = {**study["relations"], "n_bootstrap": 50}
    study["results"] = "results"
    return study


@pytest.mark.workflow
def test_a_shrunk_zoo_runs_and_every_relation_rests_on_several_pairs(fashion_mnist, tmp_path):
    config = shrunk_zoo(yaml.safe_load(ZOO.read_text()))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = _snakemake("--cores", "2", "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
                     cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-5000:]
    tables = tmp_path / "results" / "tables"

    # the references are Fashion-MNIST test images (labels read independently), the null pool training images
    test_y = read_idx(fashion_mnist / FASHION_MNIST_FILES["test_y"])
    rows = pd.read_csv(tables / "recognizability.csv")
    assert sorted(set(rows["evaluator"])) == sorted(SHRUNK_MODELS)
    refs = rows.drop_duplicates("image_id")
    assert len(refs) == 10 and refs["image_id"].str.fullmatch(r"fashion-mnist-test-\d{5}").all()
    assert [test_y[int(i.rsplit("-", 1)[1])] for i in refs["image_id"]] == refs["true_label"].tolist()
    thresholds = pd.read_csv(tables / "null_thresholds.csv")
    assert (thresholds["n_pool"] == 100).all() and len(thresholds) == 2 * 4 * 3  # layers x models x statistics
    # the trained networks learned Fashion-MNIST (ten classes: chance is 0.1)
    clean = rows[rows["evaluator"] != "mlp_pgd_seed0"].drop_duplicates(["evaluator", "image_id"])
    assert (clean["evaluator_pred_reference"] == clean["true_label"]).mean() >= 0.6

    by_relation = pd.read_csv(tables / "transfer_by_relation.csv")
    logits = by_relation[(by_relation["depth_bin"] == "1 (logits)") & (by_relation["measure"] == "recognizability")]
    pairs = dict(zip(logits["relation"], logits["n_pairs"]))
    assert pairs == SHRUNK_PAIRS, pairs  # every pair's metamers passed somewhere, and each relation is there
    several = logits.set_index("relation").loc[["self", "same_architecture_other_instance", "other_architecture"]]
    assert (several["n_generators"] >= 2).all() and (several["n_evaluators"] >= 2).all()
    for name in RELATIONS:  # and the representation test reads every relation at the logits
        cka = by_relation[(by_relation["relation"] == name) & (by_relation["depth_bin"] == "1 (logits)")
                          & (by_relation["measure"] == "debiased_cka")]
        assert len(cka) == 1 and cka["n_pairs"].iloc[0] == SHRUNK_PAIRS[name], name
    assert (tmp_path / "results" / "figures" / "transfer_by_relation.png").stat().st_size > 5000
