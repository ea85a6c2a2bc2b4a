"""Models: the classifier wrapper, the sources that load it, architectures, and reading layers.

- :mod:`.classifier`: :class:`Classifier`, the frozen network taking inputs in [0, 1].
- :mod:`.sources`: one module per source (advertorch, torchvision, robustbench, timm, checkpoint).
- :mod:`.architectures`: networks built here for local checkpoints (LeNet-5, CIFAR ResNets).
- :mod:`.loading`: configured models, their weight files and :func:`load_model`.
- :mod:`.layers`: :class:`~.layers.LayerReader`, the straight-through ReLU.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_members

if TYPE_CHECKING:  # the names, for type checkers and IDEs
    from .classifier import Classifier, freeze, weights_digest
    from .loading import existing_weight_files, load_model, model_spec, weight_files
    from .sources import SOURCES, ModelLoadError

#: Name -> the module that defines it: imported on first use, so that naming a model's weight
#: files (the workflow does it while it builds its DAG) does not import torch.
_EXPORTS = {
    "Classifier": ".classifier", "freeze": ".classifier", "weights_digest": ".classifier",
    "existing_weight_files": ".loading", "load_model": ".loading", "model_spec": ".loading",
    "weight_files": ".loading", "SOURCES": ".sources", "ModelLoadError": ".sources",
}

__getattr__, __dir__ = lazy_members(__name__, _EXPORTS)


__all__ = ["Classifier", "ModelLoadError", "SOURCES", "existing_weight_files", "freeze", "load_model", "model_spec",
           "weight_files", "weights_digest"]
