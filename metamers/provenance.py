"""What produced an artifact: package versions, project version, git commit and host."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import __version__

#: Distributions whose versions are recorded in every artifact.
RECORDED_PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "h5py",
    "pandas",
    "snakemake",
    "timm",
    "robustbench",
)


def package_versions() -> dict[str, str]:
    """Return the installed version of each recorded package (``"absent"`` when missing)."""
    out = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def git_commit(path: Path | None = None) -> str:
    """The commit of the source tree holding ``path`` (``"unknown"`` outside a git checkout)."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def provenance(job_config: dict[str, Any], seed: int | None = None) -> dict[str, str]:
    """Attributes that every artifact carries: all values are strings (JSON where structured)."""
    return {
        "project_version": __version__,
        "git_commit": git_commit(),
        "packages": json.dumps(package_versions(), sort_keys=True),
        "job_config": json.dumps(job_config, sort_keys=True, default=str),
        "seed": "" if seed is None else str(int(seed)),
        "host": platform.node(),
    }
