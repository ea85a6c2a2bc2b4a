"""Speed and accuracy of the Gram-matrix null distribution against a per-pair scipy loop.

For two real layers it computes a Spearman null of ``--pairs`` pairs (default the published
1,000,000) with the Gram-matrix path of :mod:`metamers.statistics`, times
``scipy.stats.spearmanr`` on ``--sample`` of the same pairs and extrapolates it to all pairs,
and compares the two on the sampled pairs:

* LeNet-5 (advertorch, standard) at ``relu1`` (32 x 28 x 28), pool: MNIST test digits
  from ../shared/data/mnist-test;
* CIFAR-10 ResNet-20 (../shared/weights) at ``layer1`` (16 x 32 x 32), pool: 32 x 32 crops
  of the 47 ImageNet photographs in ../shared/data/imagenet16 (downsampled to 64 x 64).

Target (issue 3): at least 100x faster, differences below 1e-5. Run from the repository root:

    python bench/null_distribution.py [--pairs 1000000] [--sample 2000] [--threads 2]

The last line is ``RESULT speedup=<x> max_abs_diff=<y>`` (the smaller speed-up and the larger
difference of the two layers).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from metamers.images import load_image_set  # noqa: E402
from metamers.layers import LayerReader  # noqa: E402
from metamers.nulls import pair_indices, pool_size_for  # noqa: E402
from metamers.registry import load_model  # noqa: E402
from metamers.statistics import pairwise_values  # noqa: E402


def mnist_pool(k: int, seed: int) -> torch.Tensor:
    with gzip.open(SHARED / "data" / "mnist-test" / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    idx = np.sort(np.random.default_rng(seed).choice(len(images), k, replace=False))
    return torch.from_numpy(images[idx].astype(np.float32) / 255)


def imagenet_crops(k: int, seed: int) -> torch.Tensor:
    photos = load_image_set({"type": "folder", "root": str(SHARED / "data" / "imagenet16")})
    x = F.interpolate(photos.tensor(photos.ids, (3, 224, 224)), size=64, mode="bilinear", antialias=True)
    rng = np.random.default_rng(seed)
    picks = [(rng.integers(len(x)), rng.integers(0, 33), rng.integers(0, 33)) for _ in range(k)]
    return torch.stack([x[i, :, t : t + 32, s : s + 32] for i, t, s in picks]).clamp(0, 1)


def run(name: str, model, layer: str, pool: torch.Tensor, n_pairs: int, sample: int, seed: int) -> dict:
    with torch.no_grad():
        acts = LayerReader(model, [layer])(pool)[layer].flatten(1)
    start = time.perf_counter()
    rows, cols = pair_indices(len(pool), n_pairs, seed)
    values = pairwise_values(acts, "spearman", rows, cols)
    gram_s = time.perf_counter() - start

    pick = np.random.default_rng(seed + 1).choice(n_pairs, sample, replace=False)
    a = acts.double().numpy()
    start = time.perf_counter()
    ref = np.array([scipy.stats.spearmanr(a[rows[p]], a[cols[p]]).statistic for p in pick])
    loop_s = time.perf_counter() - start
    per_pair = loop_s / sample
    return {
        "model": name,
        "layer": layer,
        "D": acts.shape[1],
        "K": len(pool),
        "pairs": n_pairs,
        "gram_s": gram_s,
        "scipy_ms_per_pair": 1000 * per_pair,
        "scipy_extrapolated_s": per_pair * n_pairs,
        "speedup": per_pair * n_pairs / gram_s,
        "max_abs_diff": float(np.abs(values[torch.from_numpy(pick)].numpy() - ref).max()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2000, help="pairs timed with scipy")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"needs {SHARED} (real weights and images)")
        return 1
    torch.set_num_threads(args.threads)
    k = pool_size_for(args.pairs)
    lenet = load_model({"lenet5": {"source": "advertorch", "weights": "clntrained"}}, "lenet5")
    resnet = load_model({"resnet20": {"source": "checkpoint", "architecture": "cifar_resnet20",
                                      "path": str(next((SHARED / "weights" / "cifar10-resnet").glob("resnet20-*.th")))}},
                        "resnet20")
    results = [
        run("lenet5 (MNIST)", lenet, "relu1", mnist_pool(k, args.seed), args.pairs, args.sample, args.seed),
        run("cifar_resnet20", resnet, "layer1", imagenet_crops(k, args.seed), args.pairs, args.sample, args.seed),
    ]
    header = f"{'model':<16} {'layer':<7} {'D':>6} {'K':>5} {'pairs':>9} {'gram s':>8} {'scipy ms/pair':>13} " \
             f"{'scipy s (extrap.)':>17} {'speed-up':>9} {'max |diff|':>11}"
    print(header)
    for r in results:
        print(f"{r['model']:<16} {r['layer']:<7} {r['D']:>6} {r['K']:>5} {r['pairs']:>9} {r['gram_s']:>8.2f} "
              f"{r['scipy_ms_per_pair']:>13.3f} {r['scipy_extrapolated_s']:>17.0f} {r['speedup']:>8.0f}x "
              f"{r['max_abs_diff']:>11.2e}")
    print(f"\ntorch threads: {args.threads}; scipy: one pair at a time, {args.sample} pairs timed and extrapolated")
    print(f"reproduce: python bench/null_distribution.py --pairs {args.pairs} --sample {args.sample} "
          f"--threads {args.threads}")
    speedup = min(r["speedup"] for r in results)
    diff = max(r["max_abs_diff"] for r in results)
    print(f"RESULT speedup={speedup:.0f} max_abs_diff={diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
