"""How long Snakemake takes to build the DAG of a full-size study, and how much memory.

Writes a config for the published scale (20 models x 8 layers x 400 images x 3 methods,
with its nulls, metamer tests, evaluations and figures) and times ``snakemake -n`` on it
(no job runs; no model is loaded). Target (issue 4): under 30 s and under 1 GB here.

The config is complete (Snakemake reads it instead of the shipped config.yaml; the schema fills in
what it leaves out): MNIST digits (per class), and checkpoint LeNet-5s (never loaded: their
weight files need not exist), which classify in the digits' label space, so that every model is
also an evaluator without a class map.

    python bench/dag_scale.py [--images-per-job 20] [--models 20] [--layers 8] [--images 400] [--fast]

``--fast``: a study of 2 models x 2 layers x 20 images x 3 methods, 10 images per generation job
(the same code path in about 2 s; any option given beside it wins).

Prints the job count per rule (columns ``rule``, ``jobs``) and, last,
``RESULT seconds=<s> peak_mb=<m> jobs=<n>`` (the dry run's wall time, its peak resident memory,
its jobs).
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
#: ``--fast``'s defaults.
FAST = {"models": 2, "layers": 2, "images": 20, "images_per_job": 10}


def study(models: int, layers: int, images: int, images_per_job: int) -> dict:
    if images % 10:
        raise SystemExit("--images must be a multiple of 10 (MNIST: per class)")
    names = [f"model{k:02d}" for k in range(models)]
    return {
        "images": {"type": "mnist", "per_class": images // 10, "seed": 0},
        "images_per_job": images_per_job,
        # never loaded: a dry run only builds the DAG
        "models": {n: {"source": "checkpoint", "architecture": "lenet5", "path": f"weights/{n}.th"}
                   for n in names},
        "generators": {n: {"layers": [f"layer{i}" for i in range(layers)]} for n in names},
        "evaluators": names,
        "methods": {"feather2023": {"check_every": 500}, "adam": {"check_every": 100, "on_success": "stop"},
                    "sgd_momentum": {}},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--images-per-job", type=int, default=20)
    parser.add_argument("--fast", action="store_true", help=f"a small study: {FAST}")
    if parser.parse_known_args()[0].fast:
        parser.set_defaults(**FAST)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="metamers-dag-") as work:
        config = Path(work) / "config.yaml"
        config.write_text(yaml.safe_dump(study(args.models, args.layers, args.images, args.images_per_job)))
        cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1",
               "--snakefile", str(REPO / "Snakefile"), "--directory", work, "--configfile", str(config)]
        start = time.perf_counter()
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if out.returncode != 0:
        print(out.stdout[-5000:])
        return out.returncode
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out.stdout, re.M)}
    jobs = counts.pop("total", sum(counts.values()))
    print(f"study: {args.models} models x {args.layers} layers x {args.images} images x 3 methods, "
          f"{args.images_per_job} images per generation job")
    print(f"{'rule':<28}{'jobs':>8}")
    for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{rule:<28}{n:>8}")
    print(f"\nsnakemake -n: {seconds:.1f} s, peak memory {peak_mb:.0f} MB, {jobs} jobs")
    print(f"reproduce: python bench/dag_scale.py --models {args.models} --layers {args.layers} "
          f"--images {args.images} --images-per-job {args.images_per_job}")
    print(f"RESULT seconds={seconds:.1f} peak_mb={peak_mb:.0f} jobs={jobs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
