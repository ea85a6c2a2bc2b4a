"""Synthesis: the objective, starting points, optimizers, schedules, methods and the loop.

- :mod:`.objective`: the weighted (model, layer) targets a metamer must match; :mod:`.losses`.
- :mod:`.starts`: starting points (one seed per image).
- :mod:`.optimizers`, :mod:`.schedules`: registered optimizers and step schedules.
- :mod:`.methods`: named presets that a config selects and overrides.
- :mod:`.loop`: :class:`MetamerSynthesis` (set up, then ``synthesize()``).
- :mod:`.record`: a run's state, checkpoints and result.
"""

import importlib

#: Name -> the module that defines it: imported on first use, so that validating a method
#: (the workflow does it while it builds its DAG) does not import torch.
_EXPORTS = {
    "MetamerSynthesis": ".loop", "SynthesisError": ".loop", "SynthesisResult": ".record",
    "METHOD_PRESETS": ".methods", "MethodError": ".methods", "resolve_method": ".methods",
    "LOSSES": ".losses", "Objective": ".objective", "Target": ".objective", "OPTIMIZERS": ".optimizers",
    "SCHEDULES": ".schedules", "STARTS": ".starts", "initial_images": ".starts", "start_seed": ".starts",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
