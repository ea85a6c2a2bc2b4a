"""envs/*.yaml parse and list the same packages as pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_conda_env_matches_pyproject(repo):
    deps = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((repo / "envs" / "metamers.yaml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {_name(d) for d in conda} == {"python", "pip"}
    assert sorted(_name(d) for d in pip) == sorted(_name(d) for d in deps)


def test_every_rule_names_an_existing_env(repo):
    rules = "\n".join(p.read_text() for p in (repo / "rules").glob("*.smk"))
    n_rules = len(re.findall(r"^rule \w+:", rules, re.M))
    envs = re.findall(r'^\s+conda:\s*\n\s+"([^"]+)"', rules, re.M)
    # every rule that runs a script names the environment
    n_scripts = len(re.findall(r"^\s+script:", rules, re.M))
    assert len(envs) == n_scripts and n_scripts == n_rules - 1  # `figures` only collects files
    for env in envs:
        assert (repo / "rules" / env).resolve() == (repo / "envs" / "metamers.yaml").resolve()
