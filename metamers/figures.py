"""Publication figures, drawn from the small tables only (never from the artifacts).

Each function takes a table (or the grid's pixel table) and returns a matplotlib Figure;
:func:`save_figure` writes it in every requested format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(context="paper", style="ticks", font_scale=1.1)


def save_figure(fig: plt.Figure, paths: Sequence[str | Path]) -> None:
    """Save ``fig`` to every path (the format follows the suffix), then close it."""
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200, bbox_inches="tight")
    plt.close(fig)


def metamer_grid(grid: Mapping[str, Any]) -> plt.Figure:
    """References in the first row, then one row of metamers per (method, generator, layer)."""
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


def transfer_heatmap(transfer: pd.DataFrame) -> plt.Figure:
    """Per method: rows generator x layer (early to late), columns evaluator, cells % correct."""
    methods = list(dict.fromkeys(transfer["method"]))
    evaluators = list(dict.fromkeys(transfer["evaluator"]))
    n_rows = transfer.groupby(["generator", "layer"]).ngroups
    fig, axes = plt.subplots(
        1, len(methods), figsize=(1.2 + 1.1 * len(evaluators) * len(methods) + 1.5, 0.4 * n_rows + 1.8),
        squeeze=False, sharey=True,
    )
    for ax, method in zip(axes[0], methods):
        sub = transfer[transfer["method"] == method].sort_values(["generator", "layer_index"])
        sub = sub.assign(row=sub["generator"] + " | " + sub["layer"], pct=100 * sub["accuracy_metamer"])
        table = sub.pivot_table(index="row", columns="evaluator", values="pct", sort=False)[evaluators]
        sns.heatmap(
            table, ax=ax, vmin=0, vmax=100, cmap="viridis", annot=True, fmt=".0f",
            cbar=ax is axes[0, -1], cbar_kws={"label": "metamers recognized (% correct)"},
            linewidths=0.5, linecolor="white",
        )
        ax.set_title(f"method: {method}")
        ax.set_xlabel("evaluator model")
        ax.set_ylabel("generator | layer" if ax is axes[0, 0] else "")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def recognizability_by_layer(transfer: pd.DataFrame) -> plt.Figure:
    """% of metamers an evaluator recognizes against the depth of the generation layer."""
    df = transfer.assign(
        pct=100 * transfer["accuracy_metamer"],
        position=transfer["layer_index"] + 1,
    )
    evaluators = list(dict.fromkeys(df["evaluator"]))
    fig, axes = plt.subplots(1, len(evaluators), figsize=(4.2 * len(evaluators) + 1.5, 3.6),
                             squeeze=False, sharey=True)
    for ax, evaluator in zip(axes[0], evaluators):
        sub = df[df["evaluator"] == evaluator]
        sns.lineplot(data=sub, x="position", y="pct", hue="generator", style="method",
                     markers=True, dashes=True, ax=ax, legend=ax is axes[0, -1])
        ax.axhline(100 * sub["chance"].iloc[0], color="0.5", ls=":", lw=1, label="chance")
        ax.set_title(f"evaluator: {evaluator}")
        ax.set_xlabel("generation layer (position, early → late)")
        ax.set_ylabel("metamers recognized (% correct)")
        ax.set_ylim(-3, 103)
        ax.set_xticks(np.arange(1, int(df["position"].max()) + 1))
    handles, labels = axes[0, -1].get_legend_handles_labels()
    if axes[0, -1].get_legend() is not None:
        axes[0, -1].get_legend().remove()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig
