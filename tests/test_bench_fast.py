"""Every benchmark of bench/ runs in its fast mode (``--fast``, documented in each script's
docstring): it exits 0, prints its table with the documented columns, and its last line is
``RESULT`` with exactly the documented keys, each a finite number (or ``nan``/a name where the
docstring says so). :data:`BENCHES` must list every bench/*.py, so that a new benchmark without a
fast-mode test fails here (issue 25: benchmarks stay runnable)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO, SHARED

#: A RESULT value's kind: ``number`` (finite), ``number_or_nan``, ``count`` (an integer >= 0),
#: ``name`` (a word: a start's label, ``none``).
KINDS = ("number", "number_or_nan", "count", "name")


@dataclass(frozen=True)
class Bench:
    """What one benchmark's fast mode must print."""

    #: RESULT key -> its kind (:data:`KINDS`), in the order printed.
    result: dict[str, str]
    #: Each table's header: its columns, in order (whitespace-separated tokens of one line).
    headers: list[list[str]]
    #: Whether it needs ../shared (the ``shared`` fixture).
    shared: bool = False
    #: Seconds its fast mode may take here (2 cores, shared with other work) before the test fails.
    timeout: int = 120
    #: Further checks of (RESULT values, stdout).
    check: Callable[[dict, str], None] | None = field(default=None, compare=False)


def table_rows(stdout: str, header: list[str]) -> list[list[str]]:
    """The rows (whitespace tokens) under a table's header, to its first blank line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == header)
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def check_dag_scale(result: dict, stdout: str) -> None:
    rows = table_rows(stdout, ["rule", "jobs"])
    counts = {rule: int(n) for rule, n in rows}
    # the fast study: 2 models x 2 layers x 3 methods x 2 batches of 10 images; a null per (model, layer)
    assert counts["generate"] == 24 and counts["null_distribution"] == 4 and counts["all"] == 1
    assert result["jobs"] == sum(counts.values())
    assert 0 < result["peak_mb"] < 1024


def check_default_study(result: dict, stdout: str) -> None:
    rows = table_rows(stdout, ["rule", "jobs", "total_s", "longest_s", "peak_rss_mb"])
    jobs = {rule: int(n) for rule, n, *_ in rows}
    assert jobs["generate"] == 1 and jobs["null_distribution"] == 1 and jobs["inversion"] == 1
    assert result["jobs"] == sum(jobs.values())
    stages = table_rows(stdout, ["stage", "jobs", "job_seconds"])
    assert sum(int(row[-2]) for row in stages) == result["jobs"]
    assert "rules of no stage" not in stdout
    # every interval of the study holds its own estimate (both tables checked, none missing)
    checked = table_rows(stdout, ["table", "rows", "with_interval", "missing"])
    assert [row[0] for row in checked] == ["representation.csv", "transfer_by_relation.csv"]
    assert result["intervals_missing"] == 0 and all(row[3] == "0" for row in checked)


def check_generation(result: dict, stdout: str) -> None:
    rows = table_rows(stdout, GENERATION_COLUMNS)
    assert [(row[0], row[1], row[2]) for row in rows] == [("resnet20", "layer1.2.relu2", "feather2023"),
                                                          ("resnet20", "layer1.2.relu2", "polyak")]
    assert all(int(row[-1]) <= 200 for row in rows)  # --fast's budget
    assert result["overhead"] > 0 and result["iter_ratio"] > 0 and result["early_layer_speedup"] > 0
    assert math.isnan(result["joint_pass"])  # no joint generator in the fast mode


def check_null_distribution(result: dict, stdout: str) -> None:
    rows = table_rows(stdout, NULL_COLUMNS)
    assert [row[0] for row in rows] == ["lenet5", "cifar_resnet20", "synthetic"]
    assert result["speedup"] > 0 and 0 <= result["max_abs_diff"] < 1e-5 and result["peak_gb"] > 0


def check_representation(result: dict, stdout: str) -> None:
    measures = table_rows(stdout, ["measure", "value", "ci_low", "ci_high", "p"])
    assert len(measures) == 10 and all(0 <= float(row[-1]) <= 1 for row in measures)
    stages = table_rows(stdout, ["stage", "seconds"])
    assert abs(sum(float(row[-1]) for row in stages) - result["seconds"]) < 0.1 + 0.01 * len(stages)
    assert result["peak_gb"] > 0


def check_starts(result: dict, stdout: str) -> None:
    rows = table_rows(stdout, STARTS_COLUMNS)
    assert [row[2] for row in rows] == ["noise", "uniform", "lowpass:cutoff=0.05", "lowpass:cutoff=0.1",
                                        "lowpass:cutoff=0.2"]
    kept = result["kept_cases"]
    assert kept <= 1  # one case
    if kept:
        assert result["best_start"] in {row[2] for row in rows} - {"noise"}
        assert 0 < result["min_speedup"] <= result["geomean_speedup"]
    else:
        assert result["best_start"] == "none" and math.isnan(result["min_speedup"])
    if result["equal_distance_family"] == "none":
        assert math.isnan(result["equal_distance_speedup"])
    else:
        assert result["equal_distance_family"] == "lowpass" and result["equal_distance_speedup"] > 0


def check_study_cost(result: dict, stdout: str) -> None:
    layers = table_rows(stdout, ["generator", "layer", "stand_in", "ms_per_image_iteration",
                                 "gflop_per_image_iteration"])
    # config.yaml: both LeNets at four layers (the joint generator is skipped), with their weights
    assert len(layers) == 8 and all(row[2] == "False" for row in layers)
    methods = table_rows(stdout, ["method", "iterations", "cpu_hours", "gpu_hours_flop_bound"])
    assert result["methods"] == len(methods) >= 1
    assert result["cpu_hours"] > 0 and result["gpu_hours_flop_bound"] >= 0


GENERATION_COLUMNS = ["model", "layer", "preset", "fraction_passing", "final_fraction_passing", "median_pass_iteration",
                      "iter_ratio", "time_ratio", "median_l2", "median_first_pass_l2", "distance_ratio",
                      "distance_ok", "median_ssim", "median_start_l2", "timed_ms_per_iteration", "overhead",
                      "early_layer_speedup", "iterations_run"]
NULL_COLUMNS = "case D K pairs null s scipy ms/pair speed-up max |diff| peak GB".split()
STARTS_COLUMNS = ["model", "layer", "start", "fraction_passing", "median_pass_iteration", "median_start_l2",
                  "median_l2", "distance_ratio", "speedup", "keeps_distance"]

DIVERSITY_COLUMNS = ["model", "layer", "weight", "k", "images", "pass_fraction", "mean_pairwise_l2", "min_pairwise_l2",
                     "relative_mean", "mean_pairwise_ssim", "median_l2_to_reference", "ratio", "wall_s"]
DIVERSITY_WEIGHTS = ["weight", "cases", "pass_fraction", "mean_pairwise_l2", "min_case_ratio", "diversity_ratio"]


def check_diversity(result: dict, stdout: str) -> None:
    rows = table_rows(stdout, DIVERSITY_COLUMNS)
    # --fast: the standard LeNet's relu2, weight 0 (independent seeds) and 0.1, 2 digits x 2 metamers
    assert [(r[0], r[1], float(r[2]), r[3], r[4]) for r in rows] == [("lenet5_standard", "relu2", 0.0, "2", "2"),
                                                                     ("lenet5_standard", "relu2", 0.1, "2", "2")]
    assert float(rows[0][11]) == 1.0 and all(float(r[6]) >= float(r[7]) > 0 for r in rows)  # mean >= min > 0
    assert all(float(r[5]) in (0.0, 0.25, 0.5, 0.75, 1.0) for r in rows)  # a fraction of 4 metamers
    weights = table_rows(stdout, DIVERSITY_WEIGHTS)
    assert result["weight"] == 0.1 == float(weights[1][0])
    assert result["diversity_ratio"] == pytest.approx(float(weights[1][5]), rel=1e-3)
    assert result["diversity_ratio"] == pytest.approx(float(rows[1][6]) / float(rows[0][6]), rel=1e-3)
    assert result["pass_fraction"] == pytest.approx(float(rows[1][5]), abs=1e-3)


#: bench/<name>.py -> what its fast mode prints.
def check_coverage(result: dict, stdout: str) -> None:
    header = ["measure", "kind", "G", "E", "images", "effects", "coverage", "no_interval", "mean_width", "target"]
    rows = table_rows(stdout, header)
    # the fast designs: crossed 6 x 6 (a target design) and self 3 (not), each measure
    assert [(r[0], r[1], r[2], r[9]) for r in rows] == [
        ("recognizability", "crossed", "6", "yes"), ("recognizability", "self", "3", "no"),
        ("representation", "crossed", "6", "yes"), ("representation", "self", "3", "no")]
    assert all(0 <= float(r[6]) <= 1 for r in rows)
    # RESULT is the smallest coverage over the target designs, per measure
    assert result["coverage_recognizability"] == pytest.approx(float(rows[0][6]), abs=5e-4)
    assert result["coverage_representation"] == pytest.approx(float(rows[2][6]), abs=5e-4)


BENCHES: dict[str, Bench] = {
    "coverage": Bench({"coverage_recognizability": "number", "coverage_representation": "number"},
                      [["measure", "kind", "G", "E", "images", "effects", "coverage", "no_interval", "mean_width",
                        "target"]], check=check_coverage),
    "dag_scale": Bench({"seconds": "number", "peak_mb": "number", "jobs": "count"}, [["rule", "jobs"]],
                       check=check_dag_scale),
    "default_study": Bench({"seconds": "number", "jobs": "count", "intervals_missing": "count"},
                           [["rule", "jobs", "total_s", "longest_s", "peak_rss_mb"], ["stage", "jobs", "job_seconds"]],
                           timeout=480, check=check_default_study),
    "diversity": Bench({"diversity_ratio": "number", "pass_fraction": "number", "weight": "number"},
                       [DIVERSITY_COLUMNS, DIVERSITY_WEIGHTS], timeout=240, check=check_diversity),
    "generation": Bench({"iter_ratio": "number_or_nan", "hard_pass": "number_or_nan", "distance_ratio": "number_or_nan",
                         "overhead": "number", "early_layer_speedup": "number_or_nan", "joint_pass": "number_or_nan"},
                        [GENERATION_COLUMNS, ["preset", "rows_won_10x", "rows_won", "geomean_iter_ratio_won",
                                              "iter_ratio", "hard_pass", "distance_ratio", "overhead",
                                              "early_layer_speedup", "joint_pass"]],
                        shared=True, timeout=240, check=check_generation),
    "null_distribution": Bench({"speedup": "number", "max_abs_diff": "number", "peak_gb": "number"}, [NULL_COLUMNS],
                               shared=True, timeout=240, check=check_null_distribution),
    "representation": Bench({"seconds": "number", "peak_gb": "number"},
                            [["stage", "seconds"], ["measure", "value", "ci_low", "ci_high", "p"]],
                            check=check_representation),
    "starts": Bench({"best_start": "name", "kept_cases": "count", "min_speedup": "number_or_nan",
                     "geomean_speedup": "number_or_nan", "equal_distance_family": "name",
                     "equal_distance_speedup": "number_or_nan"},
                    [STARTS_COLUMNS, ["model", "layer", "family", "noise_l2", "member_l2", "iterations_at_noise_l2",
                                      "noise_iterations", "speedup_at_equal_distance"]],
                    shared=True, timeout=240, check=check_starts),
    "study_cost": Bench({"methods": "count", "cpu_hours": "number", "gpu_hours_flop_bound": "number"},
                        [["generator", "layer", "stand_in", "ms_per_image_iteration", "gflop_per_image_iteration"],
                         ["method", "iterations", "cpu_hours", "gpu_hours_flop_bound"]],
                        check=check_study_cost),
}
#: Benchmarks that run Snakemake's whole workflow (the slow ones: marked ``workflow``).
WORKFLOW = {"default_study"}


def parse_result(line: str, kinds: dict[str, str]) -> dict:
    """A RESULT line's values, checked against their kinds (an AssertionError names the problem)."""
    assert line.startswith("RESULT "), f"the last line is not a RESULT line: {line!r}"
    pairs = [item.split("=", 1) for item in line.removeprefix("RESULT ").split()]
    assert all(len(pair) == 2 for pair in pairs), line
    assert [key for key, _ in pairs] == list(kinds), f"RESULT keys {[k for k, _ in pairs]}, documented {list(kinds)}"
    values = {}
    for key, text in pairs:
        kind = kinds[key]
        if kind == "name":
            assert re.fullmatch(r"[\w.:=+-]+", text), (key, text)
            values[key] = text
        elif kind == "count":
            assert re.fullmatch(r"\d+", text), (key, text)
            values[key] = int(text)
        else:
            value = float(text)  # a ValueError: not a number
            assert math.isfinite(value) or (kind == "number_or_nan" and math.isnan(value)), (key, text)
            values[key] = value
    return values


def test_every_benchmark_has_a_fast_mode_test(repo):
    """A new bench/*.py must be added to BENCHES (and so be run in its fast mode here)."""
    assert set(BENCHES) == {path.stem for path in (repo / "bench").glob("*.py")}
    for name in BENCHES:
        docstring = (repo / "bench" / f"{name}.py").read_text()
        assert "--fast" in docstring.split('"""')[1], f"bench/{name}.py's docstring does not document --fast"


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.workflow] if name in WORKFLOW else [])
                                  for name in sorted({p.stem for p in (REPO / "bench").glob("*.py")} | set(BENCHES))])
def test_fast_mode(name, repo, request):
    assert name in BENCHES, f"bench/{name}.py has no fast-mode test: add it to BENCHES"
    bench = BENCHES[name]
    shared = request.getfixturevalue("shared") if bench.shared else SHARED
    tick = time.perf_counter()
    done = subprocess.run([sys.executable, str(repo / "bench" / f"{name}.py"), "--fast"], cwd=repo,
                          capture_output=True, text=True, timeout=bench.timeout,
                          env={**os.environ, "METAMERS_SHARED": str(shared)})
    seconds = time.perf_counter() - tick
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    lines = done.stdout.rstrip("\n").splitlines()
    result = parse_result(lines[-1], bench.result)
    for header in bench.headers:
        assert any(line.split() == header for line in lines), f"no table with the columns {header}"
    assert "reproduce: python bench/" in done.stdout
    if bench.check:
        bench.check(result, done.stdout)
    print(f"bench/{name}.py --fast: {seconds:.1f} s")
