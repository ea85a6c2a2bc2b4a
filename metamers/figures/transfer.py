"""The transfer heatmap: how well each evaluator recognizes each generator's passing metamers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def transfer_heatmap(transfer: pd.DataFrame) -> plt.Figure:
    """Per method: rows generator x layer (early to late), columns evaluator; each cell the % of
    the metamers that passed the metamer test which the evaluator recognizes, with their number
    (grey, "n=0": no passing metamer)."""
    from .style import annotated_heatmap, plt

    methods = list(dict.fromkeys(transfer["method"]))
    evaluators = list(dict.fromkeys(transfer["evaluator"]))
    n_rows = transfer.groupby(["generator", "layer"]).ngroups
    fig, axes = plt.subplots(
        1, len(methods), figsize=(1.2 + 1.3 * len(evaluators) * len(methods) + 1.5, 0.5 * n_rows + 1.8),
        squeeze=False, sharey=True,
    )
    for ax, method in zip(axes[0], methods):
        sub = transfer[transfer["method"] == method].sort_values(["generator", "layer_index"])
        sub = sub.assign(row=sub["generator"] + " | " + sub["layer"], pct=100 * sub["accuracy_metamers_passing"])
        table = sub.pivot_table(index="row", columns="evaluator", values="pct", sort=False, dropna=False)
        counts = sub.pivot_table(index="row", columns="evaluator", values="n_metamers_passing", sort=False)
        table, counts = table.reindex(columns=evaluators), counts.reindex(index=table.index, columns=evaluators)
        labels = np.vectorize(lambda p, n: "" if np.isnan(p) else f"{p:.0f}\nn={n:.0f}")(
            table.to_numpy(), counts.to_numpy())
        ax.set_facecolor("0.85")
        annotated_heatmap(ax, table, labels, 0, 100, "viridis", fontsize=7,
                          colorbar="passing metamers recognized (% correct)" if ax is axes[0, -1] else None)
        for (r, c), p in np.ndenumerate(table.to_numpy()):  # the empty (grey) cells say why
            if np.isnan(p):
                ax.text(c + 0.5, r + 0.5, "n=0", ha="center", va="center", fontsize=7, color="0.3")
        ax.set_title(f"method: {method}")
        ax.set_xlabel("evaluator model")
        ax.set_ylabel("generator | layer" if ax is axes[0, 0] else "")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Recognizability of metamers that passed the metamer test (n: their number)", fontsize=9)
    fig.tight_layout()
    return fig
