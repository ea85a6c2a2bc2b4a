"""Time the default study (config.yaml) end to end, from an empty results folder.

Target (issue 2): under 15 minutes on a 2-core machine without a GPU.

    python bench/default_study.py [--cores 2] [--configfile config.yaml] [--keep DIR] [--fast]

The study is ``--configfile`` alone (a complete config: Snakemake reads it instead of the shipped
config.yaml). ``--fast`` runs every rule of the workflow on a tiny study made from it
(:func:`fast_study`: 2 references in one generation job, its first single-model generator at its
last layer, that model the only evaluator, its first method for 8 iterations, a null of 300 pairs
of 30 pool images, 20 permutations and bootstrap samples, one inversion of 10 iterations, PNG
figures only), written to the run's folder as ``fast_config.yaml``: the same workflow in about a
minute on 2 cores, not the study's time.

Prints one row per rule (columns ``rule``, ``jobs``, ``total_s``, ``longest_s``, ``peak_rss_mb``:
jobs, summed and longest job seconds, largest peak memory, from Snakemake's benchmark files), the
same summed by stage (columns ``stage``, ``jobs``, ``job_seconds``; training, generation, metamer
test, recognizability, representation, figures: :data:`STAGES`), the total wall time, and a last
line ``RESULT seconds=<s> jobs=<n>``. Jobs run side by side, so stage seconds are job time, not
wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
#: Rule -> the stage of the study it belongs to.
STAGES = {
    "train_model": "training",
    "generate": "generation",
    "null_distribution": "metamer test", "null_tables": "metamer test", "metamer_test": "metamer test",
    "metamer_test_table": "metamer test",
    "recognizability": "recognizability and transfer", "transfer_table": "recognizability and transfer",
    "layer_depths": "recognizability and transfer", "transfer_by_relation": "recognizability and transfer",
    "metamer_index": "representation", "representation_activations": "representation", "representation": "representation",
    "representation_table": "representation", "inversion": "representation", "inversion_table": "representation",
    "grid_images": "figures", "figures": "figures",
}


def fast_study(config: dict) -> dict:
    """``--fast``'s study: ``config`` cut down to a run of every rule in about a minute (see the
    module's docstring), complete (every key it keeps, the shrunk ones replaced)."""
    study = copy.deepcopy(config)
    single = [name for name, entry in study["generators"].items() if "members" not in entry]
    if not single:
        raise SystemExit("--fast needs a single-model generator in the config")
    generator = single[0]
    study["images"] = {**study["images"], "per_class": 1, "limit": 2}
    study["images_per_job"] = 2
    study["generators"] = {generator: {**study["generators"][generator],
                                       "layers": study["generators"][generator]["layers"][-1:]}}
    study["models"] = {generator: study["models"][generator]}
    study["evaluators"] = [generator]
    method = next(iter(study["methods"]))
    study["methods"] = {method: {**(study["methods"][method] or {}), "iterations": 8, "check_every": 4}}
    metamer_test = study.get("metamer_test", {})
    study["metamer_test"] = {**metamer_test, "n_pairs": 300, "n_draws": 1,
                             "pool": {**metamer_test.get("pool", {"type": "mnist"}), "per_class": 3}}
    study["representation"] = {**study.get("representation", {}), "n_permutations": 20, "n_bootstrap": 20}
    study["relations"] = {**study.get("relations", {}), "n_bootstrap": 20}
    inversion = study.get("inversion", {})
    study["inversion"] = {key: value for key, value in inversion.items() if key != "layers"}
    study["inversion"].update(images=1, method={**inversion.get("method", {}), "iterations": 10})
    study["figures"] = {**{k: v for k, v in study.get("figures", {}).items() if k != "null_layers"},
                        "grid_images": 2, "formats": ["png"]}
    return study


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", default="config.yaml", help="relative to the current folder")
    parser.add_argument("--keep", help="run in this (new or empty) folder and keep the results there")
    parser.add_argument("--fast", action="store_true", help="a tiny study made from --configfile (fast_study)")
    args = parser.parse_args()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        if any(Path(args.keep).iterdir()):
            parser.error(f"--keep {args.keep}: the folder is not empty (the study must start from nothing)")
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory(prefix="metamers-bench-")) as work:
        configfile = Path(args.configfile).resolve()
        if args.fast:
            configfile = Path(work) / "fast_config.yaml"
            configfile.write_text(yaml.safe_dump(fast_study(yaml.safe_load(Path(args.configfile).read_text()))))
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores",
               str(args.cores), "--directory", work, "--configfile", str(configfile), "--quiet", "all"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout[-5000:])
            return proc.returncode
        rows = []
        for tsv in (Path(work) / "results" / "benchmarks").rglob("*.tsv"):
            rule = tsv.relative_to(Path(work) / "results" / "benchmarks").parts[0]
            bench = pd.read_csv(tsv, sep="\t")
            rows.append({"rule": rule.removesuffix(".tsv"), "s": bench["s"].iloc[0], "max_rss": bench["max_rss"].iloc[0]})
    table = (
        pd.DataFrame(rows)
        .groupby("rule")
        .agg(jobs=("s", "size"), total_s=("s", "sum"), longest_s=("s", "max"), peak_rss_mb=("max_rss", "max"))
        .round(1)
    )
    print(table.reset_index().to_string(index=False))
    unknown = sorted(set(table.index) - set(STAGES))
    stages = (table.assign(stage=[STAGES.get(rule, "other") for rule in table.index]).groupby("stage", sort=False)
              .agg(jobs=("jobs", "sum"), job_seconds=("total_s", "sum")).round(1))
    order = [*dict.fromkeys(STAGES.values()), "other"]
    print("\n" + stages.reindex([s for s in order if s in stages.index]).reset_index().to_string(index=False))
    if unknown:
        print(f"(rules of no stage: {', '.join(unknown)})")
    print(f"\nwall time {seconds:.1f} s with --cores {args.cores} ({int(table['jobs'].sum())} jobs)")
    print(f"reproduce: python bench/default_study.py --cores {args.cores} --configfile {args.configfile}"
          + (" --fast" if args.fast else ""))
    print(f"RESULT seconds={seconds:.1f} jobs={int(table['jobs'].sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
