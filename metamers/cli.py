"""Command line: ``python -m metamers models``, ``layers MODEL`` and ``check`` (the pre-flight check)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import ConfigError, load_config


def _models(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    roles = {name: [] for name in config["models"]}
    for name in config["generators"]:
        if config.is_joint(name):
            for member in config.generator_models(name):
                if f"member({name})" not in roles[member]:
                    roles[member].append(f"member({name})")
        else:
            roles[name].append("generator")
    for name in config["evaluators"]:
        roles[name].append("evaluator")
    width = max(map(len, config["models"]))
    for name, spec in config["models"].items():
        details = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "source")
        print(f"{name:<{width}}  {spec['source']:<11}  {'+'.join(roles[name]) or '-':<24}  {details}")
    return 0


def _layers(args: argparse.Namespace) -> int:
    from .models.layers import INPUT_LAYER, graph_node_names, is_input_layer
    from .models.loading import load_model

    config = load_config(args.config)
    model = load_model(config["models"], args.model)
    print(f"# {args.model}: input {model.input_shape}, {model.num_classes} classes")
    if is_input_layer(model, INPUT_LAYER):
        mean, std = (", ".join(f"{v:g}" for v in t.flatten().tolist()) for t in (model.mean, model.std))
        print(f"# pseudo-layer {INPUT_LAYER}: the input after the model's normalisation, (x - mean) / std "
              f"(mean {mean}; std {std}), what its network receives")
    print("# modules:")
    for name, module in model.net.named_modules():
        if name:
            print(f"{name}\t{type(module).__name__}")
    if args.graph:
        print("# torch.fx graph nodes:")
        for name in graph_node_names(model):
            print(name)
    return 0


def _check(args: argparse.Namespace) -> int:
    import json
    import logging

    from .config import validate_config
    from .jobs.preflight import PreflightError, run_preflight

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.config == "-":
        try:
            config = validate_config(json.loads(sys.stdin.read()))
        except json.JSONDecodeError as err:
            raise ConfigError(f"the config on standard input is not JSON: {err}") from err
    else:
        config = load_config(args.config)
    try:
        path = run_preflight(config, args.report)
    except PreflightError as err:
        print(err, file=sys.stderr)
        return 1
    print(Path(path).read_text(), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metamers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("models", help="list the configured models")
    p.add_argument("--config", default="config.yaml", help="workflow config (default: %(default)s)")
    p.set_defaults(func=_models)
    p = sub.add_parser("layers", help="list the layer names of a configured model")
    p.add_argument("model", help="a model name from the config")
    p.add_argument("--config", default="config.yaml", help="workflow config (default: %(default)s)")
    p.add_argument("--graph", action="store_true", help="also list torch.fx graph nodes")
    p.set_defaults(func=_layers)
    p = sub.add_parser("check", help="the pre-flight check: load every model, check layers, weights, images")
    p.add_argument("--config", default="config.yaml", help="workflow config, or - for JSON on stdin (default: %(default)s)")
    p.add_argument("--report", default="results/preflight.txt", help="report written when all is well (default: %(default)s)")
    p.set_defaults(func=_check)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, KeyError, RuntimeError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
