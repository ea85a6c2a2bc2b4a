"""The study (issue 27): validation makes a read-only Study whose questions are its methods, and
the package has no import cycle, function-level imports included."""

from __future__ import annotations

import ast
import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from metamers.config import load_config, validate_config
from metamers.study import FrozenError, Study, TargetSpec


def test_validation_makes_a_read_only_study(study_config):
    study = validate_config(study_config)
    assert isinstance(study, Study)
    with pytest.raises(FrozenError, match="copy.deepcopy"):
        study["images"]["per_class"] = 3
    with pytest.raises(FrozenError):
        study["generators"]["lenet5_standard"]["layers"].append("conv1")
    with pytest.raises(FrozenError):
        study.extra = 1
    with pytest.raises(TypeError):  # a Mapping has no item assignment at all
        study["seed"] = 1  # type: ignore[index]
    editable = copy.deepcopy(study)
    assert type(editable) is dict and type(editable["images"]) is dict and type(editable["evaluators"]) is dict
    editable["images"]["per_class"] = 3
    assert validate_config(editable)["images"]["per_class"] == 3 and study["images"]["per_class"] != 3
    assert validate_config(study) == study  # validating a study again changes nothing
    assert json.loads(json.dumps(dict(study))) == study.to_dict()  # provenance and params serialise as before
    assert pickle.loads(pickle.dumps(study)) == study


def test_the_studys_questions(repo):
    study = load_config(repo / "config.yaml")
    assert (study.results, study.seed, study.images_per_job, study.batch_invariant) == ("results", 0, 20, False)
    assert study.generators == ["lenet5_standard", "lenet5_robust", "lenets_joint"]
    assert study.methods == list(study["methods"]) and study.evaluators[0] == "lenet5_standard"
    assert study.generator_models("lenets_joint") == ["lenet5_standard", "lenet5_robust"]
    assert study.is_joint("lenets_joint") and not study.is_joint("lenet5_standard")
    assert study.generator_targets("lenets_joint", "relu2") == [TargetSpec("lenet5_standard", "relu2", 0.5, None),
                                                                TargetSpec("lenet5_robust", "relu2", 0.5, None)]
    assert study.null_targets()["lenet5_standard"] == ["relu1", "relu2", "relu3", "linear2"]
    assert study.study_models()[:2] == ["lenet5_standard", "lenet5_robust"]
    assert study.trained_model_path("mlp_seed0") == "results/models/mlp_seed0.pt"
    assert study.method_settings("feather2023")["iterations"] == study["methods"]["feather2023"].get("iterations", 24000)
    with pytest.raises(KeyError, match="unknown generator 'nope'; configured: lenet5_standard"):
        study.generator_layers("nope")


def test_the_study_and_the_config_import_no_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, metamers.config, metamers.study; "
                          "print('torch' in sys.modules)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _module_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports, at module level or inside functions."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycle(repo):
    graph = _module_graph(repo / "metamers")
    assert len(graph) > 80
    assert _cycles(graph) == []
    # the checker finds a cycle where there is one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_generation_key_holds_what_the_job_depends_on(repo):
    study = load_config(repo / "config.yaml")
    key = study.generation_key("feather2023", "lenets_joint", "relu2", "b000")
    assert key["method_settings"]["iterations"] == study.method_settings("feather2023")["iterations"]
    assert set(key["models"]) == {"lenet5_standard", "lenet5_robust"}
    assert [t["weight"] for t in key["target_specs"]] == [0.5, 0.5]
    assert key["method_settings"]["check_every"] and key["comparison"] == "at_least"  # it tests during synthesis
    edited = study.to_dict()
    edited["images"]["per_class"] = 3
    assert validate_config(edited).generation_key("feather2023", "lenets_joint", "relu2", "b000") != key


def test_the_fingerprint_holds_the_job_key(tiny_linear):
    """A checkpoint resumes only the job whose key it was written under."""
    import torch

    from metamers.synthesis.loop import MetamerSynthesis

    x = torch.rand(1, 1, 4, 4)
    make = lambda key: MetamerSynthesis.single(tiny_linear, "fc", x, "adam", 0, job_key=key)  # noqa: E731
    assert make({"images": 1}).fingerprint() != make({"images": 2}).fingerprint()
    assert make({"images": 1}).fingerprint() == make({"images": 1}).fingerprint()
