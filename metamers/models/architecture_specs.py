"""The architectures the ``checkpoint`` and ``train`` sources build (:mod:`.architectures`),
registered without importing torch, so that a config naming one is checked while the workflow
builds its DAG.

Each entry: ``build`` (``"module:class"``, called with ``options`` and ``num_classes``), the
``input_shape``, ``num_classes`` and normalisation (``mean``, ``std``) it is defined with.
"""

from __future__ import annotations

from typing import Any

from ..registry import Registry

#: Architecture name (a model's ``architecture``) -> its entry.
ARCHITECTURES: Registry[dict[str, Any]] = Registry("architecture")
for _depth in (20, 32, 44, 56):
    ARCHITECTURES.register(f"cifar_resnet{_depth}", {
        "build": "metamers.models.architectures:CifarResNet", "options": {"depth": _depth},
        "input_shape": (3, 32, 32), "num_classes": 10, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
    })
ARCHITECTURES.register("lenet5", {"build": "metamers.models.architectures:LeNet5", "input_shape": (1, 28, 28),
                                  "num_classes": 10, "mean": (0.0,), "std": (1.0,)})
ARCHITECTURES.register("mlp", {"build": "metamers.models.architectures:MLP", "input_shape": (1, 28, 28),
                               "num_classes": 10, "mean": (0.0,), "std": (1.0,)})
ARCHITECTURES.register("small_cnn", {"build": "metamers.models.architectures:SmallCNN", "input_shape": (1, 28, 28),
                                     "num_classes": 10, "mean": (0.0,), "std": (1.0,)})
