"""Models: the classifier wrapper, the sources that load it, architectures, and reading layers.

- :mod:`.classifier`: :class:`Classifier`, the frozen network taking inputs in [0, 1].
- :mod:`.sources`: one module per source (advertorch, torchvision, robustbench, timm, checkpoint).
- :mod:`.architectures`: networks built here for local checkpoints (LeNet-5, CIFAR ResNets).
- :mod:`.loading`: configured models, their weight files and :func:`load_model`.
- :mod:`.layers`: :class:`~.layers.LayerReader`, the straight-through ReLU.
"""

from .classifier import Classifier, freeze, weights_digest
from .loading import (
           existing_weight_files,
           load_model,
           model_spec,
           study_models,
           weight_files,
)
from .sources import SOURCES, ModelLoadError

__all__ = ["SOURCES", "Classifier", "ModelLoadError", "existing_weight_files", "freeze", "load_model", "model_spec",
           "study_models", "weight_files", "weights_digest"]
