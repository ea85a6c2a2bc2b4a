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
