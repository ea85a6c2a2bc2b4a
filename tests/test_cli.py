"""`python -m metamers models` and `python -m metamers layers MODEL`."""

from __future__ import annotations

import subprocess
import sys

from conftest import TEST_CONFIG


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "metamers", *args], cwd=cwd, capture_output=True, text=True)


def test_models_lists_the_configured_models(repo):
    out = run("models", "--config", str(TEST_CONFIG), cwd=repo)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["lenet5_standard", "advertorch", "generator+evaluator"],
        ["lenet5_robust", "advertorch", "generator+evaluator"],
    ]


def test_layers_lists_module_names(repo):
    out = run("layers", "lenet5_standard", "--config", str(TEST_CONFIG), cwd=repo)
    assert out.returncode == 0, out.stderr
    names = [line.split("\t")[0] for line in out.stdout.splitlines() if not line.startswith("#")]
    assert names == ["conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "flatten", "linear1", "relu3", "linear2"]


def test_unknown_model_and_bad_config(repo, tmp_path):
    out = run("layers", "vgg", "--config", str(TEST_CONFIG), cwd=repo)
    assert out.returncode == 2
    assert "unknown model 'vgg'; configured: lenet5_standard, lenet5_robust" in out.stderr
    bad = tmp_path / "c.yaml"
    bad.write_text("models: {}\n")
    out = run("models", "--config", str(bad), cwd=repo)
    assert out.returncode == 2 and "'images' is a required property" in out.stderr


def test_models_names_the_joint_generators_a_model_is_a_member_of(repo, tmp_path):
    import yaml

    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["generators"] = {"lenet5_standard": {"layers": ["relu1"]},
                            "lenets": {"members": ["lenet5_standard", "lenet5_robust"], "layers": ["relu2"]}}
    config["evaluators"] = ["lenet5_standard"]
    path = tmp_path / "joint.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = run("models", "--config", str(path), cwd=repo)
    assert out.returncode == 0, out.stderr
    assert [line.split()[:3] for line in out.stdout.splitlines()] == [
        ["lenet5_standard", "advertorch", "generator+member(lenets)+evaluator"],
        ["lenet5_robust", "advertorch", "member(lenets)"],
    ]
