"""The classifier wrapper: every loaded model is a frozen :class:`Classifier` taking inputs in [0, 1]."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn as nn


class Classifier(nn.Module):
    """A frozen image classifier taking inputs in [0, 1].

    Parameters
    ----------
    net
        The network; its named modules are the layers that can be read.
    mean, std
        Per-channel normalisation applied inside :meth:`forward`.
    input_shape
        ``(channels, height, width)`` the network expects.
    num_classes
        Length of the logit vector.
    name
        The configured name the model was loaded under.
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        input_shape: Sequence[int],
        num_classes: int,
        name: str = "",
    ) -> None:
        super().__init__()
        self.net = net
        channels = int(input_shape[0])
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        if mean_t.shape[0] not in (1, channels) or std_t.shape[0] not in (1, channels):
            raise ValueError(f"model {name!r}: mean/std need 1 or {channels} values")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.name = name
        freeze(self)

    @property
    def device(self) -> torch.device:
        """Where the model's buffers (and so its inputs) live."""
        return self.mean.device

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std``: what the network receives (the pseudo-layer ``input_after_preproc``
        of :mod:`metamers.models.layers`)."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    def layer_names(self) -> list[str]:
        """Names of every module of the network, in definition order: the readable layers, besides
        torch.fx graph nodes and the pseudo-layer ``input_after_preproc`` (the normalised input)."""
        return [n for n, _ in self.net.named_modules() if n]


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode, no parameter gradients, and no in-place activations.

    In-place activations would overwrite a captured layer output with the next
    operation's result, so they are switched off (this changes no value).
    """
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for m in model.modules():
        if hasattr(m, "inplace") and isinstance(m.inplace, bool):
            m.inplace = False
    return model


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's state dict (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()
