"""Null histograms: each statistic's null at a chosen layer, its threshold and the metamers' values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def null_histograms(
    histograms: pd.DataFrame, thresholds: pd.DataFrame, tests: pd.DataFrame, layers: Mapping[str, str]
) -> plt.Figure:
    """For each generator's chosen layer: the null of each statistic (grey), its threshold
    (dashed), and the statistics of the metamers generated and measured at that layer."""
    from ..stats.statistics import STATISTICS
    from .style import plt, sns

    generators = [g for g in layers if g in set(histograms["generator"])]
    statistics = list(dict.fromkeys(histograms["statistic"]))
    fig, axes = plt.subplots(len(generators), len(statistics), squeeze=False,
                             figsize=(3.6 * len(statistics) + 1.5, 2.8 * len(generators) + 0.4))
    palette = dict(zip(sorted(set(tests["method"])), sns.color_palette("deep")))
    for r, gen in enumerate(generators):
        layer = layers[gen]
        for c, stat in enumerate(statistics):
            ax = axes[r, c]
            hist = histograms[(histograms["generator"] == gen) & (histograms["layer"] == layer)
                              & (histograms["statistic"] == stat)]
            edges = np.append(hist["bin_left"].to_numpy(), hist["bin_right"].iloc[-1])
            density = hist["count"].to_numpy() / (hist["count"].sum() * np.diff(edges))
            ax.stairs(density, edges, fill=True, color="0.75", label="null (pairs of natural images)")
            thr = thresholds[(thresholds["generator"] == gen) & (thresholds["layer"] == layer)
                             & (thresholds["statistic"] == stat)].iloc[0]
            ax.axvline(thr["threshold"], color="0.2", ls="--", lw=1,
                       label=f"threshold ({thr['threshold_rule']} of {int(thr['n_pairs']):,} pairs)")
            own = tests[(tests["generator"] == gen) & (tests["layer"] == layer) & (tests["measured_layer"] == layer)
                        & (tests["statistic"] == stat)]
            finite = own["value"].replace([np.inf, -np.inf], np.nan).dropna()
            top = max(float(hist["bin_right"].max()), float(finite.max()) if len(finite) else float(thr["threshold"]))
            for method, values in own.groupby("method"):
                v = values["value"].replace(np.inf, top).dropna()
                ax.plot(v, np.zeros(len(v)), "|", ms=14, mew=1.5, color=palette[method], label=f"metamers: {method}")
            ax.set_xlabel(STATISTICS[stat].label)
            ax.set_ylabel("density" if c == 0 else "")
            ax.set_title(f"{gen} | {layer}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig
