"""Time the default study (config.yaml) end to end, from an empty results folder.

Target (issue 2): under 15 minutes on a 2-core machine without a GPU.

    python bench/default_study.py [--cores 2] [--configfile config.yaml] [--keep DIR]

Prints one row per rule (jobs, summed and longest job seconds, largest peak memory, from
Snakemake's benchmark files), the same summed by stage (training, generation, metamer test,
recognizability, representation, figures; :data:`STAGES`), the total wall time, and a last line
``RESULT seconds=<s> jobs=<n>``. Jobs run side by side, so stage seconds are job time, not wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
#: Rule -> the stage of the study it belongs to.
STAGES = {
    "train_model": "training",
    "generate": "generation",
    "null_distribution": "metamer test", "null_tables": "metamer test", "metamer_test": "metamer test",
    "metamer_test_table": "metamer test",
    "recognizability": "recognizability and transfer", "transfer_table": "recognizability and transfer",
    "layer_depths": "recognizability and transfer", "transfer_by_relation": "recognizability and transfer",
    "representation_activations": "representation", "representation": "representation",
    "representation_table": "representation", "inversion": "representation", "inversion_table": "representation",
    "grid_images": "figures", "figures": "figures",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", default="config.yaml", help="relative to the current folder")
    parser.add_argument("--keep", help="run in this (new or empty) folder and keep the results there")
    args = parser.parse_args()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        if any(Path(args.keep).iterdir()):
            parser.error(f"--keep {args.keep}: the folder is not empty (the study must start from nothing)")
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory(prefix="metamers-bench-")) as work:
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores",
               str(args.cores), "--directory", work, "--configfile", str(Path(args.configfile).resolve()),
               "--quiet", "all"]
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
    print(table.to_string())
    unknown = sorted(set(table.index) - set(STAGES))
    stages = (table.assign(stage=[STAGES.get(rule, "other") for rule in table.index]).groupby("stage", sort=False)
              .agg(jobs=("jobs", "sum"), job_seconds=("total_s", "sum")).round(1))
    order = [*dict.fromkeys(STAGES.values()), "other"]
    print("\n" + stages.reindex([s for s in order if s in stages.index]).to_string())
    if unknown:
        print(f"(rules of no stage: {', '.join(unknown)})")
    print(f"\nwall time {seconds:.1f} s with --cores {args.cores} ({int(table['jobs'].sum())} jobs)")
    print(f"reproduce: python bench/default_study.py --cores {args.cores} --configfile {args.configfile}")
    print(f"RESULT seconds={seconds:.1f} jobs={int(table['jobs'].sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
