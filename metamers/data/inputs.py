"""Images handed to the library: checked, in [0, 1], at a model's input shape.

:func:`as_images` is the one gate every image tensor of the library API passes (references,
null pools, images to test): it takes float images in [0, 1] or 8-bit ones (uint8, 0-255), as
torch tensors, numpy arrays or an :class:`~.image_set.ImageSet`, and refuses with a message
saying what was expected: a missing batch dimension, another shape than the model's input,
float values outside [0, 1] (0-255 images given as floats, which clamping would silently turn
into black and white), non-finite values, other integer types. :func:`load_images` builds an
image set from a folder or a named type, as a config's ``images`` section does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .image_set import ImageSet, load_image_set


class InputError(ValueError):
    """Images that the library cannot take as they are; the message says what it expects."""


def load_images(source: str | Path, **options: Any) -> ImageSet:
    """An image set: a folder of class sub-folders (``root/<class>/<image>``) or a named type
    (``"mnist_test"``: the 1,000 MNIST test digits shipped with the package; ``"mnist"``,
    ``"cifar10"``, ...: :data:`~.image_set.IMAGE_SETS`), with the options of a config's
    ``images`` section (``per_class``, ``seed``, ``held_out``, ...).

    Examples
    --------
    >>> from metamers import load_images
    >>> digits = load_images("mnist_test", per_class=1)
    >>> len(digits.ids), digits.held_out
    (10, True)
    """
    from .image_set import IMAGE_SETS

    if isinstance(source, Path) or (isinstance(source, str) and source not in IMAGE_SETS):
        if not Path(source).is_dir():
            raise InputError(f"{str(source)!r} is neither a folder nor an image set type; types: "
                             f"{', '.join(IMAGE_SETS)}")
        return load_image_set({"type": "folder", "root": str(source), **options})
    return load_image_set({"type": source, **options})


def as_images(images: Any, input_shape: Sequence[int] | None = None, what: str = "images") -> torch.Tensor:
    """``images`` as a float32 batch ``(N, C, H, W)`` in [0, 1] on the CPU.

    Parameters
    ----------
    images
        A tensor or array ``(N, C, H, W)``: float in [0, 1], or uint8 in 0-255 (divided by 255);
        or an :class:`~.image_set.ImageSet` (all its images, at ``input_shape``).
    input_shape
        ``(C, H, W)`` the images must have (a model's input), or None.
    what
        What the images are, for messages ("references", "the null pool").

    Raises
    ------
    InputError
        Not 4-dimensional, another shape than ``input_shape``, float values outside [0, 1] or not
        finite, or an integer type other than uint8.

    Examples
    --------
    >>> import torch
    >>> as_images(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8)).max().item()
    1.0
    >>> as_images(torch.full((2, 1, 4, 4), 255.0))
    Traceback (most recent call last):
    ...
    metamers.data.inputs.InputError: images: float values must lie in [0, 1], but they reach 255; for 0-255 images divide by 255 or pass them as uint8
    """
    if isinstance(images, ImageSet):
        if input_shape is None:
            raise InputError(f"{what}: an image set needs the input shape to load its images at")
        return images.tensor(images.ids, input_shape).float()
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{what}: expected a torch tensor, a numpy array or an image set, got {type(images).__name__}")
    if images.dim() != 4:
        hint = " (one image: add a batch dimension, images[None])" if images.dim() == 3 else ""
        raise InputError(f"{what}: expected a batch (N, C, H, W), got shape {tuple(images.shape)}{hint}")
    if len(images) == 0:
        raise InputError(f"{what}: the batch is empty")
    if input_shape is not None and tuple(images.shape[1:]) != tuple(input_shape):
        raise InputError(f"{what}: expected shape (N, {', '.join(map(str, input_shape))}), the model's input, got "
                         f"{tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.detach().cpu().float() / 255
    if not images.is_floating_point():
        raise InputError(f"{what}: expected float images in [0, 1] or uint8 images in 0-255, got {images.dtype}")
    x = images.detach().cpu().float()
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{what}: {int((~torch.isfinite(x)).sum())} values are NaN or infinite")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        hint = ("; for 0-255 images divide by 255 or pass them as uint8" if high > 1 and high <= 255 and low >= 0
                else "; images (not normalised ones) are expected: the model applies its own normalisation")
        reach = f"reach {high:g}" if high > 1 else f"go down to {low:g}"
        raise InputError(f"{what}: float values must lie in [0, 1], but they {reach}{hint}")
    return x
