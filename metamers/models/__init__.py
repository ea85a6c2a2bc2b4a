"""Models: the classifier wrapper, the sources that load it, architectures, and reading layers.

- :mod:`.classifier`: :class:`Classifier`, the frozen network taking inputs in [0, 1].
- :mod:`.sources`: one module per source (advertorch, torchvision, robustbench, timm, checkpoint).
- :mod:`.architectures`: networks built here for local checkpoints (LeNet-5, CIFAR ResNets).
- :mod:`.loading`: configured models, their weight files and :func:`load_model`.
- :mod:`.layers`: :class:`~.layers.LayerReader`, the straight-through ReLU.
"""

import importlib

#: Name -> the module that defines it: imported on first use, so that naming a model's weight
#: files (the workflow does it while it builds its DAG) does not import torch.
_EXPORTS = {
    "Classifier": ".classifier", "freeze": ".classifier", "weights_digest": ".classifier",
    "existing_weight_files": ".loading", "load_model": ".loading", "model_spec": ".loading",
    "study_models": ".loading", "weight_files": ".loading", "SOURCES": ".sources", "ModelLoadError": ".sources",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
