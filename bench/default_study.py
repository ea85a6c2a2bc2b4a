"""Time the default study (config.yaml), or another study config, end to end, from an empty
results folder.

Targets: the default study under 15 minutes on a 2-core machine without a GPU (issue 2); the
replicated zoo, ``--configfile configs/fashion_mnist_zoo.yaml``, at most 90 minutes (issue 26).

    python bench/default_study.py [--cores 2] [--configfile config.yaml] [--keep DIR] [--fast]
                                  [--markdown docs/results/default_study.md]

The study is ``--configfile`` alone (a complete config: Snakemake reads it instead of the shipped
config.yaml); its jobs' times are read from its own results folder (the config's ``results``,
relative to the run's folder). ``--fast`` runs every rule of the workflow on a tiny study made from it
(:func:`fast_study`: 2 references in one generation job, its first single-model generator at its
last layer, that model the only evaluator, its first method for 8 iterations, a null of 300 pairs
of 30 pool images, 20 permutations and bootstrap samples, one inversion of 10 iterations, PNG
figures only), written to the run's folder as ``fast_config.yaml``: the same workflow in about a
minute on 2 cores, not the study's time.

Prints one row per rule (columns ``rule``, ``jobs``, ``total_s``, ``longest_s``, ``peak_rss_mb``:
jobs, summed and longest job seconds, largest peak memory, from Snakemake's benchmark files), the
same summed by stage (columns ``stage``, ``jobs``, ``job_seconds``; training, generation, metamer
test, recognizability, representation, image quality and diversity, figures: :data:`STAGES`), the total wall time, and a last
line ``RESULT seconds=<s> jobs=<n> intervals_missing=<m>``. Jobs run side by side, so stage
seconds are job time, not wall time.

``intervals_missing`` checks the study's intervals (:func:`interval_check`, a table with columns
``table``, ``rows``, ``with_interval``, ``missing``): the rows of ``representation.csv`` (not
marked ``unstable``) and of ``transfer_by_relation.csv`` whose finite interval does not hold their
own estimate; it must be 0 (``tests/test_bench_fast.py`` checks it on the fast study).

``--markdown PATH`` also writes the study's findings, with its metamer grid figure copied beside the
page as ``<page>_metamer_grid.png`` (:func:`findings`: the metamer test's pass
rates, recognizability and the representation measures' differences from the natural-image
baseline by relation and depth, with their crossed intervals, p- and q-values) with the command,
the version, the date and the time, as a page of the documentation (``docs/results/``); every
number on it comes from the study's tables.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import shutil
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
    "image_quality": "image quality and diversity", "image_quality_table": "image quality and diversity",
    "diversity": "image quality and diversity", "diversity_table": "image quality and diversity",
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


def interval_check(results: Path) -> pd.DataFrame:
    """Per table, the rows, those with a finite interval, and those whose interval misses the
    row's own estimate (``representation.csv``: rows not marked ``unstable``)."""
    out = []
    for name in ("representation.csv", "transfer_by_relation.csv"):
        path = results / "tables" / name
        if not path.is_file():
            continue
        table = pd.read_csv(path)
        if "unstable" in table:
            table = table[~table["unstable"].fillna(False).astype(bool)]
        finite = table[table["ci_low"].notna() & table["ci_high"].notna() & table["value"].notna()]
        missing = (finite["value"] < finite["ci_low"] - 1e-9) | (finite["value"] > finite["ci_high"] + 1e-9)
        out.append({"table": name, "rows": len(table), "with_interval": len(finite), "missing": int(missing.sum())})
    return pd.DataFrame(out, columns=["table", "rows", "with_interval", "missing"])


def _markdown(table: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return ("| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
            + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in table.itertuples(index=False)))


def _interval(row) -> str:
    if pd.isna(row["ci_low"]):
        return "none"
    return f"[{row['ci_low']:.3g}, {row['ci_high']:.3g}]"


def findings(results: Path) -> str:
    """The study's three questions answered from its tables, as Markdown."""
    tables = results / "tables"
    summary = pd.read_csv(tables / "metamer_test_summary.csv")
    passing = summary[["method", "generator", "layer", "n_images", "fraction_metamers", "median_pass_iteration",
                       "median_metamer_l2"]]
    relation = pd.read_csv(tables / "transfer_by_relation.csv")
    relation = relation.assign(interval=[_interval(r) for _, r in relation.iterrows()],
                               ci_note=relation["ci_note"].fillna(""))
    columns = ["method", "relation", "depth_bin", "value", "interval", "n_generators", "n_evaluators", "n_images",
               "n_metamers", "ci_note"]
    recognized = relation[relation["measure"] == "recognizability"][columns]
    differences = relation[relation["measure"].str.endswith("_minus_baseline")]
    differences = differences[["method", "measure", "relation", "depth_bin", "value", "interval", "p_value", "q_value",
                               "n_generators", "n_evaluators", "n_unstable_sets", "ci_note"]]
    return ("## Generation: which metamers pass the metamer test\n\n"
            "`metamer_test_summary.csv`: the fraction of each generator layer's metamers that pass (every "
            "statistic and the class), the median iteration of the first pass and the median pixel L2 distance "
            "to the reference.\n\n" + _markdown(passing)
            + "\n## Transferability: recognizability by relation and depth\n\n"
            "`transfer_by_relation.csv`: the fraction of passing metamers each relation's evaluators recognize, "
            "with its crossed interval over images, generators and evaluators (`metamers.stats.crossed`); "
            "`ci_note` says when a row has no interval or rests on few models.\n\n" + _markdown(recognized)
            + "\n## Evaluation: how much more of the references' structure the metamers keep than other images "
            "of their classes\n\n"
            "`transfer_by_relation.csv`, rows `<measure>_minus_baseline`: the measure between references and "
            "metamers minus that between references and other natural images of the same classes, averaged over "
            "the relation's sets, with its crossed interval, a one-sided p-value and a Benjamini-Hochberg q-value "
            "over the table's rows of that difference; `n_unstable_sets`: sets too small for a stable bootstrap "
            "of the measure.\n\n" + _markdown(differences) + _quality(tables))


def _quality(tables: Path) -> str:
    """The image quality of the passing metamers and the references (``image_quality.csv``), as Markdown."""
    path = tables / "image_quality.csv"
    if not path.is_file():
        return ""
    rows = pd.read_csv(path)
    metrics = ["niqe", "brisque", "gmsd", "haarpsi", "semantic_fidelity"]
    mets = rows[(rows["kind"] == "metamer") & rows["passed_metamer_test"].astype(bool)]
    table = mets.groupby(["method", "generator", "layer"], sort=False)[metrics].median().reset_index()
    table.insert(3, "n_passing", mets.groupby(["method", "generator", "layer"], sort=False).size().to_numpy())
    refs = rows[rows["kind"] == "reference"][metrics].median()
    table.loc[len(table)] = ["(references)", "", "", int((rows["kind"] == "reference").sum()), *refs.to_numpy()]
    return ("\n## Image quality of the passing metamers\n\n"
            "`image_quality.csv`: medians over each generator layer's passing metamers of NIQE and BRISQUE "
            "(lower: more natural; digits upsampled to 224 pixels a side, where both are unreliable: "
            "[Image quality](../diversity-and-quality.md#image-quality)), GMSD (0) and HaarPSI (1: identical to "
            "the reference), and the semantic fidelity of the evaluators held out from the generator.\n\n"
            + _markdown(table))


def write_page(path: Path, configfile: str, cores: int, seconds: float, jobs: int, results: Path) -> None:
    """The documentation page of a run: the command, the version, the date, the time, the findings."""
    from datetime import date

    sys.path.insert(0, str(REPO))
    from metamers import __version__

    path.parent.mkdir(parents=True, exist_ok=True)
    grid = results / "figures" / "metamer_grid.png"  # the study's metamers, beside the page
    figure = ""
    if grid.is_file():
        shutil.copyfile(grid, path.with_name(f"{path.stem}_metamer_grid.png"))
        figure = (f"![The study's metamer grid (results/figures/metamer_grid.png): references and their metamers by "
                  f"generator, layer and method]({path.stem}_metamer_grid.png)\n\n")
    path.write_text(f"# Results of `{configfile}`\n\n"
                    "*Written by `bench/default_study.py`; do not edit by hand.*\n\n"
                    f"`python bench/default_study.py --cores {cores} --configfile {configfile} --markdown {path}` "
                    f"(metamers {__version__}, {date.today().isoformat()}): {jobs} jobs in {seconds:.0f} s of wall "
                    f"time with {cores} cores on this machine's CPU.\n\n" + figure + findings(results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", default="config.yaml", help="relative to the current folder")
    parser.add_argument("--keep", help="run in this (new or empty) folder and keep the results there")
    parser.add_argument("--fast", action="store_true", help="a tiny study made from --configfile (fast_study)")
    parser.add_argument("--markdown", type=Path, help="also write the study's findings to this page")
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
        results = Path(work) / (yaml.safe_load(configfile.read_text()) or {}).get("results", "results")
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores",
               str(args.cores), "--directory", work, "--configfile", str(configfile), "--quiet", "all"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout[-5000:])
            return proc.returncode
        rows = []
        for tsv in (results / "benchmarks").rglob("*.tsv"):
            rule = tsv.relative_to(results / "benchmarks").parts[0]
            bench = pd.read_csv(tsv, sep="\t")
            rows.append({"rule": rule.removesuffix(".tsv"), "s": bench["s"].iloc[0], "max_rss": bench["max_rss"].iloc[0]})
        if not rows:
            print(f"the study ran, but {results / 'benchmarks'} holds no job's benchmark file")
            return 1
        intervals = interval_check(results)
        if args.markdown:
            write_page(args.markdown, args.configfile, args.cores, seconds, len(rows), results)
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
    print("\n" + intervals.to_string(index=False) + "\n")
    print(f"RESULT seconds={seconds:.1f} jobs={int(table['jobs'].sum())} "
          f"intervals_missing={int(intervals['missing'].sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
