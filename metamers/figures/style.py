"""Figure style and saving, shared by every figure module."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(context="paper", style="ticks", font_scale=1.1)


def save_figure(fig: plt.Figure, paths: Sequence[str | Path]) -> None:
    """Save ``fig`` to every path (the format follows the suffix), then close it."""
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200, bbox_inches="tight")
    plt.close(fig)


def annotated_heatmap(ax: plt.Axes, table, labels, vmin: float, vmax: float, cmap: str,
                      colorbar: str | None = None, fontsize: float = 6) -> None:
    """Draw ``table`` (a pandas frame: rows top to bottom, columns left to right) as a heatmap on
    ``ax``, each cell with its text from ``labels`` (same shape; "" for none), NaN cells left to
    the axes' face colour, and a colour bar labelled ``colorbar`` when given.

    seaborn's heatmap draws the whole figure once per heatmap (to see whether tick labels
    overlap), which makes a figure of many heatmaps quadratic in their number; this one does not."""
    import numpy as np

    values = np.ma.masked_invalid(table.to_numpy(dtype=float))
    mesh = ax.pcolormesh(values, vmin=vmin, vmax=vmax, cmap=cmap, edgecolors="white", linewidth=0.5)
    ax.set_xlim(0, values.shape[1])
    ax.set_ylim(values.shape[0], 0)  # the first row on top
    ax.set_xticks(np.arange(values.shape[1]) + 0.5, [str(c) for c in table.columns])
    ax.set_yticks(np.arange(values.shape[0]) + 0.5, [str(i) for i in table.index], rotation=0)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for (r, c), text in np.ndenumerate(np.asarray(labels, dtype=object)):
        if text and not np.ma.is_masked(values[r, c]):
            red, green, blue, _ = mesh.cmap(mesh.norm(values[r, c]))
            light = 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.408  # seaborn's rule for the text colour
            ax.text(c + 0.5, r + 0.5, text, ha="center", va="center", fontsize=fontsize,
                    color="0.15" if light else "white")
    if colorbar is not None:
        ax.figure.colorbar(mesh, ax=ax, label=colorbar)
