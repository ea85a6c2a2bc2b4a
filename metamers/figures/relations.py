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
                  "rsa_correlation_pearson": "RSA (Pearson r of\n1 - r RDMs)", "linear_cka": "linear CKA"}


def bin_order(table: pd.DataFrame) -> list[str]:
    """The depth bins of ``table``, shallow to deep."""
    bins = table[["depth_bin", "depth_low", "depth_high"]].drop_duplicates()
    return bins.sort_values(["depth_low", "depth_high"])["depth_bin"].tolist()


def transfer_by_relation(table: pd.DataFrame) -> plt.Figure:
    """One panel per (measure, method): the measure against the depth bin of the generation
    layer, one line per relation between generator and evaluator, with its bootstrap interval
    over model pairs (bars); recognizability in percent."""
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
                low = scale * sub["ci_pairs_low"].to_numpy()
                high = scale * sub["ci_pairs_high"].to_numpy()
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
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, title="relation (generator → evaluator)", loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize=7, title_fontsize=8)
    fig.suptitle("Transfer of metamers by relation between models (bars: 95 % bootstrap interval over model pairs)",
                 fontsize=9)
    sns.despine(fig)
    fig.tight_layout()
    return fig
