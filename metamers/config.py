"""Loading and checking the workflow config.

The schema (``metamers/schemas/config.schema.yaml``) is the one description of what a
config may hold; :func:`validate_config` checks it, fills in its defaults and then checks
what a schema cannot (that generators and evaluators are configured models).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .methods import resolve_method


class ConfigError(ValueError):
    """A config that does not describe a valid study; the message names the key and the reason."""


@lru_cache(maxsize=1)
def config_schema() -> dict[str, Any]:
    return yaml.safe_load(files("metamers").joinpath("schemas/config.schema.yaml").read_text())


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message}; allowed keys: {', '.join(allowed)}" if allowed else error.message
    if error.validator == "oneOf" and isinstance(error.instance, Mapping):
        return f"{error.instance!r} must be a layer name or {{name: ..., fake_relu: ...}}"
    return error.message


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/...``) of the config schema."""
    while "$ref" in schema:
        node: Any = config_schema()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _fill_defaults(schema: Mapping[str, Any], instance: Any) -> None:
    """Fill ``default`` values of object properties, recursively (in place)."""
    schema = _resolve(schema)
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub) if "default" not in sub else sub
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(sub, instance[key])
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(extra, value)


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``config`` against the schema and the models it names; return it with defaults.

    Raises
    ------
    ConfigError
        Naming every offending key and the reason.
    """
    config = copy.deepcopy(dict(config))
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {_key(e.absolute_path)}: {_describe(e)}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    _fill_defaults(config_schema(), config)
    models = config["models"]
    problems = []
    for name in config["generators"]:
        if name not in models:
            problems.append(f"  generators.{name}: not a configured model; models: {', '.join(models)}")
    for name in config["evaluators"]:
        if name not in models:
            problems.append(f"  evaluators: {name!r} is not a configured model; models: {', '.join(models)}")
    for name, entry in config["methods"].items():
        try:
            resolve_method(name, entry)
        except KeyError as err:
            problems.append(f"  methods.{name}: {err.args[0]}")
    for name, gen in config["generators"].items():
        layers = [layer_name(item) for item in gen["layers"]]
        dupes = sorted({n for n in layers if layers.count(n) > 1})
        if dupes:
            problems.append(f"  generators.{name}.layers: listed more than once: {dupes}")
    for name, layer in config["figures"].get("null_layers", {}).items():
        if name not in config["generators"]:
            problems.append(f"  figures.null_layers.{name}: not a generator; generators: {', '.join(config['generators'])}")
        elif layer not in generator_layers(config, name):
            problems.append(
                f"  figures.null_layers.{name}: {layer!r} is not a layer of this generator; "
                f"layers: {', '.join(generator_layers(config, name))}"
            )
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(problems))
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config and :func:`validate_config` it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from err
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config file {str(path)!r} does not hold a mapping")
    return validate_config(raw)


def layer_name(item: str | Mapping[str, Any]) -> str:
    return item if isinstance(item, str) else item["name"]


def generator_layers(config: Mapping[str, Any], generator: str) -> list[str]:
    """The layers of ``generator``, in the configured (early to late) order."""
    return [layer_name(item) for item in config["generators"][generator]["layers"]]


def layer_options(config: Mapping[str, Any], generator: str, layer: str) -> dict[str, Any]:
    """Per-layer options of a generator's layer: ``fake_relu`` (None when the layer does not set
    it: the method's setting applies). An unknown generator or layer is a :class:`KeyError`
    that lists the configured ones."""
    if generator not in config["generators"]:
        raise KeyError(f"unknown generator {generator!r}; configured: {', '.join(config['generators'])}")
    for item in config["generators"][generator]["layers"]:
        if layer_name(item) == layer:
            return {"fake_relu": None} if isinstance(item, str) else {"fake_relu": None, **item}
    raise KeyError(
        f"layer {layer!r} is not configured for generator {generator!r}; "
        f"configured: {', '.join(generator_layers(config, generator))}"
    )
