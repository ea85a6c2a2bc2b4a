"""Choosing the torch device a job runs on."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """Map a configured device name to a :class:`torch.device`.

    ``"auto"`` takes CUDA when a GPU is visible and the CPU otherwise; ``"cpu"``,
    ``"cuda"`` and ``"cuda:N"`` are taken as given (CUDA must then be present).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was requested but no CUDA device is visible")
    return device
