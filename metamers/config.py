"""Parsing and checking the workflow config: the one way to a :class:`~metamers.study.Study`.

The schema (``metamers/schemas/config.schema.yaml``) is the one description of what a
config may hold; :func:`validate_config` checks it, fills in its defaults, checks what a
schema cannot (that generators and evaluators are configured models, unsafe names, values
that are not finite) and returns the read-only :class:`~metamers.study.Study`, whose methods
answer the study's questions. This module only parses and validates.
"""

from __future__ import annotations

import copy
import math
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .registry import lookup
from .study import Study, layer_name, member_model, trained_model_path
from .synthesis.methods import resolve_method


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


def nonfinite_numbers(value: Any, path: tuple = ()) -> list[str]:
    """The keys (dotted, list items as ``[k]``) of every NaN or infinite number in ``value``.

    YAML reads ``.nan`` and ``.inf`` as floats, and a schema's bounds cannot refuse NaN (every
    comparison with it is false), so these are found by walking the whole config.

    Examples
    --------
    >>> nonfinite_numbers({"methods": {"adam": {"lr": float("inf")}}, "seed": 0, "x": [1.0, float("nan")]})
    ['methods.adam.lr', 'x[1]']
    """
    if isinstance(value, float) and not math.isfinite(value):
        return [_key(path)]
    if isinstance(value, Mapping):
        return [k for key, item in value.items() for k in nonfinite_numbers(item, (*path, key))]
    if isinstance(value, (list, tuple)):
        keys = []
        for i, item in enumerate(value):
            keys.extend(nonfinite_numbers(item, (*path[:-1], f"{path[-1]}[{i}]") if path else (f"[{i}]",)))
        return keys
    return []


def path_component_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a folder or file under ``results/`` (None when it can).

    Model, generator, method, evaluator and layer names become path components of the
    workflow's outputs (``results/metamers/<method>/<generator>/<layer>/...``). A name that is
    empty, ``.`` or ``..``, starts with a dot (a hidden file, or a way out of ``results/``),
    or holds a path separator or a control character is refused; spaces and other unicode
    letters are allowed.

    Examples
    --------
    >>> path_component_problem("layer2.1.relu") is None
    True
    >>> path_component_problem("..")
    "'..' is not a file name (it leaves its folder)"
    >>> path_component_problem("a/b")
    "'a/b' holds a path separator ('/')"
    """
    if not isinstance(name, str) or not name.strip():
        return f"{name!r} is empty"
    if name in (".", ".."):
        return f"{name!r} is not a file name (it leaves its folder)"
    for sep in ("/", "\\"):
        if sep in name:
            return f"{name!r} holds a path separator ({sep!r})"
    if name.startswith("."):
        return f"{name!r} starts with a dot (a hidden file)"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return f"{name!r} holds a control character"
    return None


def _child(key: str, name: Any) -> str:
    """The key of entry ``name`` under ``key`` (``models.x``; ``models['..']`` for a name that
    is not a safe path component, so that the key stays readable)."""
    return f"{key}.{name}" if path_component_problem(name) is None else f"{key}[{name!r}]"


def _named_path_parts(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(key, name) of every name in ``config`` that becomes a path component of an output."""
    parts: list[tuple[str, Any]] = []
    for section in ("models", "generators", "methods"):
        entries = config.get(section)
        if isinstance(entries, Mapping):
            parts.extend((_child(section, name), name) for name in entries)
    evaluators = config.get("evaluators")
    if isinstance(evaluators, Mapping):
        parts.extend((_child("evaluators", name), name) for name in evaluators)
        for name, entry in evaluators.items():
            layers = entry.get("layers", []) if isinstance(entry, Mapping) else []
            parts.extend((f"{_child('evaluators', name)}.layers[{i}]", layer) for i, layer in enumerate(layers))
    elif isinstance(evaluators, list):
        parts.extend((f"evaluators[{i}]", name) for i, name in enumerate(evaluators))
    generators = config.get("generators")
    for gen, entry in generators.items() if isinstance(generators, Mapping) else ():
        for i, item in enumerate(entry.get("layers", []) if isinstance(entry, Mapping) else []):
            key = f"{_child('generators', gen)}.layers[{i}]"
            parts.append((key, item.get("name") if isinstance(item, Mapping) else item))
            members = item.get("members") if isinstance(item, Mapping) else None
            if isinstance(members, Mapping):
                parts.extend((_child(f"{key}.members", m), layer) for m, layer in members.items())
    inversion = config.get("inversion")
    layers_by_model = inversion.get("layers") if isinstance(inversion, Mapping) else None
    for name, layers in layers_by_model.items() if isinstance(layers_by_model, Mapping) else ():
        parts.extend((f"{_child('inversion.layers', name)}[{i}]", layer)
                     for i, layer in enumerate(layers if isinstance(layers, list) else []))
    return parts


def results_problem(results: Any) -> str | None:
    """Why ``results`` cannot hold a study's outputs (None when it can): it is empty (every
    output would go under ``/``) or it is the file system's root."""
    if not isinstance(results, str) or not results.strip():
        return f"{results!r} is empty: every output would be written under '/'; name a folder (default 'results')"
    if Path(results).resolve() == Path("/").resolve():
        return f"{results!r} is the file system's root; name a folder of its own (default 'results')"
    return None


def _unsafe_values(config: Mapping[str, Any]) -> list[str]:
    """Problems a schema cannot see: non-finite numbers, ``results`` that is empty or the root,
    names that are not safe path components (see :func:`path_component_problem`)."""
    problems = [f"  {key}: not a finite number (NaN and infinities are refused wherever a number is read)"
                for key in nonfinite_numbers(config)]
    if "results" in config and (why := results_problem(config["results"])) is not None:
        problems.append(f"  results: {why}")
    for key, name in _named_path_parts(config):
        if isinstance(name, str) and (why := path_component_problem(name)) is not None:
            problems.append(f"  {key}: {why}; names become folders and files under results/, so use letters, "
                            "digits, '_', '-' and inner dots")
    return problems


def validate_config(config: Mapping[str, Any]) -> Study:
    """Check ``config`` against the schema and the models it names; return the read-only
    :class:`~metamers.study.Study` with its defaults.

    Raises
    ------
    ConfigError
        Naming every offending key and the reason.
    """
    config = copy.deepcopy(dict(config))
    provisional = Study(config, _frozen=False)  # answers questions while defaults are filled in
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    unsafe = _unsafe_values(config)
    if errors or unsafe:
        lines = [f"  {_key(e.absolute_path)}: {_describe(e)}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(unsafe + lines))
    _fill_defaults(config_schema(), config)
    problems = []

    def check(key: str, find, *args) -> None:
        """Run a lookup; its error, if any, is a problem of config key ``key``."""
        try:
            find(*args)
        except KeyError as err:
            problems.append(f"  {key}: {err.args[0]}")

    for name, spec in config["models"].items():
        if spec.get("source") == "train":
            problems.extend(f"  models.{name}: {p}" for p in _trained_model_problems(config, name, spec))
    for name, gen in config["generators"].items():
        problems.extend(f"  generators.{name}: {p}" for p in _generator_problems(config, name, gen))
    for name in config["evaluators"]:
        check("evaluators", lookup, config["models"], name, "model", KeyError, "configured")
    if not problems:
        from .labels import class_map_problem

        problems.extend(f"  evaluators: {p}" for name in config["evaluators"]
                        if (p := class_map_problem(config, name)) is not None)
    if not problems:
        config["evaluators"] = _evaluator_layers(config)
    for name, entry in config["methods"].items():
        check(f"methods.{name}", resolve_method, name, entry)
        space = (entry.get("diversity") or {}).get("space")
        if isinstance(space, Mapping):
            check(f"methods.{name}.diversity.space.model", lookup, config["models"], space["model"], "model",
                  KeyError, "configured")
    check("inversion.method", provisional.inversion_method)
    for name in config["inversion"].get("layers", {}):
        check("inversion.layers", lookup, config["evaluators"], name, "evaluator", KeyError, "configured")
    if not problems and "layers" not in config["inversion"]:
        config["inversion"]["layers"] = {name: provisional.evaluator_layers(name)
                                         for name in provisional.representation_evaluators()}
    for name, gen in config["generators"].items():
        layers = [layer_name(item) for item in gen["layers"]]
        dupes = sorted({n for n in layers if layers.count(n) > 1})
        if dupes:
            problems.append(f"  generators.{name}.layers: listed more than once: {dupes}")
    edges = config["relations"]["depth_bins"]
    if any(b <= a for a, b in zip(edges, edges[1:])):
        problems.append(f"  relations.depth_bins: {edges} must increase")
    for name, layer in config["figures"].get("null_layers", {}).items():
        check(f"figures.null_layers.{name}", provisional.layer_options, name, layer)
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(problems))
    return Study(config)


def load_config(path: str | Path) -> Study:
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


def _trained_model_problems(config: Mapping[str, Any], name: str, spec: dict[str, Any]) -> list[str]:
    """What is wrong with a ``source: train`` entry (an unknown architecture, style or training
    set, an unused key, a mismatch of input and images); fills in its checkpoint ``path``."""
    from .models.training_settings import TrainingError, resolve_training

    try:
        resolve_training(name, spec)
    except TrainingError as err:
        return [str(err)]
    path = trained_model_path(config["results"], name)
    if spec.setdefault("path", path) != path:
        return [f"path {spec['path']!r}: a trained model's checkpoint is written by rule train_model to {path!r}; "
                "remove the key"]
    return []


def _generator_problems(config: Mapping[str, Any], name: str, gen: Mapping[str, Any]) -> list[str]:
    """What is wrong with generator ``name`` beyond the schema: a single generator names a
    configured model; a joint one has a new name and distinct configured members, and its layer
    entries map only members."""
    models = config["models"]
    if "members" not in gen:
        return [] if name in models else [
            f"unknown model {name!r}; configured: {', '.join(models)} (a joint generator lists its `members`)"]
    problems = []
    if name in models:
        problems.append(f"a joint generator needs a name of its own; {name!r} is a configured model")
    members = [member_model(m) for m in gen["members"]]
    problems.extend(f"members: unknown model {m!r}; configured: {', '.join(models)}" for m in members
                    if m not in models)
    dupes = sorted({m for m in members if members.count(m) > 1})
    if dupes:
        problems.append(f"members: listed more than once: {dupes}")
    for item in gen["layers"]:
        extra = [m for m in (item.get("members", {}) if isinstance(item, Mapping) else {}) if m not in members]
        if extra:
            problems.append(f"layer {layer_name(item)!r}: members {extra} are not members of {name!r} "
                            f"({', '.join(members)})")
    return problems


def _evaluator_layers(config: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """``evaluators`` in mapping form, each with its layers: given, or every layer some generator
    matches the model at (none for a model no generator matches: it classifies metamers, and the
    representation test does not read it unless its layers are given)."""
    given = config["evaluators"]
    given = {name: {} for name in given} if not isinstance(given, Mapping) else given
    matched = Study(config, _frozen=False).null_targets(list(config["generators"]))
    return {name: {"layers": list(entry.get("layers") or matched.get(name, []))} for name, entry in given.items()}


def schema_enums() -> dict[str, list[str]]:
    """Every ``enum`` of the config schema that names a registered choice: the key path
    (``methods.*.optimizer``) -> the registry's names, in the registry's order. A test checks
    that the schema lists exactly these, so the schema and the code cannot drift apart."""
    from .data import IMAGE_SETS
    from .data.training_sets import TRAINING_SETS
    from .labels import LABEL_SPACES
    from .models.training_settings import STYLES
    from .relations import TRAININGS
    from .models.sources import SOURCES
    from .stats.comparisons import COMPARISONS
    from .stats.pairs import PAIR_SAMPLING
    from .stats.reduction import REDUCTIONS
    from .stats.representation import MEASURES
    from .stats.statistics import STATISTICS
    from .synthesis import LOSSES, METHOD_PRESETS, OPTIMIZERS, SCHEDULES, STARTS
    from .synthesis.methods import ON_SUCCESS
    from .synthesis.parameterizations import PARAMETERIZATIONS
    from .synthesis.priors import PRIORS

    method = {
        "preset": METHOD_PRESETS.names(),
        "optimizer": OPTIMIZERS.names(),
        "loss": LOSSES.names(),
        "schedule.type": SCHEDULES.names(),
        "init.type": STARTS.names(),
        "priors[].type": PRIORS.names(),
        "parameterization.type": PARAMETERIZATIONS.names(),
        "on_success": list(ON_SUCCESS),
    }
    return {
        # a method entry ($defs/method), under methods and as the inversion's method
        **{f"{prefix}.{key}": names for prefix in ("methods.*", "inversion.method") for key, names in method.items()},
        "images.type": IMAGE_SETS.names(),
        "metamer_test.pool.type": IMAGE_SETS.names(),
        "models.*.source": SOURCES.names(),
        "metamer_test.statistics[]": STATISTICS.names(),
        "metamer_test.pair_sampling": PAIR_SAMPLING.names(),
        "metamer_test.comparison": COMPARISONS.names(),
        "representation.measures[]": MEASURES.names(),
        "relations.measures[]": MEASURES.names(),
        "models.*.data.type": TRAINING_SETS.names(),
        "models.*.training.style": list(STYLES),
        "models.*.tags.training": list(TRAININGS),
        **{key: LABEL_SPACES.names() for key in ("images.labels", "metamer_test.pool.labels", "models.*.classes",
                                                 "class_maps.*.from")},
        "representation.reduction.type": REDUCTIONS.names(),
    }
