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
    """Per method: rows generator x layer (early to late), columns evaluator; each cell the % of
    the metamers that passed the metamer test which the evaluator recognizes, with their number
    (grey, "n=0": no passing metamer)."""
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
        sns.heatmap(
            table, ax=ax, vmin=0, vmax=100, cmap="viridis", annot=labels, fmt="", annot_kws={"fontsize": 7},
            cbar=ax is axes[0, -1], cbar_kws={"label": "passing metamers recognized (% correct)"},
            linewidths=0.5, linecolor="white",
        )
        for (r, c), p in np.ndenumerate(table.to_numpy()):  # seaborn leaves the empty (grey) cells bare
            if np.isnan(p):
                ax.text(c + 0.5, r + 0.5, "n=0", ha="center", va="center", fontsize=7, color="0.3")
        ax.set_title(f"method: {method}")
        ax.set_xlabel("evaluator model")
        ax.set_ylabel("generator | layer" if ax is axes[0, 0] else "")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Recognizability of metamers that passed the metamer test (n: their number)", fontsize=9)
    fig.tight_layout()
    return fig


def _depth_panels(panels: Sequence[tuple[str, pd.DataFrame]], ylabel: str) -> plt.Figure:
    """One panel per ``(title, frame)``: column ``pct`` against the generation layer's
    position, one line per generator and style per method; a dotted chance line where the
    frame has a ``chance`` column. Where it has an ``n`` column, a row of bars under each panel
    gives how many metamers stand behind each point (hatched: the second method, and so on)."""
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


#: Axis labels of the test statistics, with units.
STATISTIC_LABELS = {
    "spearman": "Spearman ρ",
    "pearson": "Pearson r",
    "snr_db": "SNR (dB, 20 log10)",
    "snr_db_feather2023": "SNR (dB, 10 log10)",
}


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


def null_histograms(
    histograms: pd.DataFrame, thresholds: pd.DataFrame, tests: pd.DataFrame, layers: Mapping[str, str]
) -> plt.Figure:
    """For each generator's chosen layer: the null of each statistic (grey), its threshold
    (dashed), and the statistics of the metamers generated and measured at that layer."""
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
            ax.set_xlabel(STATISTIC_LABELS.get(stat, stat))
            ax.set_ylabel("density" if c == 0 else "")
            ax.set_title(f"{gen} | {layer}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return fig
