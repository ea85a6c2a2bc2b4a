"""The metamer grid: references and their metamers side by side, and the small pixel table it reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts.metamers import MetamerBatch
from ..data import from_uint8, grid_selection, to_input

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def display_pixels(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """An 8-bit image ``(C, H, W)`` adapted to ``shape`` ``(C, H, W)`` (``to_input``)
    as the figures show it: ``(H, W, C)`` uint8."""
    return (to_input(from_uint8(image[None]), shape)[0].permute(1, 2, 0) * 255).round().byte().numpy()


def grid_images(
    batches: Sequence[MetamerBatch], count: int, layer_order: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The small table of pixels that the metamer grid figure reads.

    Returns a dict with ``image_ids`` (K,), ``rows`` (R,) labels (``reference`` first, then
    ``method | generator | layer``) and ``images`` ``(R, K, H, W, C)`` uint8, every image
    adapted to the largest size and channel count among the artifacts' ``batches``.
    """
    if not batches:
        raise ValueError("no metamer artifacts to show")
    ids, labels = [], []
    for b in batches:
        for i, label in zip(b.image_ids, b.labels):
            if i not in ids:
                ids.append(i)
                labels.append(int(label))
    chosen = grid_selection(ids, labels, count)
    channels = max(b.reference.shape[1] for b in batches)
    height = max(b.reference.shape[2] for b in batches)
    width = max(b.reference.shape[3] for b in batches)
    shape = (channels, height, width)

    def lookup(attr: str, keep: Iterable) -> dict[str, np.ndarray]:
        out = {}
        for b in keep:
            for k, i in enumerate(b.image_ids):
                if i in chosen and i not in out:
                    out[i] = display_pixels(getattr(b, attr)[k], shape)
        return out

    refs = lookup("reference", batches)
    rows, images = ["reference"], [np.stack([refs[i] for i in chosen])]
    keys = sorted(
        {(b.attrs["method"], b.attrs["generator"], b.attrs["layer"]) for b in batches},
        key=lambda k: (k[0], k[1], list(layer_order[k[1]]).index(k[2])),
    )
    blank = np.zeros((height, width, channels), np.uint8)
    for key in keys:
        group = [b for b in batches if (b.attrs["method"], b.attrs["generator"], b.attrs["layer"]) == key]
        mets = lookup("metamer_uint8", group)
        rows.append(" | ".join(key))
        images.append(np.stack([mets.get(i, blank) for i in chosen]))
    return {"image_ids": np.asarray(chosen), "rows": np.asarray(rows), "images": np.stack(images)}


def metamer_grid(grid: Mapping[str, Any]) -> plt.Figure:
    """References in the first row, then one row of metamers per (method, generator, layer)."""
    from .style import plt

    images, rows, ids = grid["images"], list(grid["rows"]), list(grid["image_ids"])
    n_rows, n_cols = images.shape[:2]
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(0.9 * n_cols + 2.6, 0.9 * n_rows + 0.6), squeeze=False,
        layout="constrained",
    )
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    grey = images.shape[-1] == 1
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r, c]
            img = images[r, c, ..., 0] if grey else images[r, c]
            ax.imshow(img, cmap="gray" if grey else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(str(ids[c]), fontsize=6)
        axes[r, 0].set_ylabel(str(rows[r]), rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle("Reference images (top row) and their metamers (method | generator | layer)", fontsize=9)
    return fig
