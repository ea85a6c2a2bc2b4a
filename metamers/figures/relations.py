"""Transfer by relation between models against the depth of the generation layer (the study's
headline figure), from ``transfer_by_relation.csv``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd

#: Axis labels of the measures.
MEASURE_LABELS = {"recognizability": "passing metamers recognized (%)", "debiased_cka": "debiased CKA",
                  "rsa_correlation_pearson": "RSA (Pearson r of\n1 - r RDMs)", "linear_cka": "linear CKA",
                  "debiased_cka_minus_baseline": "debiased CKA,\nmetamers minus baseline",
                  "rsa_correlation_pearson_minus_baseline": "RSA (Pearson r),\nmetamers minus baseline"}


def bin_order(table: pd.DataFrame) -> list[str]:
    """The depth bins of ``table``, shallow to deep."""
    bins = table[["depth_bin", "depth_low", "depth_high"]].drop_duplicates()
    return bins.sort_values(["depth_low", "depth_high"])["depth_bin"].tolist()


def transfer_by_relation(table: pd.DataFrame) -> plt.Figure:
    """One panel per (measure, method): the measure against the depth bin of the generation
    layer, one line per relation between generator and evaluator, with its crossed interval
    over images and models (bars; none where a relation has a single generator or evaluator);
    recognizability in percent."""
    from ..relations import RELATIONS
    from .style import plt, sns

    if table.empty:  # no metamer passed the metamer test: an empty panel that says so
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.text(0.5, 0.5, "no metamer passed the metamer test:\nnothing to aggregate by relation", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_xlabel("generation layer depth (0 input, 1 logits)")
        ax.set_ylabel(MEASURE_LABELS["recognizability"])
        return fig
    measures = [m for m in ["recognizability", *sorted(set(table["measure"]) - {"recognizability"})]
                if m in set(table["measure"])]
    methods = list(dict.fromkeys(table["method"]))
    bins = bin_order(table)
    relations = [r for r in RELATIONS if r in set(table["relation"])]
    palette = dict(zip(relations, sns.color_palette("colorblind", len(relations))))
    fig, axes = plt.subplots(len(measures), len(methods), figsize=(4.4 * len(methods) + 2.4, 3.0 * len(measures) + 0.6),
                             squeeze=False, sharex=True, sharey="row")
    for r, measure in enumerate(measures):
        scale = 100 if measure == "recognizability" else 1
        for c, method in enumerate(methods):
            ax = axes[r, c]
            for k, rel in enumerate(relations):
                sub = table[(table["measure"] == measure) & (table["method"] == method) & (table["relation"] == rel)]
                if sub.empty:
                    continue
                sub = sub.set_index("depth_bin").reindex([b for b in bins if b in set(sub["depth_bin"])])
                x = np.array([bins.index(b) for b in sub.index]) + (k - (len(relations) - 1) / 2) * 0.06
                y = scale * sub["value"].to_numpy()
                low = scale * sub["ci_low"].to_numpy()
                high = scale * sub["ci_high"].to_numpy()
                err = np.vstack([np.where(np.isnan(low), 0, y - low), np.where(np.isnan(high), 0, high - y)])
                ax.errorbar(x, y, yerr=err, marker="o", ms=4, lw=1.5, capsize=2, color=palette[rel],
                            label=rel.replace("_", " "))
            ax.set_title(f"{method}", fontsize=9)
            ax.set_ylabel(MEASURE_LABELS.get(measure, measure) if c == 0 else "")
            ax.set_xticks(range(len(bins)), bins, rotation=20)
            if r == len(measures) - 1:
                ax.set_xlabel("generation layer depth (0 input, 1 logits)")
            if measure == "recognizability":
                ax.set_ylim(-3, 103)
            if measure.endswith("_minus_baseline"):  # 0: the metamers keep no more than other images of the class
                ax.axhline(0, color="0.5", lw=0.8, ls="--")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, title="relation (generator → evaluator)", loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize=7, title_fontsize=8)
    level = f"{100 * float(table['confidence'].iloc[0]):g} %" if "confidence" in table else "the"
    fig.suptitle(f"Transfer of metamers by relation between models (bars: {level} interval over images and models "
                 "together)", fontsize=9)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def transfer_matrix(pairs: pd.DataFrame, order: list[str] | None = None) -> plt.Figure:
    """The full generator x evaluator matrix of recognizability per depth bin (columns of panels)
    and method (rows): each cell the percentage of the generator's passing metamers, at its
    generation layers in the bin, that the evaluator recognizes (pooled over those layers);
    models ordered by ``order`` (family, then training, then instance), joint generators last.
    Grey: no passing metamer."""
    from .style import annotated_heatmap, plt

    order = list(order or dict.fromkeys([*pairs["evaluator"], *pairs["generator"]]))
    methods = list(dict.fromkeys(pairs["method"]))
    bins = bin_order(pairs) if len(pairs) else []
    generators = sorted(dict.fromkeys(pairs["generator"]), key=lambda g: (g not in order, order.index(g) if g in order
                                                                           else 0, g))
    evaluators = sorted(dict.fromkeys(pairs["evaluator"]), key=lambda e: order.index(e) if e in order else len(order))
    if not methods or not bins:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.text(0.5, 0.5, "no metamer passed the metamer test", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("evaluator")
        ax.set_ylabel("generator")
        return fig
    fig, axes = plt.subplots(len(methods), len(bins), squeeze=False,
                             figsize=(max(0.5 * len(evaluators), 2.4) * len(bins) + 3.0,
                                      (0.4 * len(generators) + 1.6) * len(methods) + 0.6))
    for r, method in enumerate(methods):
        for c, label in enumerate(bins):
            ax = axes[r, c]
            sub = pairs[(pairs["method"] == method) & (pairs["depth_bin"] == label)]
            hits = (sub["accuracy_metamers_passing"] * sub["n_metamers_passing"]).groupby(
                [sub["generator"], sub["evaluator"]]).sum()
            counts = sub.groupby(["generator", "evaluator"])["n_metamers_passing"].sum()
            table = (100 * hits / counts).unstack().reindex(index=generators, columns=evaluators)
            labels = np.vectorize(lambda v: "" if np.isnan(v) else f"{v:.0f}", otypes=[object])(table.to_numpy())
            ax.set_facecolor("0.85")
            annotated_heatmap(ax, table, labels, 0, 100, "viridis", fontsize=5,
                              colorbar="recognized (%)" if c == len(bins) - 1 else None)
            ax.set_title(f"{method}\ndepth {label}", fontsize=8)
            ax.tick_params(axis="x", rotation=90, labelsize=6)
            ax.tick_params(axis="y", labelsize=6)
            ax.set_xlabel("evaluator" if r == len(methods) - 1 else "")
            ax.set_ylabel("generator" if c == 0 else "")
    fig.suptitle("Recognizability of passing metamers, generator x evaluator, per depth of the generation layer",
                 fontsize=9)
    fig.tight_layout()
    return fig
