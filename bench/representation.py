"""Time and memory of the representation test's measures at the scale of a real study.

Issue 10's benchmark (not a timed test): every measure of the representation test for ``--images``
references and their metamers at a layer of ``--dim`` units, with ``--permutations`` permutations
and ``--bootstrap`` bootstrap samples, on the CPU:

- per image: Spearman, Pearson and SNR between each metamer's and its reference's activations
  (:data:`metamers.stats.statistics.STATISTICS`, the metamer test's statistics) and their
  percentiles in a null distribution of 1,000,000 values;
- per set: the 8 RSA measures (2 RDM kinds x 4 comparisons) and linear and debiased CKA, each
  with its permutation p-value and bootstrap interval (:func:`metamers.stats.representation.set_measures`);
- the out-of-distribution AUROC of maximum softmax probabilities (10 classes).

The activations are synthetic ReLU-like units (``max(0, N(0, 1))`` with per-image structure: each
reference a mix of 20 prototypes, each metamer its reference plus independent noise), as float32.
Target: under 60 s and 4 GB with the defaults. From the repository root:

    python bench/representation.py [--images 400] [--dim 100000] [--permutations 1000] [--bootstrap 1000]
                                   [--threads 2] [--fast]

``--fast``: 40 images at a 5,000-unit layer, 50 permutations and 50 bootstrap samples (the same
code path in seconds; any option given beside it wins).

Prints the time of each stage (columns ``stage``, ``seconds``), each measure (columns ``measure``,
``value``, ``ci_low``, ``ci_high``, ``p``) and, last, ``RESULT seconds=<s> peak_gb=<g>`` (the
stages' summed time; the peak resident memory of the process).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
#: ``--fast``'s defaults.
FAST = {"images": 40, "dim": 5000, "permutations": 50, "bootstrap": 50}
sys.path.insert(0, str(REPO))

from metamers.stats.ood import auroc, max_softmax  # noqa: E402
from metamers.stats.representation import MEASURES, SetGrams, set_measures  # noqa: E402
from metamers.stats.statistics import STATISTICS  # noqa: E402


def activations(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(references, metamers)`` ``(n, dim)`` float32: references mix 20 prototypes; metamers add noise."""
    gen = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(20, dim, generator=gen)
    mix = torch.rand(n, 20, generator=gen) ** 4
    reference = torch.relu(mix @ prototypes / mix.norm(dim=1, keepdim=True) + 0.3 * torch.randn(n, dim, generator=gen))
    metamer = torch.relu(reference + 0.5 * torch.randn(n, dim, generator=gen))
    return reference, metamer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--dim", type=int, default=100_000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads")
    parser.add_argument("--fast", action="store_true", help=f"a small run: {FAST}")
    if parser.parse_known_args()[0].fast:
        parser.set_defaults(**FAST)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reference, metamer = activations(args.images, args.dim, seed=0)
    times = {}

    tick = time.perf_counter()
    null = np.sort(np.random.default_rng(0).uniform(-1, 1, 1_000_000))
    per_image = {}
    for name in ("spearman", "pearson", "snr_db"):
        values = STATISTICS[name].paired(metamer, reference).numpy()
        per_image[name] = 100 * np.searchsorted(null, values, side="right") / len(null)
    times["per-image statistics and null percentiles"] = time.perf_counter() - tick

    tick = time.perf_counter()
    ref, met = SetGrams(reference), SetGrams(metamer)
    times["Gram matrices (float64)"] = time.perf_counter() - tick
    rows = []
    for name in MEASURES:
        tick = time.perf_counter()
        rows += set_measures(ref, met, [name], args.permutations, args.bootstrap, seed=0, threads=args.threads)
        times[name] = time.perf_counter() - tick

    tick = time.perf_counter()
    gen = torch.Generator().manual_seed(1)
    logits_ref, logits_met = 3 * torch.randn(args.images, 10, generator=gen), torch.randn(args.images, 10, generator=gen)
    score = auroc(max_softmax(logits_ref.numpy()), max_softmax(logits_met.numpy()))
    times["OOD AUROC"] = time.perf_counter() - tick

    total = sum(times.values())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.images} images x {args.dim} units, {args.permutations} permutations, {args.bootstrap} bootstrap "
          f"samples, {args.threads} threads\n")
    print(f"{'stage':50s} {'seconds':>8s}")
    for stage, seconds in times.items():
        print(f"{stage:50s} {seconds:8.2f}")
    print(f"\n{'measure':32s} {'value':>8s} {'ci_low':>8s} {'ci_high':>8s} {'p':>8s}")
    for row in rows:
        print(f"{row['measure']:32s} {row['value']:8.4f} {row['ci_low']:8.4f} {row['ci_high']:8.4f} "
              f"{row['p_value']:8.4f}")
    print(f"\nmedian per-image Spearman {np.median(STATISTICS['spearman'].paired(metamer[:8], reference[:8])):.4f}; "
          f"OOD AUROC {score:.3f}")
    print(f"reproduce: python bench/representation.py --images {args.images} --dim {args.dim} "
          f"--permutations {args.permutations} --bootstrap {args.bootstrap} --threads {args.threads}")
    print(f"RESULT seconds={total:.1f} peak_gb={peak_gb:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
