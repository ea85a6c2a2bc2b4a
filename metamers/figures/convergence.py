"""Figures of how fast metamers pass the metamer test, and how far from their references they end.

Both read ``metamer_test.csv``: per metamer, its first passing iteration in the loop
(``pass_iteration``, -1 when it never passed or the method does not check) and its pixel distance
from the reference (``metamer_l2``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def _per_metamer(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per metamer, at its generation layer."""
    from ..stats.metamer_test import METAMER_KEY

    own = rows[rows["measured_layer"] == rows["layer"]]
    return own.drop_duplicates(METAMER_KEY).reset_index(drop=True)


def pass_by_iteration(rows: pd.DataFrame) -> plt.Figure:
    """% of the images whose metamer has passed the metamer test (at the generation layer, checked
    during synthesis) by each iteration: one panel per (generator, layer), one line per method."""
    from .style import plt, sns

    df = _per_metamer(rows)
    generators = list(dict.fromkeys(df["generator"]))
    layers = {g: list(dict.fromkeys(df.loc[df["generator"] == g].sort_values("layer_index")["layer"]))
              for g in generators}
    methods = list(dict.fromkeys(df["method"]))
    palette = dict(zip(methods, sns.color_palette("deep", len(methods))))
    ncols = max(len(v) for v in layers.values())
    fig, axes = plt.subplots(len(generators), ncols, figsize=(3.0 * ncols + 1.6, 2.6 * len(generators)),
                             sharey=True, squeeze=False)
    last = max(1, int(df["pass_iteration"].max()))
    for r, g in enumerate(generators):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(layers[g]):
                ax.axis("off")
                continue
            layer = layers[g][c]
            for m in methods:
                sub = df[(df["generator"] == g) & (df["layer"] == layer) & (df["method"] == m)]
                if sub.empty:
                    continue
                passed = np.sort(sub.loc[sub["pass_iteration"] >= 0, "pass_iteration"].to_numpy())
                x = np.concatenate([[1], np.maximum(passed, 1), [last * 1.5]])
                y = 100 * np.concatenate([[0], np.arange(1, len(passed) + 1), [len(passed)]]) / len(sub)
                ax.step(x, y, where="post", color=palette[m], label=m)
            ax.set_xscale("log")
            ax.set_ylim(-3, 103)
            ax.set_title(f"{g} · {layer}", fontsize=9)
            if r == len(generators) - 1:
                ax.set_xlabel("iteration (log scale)")
            if c == 0:
                ax.set_ylabel("images passed (%)")
    handles = [plt.Line2D([], [], color=palette[m], label=m) for m in methods]
    fig.legend(handles=handles, title="method", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle("First pass of the metamer test during synthesis (cumulative over images)", fontsize=10)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def iterations_vs_distance(rows: pd.DataFrame) -> plt.Figure:
    """First passing iteration against the metamer's pixel L2 distance from its reference, one
    point per image that passed during synthesis: one panel per generator, colour by method, marker
    by layer. A method that passes by staying near the reference sits at the left."""
    from .style import plt, sns

    df = _per_metamer(rows)
    df = df[df["pass_iteration"] >= 0].assign(iteration=lambda d: np.maximum(d["pass_iteration"], 1))
    generators = list(dict.fromkeys(_per_metamer(rows)["generator"]))
    fig, axes = plt.subplots(1, len(generators), figsize=(4.4 * len(generators) + 1.8, 3.8), sharey=True,
                             squeeze=False)
    methods = list(dict.fromkeys(rows["method"]))
    # markers in depth order: the layers of the generator with the most layers first (a joint
    # generator's first layer is its index 0, but need not be the shallowest)
    per_generator = {g: list(dict.fromkeys(sub.sort_values("layer_index", kind="stable")["layer"]))
                     for g, sub in rows.groupby("generator", sort=False)}
    layers = list(dict.fromkeys(layer for g in sorted(per_generator, key=lambda g: -len(per_generator[g]))
                                for layer in per_generator[g]))
    for c, g in enumerate(generators):
        ax = axes[0, c]
        sub = df[df["generator"] == g]
        if len(sub):
            sns.scatterplot(data=sub, x="metamer_l2", y="iteration", hue="method", style="layer", hue_order=methods,
                            style_order=layers, ax=ax, s=28, alpha=0.8, legend=c == len(generators) - 1)
        ax.set_yscale("log")
        ax.set_title(f"generator: {g}", fontsize=9)
        ax.set_xlabel("pixel L2 distance to the reference (8-bit images, [0, 1] scale)")
        ax.set_ylabel("first passing iteration (log scale)")
    legend = axes[0, -1].get_legend()
    if legend is not None:
        handles, labels = axes[0, -1].get_legend_handles_labels()
        legend.remove()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig
