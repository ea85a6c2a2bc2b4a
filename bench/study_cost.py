"""What a study config costs: the time of one synthesis iteration per (generator, layer), measured
here, and the whole study's generation time from it; a GPU estimate from counted FLOPs.

For every single-model generator of the config and each of its layers, a few iterations of the
config's first method run on ``--images`` random images as one batch (``batch_invariant: false``,
no in-loop test), through the same synthesis code as the ``generate`` rule, and their mean time is
the measured cost of an iteration; the FLOPs of one forward and backward pass of the network
truncated at the layer (what an iteration runs) are counted with ``torch.utils.flop_counter``.
Models whose weights are not on this machine are timed with untrained stand-ins of the same
architecture (``stand-in`` column): the time does not depend on the weights.

Study totals, per method: ``iterations x images x (generator, layer) pairs``; CPU hours from the
measured times; GPU hours from the FLOPs at ``--gpu-tflops`` sustained (an assumption, printed
with the result: no GPU was measured; a lower bound where small networks and batches leave a
GPU waiting on kernel launches rather than arithmetic). Not counted: the in-loop metamer test (a forward pass every
``check_every`` iterations), nulls, evaluators and figures (forward passes only, far cheaper than
generation at the published budgets).

    python bench/study_cost.py --config configs/imagenet16.yaml [--images 2] [--iterations 3]
                               [--gpu-tflops 30] [--csv FILE] [--fast]

``--fast``: the default study (``config.yaml``: both LeNet-5s at four layers, whose weights come
with the package's dependencies) timed on 1 image for 2 iterations: the same code path in seconds
(any option given beside it wins).

Prints the per-layer table (columns ``generator``, ``layer``, ``stand_in``,
``ms_per_image_iteration``, ``gflop_per_image_iteration``), the totals per method (columns
``method``, ``iterations``, ``cpu_hours``, ``gpu_hours_flop_bound``), the command that reproduces
them and, last, ``RESULT methods=<n> cpu_hours=<h> gpu_hours_flop_bound=<h>``: the whole study's
generation (every method's iterations) in CPU hours here and in GPU hours at the FLOP bound.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamers.config import load_config  # noqa: E402
from metamers.data import load_image_set  # noqa: E402
from metamers.models.classifier import Classifier  # noqa: E402
from metamers.models.layers import LayerReader  # noqa: E402
from metamers.models.loading import load_model  # noqa: E402
from metamers.models.sources import ModelLoadError  # noqa: E402
from metamers.synthesis.loop import MetamerSynthesis  # noqa: E402
from metamers.synthesis.methods import resolve_method  # noqa: E402

IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
#: ``--fast``'s defaults.
FAST = {"config": "config.yaml", "images": 1, "iterations": 2}


def stand_in(spec: dict, name: str) -> Classifier:
    """An untrained network of model ``name``'s architecture, for timing only (weights that an
    architecture initialises to zero, such as ViT's head, are drawn at random, so that the
    objective is defined)."""
    import torchvision.models as tvm

    source = spec["source"]
    if source in ("torchvision", "robustness"):
        net = tvm.get_model(spec["name"] if source == "torchvision" else spec["architecture"], weights=None)
        with torch.no_grad():
            for p in net.parameters():
                if p.ndim >= 2 and not p.any():
                    p.normal_(0, 0.02)
        return Classifier(net, input_shape=(3, 224, 224), num_classes=1000, name=name, **IMAGENET)
    if source == "robustbench":
        from metamers.models.sources.robustbench import ROBUSTBENCH_DATASETS, import_robustbench

        import_robustbench()
        from robustbench.model_zoo import model_dicts
        from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

        net = model_dicts[BenchmarkDataset(spec["dataset"])][ThreatModel(spec["threat_model"])][spec["name"]]["model"]()
        return Classifier(net, mean=(0.0,), std=(1.0,), name=name, **ROBUSTBENCH_DATASETS[spec["dataset"]])
    raise ModelLoadError(f"no timing stand-in for source {source!r} (model {name!r}); put its weights in place")


def model_for_timing(config: dict, name: str) -> tuple[Classifier, bool]:
    try:
        return load_model(config["models"], name), False
    except ModelLoadError:
        return stand_in(config["models"][name], name), True


def flops_per_iteration(model: Classifier, layer: str, shape: tuple[int, ...]) -> float:
    """FLOPs of one forward pass truncated at ``layer`` and its backward pass, for one image."""
    x = torch.rand(1, *shape, requires_grad=True)
    reader = LayerReader(model, [layer])
    with FlopCounterMode(display=False) as counter:
        reader(x)[layer].float().square().sum().backward()
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/imagenet16.yaml")
    parser.add_argument("--images", type=int, default=2, help="images stepped together in the timing")
    parser.add_argument("--iterations", type=int, default=3, help="iterations timed per (generator, layer)")
    parser.add_argument("--gpu-tflops", type=float, default=30.0,
                        help="assumed sustained GPU throughput for the estimate (TFLOP/s)")
    parser.add_argument("--csv", type=Path, help="also write the per-layer table here")
    parser.add_argument("--fast", action="store_true", help=f"a small run: {FAST}")
    if parser.parse_known_args()[0].fast:
        parser.set_defaults(**FAST)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = load_config(args.config)
    n_images = len(load_image_set(config["images"]).ids)
    first_method = next(iter(config["methods"]))
    rows = []
    for generator, gen in config["generators"].items():
        if "members" in gen:
            print(f"skipping joint generator {generator!r} (the sum of its members' costs)", file=sys.stderr)
            continue
        model, stood_in = model_for_timing(config, generator)
        for layer in config.generator_layers(generator):
            # no in-loop test: without check_every, on_success is an error (resolve_method)
            entry = {k: v for k, v in config["methods"][first_method].items() if k != "on_success"}
            settings = resolve_method(first_method, {**entry, "iterations": args.iterations, "check_every": 0})
            reference = torch.rand(args.images, *model.input_shape)
            tick = time.perf_counter()
            # the method's straight-through ReLU rule, or the layer's own fake_relu (method_target)
            result = MetamerSynthesis.single(model, layer, reference, settings, seed=0,
                                             fake_relu=config.layer_options(generator, layer).get("fake_relu"),
                                             batch_invariant=False).synthesize(progress=False)
            wall = time.perf_counter() - tick
            rows.append({"generator": generator, "layer": layer, "stand_in": stood_in,
                         "ms_per_image_iteration": 1000 * result.seconds_per_iteration / args.images,
                         "gflop_per_image_iteration": flops_per_iteration(model, layer, model.input_shape) / 1e9})
            print(f"{generator}/{layer}: {rows[-1]['ms_per_image_iteration']:.0f} ms per image-iteration "
                  f"({wall:.1f} s)", file=sys.stderr)
        del model
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print()
    print(f"study: {n_images} images x {len(table)} (generator, layer) pairs; CPU: this machine "
          f"({torch.get_num_threads()} threads); GPU estimate at {args.gpu_tflops:g} TFLOP/s sustained (assumed)")
    totals = []
    for method, entry in config["methods"].items():
        iterations = int(resolve_method(method, entry)["iterations"])
        cpu_h = iterations * n_images * table["ms_per_image_iteration"].sum() / 1000 / 3600
        gpu_h = iterations * n_images * table["gflop_per_image_iteration"].sum() * 1e9 / (args.gpu_tflops * 1e12) / 3600
        totals.append({"method": method, "iterations": iterations, "cpu_hours": cpu_h, "gpu_hours_flop_bound": gpu_h})
    totals = pd.DataFrame(totals)
    print(totals.to_string(index=False, formatters={"cpu_hours": "{:.1f}".format,
                                                     "gpu_hours_flop_bound": "{:.2f}".format}))
    print("\nreproduce: python bench/study_cost.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    print(f"RESULT methods={len(totals)} cpu_hours={totals['cpu_hours'].sum():.1f} "
          f"gpu_hours_flop_bound={totals['gpu_hours_flop_bound'].sum():.2f}")


if __name__ == "__main__":
    main()
