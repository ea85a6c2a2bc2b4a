"""Named synthesis methods: presets that a config's ``methods`` section selects and overrides.

A config entry ``methods: {NAME: {preset: P, ...overrides}}`` starts from preset ``P``
(or from the preset called ``NAME`` when ``preset`` is absent) and replaces the keys it gives.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: The built-in presets.
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    # Feather et al. (2023): normalized-gradient steps, step 1 halved after each of 8
    # blocks of 3000 iterations, noise start, last iterate.
    "feather2023": {
        "optimizer": "normalized_gradient",
        "iterations": 24000,
        "step_size": 1.0,
        "scale_step_to_input": True,
        "schedule": {"type": "step_halving", "blocks": 8, "gamma": 0.5},
        "loss": "normalized_l2",
        "init": {"type": "noise", "mean": 0.5, "std": 0.05},
        "check_every": 0,
        "on_success": "continue",
    },
    "adam": {
        "optimizer": "adam",
        "iterations": 2000,
        "lr": 0.01,
        "schedule": {"type": "constant"},
        "loss": "normalized_l2",
        "init": {"type": "noise", "mean": 0.5, "std": 0.05},
        "check_every": 0,
        "on_success": "continue",
    },
    "sgd_momentum": {
        "optimizer": "sgd",
        "iterations": 2000,
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "schedule": {"type": "constant"},
        "loss": "normalized_l2",
        "init": {"type": "noise", "mean": 0.5, "std": 0.05},
        "check_every": 0,
        "on_success": "continue",
    },
}


def resolve_method(name: str, entry: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full settings of method ``name`` configured as ``entry``."""
    entry = dict(entry or {})
    preset = entry.pop("preset", name)
    if preset not in METHOD_PRESETS:
        raise KeyError(
            f"method {name!r}: unknown preset {preset!r}; valid presets: {', '.join(METHOD_PRESETS)}"
        )
    settings = copy.deepcopy(METHOD_PRESETS[preset])
    for key, value in entry.items():
        if isinstance(value, Mapping) and isinstance(settings.get(key), Mapping) and key != "schedule":
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = copy.deepcopy(value)
    settings["preset"] = preset
    return settings
