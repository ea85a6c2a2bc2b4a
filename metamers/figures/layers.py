"""Figures against the depth of the generation layer: recognizability and the metamer test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def _depth_panels(panels: Sequence[tuple[str, pd.DataFrame]], ylabel: str) -> plt.Figure:
    """One panel per ``(title, frame)``: column ``pct`` against the generation layer's
    position, one line per generator and style per method; a dotted chance line where the
    frame has a ``chance`` column. Where it has an ``n`` column, a row of bars under each panel
    gives how many metamers stand behind each point (hatched: the second method, and so on)."""
    from .style import plt, sns

    with_counts = all("n" in frame for _, frame in panels)
    fig, axes = plt.subplots(
        2 if with_counts else 1, len(panels), figsize=(4.2 * len(panels) + 1.5, 5.0 if with_counts else 3.6),
        sharey="row", sharex="col", squeeze=False, gridspec_kw={"height_ratios": [3, 1.2]} if with_counts else None,
    )
    positions = np.arange(1, max(int(frame["position"].max()) for _, frame in panels) + 1)
    generators = list(dict.fromkeys(g for _, frame in panels for g in frame["generator"]))
    methods = list(dict.fromkeys(m for _, frame in panels for m in frame["method"]))
    palette = dict(zip(generators, sns.color_palette("deep", len(generators))))
    series = [(g, m) for g in generators for m in methods]
    hatches = ["", "////", "..", "xx", "\\\\"]
    for c, (title, frame) in enumerate(panels):
        ax = axes[0, c]
        sns.lineplot(data=frame, x="position", y="pct", hue="generator", style="method", markers=True, ax=ax,
                     palette=palette, hue_order=generators, style_order=methods, legend=c == len(panels) - 1)
        if "chance" in frame:
            ax.axhline(100 * frame["chance"].iloc[0], color="0.5", ls=":", lw=1, label="chance")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_ylim(-3, 103)
        ax.set_xticks(positions)
        ax.set_xlabel("generation layer (position, early → late)")
        if with_counts:
            ax.set_xlabel("")
            bars = axes[1, c]
            width = 0.8 / len(series)
            for k, (g, m) in enumerate(series):
                sub = frame[(frame["generator"] == g) & (frame["method"] == m)]
                x = sub["position"].to_numpy() - 0.4 + width * (k + 0.5)
                bars.bar(x, sub["n"], width=width, color=palette[g], hatch=hatches[methods.index(m) % len(hatches)],
                         edgecolor="white", linewidth=0.5)
                for xi, n in zip(x, sub["n"]):
                    bars.text(xi, n, f"{n:.0f}", ha="center", va="bottom", fontsize=5.5)
            bars.set_ylabel("passing\nmetamers (n)")
            bars.set_xlabel("generation layer (position, early → late)")
            bars.set_xticks(positions)
            bars.margins(y=0.25)
    handles, labels = axes[0, -1].get_legend_handles_labels()
    if axes[0, -1].get_legend() is not None:
        axes[0, -1].get_legend().remove()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def recognizability_by_layer(transfer: pd.DataFrame) -> plt.Figure:
    """% of the passing metamers that an evaluator recognizes against the depth of the
    generation layer; the number beside each point is how many metamers passed there (a layer
    with none has no point)."""
    df = transfer.assign(pct=100 * transfer["accuracy_metamers_passing"], position=transfer["layer_index"] + 1,
                         n=transfer["n_metamers_passing"])
    panels = [(f"evaluator: {e}", df[df["evaluator"] == e]) for e in dict.fromkeys(df["evaluator"])]
    fig = _depth_panels(panels, "passing metamers recognized (% correct)")
    fig.suptitle("Recognizability of metamers that passed the metamer test (bars: how many passed)",
                 fontsize=9, y=1.02)
    return fig


def metamer_test_by_layer(summary: pd.DataFrame) -> plt.Figure:
    """% of metamers passing the metamer test against the depth of the generation layer."""
    df = summary.assign(position=summary["layer_index"] + 1)
    panels = [
        ("statistics at or above the null threshold", "fraction_statistics_pass"),
        ("same class as the reference", "fraction_class_pass"),
        ("metamer test (both)", "fraction_metamers"),
    ]
    return _depth_panels([(title, df.assign(pct=100 * df[column])) for title, column in panels],
                         "metamers passing (%)")
