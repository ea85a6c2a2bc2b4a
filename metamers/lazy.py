"""Members of a package that are imported on first use (PEP 562).

``metamers.models`` and ``metamers.synthesis`` export names whose modules import torch; the
workflow imports these packages while it builds its DAG, where torch is not needed. A package
lists its exports in a table (name -> the module that defines it) and installs the module
functions this returns.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_members(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: an exported name is looked up in its module
    (``exports[name]``, relative to the package) when first asked for."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
