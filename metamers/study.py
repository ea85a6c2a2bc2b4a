"""The study: a validated config, read-only, whose questions are its methods.

:func:`metamers.config.validate_config` (or :func:`~metamers.config.load_config`) checks a
config and returns a :class:`Study`; nothing else makes one. A study is a read-only mapping
(``study["models"]``, ``study.get("checkpoint_every", 0)``: every section as the schema describes
it, with its defaults) whose values cannot be changed (``study["seed"] = 1`` and
``study["images"]["per_class"] = 3`` are errors: a study runs exactly as validated);
``copy.deepcopy(study)`` gives an editable plain dict to validate again. It answers what the
workflow, the jobs, the pre-flight check and the benchmarks ask of a config: the models a
generator runs and the (model, layer) targets it matches, the layers of generators and
evaluators, the nulls and inversions a study needs, and each generation job's key. This module
imports no torch (only the registry's lookup and the method presets, inside the methods that use them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class FrozenError(TypeError):
    """A study's values cannot be changed."""


def _refuse(*_args: Any, **_kwargs: Any) -> None:
    raise FrozenError("a study is read-only: it runs exactly as validated (copy.deepcopy(study) gives an editable "
                      "dict; validate it again with metamers.config.validate_config)")


class FrozenDict(dict):
    """A dict that refuses changes (a deep copy is a plain, editable dict)."""

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return {k: copy.deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self):  # pickles as a plain dict
        return dict, (dict(self),)


class FrozenList(list):
    """A list that refuses changes (a deep copy is a plain, editable list)."""

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = _refuse  # type: ignore[assignment]
    __iadd__ = __imul__ = _refuse  # type: ignore[assignment]

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo: dict) -> list:
        return [copy.deepcopy(v, memo) for v in self]

    def __reduce__(self):
        return list, (list(self),)


def freeze(value: Any) -> Any:
    """``value`` with every dict and list made read-only, recursively."""
    if isinstance(value, Mapping):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList(freeze(v) for v in value)
    return value


def _yaml_representers() -> None:
    """Let ``yaml.safe_dump`` write a study's sections as the plain mappings and lists they are."""
    import yaml

    for dumper in (yaml.SafeDumper, yaml.Dumper):
        dumper.add_representer(FrozenDict, yaml.representer.SafeRepresenter.represent_dict)
        dumper.add_representer(FrozenList, yaml.representer.SafeRepresenter.represent_list)


_yaml_representers()


def member_model(item: str | Mapping[str, Any]) -> str:
    """The model of a joint generator's member entry (a name, or ``{model, weight}``)."""
    return item if isinstance(item, str) else item["model"]


def layer_name(item: str | Mapping[str, Any]) -> str:
    """The layer of a generator's layer entry (a name, or ``{name, fake_relu, members}``)."""
    return item if isinstance(item, str) else item["name"]


@dataclass(frozen=True)
class TargetSpec:
    """One (model, layer) that a generator's metamers match at one of its layers.

    Attributes
    ----------
    model, layer
        The configured model and its layer.
    weight
        The term's weight in the objective (1 for a single generator; a joint generator's
        weights sum to 1).
    fake_relu
        The layer entry's ``fake_relu`` (None: the method's setting applies).
    """

    model: str
    layer: str
    weight: float = 1.0
    fake_relu: bool | None = None


def _lookup(mapping: Mapping[str, Any], name: Any, kind: str, context: str = "") -> Any:
    from .registry import lookup

    return lookup(mapping, name, kind, listed="configured", context=context)


class Study(Mapping[str, Any]):
    """A validated study (made by :func:`metamers.config.validate_config`): the config's sections,
    read-only, and its questions as methods.

    Examples
    --------
    >>> from metamers.config import load_config
    >>> study = load_config("config.yaml")  # doctest: +SKIP
    >>> study.generator_models("lenets_joint")  # doctest: +SKIP
    ['lenet5_standard', 'lenet5_robust']
    """

    __slots__ = ("_config",)

    def __init__(self, config: Mapping[str, Any], _frozen: bool = True) -> None:
        # (validation asks a provisional, unfrozen study while it fills in defaults)
        object.__setattr__(self, "_config", freeze(config) if _frozen else config)

    def __setattr__(self, name: str, value: Any) -> None:
        _refuse()

    def __getitem__(self, key: str) -> Any:
        return self._config[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._config)

    def __len__(self) -> int:
        return len(self._config)

    def __repr__(self) -> str:
        return f"Study(results={self._config.get('results')!r}, generators={list(self._config.get('generators', {}))})"

    def __deepcopy__(self, memo: dict) -> dict:
        return copy.deepcopy(dict(self._config), memo)

    def __reduce__(self):
        return Study, (copy.deepcopy(dict(self._config)),)

    def to_dict(self) -> dict[str, Any]:
        """The study as a plain, editable dict (a deep copy)."""
        return copy.deepcopy(dict(self._config))

    # --- the study's settings ---------------------------------------------------------------

    @property
    def results(self) -> str:
        """The results folder."""
        return str(self["results"])

    @property
    def seed(self) -> int:
        """The base seed (each image's starting point comes from it and the image's id)."""
        return int(self["seed"])

    @property
    def device(self) -> str:
        """``auto``, ``cpu`` or a CUDA device."""
        return str(self["device"])

    @property
    def images_per_job(self) -> int:
        """References per generation job."""
        return int(self["images_per_job"])

    @property
    def batch_invariant(self) -> bool:
        """Whether each image runs through the networks alone (a metamer independent of its batch)."""
        return bool(self["batch_invariant"])

    @property
    def checkpoint_every(self) -> int:
        """Iterations between a generation job's checkpoints (0: none)."""
        return int(self.get("checkpoint_every", 0))

    @property
    def generators(self) -> list[str]:
        """The configured generators, in config order."""
        return list(self["generators"])

    @property
    def evaluators(self) -> list[str]:
        """The configured evaluators, in config order."""
        return list(self["evaluators"])

    @property
    def methods(self) -> list[str]:
        """The configured methods, in config order."""
        return list(self["methods"])

    # --- generators -------------------------------------------------------------------------

    def is_joint(self, generator: str) -> bool:
        """Whether ``generator`` is a joint generator (several models optimized together)."""
        return "members" in _lookup(self["generators"], generator, "generator")

    def generator_models(self, generator: str) -> list[str]:
        """The models a generator runs: its members, or the generator itself."""
        entry = _lookup(self["generators"], generator, "generator")
        return [member_model(m) for m in entry["members"]] if "members" in entry else [generator]

    def diversity_model(self, method: str) -> str | None:
        """The model of method ``method``'s diversity space (``diversity: {space: {model, layer}}``),
        or None (no diversity term, or distances in pixels)."""
        space = (self.method_settings(method).get("diversity") or {}).get("space", "pixels")
        return space["model"] if isinstance(space, Mapping) else None

    def diversity_methods(self) -> list[str]:
        """The methods that make several metamers of every reference (``diversity`` with ``k`` above
        1), in config order."""
        return [name for name in self["methods"]
                if int((self.method_settings(name).get("diversity") or {}).get("k", 1)) > 1]

    def job_models(self, method: str, generator: str) -> list[str]:
        """The models generation job ``(method, generator, ...)`` loads: the generator's, then its
        method's diversity model when that is another."""
        extra = self.diversity_model(method)
        return list(dict.fromkeys([*self.generator_models(generator), *([extra] if extra else [])]))

    def generator_layers(self, generator: str) -> list[str]:
        """The layers of ``generator``, in the configured (early to late) order."""
        return [layer_name(item) for item in _lookup(self["generators"], generator, "generator")["layers"]]

    def layer_options(self, generator: str, layer: str) -> dict[str, Any]:
        """Per-layer options of a generator's layer: ``fake_relu`` (None when the layer does not
        set it: the method's setting applies). An unknown generator or layer is a
        :class:`KeyError` that lists the configured ones."""
        entry = _lookup(self["generators"], generator, "generator")
        layers = {layer_name(item): item for item in entry["layers"]}
        item = _lookup(layers, layer, "layer", context=f"generator {generator!r}: ")
        return {"fake_relu": None} if isinstance(item, str) else {"fake_relu": None, **copy.deepcopy(item)}

    def generator_targets(self, generator: str, layer: str) -> list[TargetSpec]:
        """The (model, layer) targets that ``generator``'s metamers match at its layer ``layer``:
        one for a single generator, one per member for a joint one. Unknown names list the
        configured ones."""
        options = self.layer_options(generator, layer)
        entry = self["generators"][generator]
        if "members" not in entry:
            return [TargetSpec(generator, layer, 1.0, options["fake_relu"])]
        weights = [1.0 if isinstance(m, str) else float(m.get("weight", 1.0)) for m in entry["members"]]
        mapped = options.get("members", {})
        return [TargetSpec(member_model(m), mapped.get(member_model(m), layer), w / sum(weights), options["fake_relu"])
                for m, w in zip(entry["members"], weights)]

    # --- models -----------------------------------------------------------------------------

    def study_models(self) -> list[str]:
        """The models the study loads: its generators (a joint generator's members), then its
        evaluators, each once, in config order."""
        generators = [m for gen in self.get("generators", {}) for m in self.generator_models(gen)]
        return list(dict.fromkeys([*generators, *self.get("evaluators", [])]))

    def trained_model_path(self, name: str) -> str:
        """Where rule ``train_model`` writes the checkpoint of trained model ``name``."""
        return trained_model_path(self["results"], name)

    # --- nulls, evaluators, inversions ------------------------------------------------------

    def null_targets(self, generators: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Model -> the layers whose nulls the study needs, in config order: every target of every
        layer of ``generators``; by default of all generators, and every evaluator layer (the
        representation test's per-image similarity is a percentile of the evaluator's own null)."""
        out: dict[str, list[str]] = {}
        for gen in self["generators"] if generators is None else generators:
            for layer in self.generator_layers(gen):
                for t in self.generator_targets(gen, layer):
                    if t.layer not in out.setdefault(t.model, []):
                        out[t.model].append(t.layer)
        if generators is None and isinstance(self["evaluators"], Mapping):
            for name, entry in self["evaluators"].items():
                for layer in entry["layers"]:
                    if layer not in out.setdefault(name, []):
                        out[name].append(layer)
        return out

    def evaluator_layers(self, evaluator: str) -> list[str]:
        """The layers at which the representation test reads ``evaluator`` (empty when it does not
        read it)."""
        return list(_lookup(self["evaluators"], evaluator, "evaluator")["layers"])

    def representation_evaluators(self) -> list[str]:
        """The evaluators the representation test reads (those with layers), in config order."""
        return [name for name, entry in self["evaluators"].items() if entry["layers"]]

    def inversion_layers(self) -> dict[str, list[str]]:
        """Evaluator -> the layers its representations are inverted at (empty when
        ``inversion.images`` is 0)."""
        settings = self["inversion"]
        return {name: list(layers) for name, layers in settings["layers"].items()} if settings["images"] else {}

    def inversion_method(self) -> dict[str, Any]:
        """The full settings of ``inversion.method`` (a :class:`KeyError` when they are invalid:
        an inversion has no null, so it cannot run the metamer test during synthesis)."""
        from .synthesis.methods import resolve_method

        settings = resolve_method("inversion", self["inversion"]["method"])
        if settings.get("check_every", 0):
            raise KeyError(f"check_every is {settings['check_every']}, but an inversion runs no metamer test "
                           "(there is no null to pass); remove it")
        return settings

    def method_settings(self, method: str) -> dict[str, Any]:
        """The full settings of configured method ``method`` (unknown names list the configured ones)."""
        from .synthesis.methods import resolve_method

        return resolve_method(method, _lookup(self["methods"], method, "method"))

    def generation_key(self, method: str, generator: str, layer: str, batch: str) -> dict[str, Any]:
        """Everything of the study that generation job ``(method, generator, layer, batch)`` depends
        on: the one key of the job, whose JSON is the rule's Snakemake params (editing any of it
        reruns the job), the artifact's provenance (``job_config``, with the device) and part of
        the resume fingerprint of its checkpoint (:meth:`~metamers.synthesis.loop.MetamerSynthesis.fingerprint`).

        It holds the method's full settings (a preset's change reruns its jobs), the models the
        generator runs and their (model, layer, weight, straight-through ReLU) targets, the image
        set, the batching, the base seed, and the metamer test's comparison when the method
        checks during synthesis."""
        settings = self.method_settings(method)
        checks = bool(settings.get("check_every", 0))
        return {
            "method": method,
            "method_settings": settings,
            "generator": generator,
            "layer": layer,
            "batch": batch,
            "models": {m: copy.deepcopy(dict(self["models"][m])) for m in self.job_models(method, generator)},
            "layer_options": self.layer_options(generator, layer),
            "target_specs": [vars(t).copy() for t in self.generator_targets(generator, layer)],
            "images": copy.deepcopy(dict(self["images"])),
            "images_per_job": self["images_per_job"],
            "batch_invariant": self["batch_invariant"],
            "base_seed": self["seed"],
            "comparison": self["metamer_test"]["comparison"] if checks else None,
        }

    def null_layers(self) -> dict[str, str]:
        """Single generator -> the layer whose null histograms are drawn (``figures.null_layers``,
        else its last layer); joint generators have no nulls of their own (their members' are
        drawn where the members are generators too)."""
        chosen = self["figures"].get("null_layers", {})
        return {gen: chosen.get(gen, self.generator_layers(gen)[-1]) for gen in self["generators"]
                if not self.is_joint(gen)}


def trained_model_path(results: str, name: str) -> str:
    """Where rule ``train_model`` writes the checkpoint of trained model ``name`` under ``results``."""
    return f"{results}/models/{name}.pt"
