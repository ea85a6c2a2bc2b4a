"""Synthesis: the objective, starting points, optimizers, schedules, methods and the loop.

- :mod:`.objective`: the weighted (model, layer) targets a metamer must match; :mod:`.losses`.
- :mod:`.starts`: starting points (one seed per image).
- :mod:`.optimizers`, :mod:`.schedules`: registered optimizers and step schedules
  (:mod:`.normalized_gradient`: the published step).
- :mod:`.methods`: named presets that a config selects and overrides.
- :mod:`.loop`: :class:`MetamerSynthesis` (set up, then ``synthesize()``).
- :mod:`.record`: a run's state, checkpoints and result.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_members

if TYPE_CHECKING:  # the names, for type checkers and IDEs
    from .loop import MetamerSynthesis, SynthesisError
    from .losses import LOSSES
    from .methods import METHOD_PRESETS, MethodError, resolve_method
    from .objective import Objective, Target
    from .optimizers import OPTIMIZERS
    from .record import SynthesisResult
    from .schedules import SCHEDULES
    from .starts import STARTS, initial_images, start_seed

#: Name -> the module that defines it: imported on first use, so that validating a method
#: (the workflow does it while it builds its DAG) does not import torch.
_EXPORTS = {
    "MetamerSynthesis": ".loop", "SynthesisError": ".loop", "SynthesisResult": ".record",
    "METHOD_PRESETS": ".methods", "MethodError": ".methods", "resolve_method": ".methods",
    "LOSSES": ".losses", "Objective": ".objective", "Target": ".objective", "OPTIMIZERS": ".optimizers",
    "SCHEDULES": ".schedules", "STARTS": ".starts", "initial_images": ".starts", "start_seed": ".starts",
}

__getattr__, __dir__ = lazy_members(__name__, _EXPORTS)


__all__ = ["LOSSES", "METHOD_PRESETS", "OPTIMIZERS", "SCHEDULES", "STARTS", "MetamerSynthesis", "MethodError",
           "Objective", "SynthesisError", "SynthesisResult", "Target", "initial_images", "resolve_method",
           "start_seed"]
