"""Pixels: reading image files, adapting images to a model's input, and 8-bit quantisation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: ITU-R BT.601 luma weights, for RGB -> grey.
LUMA = (0.299, 0.587, 0.114)


class ImageError(RuntimeError):
    """An image or image set that cannot be read."""


def read_image_file(path: Path) -> np.ndarray:
    """Read an image file as uint8 (``(H, W)`` grey or ``(H, W, 3)`` RGB); errors name the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L") if im.mode in ("L", "1", "I;16", "I") else im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as err:
        raise ImageError(f"cannot read image file {str(path)!r}: {err}") from err


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W[, C])`` -> float ``(1, C, H, W)`` in [0, 1]."""
    import torch

    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def to_input(x: torch.Tensor, input_shape: Sequence[int]) -> torch.Tensor:
    """Adapt a batch in [0, 1] to a model's ``(C, H, W)``: channels, then size.

    Grey becomes RGB by repetition and RGB becomes grey by BT.601 luma. A different
    size is resized so that the shorter side fits (bilinear, antialiased) and then
    centre-cropped. An image already of the right shape is returned unchanged.
    """
    import torch
    import torch.nn.functional as F

    channels, height, width = (int(s) for s in input_shape)
    if x.shape[1] != channels:
        if x.shape[1] == 1 and channels == 3:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] == 3 and channels == 1:
            x = (x * torch.tensor(LUMA).reshape(1, 3, 1, 1).to(x)).sum(1, keepdim=True)
        else:
            raise ImageError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")
    h, w = x.shape[-2:]
    if (h, w) != (height, width):
        scale = max(height / h, width / w)
        size = (max(height, round(h * scale)), max(width, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        top, left = (size[0] - height) // 2, (size[1] - width) // 2
        x = x[..., top : top + height, left : left + width].clamp(0, 1)
    return x


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Quantise images in [0, 1] to the 8-bit values that are saved and shown to other models."""
    import torch

    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """The 8-bit image as floats in [0, 1]: what is saved and what other models see."""
    import torch

    return to_uint8(x).to(x.device, torch.float32) / 255


def from_uint8(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """8-bit images (array or tensor) as a float tensor in [0, 1]."""
    import torch

    return torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images).float() / 255
