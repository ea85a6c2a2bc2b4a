"""Synthesis: the objective, starting points, optimizers, schedules, methods and the loop.

- :mod:`.objective`: losses and the weighted (model, layer) targets a metamer must match.
- :mod:`.starts`: starting points (one seed per image).
- :mod:`.optimizers`, :mod:`.schedules`: registered optimizers and step schedules.
- :mod:`.methods`: named presets that a config selects and overrides.
- :mod:`.loop`: :class:`MetamerSynthesis` (set up, then ``synthesize()``); :mod:`.record`: its state, checkpoints and result.
"""

from .loop import MetamerSynthesis, SynthesisError, SynthesisResult
from .methods import METHOD_PRESETS, MethodError, resolve_method
from .objective import LOSSES, Objective, Target
from .optimizers import OPTIMIZERS
from .schedules import SCHEDULES
from .starts import STARTS, initial_images, start_seed

__all__ = ["LOSSES", "METHOD_PRESETS", "OPTIMIZERS", "SCHEDULES", "STARTS", "MetamerSynthesis", "MethodError",
           "Objective", "SynthesisError", "SynthesisResult", "Target", "initial_images", "resolve_method",
           "start_seed"]
