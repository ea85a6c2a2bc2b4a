"""Coverage of the crossed intervals of ``transfer_by_relation`` on simulated crossed designs.

Each replication draws a population sample of the design a study produces (``--images``
reference images x generators x evaluators, random effects of each factor and of the
generator x evaluator pairs) and runs the project's own functions on it
(:func:`metamers.stats.by_relation.recognizability_by_relation` and
:func:`~metamers.stats.by_relation.representation_by_relation`, the images resampled inside
each set by :func:`metamers.stats.resampling.aligned_bootstrap_samples`); coverage is the
fraction of replications whose interval ``[ci_low, ci_high]`` holds the population value.

Designs (``kind``): ``crossed`` (G generators, G other evaluators, every pair: standard ->
robust), ``self`` (G models, each its own evaluator), ``seeds`` (G models, every ordered pair of
two different ones: another seed). Effects (``effects``), standard deviations of the image,
generator, evaluator, pair, metamer (image x generator, shared by every evaluator of the
metamer) and observation effects: a model's generator and evaluator effects correlate
(:data:`ROLE_CORRELATION`), and so do a pair's two directions ``g -> e`` and ``e -> g``
(:data:`PAIR_CORRELATION`), as they may in a zoo where every model both generates and evaluates:

* recognizability: ``correct ~ Bernoulli(expit(mu + a_i + b_g + c_e + d_ge + u_ig + e_ige))``,
  one metamer in ten missing for every evaluator (it failed the metamer test); the population
  value is ``E[expit(mu + Z)]`` over all effects of the design's kind of pair (Gauss-Hermite
  quadrature; for ``self``, ``b_g`` and ``c_g`` of one model add their covariance);
* representation: a set's value is the mean over its images of
  ``mu + a_i + b_g + c_e + d_ge + u_ig + e_ige``; the population value is ``mu``.

Target (issue 26): coverage between 0.93 and 0.975 for nominal 0.95 over the designs with at
least 5 generators and 5 evaluators; smaller designs are printed for information. Coverage of
``--reps`` replications has a Monte Carlo standard error of about
``sqrt(0.95 * 0.05 / reps)`` (0.0069 at 1,000). From the repository root:

    python bench/coverage.py [--reps 1000] [--images 50] [--bootstrap 500] [--seed 0] [--fast]
                             [--markdown docs/results/coverage.md]

``--markdown PATH`` also writes the table, the command, the version and the date to a page of
the documentation (``docs/results/coverage.md`` is written this way).

``--fast``: 20 replications of two designs with 200 bootstrap samples (the code path in
seconds; its coverage is not meaningful).

Prints one row per (measure, design) (columns ``measure``, ``kind``, ``G``, ``E``, ``images``,
``effects``, ``coverage``, ``no_interval``, ``mean_width``, ``target``); the last line is
``RESULT coverage_recognizability=<min> coverage_representation=<min>``, the smallest coverage
over the designs with at least 5 generators and 5 evaluators (``nan`` when none ran).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from metamers.stats.by_relation import recognizability_by_relation, representation_by_relation  # noqa: E402
from metamers.stats.resampling import aligned_bootstrap_samples  # noqa: E402

#: Effect sizes: standard deviations of (images, generators, evaluators, pairs, metamers,
#: observations) and mu.
EFFECTS = {
    "large": {"sd": (1.0, 1.0, 1.0, 0.5, 0.5, 1.0), "mu": 1.5},
    "small": {"sd": (0.5, 0.3, 0.3, 0.2, 0.2, 0.5), "mu": 2.5},
}
#: Correlation of a model's generator and evaluator effects, and of a pair's two directions.
ROLE_CORRELATION, PAIR_CORRELATION = 0.5, 0.5
#: Designs (kind, G) of the full run; the target covers G >= 5.
DESIGNS = [("crossed", 2), ("crossed", 3), ("crossed", 6), ("seeds", 3), ("seeds", 6), ("self", 6)]
FAST_DESIGNS = [("crossed", 6), ("self", 3)]
#: Missing metamers (failed the metamer test) in the recognizability design.
MISSING = 0.1


@dataclass(frozen=True)
class Design:
    kind: str
    models: int
    images: int
    effects: str

    def pairs(self) -> list[tuple[str, str]]:
        g = [f"g{k}" for k in range(self.models)]
        if self.kind == "self":
            return [(m, m) for m in g]
        if self.kind == "seeds":
            return [(a, b) for a in g for b in g if a != b]
        return [(a, f"e{k}") for a in g for k in range(self.models)]

    @property
    def generators(self) -> int:
        return self.models

    @property
    def evaluators(self) -> int:
        return self.models


def population_recognizability(effects: str, kind: str) -> float:
    """``E[expit(mu + Z)]``, ``Z`` normal with the total variance of a pair of kind ``kind``."""
    sd, mu = EFFECTS[effects]["sd"], EFFECTS[effects]["mu"]
    variance = float(np.sum(np.square(sd)))
    if kind == "self":  # one model's generator and evaluator effects covary
        variance += 2 * ROLE_CORRELATION * sd[1] * sd[2]
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(weights * expit(mu + np.sqrt(variance) * nodes)) / np.sqrt(2 * np.pi))


def _effects(design: Design, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[str, str]], np.ndarray]:
    """The latent value of every (image, pair), the pairs, and which (image, pair) is kept."""
    sd_i, sd_g, sd_e, sd_d, sd_u, sd_o = EFFECTS[design.effects]["sd"]
    pairs = design.pairs()
    models = sorted({m for p in pairs for m in p})
    gen_raw = rng.normal(size=len(models))
    ev_raw = ROLE_CORRELATION * gen_raw + np.sqrt(1 - ROLE_CORRELATION ** 2) * rng.normal(size=len(models))
    gen, ev = dict(zip(models, sd_g * gen_raw)), dict(zip(models, sd_e * ev_raw))
    shared = {frozenset(p): rng.normal() for p in pairs}  # a pair's component common to both directions
    image = rng.normal(0, sd_i, design.images)
    pair = np.array([gen[g] + ev[e] + sd_d * (np.sqrt(PAIR_CORRELATION) * shared[frozenset((g, e))]
                                              + np.sqrt(1 - PAIR_CORRELATION) * rng.normal()) for g, e in pairs])
    generators = sorted({g for g, _ in pairs})
    metamer = dict(zip(generators, rng.normal(0, sd_u, (len(generators), design.images))))
    failed = {g: rng.random(design.images) < MISSING for g in generators}  # for every evaluator of g
    latent = (EFFECTS[design.effects]["mu"] + image[:, None] + pair[None, :]
              + np.stack([metamer[g] for g, _ in pairs], axis=1) + rng.normal(0, sd_o, (design.images, len(pairs))))
    keep = ~np.stack([failed[g] for g, _ in pairs], axis=1)
    return latent, pairs, keep


def simulate_recognizability(design: Design, rng: np.random.Generator) -> pd.DataFrame:
    latent, pairs, keep = _effects(design, rng)
    correct = (rng.random(latent.shape) < expit(latent)).astype(float)
    rows = [{"method": "m", "relation": design.kind, "depth_bin": "b", "depth_low": 0.0, "depth_high": 0.5,
             "generator": g, "layer": "l", "evaluator": e, "image_id": f"i{i}", "correct": correct[i, k]}
            for k, (g, e) in enumerate(pairs) for i in range(design.images) if keep[i, k]]
    return pd.DataFrame(rows)


def simulate_representation(design: Design, rng: np.random.Generator, n_bootstrap: int, seed: int
                            ) -> tuple[pd.DataFrame, dict, int]:
    """Each set's value is the mean over its generator's passing metamers; its image draws are
    aligned bootstrap samples of those (as the representation jobs draw them)."""
    latent, pairs, keep = _effects(design, rng)
    sets, draws = [], {}
    for k, (g, e) in enumerate(pairs):
        members = np.flatnonzero(keep[:, k])
        samples = aligned_bootstrap_samples(members, design.images, n_bootstrap, seed)
        values = latent[members, k]
        sets.append({"method": "m", "relation": design.kind, "depth_bin": "b", "depth_low": 0.0,
                     "depth_high": 0.5, "generator": g, "layer": "l", "evaluator": e, "measure": "mean",
                     "value": float(values.mean()), "n_images": len(members)})
        draws[("m", g, "l", e, "mean")] = values[samples].mean(axis=1)
    return pd.DataFrame(sets), draws, design.images


def coverage(design: Design, measure: str, reps: int, n_bootstrap: int, seed: int) -> dict:
    """Coverage, the fraction of replications without an interval, and the mean width."""
    truth = population_recognizability(design.effects, design.kind) if measure == "recognizability" \
        else EFFECTS[design.effects]["mu"]
    hits, missing, widths = 0, 0, []
    for rep in range(reps):
        rng = np.random.default_rng([seed, rep])
        if measure == "recognizability":
            (row,) = recognizability_by_relation(simulate_recognizability(design, rng), n_bootstrap, 0.95, seed + rep)
        else:
            sets, draws, n = simulate_representation(design, rng, n_bootstrap, seed + rep)
            (row,) = representation_by_relation(sets, n_bootstrap, 0.95, seed + rep, draws, n)
        if not np.isfinite(row["ci_low"]):
            missing += 1
            continue
        hits += row["ci_low"] <= truth <= row["ci_high"]
        widths.append(row["ci_high"] - row["ci_low"])
    defined = reps - missing
    return {"coverage": hits / defined if defined else np.nan, "no_interval": missing / reps,
            "mean_width": float(np.mean(widths)) if widths else np.nan}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--bootstrap", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--markdown", type=Path, help="also write the results to this Markdown page")
    args = parser.parse_args(argv)
    reps = args.reps or (20 if args.fast else 1000)
    n_bootstrap = args.bootstrap or (200 if args.fast else 500)
    designs = FAST_DESIGNS if args.fast else DESIGNS
    effects = ["large"] if args.fast else list(EFFECTS)
    start = time.time()
    rows = []
    for measure in ("recognizability", "representation"):
        for kind, g in designs:
            for eff in effects:
                design = Design(kind, g, args.images, eff)
                got = coverage(design, measure, reps, n_bootstrap, args.seed)
                target = design.generators >= 5 and design.evaluators >= 5
                rows.append({"measure": measure, "kind": kind, "G": design.generators, "E": design.evaluators,
                             "images": args.images, "effects": eff, **got, "target": "yes" if target else "no"})
                print(f"  {measure} {kind} G={g} {eff}: {got['coverage']:.3f} ({time.time() - start:.0f} s)",
                      file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    command = "python bench/coverage.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:])
                                                      if not a.startswith("--markdown") and a != str(args.markdown))
    print(f"Coverage of nominal 95 % crossed intervals, {reps} replications, {n_bootstrap} bootstrap samples "
          f"({command.strip()}; {time.time() - start:.0f} s)\n")
    text = table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    print(text)
    print()
    result = {}
    for measure in ("recognizability", "representation"):
        sub = table[(table["measure"] == measure) & (table["target"] == "yes")]
        result[measure] = float(sub["coverage"].min()) if len(sub) else np.nan
    line = (f"RESULT coverage_recognizability={result['recognizability']:.4f} "
            f"coverage_representation={result['representation']:.4f}")
    print(f"reproduce: {command.strip()}")
    if args.markdown:
        write_page(args.markdown, table, command.strip(), reps, n_bootstrap, time.time() - start, line)
    print(line)
    return 0


def write_page(path: Path, table: pd.DataFrame, command: str, reps: int, n_bootstrap: int, seconds: float,
               result: str) -> None:
    """The documentation page of a run: what it measures, the command, the version, the date, the table."""
    from datetime import date

    from metamers import __version__

    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
                   for row in table.itertuples(index=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Coverage of the crossed intervals\n\n"
        "*Written by `bench/coverage.py`; do not edit by hand.*\n\n"
        f"`{command}` (metamers {__version__}, {date.today().isoformat()}; {reps} replications of each design, "
        f"{n_bootstrap} bootstrap samples each, {seconds:.0f} s on this machine's CPU).\n\n"
        "Each row simulates a crossed design (reference images x generators x evaluators, see the script's "
        "docstring) many times and counts how often the nominal 95 % interval of `transfer_by_relation` "
        "(`metamers.stats.crossed`) holds the population value. Target (issue 26): between 0.93 and 0.975 "
        "for every design with at least 5 generators and 5 evaluators (`target` yes); the Monte Carlo standard "
        f"error of each coverage is about {np.sqrt(0.95 * 0.05 / reps):.3f}.\n\n"
        + header + body + f"\n`{result}`\n")


if __name__ == "__main__":
    sys.exit(main())
