"""The inversion panels: what each evaluator layer keeps of a reference and of its metamers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def _hwc(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``(C, H, W)`` uint8 -> what imshow takes, and its colour map."""
    return (image[0], "gray") if image.shape[0] == 1 else (np.transpose(image, (1, 2, 0)), None)


def panel_layout(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The panels of :func:`inversion_panels`, one dict per drawn image: ``block`` (image id,
    method), ``grid_row`` and ``grid_col`` within the figure, ``what`` ("source" or "inverted"),
    the table ``row`` whose pixels it shows, and its label. Blocks: per reference image (table
    order), per method; columns: the reference, then its metamers (generator, generation layer);
    the block's first row shows those images, each further row their inversions at one
    (evaluator, evaluator layer)."""
    panels = []
    methods = [m for m in dict.fromkeys(table.loc[table["kind"] == "metamer", "method"])]
    eval_layers = list(dict.fromkeys(zip(table["evaluator"], table["evaluator_layer"])))
    sets = list(dict.fromkeys(zip(table.loc[table["kind"] == "metamer", "generator"],
                                  table.loc[table["kind"] == "metamer", "layer"])))
    grid_row = 0
    for image_id in dict.fromkeys(table["image_id"]):
        for method in methods or [""]:
            columns = [("reference", "", "", "")] + [("metamer", method, g, layer) for g, layer in sets]
            for r, (evaluator, ev_layer) in enumerate([(None, None), *eval_layers]):
                for c, (kind, m, g, layer) in enumerate(columns):
                    rows = table[(table["image_id"] == image_id) & (table["kind"] == kind)
                                 & (table["evaluator"] == (evaluator if evaluator else eval_layers[0][0]))
                                 & (table["evaluator_layer"] == (ev_layer if ev_layer else eval_layers[0][1]))]
                    if kind == "metamer":
                        rows = rows[(rows["method"] == m) & (rows["generator"] == g) & (rows["layer"] == layer)]
                    if rows.empty:
                        continue
                    row = rows.iloc[0]
                    panels.append({"block": (str(image_id), method), "grid_row": grid_row + r, "grid_col": c,
                                   "what": "source" if evaluator is None else "inverted", "row": int(row["row"]),
                                   "reference_ssim": float(row["reference_ssim"]),
                                   "row_label": (f"image {image_id}\n{method}" if evaluator is None
                                                 else f"{evaluator}\n{ev_layer}"),
                                   "col_label": "reference" if kind == "reference" else f"{g}\n{layer}"})
            grid_row += 1 + len(eval_layers)
    return panels


def inversion_panels(table: pd.DataFrame, pixels: Mapping[str, np.ndarray]) -> plt.Figure:
    """For each inverted reference and each method: the reference and its metamers (first row of
    a block, one column per generator and generation layer) and, below each, its inversion by
    every evaluator layer (one row each; the number under an inversion is its SSIM with the
    reference). Where a metamer's inversion looks like the reference's, that layer keeps of the
    metamer what it keeps of the reference."""
    from .style import plt

    panels = panel_layout(table)
    if not panels:
        raise ValueError("the inversion table has no rows (inversion.images is 0?)")
    n_rows = 1 + max(p["grid_row"] for p in panels)
    n_cols = 1 + max(p["grid_col"] for p in panels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(0.85 * n_cols + 1.6, 0.95 * n_rows + 0.8), squeeze=False,
                             layout="constrained")
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    for ax in axes.flat:
        ax.axis("off")
    for p in panels:
        ax = axes[p["grid_row"], p["grid_col"]]
        image, cmap = _hwc(pixels["source" if p["what"] == "source" else "inverted"][p["row"]])
        ax.axis("on")
        ax.imshow(image, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(p["what"] == "source")
        if p["what"] == "inverted":
            ax.set_xlabel(f"{p['reference_ssim']:.2f}", fontsize=5, labelpad=1)
        if p["grid_row"] == 0:
            ax.set_title(p["col_label"], fontsize=6)
        if p["grid_col"] == 0:
            ax.set_ylabel(p["row_label"], rotation=0, ha="right", va="center", fontsize=6)
    fig.suptitle("Inversions (Mahendran and Vedaldi 2015) of each evaluator layer's representation of a reference "
                 "and of its metamers\n(framed rows: the images; below each: its inversion by the row's evaluator "
                 "layer, with its SSIM to the reference)", fontsize=8)
    return fig
