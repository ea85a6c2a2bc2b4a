"""Compare the starting points of synthesis, at equal distance from the reference.

Issue 9's question about starting points: does a start nearer the reference (the reference plus
noise, a blend with noise, a low-pass reference) or one made from other images (another class's
image, the pool's mean image, a phase-scrambled reference) pass the metamer test sooner than the
published Gaussian noise, without passing by staying next to the reference? Not a timed test.

One method (``--method``, default ``polyak_priors``, the default study's) runs from every start at
the generation benchmark's cases (``bench/generation.py``: both MNIST LeNet-5s at ``relu1``,
``relu2``, ``relu3``, ``linear2``, and ResNet-20 at its three stage outputs, with the same
references, nulls and in-loop test at every iteration), each image frozen at its first pass.
Starts:

- ``noise``, the published start: the distance every other start is compared at;
- ``uniform``, ``pool_mean``, ``other_class``, ``phase_scrambled`` (no knob);
- the families with a knob that brings the start nearer the reference: ``reference_noise``
  (σ 1, 0.5, 0.25), ``blend`` (α 0.25, 0.5, 0.75), ``lowpass`` (cut-off 0.05, 0.1, 0.2 of Nyquist).

A start *keeps the distance* at a case when it passes at least the fraction of images that
``noise`` passes and its metamers' median pixel L2 distance from the references is at least 0.9
times that of ``noise``'s (or both medians are below one grey level RMS); its ``speedup`` is the
ratio of the tests until the first pass, ``noise``'s over its own (median first-pass iteration + 1:
a start near the reference may pass its first test, at iteration 0). For the families, the iterations *at equal
distance* are interpolated between the two members whose metamer distances bracket ``noise``'s
(``metamers.stats.distances.at_equal_distance``: linear in distance, geometric in iterations; NaN
where every member's metamers are nearer, or all farther, than ``noise``'s).

    python bench/starts.py [--method polyak_priors] [--images 8] [--workers 2]
                           [--cases lenet5_standard/relu2 ...] [--starts blend ...] [--cache DIR] [--csv FILE]
                           [--iterations N] [--fast]

``--iterations N`` caps the method's budget (default the preset's own). ``--fast``: one case
(ResNet-20's first stage, whose null is computed in a second), 2 references, the starts ``noise``,
``uniform`` and the ``lowpass`` family, 200 iterations at most, 1 worker and a temporary
``--cache`` (nothing is read from or left in ``bench/.cache``): the same code path in seconds (any
option given beside it wins). Needs ``../shared`` (or ``$METAMERS_SHARED``).

Prints a table per case and start (columns: :data:`SHOWN`), the families' iterations at equal
distance (columns: :data:`FAMILY_COLUMNS`), the command that reproduces them, and, last,
``RESULT best_start=... kept_cases=... min_speedup=... geomean_speedup=... equal_distance_family=...
equal_distance_speedup=...``:
the start other than ``noise`` that keeps the distance at the most cases (ties: the larger
geometric-mean speed-up), the number of cases where it does, its smallest and its geometric-mean
speed-up over those cases (``none`` where no start keeps the distance anywhere), and the family with the largest
geometric-mean speed-up at equal distance over the cases where it can be compared, with that
speed-up (``none``/``nan`` where no family's metamers bracket ``noise``'s distance anywhere).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generation  # noqa: E402  (the generation benchmark's cases, references, nulls and runs)

#: ``(label, family, init settings)``: the family names a knob's members (None: no knob).
STARTS_TRIED: list[tuple[str, str | None, dict]] = [
    ("noise", None, {"type": "noise"}),
    ("uniform", None, {"type": "uniform"}),
    ("pool_mean", None, {"type": "pool_mean"}),
    ("other_class", None, {"type": "other_class"}),
    ("phase_scrambled", None, {"type": "phase_scrambled"}),
    *((f"reference_noise:sigma={s:g}", "reference_noise", {"type": "reference_noise", "sigma": s}) for s in (1.0, 0.5, 0.25)),
    *((f"blend:alpha={a:g}", "blend", {"type": "blend", "alpha": a}) for a in (0.25, 0.5, 0.75)),
    *((f"lowpass:cutoff={c:g}", "lowpass", {"type": "lowpass", "cutoff": c}) for c in (0.05, 0.1, 0.2)),
]
PUBLISHED = "noise"
DISTANCE_KEPT = 0.9
#: The columns of the printed table of runs, and of the families' table.
SHOWN = ["model", "layer", "start", "fraction_passing", "median_pass_iteration", "median_start_l2", "median_l2",
         "distance_ratio", "speedup", "keeps_distance"]
FAMILY_COLUMNS = ["model", "layer", "family", "noise_l2", "member_l2", "iterations_at_noise_l2", "noise_iterations",
                  "speedup_at_equal_distance"]
#: ``--fast``'s defaults.
FAST = {"cases": ["resnet20/layer1.2.relu2"], "images": 2, "workers": 1, "starts": ["uniform", "lowpass"],
        "iterations": 200}


def run_start(model: str, layer: str, method: str, label: str, init: dict, n: int, cache: Path,
              iterations: int | None = None) -> dict:
    """One (case, start) run of ``method`` (its budget ``iterations``, default the preset's):
    :func:`generation.run_case`'s row, with the start's label."""
    entry = {"init": init, **({"iterations": iterations} if iterations else {})}
    row = generation.run_case(model, layer, method, n, cache, entry=entry)
    return {**row, "start": label}


def compare(rows: pd.DataFrame) -> pd.DataFrame:
    """Each (case, start) row with ``noise``'s measures beside it: ``speedup`` (``noise``'s median
    first-pass iteration over the start's), ``distance_ratio`` and ``keeps_distance``."""
    out = []
    for (model, layer), case in rows.groupby(["model", "layer"], sort=False):
        base = case[case["start"] == PUBLISHED].iloc[0]
        for _, row in case.iterrows():
            same = row["median_rms"] < generation.SAME_AS_REFERENCE_RMS and \
                base["median_rms"] < generation.SAME_AS_REFERENCE_RMS
            ratio = row["median_l2"] / base["median_l2"] if base["median_l2"] > 0 else math.nan
            kept = bool(row["fraction_passing"] >= base["fraction_passing"] and row["fraction_passing"] > 0
                        and (same or ratio >= DISTANCE_KEPT))
            speedup = (base["median_pass_iteration"] + 1) / (row["median_pass_iteration"] + 1)
            out.append({**row, "speedup": speedup,
                        "distance_ratio": ratio, "keeps_distance": kept})
    return pd.DataFrame(out)


def equal_distance(rows: pd.DataFrame) -> pd.DataFrame:
    """Per case and family: the iterations its members need at ``noise``'s metamer distance, and
    the speed-up there (NaN where the members' distances do not bracket it)."""
    from metamers.stats.distances import at_equal_distance

    out = []
    for (model, layer), case in rows.groupby(["model", "layer"], sort=False):
        base = case[case["start"] == PUBLISHED].iloc[0]
        for family, members in case[case["family"].notna()].groupby("family", sort=False):
            passing = members[members["fraction_passing"] >= base["fraction_passing"]]
            its = at_equal_distance(passing["median_l2"], passing["median_pass_iteration"], base["median_l2"])
            out.append({"model": model, "layer": layer, "family": family, "noise_l2": base["median_l2"],
                        "member_l2": " / ".join(f"{v:.1f}" for v in members["median_l2"]),
                        "iterations_at_noise_l2": its, "noise_iterations": base["median_pass_iteration"],
                        "speedup_at_equal_distance": (base["median_pass_iteration"] + 1) / (its + 1)})
    return pd.DataFrame(out)


def result(rows: pd.DataFrame, families: pd.DataFrame) -> dict:
    """The RESULT values (see the module's docstring)."""
    others = rows[rows["start"] != PUBLISHED]
    score = [(0, math.nan, "none", math.nan)]
    for start, group in others.groupby("start", sort=False):
        kept = group[group["keeps_distance"]]
        geo = float(np.exp(np.log(kept["speedup"].dropna()).mean())) if kept["speedup"].notna().any() else math.nan
        score.append((len(kept), geo, start, float(kept["speedup"].min()) if len(kept) else math.nan))
    n_kept, geo, best, low = max(score, key=lambda s: (s[0], -math.inf if math.isnan(s[1]) else s[1]))
    geo_family = {f: float(np.exp(np.log(g["speedup_at_equal_distance"].dropna()).mean()))
                  for f, g in (families.groupby("family") if len(families) else [])
                  if g["speedup_at_equal_distance"].notna().any()}
    best_family = max(geo_family, key=geo_family.get) if geo_family else "none"
    return {"best_start": best if n_kept else "none", "kept_cases": n_kept, "min_speedup": round(low, 3),
            "geomean_speedup": round(geo, 3),
            "equal_distance_family": best_family,
            "equal_distance_speedup": round(geo_family.get(best_family, math.nan), 3)}


def main() -> int:
    from metamers.synthesis.methods import METHOD_PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="polyak_priors", help="the preset run from every start")
    parser.add_argument("--images", type=int, default=8, help="references per (model, layer)")
    parser.add_argument("--workers", type=int, default=2, help="processes, one CPU thread each")
    parser.add_argument("--cases", nargs="*", help="model/layer, default: all " + str(len(generation.CASES)))
    parser.add_argument("--starts", nargs="*", help="start types (families), default: all; noise is always run")
    parser.add_argument("--cache", help="where nulls are kept between runs (default bench/.cache; with --fast, a "
                                         "temporary folder)")
    parser.add_argument("--csv", help="also write the runs' rows here (once every run is done, before the summary)")
    parser.add_argument("--rows", help="summarize the rows that an earlier run wrote with --csv instead of running")
    parser.add_argument("--iterations", type=int, help="the method's budget (default the preset's own)")
    parser.add_argument("--fast", action="store_true", help=f"a small run: {FAST}")
    if parser.parse_known_args()[0].fast:
        parser.set_defaults(**FAST)
    args = parser.parse_args()
    if args.iterations is not None and args.iterations < 1:
        parser.error(f"--iterations must be >= 1, got {args.iterations}")
    if args.method == generation.BASELINE:
        parser.error(f"{generation.BASELINE} runs as published (24,000 steps, no freezing at a first pass): "
                     "compare starts with a preset that stops at its first pass")
    if args.method not in METHOD_PRESETS:
        parser.error(f"unknown preset {args.method!r}; valid: {', '.join(METHOD_PRESETS)}")
    cases = generation.chosen_cases(parser, args.cases, weights=not args.rows)
    types = list(dict.fromkeys(init["type"] for _, _, init in STARTS_TRIED))
    if args.starts:
        unknown = [s for s in args.starts if s not in types]
        if unknown:
            parser.error(f"unknown start(s) {unknown}; valid: {', '.join(types)}")
    chosen = [s for s in STARTS_TRIED if s[2]["type"] == PUBLISHED or not args.starts or s[2]["type"] in args.starts]
    temporary = tempfile.mkdtemp(prefix="metamers-starts-") if args.cache is None and args.fast else None
    cache = Path(args.cache or temporary or generation.REPO / "bench" / ".cache")
    try:
        return run(args, cases, chosen, cache)
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def run(args: argparse.Namespace, cases: list, chosen: list, cache: Path) -> int:
    """The comparison of :func:`main`'s parsed arguments, cases and starts (:data:`STARTS_TRIED`'s entries)."""
    family = {label: fam for label, fam, _ in STARTS_TRIED}
    tick = time.perf_counter()
    if args.rows:
        rows = pd.read_csv(args.rows)
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(generation._call, [(generation.null_thresholds, (m, layer, args.images, cache))
                                             for m, layer in cases]))
            jobs = [(run_start, (m, layer, args.method, label, init, args.images, cache, args.iterations))
                    for m, layer in generation.by_cost(cases) for label, _, init in chosen]
            rows = pd.DataFrame(list(tqdm(pool.map(generation._call, jobs), total=len(jobs),
                                          desc="runs (case, start)", file=sys.stderr, mininterval=10)))
        if args.csv:
            rows.to_csv(args.csv, index=False)
    seconds = time.perf_counter() - tick
    rows["family"] = rows["start"].map(family)
    case_order = {(m, layer): k for k, (m, layer) in enumerate(cases)}
    start_order = {label: k for k, (label, _, _) in enumerate(STARTS_TRIED)}
    rows = rows[[(m, layer) in case_order and s in {c[0] for c in chosen}
                 for m, layer, s in zip(rows["model"], rows["layer"], rows["start"])]]
    rows["_order"] = [(case_order[(m, layer)], start_order[s]) for m, layer, s in
                      zip(rows["model"], rows["layer"], rows["start"])]
    rows = rows.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    rows = compare(rows)
    families = equal_distance(rows)
    shown = SHOWN
    with pd.option_context("display.width", 250, "display.max_rows", None, "display.max_columns", None):
        print(f"method {args.method}; {args.images} references per case; the metamer test at every iteration; "
              f"each image frozen at its first pass\n")
        print(rows[shown].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print("\nfamilies at noise's metamer distance (member_l2: each member's median metamer L2, in the "
              "order of the knob above)\n")
        print(families.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    command = "python bench/starts.py" + "".join(
        f" {flag} {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for flag, value in (("--method", args.method), ("--images", args.images), ("--workers", args.workers),
                            ("--cases", args.cases), ("--starts", args.starts), ("--rows", args.rows),
                            ("--iterations", args.iterations)) if value)
    print(f"\n{len(rows)} runs" + (f" read from {args.rows}" if args.rows else
                                     f", wall time {seconds:.0f} s with {args.workers} workers"))
    print(f"reproduce: {command}")
    values = result(rows, families)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
