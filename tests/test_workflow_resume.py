"""A real run killed mid-generation (Snakemake and its jobs) finishes when started again,
without recomputing finished artifacts, resuming from checkpoints, and with the numbers of
an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import TEST_CONFIG

from metamers.artifacts import read_metamer_batch

pytestmark = pytest.mark.workflow


def _config(repo: Path, work: Path) -> Path:
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["images"].update(per_class=1, limit=2)
    config["images_per_job"] = 1
    config["generators"] = {"lenet5_standard": {"layers": ["relu1", "relu3"]}}
    config["methods"] = {"adam": {"iterations": 4000}}
    config["checkpoint_every"] = 100
    config["metamer_test"] = {"n_pairs": 45, "statistics": ["pearson"]}
    config["figures"]["formats"] = ["png"]
    config["inversion"] = {"method": {"iterations": 5}}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _snakemake(repo: Path, work: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(work),
            "--configfile", str(work / "config.yaml"), *extra]


def test_killed_run_resumes(repo, tmp_path):
    reference, work = tmp_path / "reference", tmp_path / "killed"
    for d in (reference, work):
        d.mkdir()
        _config(repo, d)
    done = subprocess.run(_snakemake(repo, reference, "--cores", "2"), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    proc = subprocess.Popen(_snakemake(repo, work, "--cores", "1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    metamers = work / "results" / "metamers"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if list(metamers.rglob("*.h5")) and list(metamers.rglob(".*.checkpoint.pt")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    finished = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in metamers.rglob("*.h5")}
    checkpoints = list(metamers.rglob(".*.checkpoint.pt"))
    assert finished and checkpoints
    for path in finished:  # what exists is complete
        read_metamer_batch(path)

    # a killed Snakemake leaves its lock: the documented recovery is --unlock, then run again
    unlock = subprocess.run(_snakemake(repo, work, "--unlock"), capture_output=True, text=True)
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    again = subprocess.run(_snakemake(repo, work, "--cores", "2"), capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for path, (mtime, content) in finished.items():
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == content, f"{path} was recomputed"
    resumed = [p for p in checkpoints if p.with_name(p.name[1:].replace(".checkpoint.pt", ".h5")).exists()]
    logs = work / "results" / "logs" / "generate"
    assert any("resumed from" in log.read_text() for log in logs.rglob("*.log"))
    assert not list(metamers.rglob(".*.checkpoint.pt")), "checkpoints are removed once their artifact exists"
    assert resumed
    ref_files = sorted((reference / "results" / "metamers").rglob("*.h5"))
    assert [p.relative_to(reference) for p in ref_files] == sorted(p.relative_to(work) for p in metamers.rglob("*.h5"))
    for ref in ref_files:
        a, b = read_metamer_batch(ref), read_metamer_batch(work / ref.relative_to(reference))
        np.testing.assert_array_equal(a.metamer, b.metamer)
        np.testing.assert_array_equal(a.loss, b.loss)
    assert (work / "results" / "tables" / "recognizability.csv").read_text() == (
        reference / "results" / "tables" / "recognizability.csv").read_text()
    # every number of the metamer test is the same; only the measured time per iteration differs
    import pandas as pd

    tests = [pd.read_csv(d / "results" / "tables" / "metamer_test.csv") for d in (work, reference)]
    pd.testing.assert_frame_equal(*(t.drop(columns="seconds_per_iteration") for t in tests))
    assert (tests[0]["seconds_per_iteration"] > 0).all()
