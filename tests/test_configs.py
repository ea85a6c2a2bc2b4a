"""The study configs under configs/: the CIFAR-10 study runs end to end on the CPU with tiny
budgets on ../shared, and its pre-flight check names every file that is not on this machine."""

from __future__ import annotations

import copy
import subprocess
import sys

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
    config["representation"] = {"n_permutations": 20, "n_bootstrap": 20}
    config["inversion"] = {"images": 0}
    config["results"] = "results"
    config["figures"] = {"grid_images": 4, "formats": ["png"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--cores", "2",
                          "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
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
