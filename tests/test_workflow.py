"""The Snakemake workflow: the default DAG, config errors before any job, and a tiny real run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

from metamers.evaluation import RECOGNIZABILITY_COLUMNS, TRANSFER_COLUMNS
from metamers.metamer_test import METAMER_TEST_COLUMNS

pytestmark = pytest.mark.workflow


def snakemake(repo: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd or repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def test_dry_run_of_the_default_config(repo, tmp_path):
    out = snakemake(repo, "-n", "--cores", "2", "--directory", str(tmp_path), "--configfile", str(repo / "config.yaml"))
    assert out.returncode == 0, out.stdout
    # 2 methods x 2 generators x 4 layers x 1 batch of 20 images; a null per (generator, layer);
    # a metamer test and a recognizability table (all evaluators) per (method, generator).
    assert job_counts(out.stdout) == {
        "generate": 16, "recognizability": 4, "transfer_table": 1, "grid_images": 1, "figure": 5, "all": 1,
        "null_distribution": 8, "null_tables": 1, "metamer_test": 4, "metamer_test_table": 1,
    }


def test_invalid_config_stops_before_any_job(repo, tmp_path):
    out = snakemake(repo, "-n", "--cores", "1", "--directory", str(tmp_path), "--configfile",
                    str(repo / "config.yaml"), "--config", "threads=0")
    assert out.returncode != 0
    assert "invalid config:" in out.stdout and "threads: 0 is less than the minimum of 1" in out.stdout
    assert "Job stats" not in out.stdout


@pytest.fixture(scope="module")
def tiny_run(repo, tmp_path_factory):
    """2 images, 1 generator at 2 layers, 2 methods of 6 iterations, both evaluators."""
    work = tmp_path_factory.mktemp("tiny")
    config = yaml.safe_load((repo / "config.yaml").read_text())
    config["images"].update(per_class=1, limit=2)
    config["images_per_job"] = 1
    config["generators"] = {"lenet5_robust": {"layers": ["relu1", {"name": "relu3", "fake_relu": True}]}}
    config["methods"] = {"feather2023": {"iterations": 6}, "adam": {"iterations": 6, "check_every": 3, "on_success": "stop"}}
    config["metamer_test"] = {"n_pairs": 300, "statistics": ["spearman", "snr_db"]}
    config["figures"]["grid_images"] = 2
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    out = snakemake(repo, "--cores", "2", "--directory", str(work), "--configfile", str(work / "config.yaml"))
    assert out.returncode == 0, out.stdout[-5000:]
    return work


def test_tiny_run_writes_every_artifact(tiny_run):
    results = tiny_run / "results"
    h5 = sorted(str(p.relative_to(results)) for p in results.glob("metamers/**/*.h5"))
    assert h5 == [
        f"metamers/{m}/lenet5_robust/{layer}/{b}.h5"
        for m in ("adam", "feather2023") for layer in ("relu1", "relu3") for b in ("b000", "b001")
    ]
    with h5py.File(results / h5[0]) as f:
        assert f["metamer_uint8"].shape == (1, 1, 28, 28)
        assert f.attrs["method"] == "adam" and f.attrs["batch"] == "b000"
        assert "torch" in f.attrs["packages"] and f.attrs["seed"] > 0
        assert f["test_iterations"][()].tolist()[:2] == [0, 3]
        assert sorted(f["test_values"]) == ["snr_db", "spearman"]
    figures = sorted(p.name for p in (results / "figures").iterdir())
    names = ("metamer_grid", "transfer_heatmap", "recognizability_by_layer", "metamer_test_by_layer", "null_histograms")
    assert figures == sorted(f"{n}.{e}" for n in names for e in ("png", "pdf"))
    nulls = sorted(str(p.relative_to(results)) for p in results.glob("nulls/**/*.h5"))
    assert nulls == ["nulls/lenet5_robust/relu1.h5", "nulls/lenet5_robust/relu3.h5"]
    assert all((results / "figures" / f).stat().st_size > 5000 for f in figures)
    assert (results / "logs" / "generate" / "adam" / "lenet5_robust" / "relu1" / "b000.log").read_text().count("wrote") == 1
    assert not list(results.rglob(".*.tmp-*"))


def test_tiny_run_tables(tiny_run):
    rows = pd.read_csv(tiny_run / "results" / "tables" / "recognizability.csv")
    assert list(rows.columns) == RECOGNIZABILITY_COLUMNS
    assert len(rows) == 2 * 2 * 2 * 2  # methods x layers x images x evaluators
    assert set(rows["evaluator"]) == {"lenet5_standard", "lenet5_robust"}
    transfer = pd.read_csv(tiny_run / "results" / "tables" / "transfer.csv")
    assert list(transfer.columns) == TRANSFER_COLUMNS and len(transfer) == 8
    assert (transfer["n_images"] == 2).all()
    tests = pd.read_csv(tiny_run / "results" / "tables" / "metamer_test.csv")
    assert list(tests.columns) == METAMER_TEST_COLUMNS
    assert len(tests) == 2 * 2 * 2 * 2 * 2  # methods x layers x images x measured layers x statistics
    assert (tests["n_pairs"] == 300).all() and set(tests["statistic"]) == {"spearman", "snr_db"}
    assert (tests["passed"] == (tests["value"] > tests["threshold"])).all()
    thresholds = pd.read_csv(tiny_run / "results" / "tables" / "null_thresholds.csv")
    assert len(thresholds) == 4 and (thresholds["n_pool"] == 25).all()  # 25 * 24 / 2 = 300 pairs exactly
    adam = tests[tests["method"] == "adam"]
    assert set(adam["pass_iteration"]) <= {-1, 0, 3, 6}  # checked every 3 of 6 iterations
    feather = tests[tests["method"] == "feather2023"]
    assert (feather["pass_iteration"] == -1).all()  # feather2023 did not check here


def test_figures_rerun_without_generation(repo, tiny_run):
    out = snakemake(repo, "figures", "--forcerun", "figure", "-n", "--cores", "1", "--directory", str(tiny_run),
                    "--configfile", str(tiny_run / "config.yaml"))
    assert out.returncode == 0, out.stdout
    assert job_counts(out.stdout) == {"figure": 5, "figures": 1}


def test_report_bundles_every_figure_with_its_caption(repo, tiny_run):
    import zipfile

    out = snakemake(repo, "--report", str(tiny_run / "report.zip"), "--directory", str(tiny_run),
                    "--configfile", str(tiny_run / "config.yaml"))
    assert out.returncode == 0, out.stdout
    with zipfile.ZipFile(tiny_run / "report.zip") as z:
        names = z.namelist()
        text = "".join(z.read(n).decode(errors="ignore") for n in names if n.endswith((".js", ".html")))
    for figure in ("metamer_grid", "transfer_heatmap", "recognizability_by_layer", "metamer_test_by_layer",
                   "null_histograms"):
        assert any(n.endswith(f"{figure}.png") for n in names), figure
    assert "Transfer of metamers between models" in text
    study = re.search(r"Study: models ([\w, ]+);", text)
    assert study and set(study.group(1).split(", ")) == {"lenet5_standard", "lenet5_robust"}
    assert "feather2023 (6 iterations)" in text


def test_lint_is_clean(repo):
    out = snakemake(repo, "--lint")
    assert out.returncode == 0 and "Congratulations, your workflow is in a good condition!" in out.stdout, out.stdout
