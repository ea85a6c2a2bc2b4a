"""One registry mechanism: lookups and their errors, the schema's enums against the registries,
every statistic defined once, every workflow rule one job."""

from __future__ import annotations

import re

import pytest
import torch

from metamers.config import config_schema, schema_enums
from metamers.registry import Registry, lookup


class Oops(RuntimeError):
    pass


def test_registry_registers_where_defined_and_lists_valid_names_on_error():
    things = Registry("widget", Oops)

    @things.register("b")
    def b():
        return "B"

    things.register("a", 1)
    assert things["b"] is b and things["a"] == 1
    assert list(things) == things.names() == ["b", "a"] and len(things) == 2
    assert "a" in things and "z" not in things and things.get("z", 0) == 0
    with pytest.raises(Oops, match=r"^unknown widget 'z'; valid: b, a$"):
        things["z"]
    with pytest.raises(Oops, match=r"^method 'm': unknown widget 'z'; valid: b, a$"):
        things.lookup("z", context="method 'm': ")
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        things.register("a", 2)
    assert things["a"] == 1
    with things.override("a", 3), things.override("c", 4):
        assert things["a"] == 3 and things["c"] == 4 and things.names() == ["b", "a", "c"]
    assert things["a"] == 1 and "c" not in things and things.names() == ["b", "a"]


def test_lookup_of_configured_names():
    assert lookup({"x": 1}, "x", "generator") == 1
    with pytest.raises(KeyError, match=r"unknown generator 'y'; configured: x, w"):
        lookup({"x": 1, "w": 2}, "y", "generator", listed="configured")
    with pytest.raises(KeyError, match=r"unknown batch 'b1'; configured: \(none\)"):
        lookup({}, "b1", "batch", listed="configured")


def _schema_node(path: str) -> dict:
    """The schema node at a key path: ``a.b`` (properties), ``*`` (any key of a mapping),
    ``[]`` (items of an array); local ``$ref`` s followed."""
    schema = config_schema()

    def resolve(node):
        while "$ref" in node:
            target = schema
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    node = resolve(schema)
    for part in path.split("."):
        items = part.endswith("[]")
        part = part.removesuffix("[]")
        node = resolve(node["additionalProperties"] if part == "*" else node["properties"][part])
        if items:
            node = resolve(node["items"])
    return node


@pytest.mark.parametrize(("path", "names"), list(schema_enums().items()))
def test_schema_enum_lists_exactly_the_registered_names(path, names):
    assert sorted(_schema_node(path)["enum"]) == sorted(names)


def test_every_enum_of_the_schema_is_checked_against_a_registry():
    """A new enum in the schema must be added to metamers.config.schema_enums (or here, when it
    names no registered choice: file formats)."""
    not_registries = {"figures.formats[]", "methods.*.line_search_fn", "inversion.method.line_search_fn"}
    found = set()

    def walk(node, path):
        if "$ref" in node:
            node = _schema_node(path) if path else node
        if "enum" in node:
            found.add(path)
        for key, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{key}" if path else key)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(config_schema(), "")
    assert found - not_registries == set(schema_enums())


def test_a_statistic_is_defined_once_with_label_paired_and_gram_forms():
    from metamers.stats.activation_store import ActivationStore
    from metamers.stats.statistics import STATISTICS

    rng = torch.Generator().manual_seed(0)
    acts = torch.rand(5, 40, generator=rng)
    acts[3] = acts[1] * 2 + 0.5  # a perfectly correlated pair
    ref, other = torch.tensor([1, 0, 4, 3]), torch.tensor([3, 2, 0, 1])
    with ActivationStore(5, 40, list(STATISTICS)) as store:
        store.add(0, acts)
        grams = store.grams()
    for name, stat in STATISTICS.items():
        assert stat.name == name and stat.label
        assert ("dB" in stat.label) == (stat.unit == "dB")
        # the Gram form equals the paired form on the same pairs
        torch.testing.assert_close(stat.from_gram(grams[name], ref, other),
                                   stat.paired(acts[other], acts[ref]), rtol=1e-9, atol=1e-9)


def test_figures_label_statistics_from_the_registry():
    import numpy as np
    import pandas as pd

    from metamers.figures.nulls import null_histograms
    from metamers.stats.statistics import STATISTICS

    hist = pd.DataFrame({"generator": "g", "layer": "l", "statistic": "snr_db_feather2023",
                         "bin_left": [0.0, 1.0], "bin_right": [1.0, 2.0], "count": [3, 4]})
    thresholds = pd.DataFrame([{"generator": "g", "layer": "l", "statistic": "snr_db_feather2023", "threshold": 1.5,
                                "threshold_rule": "max", "n_pairs": 7}])
    tests = pd.DataFrame({"method": "adam", "generator": "g", "layer": "l", "measured_layer": "l",
                          "statistic": "snr_db_feather2023", "value": [np.inf, 1.7]})
    fig = null_histograms(hist, thresholds, tests, {"g": "l"})
    assert fig.axes[0].get_xlabel() == STATISTICS["snr_db_feather2023"].label == "SNR (dB, 10 log10)"


def test_every_rule_with_a_script_is_one_registered_job(repo):
    """Every rule of the workflow runs the one script, which calls its entry in RULES; every
    entry is a rule."""
    from metamers.jobs.rules import RULES

    rules = {}
    for path in (repo / "rules").glob("*.smk"):
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", path.read_text(), re.M | re.S):
            rules[match.group(1)] = match.group(2)
    scripted = {name for name, body in rules.items() if "script:" in body}
    assert scripted == set(RULES)
    assert all('"../workflow_scripts/run_rule.py"' in rules[name] for name in scripted)
    assert set(rules) - scripted == {"figures"}  # the one rule that only gathers inputs


@pytest.mark.parametrize("package", ["metamers.models", "metamers.synthesis"])
def test_lazy_packages_export_exactly_their_table(package):
    """``metamers.models`` and ``metamers.synthesis`` load their members on first use; every
    listed name resolves to the member of the module the table names."""
    import importlib

    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(module._EXPORTS) and set(module.__all__) <= set(dir(module))
    for name, where in module._EXPORTS.items():
        assert getattr(module, name) is getattr(importlib.import_module(where, package), name)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope


def test_every_registered_optimizer_names_an_optimizer_class():
    import importlib

    from metamers.synthesis.optimizers import OPTIMIZERS

    for name, kind in OPTIMIZERS.items():
        module, attribute = kind.cls.split(":")
        assert issubclass(getattr(importlib.import_module(module), attribute), torch.optim.Optimizer), name
        assert set(kind.required) <= set(kind.keys), name
