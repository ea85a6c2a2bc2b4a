"""`snakemake --profile slurm` against a real one-node Slurm cluster started by the test."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_cluster import ClusterUnavailable, start

pytestmark = pytest.mark.workflow

GPU_RULES = {"generate", "null_distribution", "metamer_test", "recognizability", "image_quality",
             "representation_activations", "inversion"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        cluster = start(tmp_path_factory.mktemp("slurm"))
    except ClusterUnavailable as err:
        pytest.skip(f"no Slurm cluster here: {err}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def slurm_run(cluster, repo, study_config, tmp_path_factory):
    work = tmp_path_factory.mktemp("study")
    config = copy.deepcopy(study_config)
    config["images"].update(per_class=1, limit=2)
    config["images_per_job"] = 2
    config["generators"] = {"lenet5_standard": {"layers": ["relu1", "relu3"]}}
    config["methods"] = {"adam": {"iterations": 5, "check_every": 5}}
    config["metamer_test"] = {"n_pairs": 45, "statistics": ["pearson"]}
    config["figures"]["formats"] = ["png"]
    config["inversion"] = {"method": {"iterations": 5}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--profile", "slurm", "--directory", str(work),
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
           "--seconds-between-status-checks", "2", "--slurm-keep-successful-logs",
           "--configfile", str(work / "config.yaml")]
    env = {**cluster.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    try:
        out = subprocess.run(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=600)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"Slurm run did not finish in 600 s; queue: {cluster.run('squeue')}") from err
    assert out.returncode == 0, out.stdout[-6000:]
    return work, cluster.jobs()


def test_outputs_are_complete(slurm_run):
    work, _ = slurm_run
    results = work / "results"
    assert sorted(p.name for p in results.glob("metamers/adam/lenet5_standard/*/*.h5")) == ["b000.h5", "b000.h5"]
    rows = pd.read_csv(results / "tables" / "recognizability.csv")
    assert len(rows) == 2 * 2 * 2  # layers x images x evaluators
    assert len(pd.read_csv(results / "tables" / "metamer_test.csv")) == 2 * 2 * 2  # layers x images x measured
    figures = sorted(p.name for p in (results / "figures").iterdir())
    assert figures == sorted(f"{n}.png" for n in ("metamer_grid", "transfer_heatmap", "recognizability_by_layer",
                                                  "metamer_test_by_layer", "null_histograms", "pass_by_iteration",
                                                  "iterations_vs_distance", "representation_heatmap",
                                                  "representation_vs_recognizability", "ood_by_layer",
                                                  "msp_histograms", "mds_embedding", "transfer_by_relation",
                                                  "transfer_matrix", "inversion_panels", "naturalness_by_depth"))


def test_gpu_rules_requested_a_gpu_and_cpu_rules_none(slurm_run):
    _, jobs = slurm_run
    assert jobs, "slurmctld lists no jobs"
    by_rule: dict[str, list[str]] = {}
    for job in jobs:
        comment = job.get("Comment", "")
        rule = comment.split("rule_")[1].split("_wildcards")[0] if "rule_" in comment else job.get("JobName", "")
        by_rule.setdefault(rule, []).append(job.get("TRES", "") + " " + job.get("TresPerNode", "")
                                            + " " + job.get("TresPerJob", ""))
    gpu_seen = {rule for rule, tres in by_rule.items() if all("gpu" in t for t in tres)}
    no_gpu = {rule for rule, tres in by_rule.items() if not any("gpu" in t for t in tres)}
    assert GPU_RULES <= gpu_seen, by_rule
    assert set(by_rule) - GPU_RULES <= no_gpu and len(set(by_rule) - GPU_RULES) >= 2, by_rule
    assert all(job.get("JobState") == "COMPLETED" for job in jobs), [j.get("JobState") for j in jobs]


def test_gpu_jobs_saw_cuda_visible_devices(slurm_run):
    work, _ = slurm_run
    logs = work / "results" / "logs"
    for log in logs.glob("generate/**/*.log"):
        assert "CUDA_VISIBLE_DEVICES=0" in log.read_text(), log
    for log in [logs / "transfer_table.log", logs / "metamer_test_table.log"]:
        assert "CUDA_VISIBLE_DEVICES=(unset)" in log.read_text(), log
