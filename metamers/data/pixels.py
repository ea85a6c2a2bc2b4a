"""Pixels: reading image files, adapting images to a model's input, and 8-bit quantisation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    """Read an image file as the owner meant it: uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB.

    Grey files (PIL modes ``1``, ``L``, ``LA`` and the deeper ``I;16*``, ``I`` and ``F``) are
    read as grey, every other mode (``RGB``, ``RGBA``, palette ``P``/``PA``, ``CMYK``,
    ``YCbCr``, ...) as RGB through PIL's own conversion, so an 8-bit file gives exactly its
    stored pixels and ``1``-bit black and white give 0 and 255 (2- and 4-bit grey PNGs: PIL
    scales them to 0..255). A grey file deeper than 8 bits is scaled by its full range and
    rounded to 8 bits (:func:`_deep_grey`), which is what the pipeline keeps of a reference
    anyway (:func:`quantize`); PIL gives 16-bit colour files as their high bytes.

    An alpha channel (or a palette or colour-key transparency) that is opaque everywhere is
    dropped, which leaves the same pixels as the file without it. One with any pixel below
    full opacity is refused: what shows through a transparent pixel is the owner's choice
    (content drawn in the alpha alone reads as black without it, and a white background hides
    white content just as silently); the error says how to flatten the file onto a background.

    Raises
    ------
    ImageError
        Naming the file: it cannot be decoded, it has transparent pixels, or its samples have
        no range to scale by (negative integers; floats outside [0, 1]); with the remedy.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)

    def refuse(why: str) -> ImageError:
        return ImageError(f"cannot read image file {str(path)!r}: {why}")

    try:
        with Image.open(path) as im:
            alpha = _alpha(im)
            if alpha is not None and alpha.min() < 255:
                raise refuse(
                    f"{int((alpha < 255).sum())} of {alpha.size} pixels are transparent or partly so, and what shows "
                    "through them is the owner's choice; flatten it onto the background you mean and save it without "
                    f"alpha, e.g. `convert {path.name} -background white -alpha remove -alpha off {path.name}` "
                    "(ImageMagick) or in Python `Image.alpha_composite(Image.new('RGBA', im.size, 'white'), "
                    f"im.convert('RGBA')).convert('RGB').save('{path.name}')`")
            bands = im.getbands()
            if bands[0] not in ("1", "L", "I", "F"):
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            grey = im.getchannel(0) if len(bands) > 1 else im
            if grey.mode in ("1", "L"):
                return np.asarray(grey.convert("L"), dtype=np.uint8).copy()
            return _deep_grey(grey, refuse)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise refuse(str(err)) from err


def _alpha(im) -> np.ndarray | None:
    """The opacity of every pixel of PIL image ``im`` (255 opaque), or None when it has none: an
    alpha band (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``), a palette's transparent
    entries, or a colour key (the file's ``transparency``: pixels of that value are transparent)."""
    bands = im.getbands()
    if bands[-1] in ("A", "a"):
        return np.asarray(im.getchannel(len(bands) - 1))
    if "transparency" not in im.info:
        return None
    if im.mode == "P":
        return np.asarray(im.convert("RGBA").getchannel("A"))
    keyed = np.asarray(im) == np.asarray(im.info["transparency"])
    return np.where(keyed.all(-1) if keyed.ndim == 3 else keyed, 0, 255)


def _deep_grey(im, refuse: Callable[[str], ImageError]) -> np.ndarray:
    """A grey PIL image deeper than 8 bits (modes ``I;16*``, ``I``, ``F``) as uint8, scaled by
    its full range: ``round(255 v / full)``.

    ``full`` is ``2**bits - 1`` for unsigned and ``2**(bits - 1) - 1`` for signed integers of
    the file's declared depth (TIFF ``BitsPerSample``/``SampleFormat``, e.g. 12 or 32 bits;
    otherwise 16 bits unsigned for ``I;16*`` modes and PNG files, PIL's 32-bit signed for mode
    ``I``), and 1 for floats, which are read only when all lie in [0, 1] (0 black, 1 white).
    Negative integers (whose black the file does not say) and other floats are refused.
    """
    arr = np.asarray(im)
    if im.mode == "F":
        finite = bool(np.isfinite(arr).all())
        lo, hi = (float(np.min(arr)), float(np.max(arr))) if finite else (0.0, 0.0)
        if not finite or lo < 0 or hi > 1:
            found = f"run from {lo:g} to {hi:g}" if finite else "include NaN or infinity"
            raise refuse(f"its floating-point samples {found}, and floats are read only in [0, 1] (0 black, 1 white); "
                         "scale them into [0, 1] or save it as an 8- or 16-bit integer image with black 0 and white "
                         "the largest value")
        full = 1.0
    else:
        tags = getattr(im, "tag_v2", {})
        bits = int(np.max(tags.get(258, 16 if im.mode.startswith("I;16") or im.format == "PNG" else 32)))
        signed = 2 in np.atleast_1d(tags.get(339, 2 if im.mode == "I" and im.format not in ("TIFF", "PNG") else 1))
        if not signed and arr.dtype == np.int32:
            arr = arr.view(np.uint32)  # PIL keeps unsigned 32-bit samples in its signed mode I
        full = 2 ** (bits - signed) - 1
        if arr.size and (arr.min() < 0 or arr.max() > full):
            raise refuse(f"its {bits}-bit {'signed' if signed else 'unsigned'} samples run from {arr.min()} to "
                         f"{arr.max()}, outside 0..{full}, so their black and white are not known; save it as an "
                         "8- or 16-bit unsigned image with black 0 and white the largest value")
    out = np.rint(arr.astype(np.float64) * (255 / full)).astype(np.uint8)
    if arr.size and arr.max() > 0 and out.max() == 0:  # content below 1/510 of the range: black, read as-is
        raise refuse(f"its samples reach only {arr.max()} of a range of 0..{full}, so at 8 bits the image is all "
                     "black; its black and white are not those of its declared depth: rescale it so that white is "
                     "the largest value (or save it as an 8- or 16-bit image)")
    return out


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
