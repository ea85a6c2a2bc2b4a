"""Figures of the representation test, drawn from ``representation.csv``, ``ood.csv`` and
``transfer.csv``: heatmaps of generation layer x evaluator layer, the representation test
against recognizability, and the out-of-distribution AUROC by generation layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd

#: Measures the figures show by default: RSA, CKA and the metamer test run by the evaluator.
DEFAULT_MEASURES = ("rsa_correlation_pearson", "debiased_cka", "at_threshold_all")
#: Axis labels of the measures that are not set measures.
PER_IMAGE_LABELS = {"at_threshold_all": "metamers at the evaluator's null threshold (fraction)"}
#: Short colour-bar labels of the heatmap's rows.
SHORT_LABELS = {"rsa_correlation_pearson": "RSA: Pearson r\n(1 - r RDMs)", "debiased_cka": "debiased CKA",
                "linear_cka": "linear CKA", "at_threshold_all": "fraction at the\nevaluator's threshold"}


def measure_label(measure: str) -> str:
    """A readable label of a measure of ``representation.csv``."""
    from ..stats.representation import MEASURES

    if measure in MEASURES:
        return MEASURES[measure].label
    if measure.startswith("null_percentile_"):
        return f"percentile in the evaluator's null ({measure.removeprefix('null_percentile_')}, %)"
    if measure.startswith("at_threshold_"):
        return PER_IMAGE_LABELS.get(measure, f"fraction at the null threshold ({measure.removeprefix('at_threshold_')})")
    return measure


def representation_heatmap(rows: pd.DataFrame, measures: Sequence[str] = DEFAULT_MEASURES) -> plt.Figure:
    """One heatmap per (method, measure) row and (generator, evaluator) column: generation layer
    (rows, early to late) x evaluator layer (columns, by depth), each cell the measure over the
    metamers that passed the metamer test (grey: fewer than the measure needs)."""
    from .style import annotated_heatmap, plt

    rows = rows[rows["passing_only"].astype(bool) & rows["measure"].isin(measures)]
    methods = list(dict.fromkeys(rows["method"]))
    pairs = list(dict.fromkeys(zip(rows["generator"], rows["evaluator"])))
    panel_rows = [(m, k) for m in methods for k in measures if ((rows["method"] == m) & (rows["measure"] == k)).any()]
    fig, axes = plt.subplots(len(panel_rows), len(pairs), figsize=(2.7 * len(pairs) + 1.2, 2.3 * len(panel_rows) + 0.6),
                             squeeze=False)
    for r, (method, measure) in enumerate(panel_rows):
        for c, (gen, evaluator) in enumerate(pairs):
            ax = axes[r, c]
            sub = rows[(rows["method"] == method) & (rows["measure"] == measure) & (rows["generator"] == gen)
                       & (rows["evaluator"] == evaluator)].sort_values(["layer_index", "evaluator_depth"])
            ax.set_facecolor("0.85")
            if sub.empty:
                ax.set_axis_off()
                continue
            table = sub.pivot_table(index="layer", columns="evaluator_layer", values="value", sort=False, dropna=False)
            values = rows.loc[rows["measure"] == measure, "value"]
            vmin = 0.0 if measure.startswith(("at_threshold", "null_percentile")) or not values.notna().any() \
                else min(0.0, float(values.min()))
            vmax = 100 if measure.startswith("null_percentile") else 1
            labels = np.vectorize(lambda v: "" if np.isnan(v) else f"{v:.2f}", otypes=[object])(table.to_numpy())
            annotated_heatmap(ax, table, labels, vmin, vmax, "magma", fontsize=6,
                              colorbar=SHORT_LABELS.get(measure, measure) if c == len(pairs) - 1 else None)
            ax.set_title(f"{method}\n{gen} → {evaluator}", fontsize=7)
            ax.set_xlabel("evaluator layer" if r == len(panel_rows) - 1 else "")
            ax.set_ylabel("generation layer" if c == 0 else "")
            ax.tick_params(axis="both", labelsize=6)
    fig.suptitle("Representation test of the metamers that passed the metamer test", fontsize=9)
    fig.tight_layout()
    return fig


def representation_points(rows: pd.DataFrame, transfer: pd.DataFrame, measure: str) -> pd.DataFrame:
    """One point per (method, generator, generation layer, evaluator): the evaluator's accuracy
    on the passing metamers and ``measure`` over them, averaged over the evaluator's layers."""
    keys = ["method", "generator", "layer", "evaluator"]
    mine = rows[rows["passing_only"].astype(bool) & (rows["measure"] == measure)]
    mine = mine.groupby(keys, sort=False)["value"].mean().rename("representation").reset_index()
    acc = transfer[[*keys, "accuracy_metamers_passing", "n_metamers_passing"]]
    return mine.merge(acc, on=keys, how="inner").dropna(subset=["representation", "accuracy_metamers_passing"])


#: Bootstrap samples and seed of :func:`correlation_interval` (a figure reads only tables).
CORRELATION_BOOTSTRAP, CORRELATION_SEED = 1000, 0


def correlation_interval(points: pd.DataFrame, confidence: float = 0.95):
    """The crossed interval (:func:`metamers.stats.crossed.crossed_interval`, Fisher's z scale) of
    the Pearson correlation between recognizability and the representation measure over
    ``points`` (:func:`representation_points`): generators and evaluators resampled together
    (one factor of models when every generator is its evaluator), the images as they are."""
    from ..stats.by_relation import model_factors
    from ..stats.crossed import crossed_interval, weighted_pearson

    values = points[["accuracy_metamers_passing", "representation"]].to_numpy(dtype=float)
    return crossed_interval(values, model_factors(points), CORRELATION_BOOTSTRAP, confidence, CORRELATION_SEED,
                            scale_name="fisher", statistic=weighted_pearson)


def representation_vs_recognizability(rows: pd.DataFrame, transfer: pd.DataFrame,
                                      measure: str = "debiased_cka") -> plt.Figure:
    """The representation test against recognizability: one point per (metamer set, evaluator),
    with their Pearson correlation and its crossed interval (:func:`correlation_interval`)."""
    from .style import plt, sns

    points = representation_points(rows, transfer, measure)
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    sns.scatterplot(points.assign(pct=100 * points["accuracy_metamers_passing"]), x="pct", y="representation",
                    hue="evaluator", style="method", ax=ax, s=40)
    r = np.corrcoef(points["accuracy_metamers_passing"], points["representation"])[0, 1] if len(points) > 2 else np.nan
    interval = correlation_interval(points) if len(points) > 2 else None
    span = (f" [{interval.low:.2f}, {interval.high:.2f}]" if interval is not None and np.isfinite(interval.low)
            else f" (no interval: {interval.note})" if interval is not None else "")
    ax.set_title(f"Pearson r = {r:.2f}{span} over {len(points)} (metamer set, evaluator) pairs\n"
                 "95 % interval over generators and evaluators (images fixed)", fontsize=8)
    ax.set_xlabel("passing metamers recognized by the evaluator (% correct)")
    ax.set_ylabel(f"{measure_label(measure)}\n(mean over the evaluator's layers)")
    if len(points):
        ax.legend(fontsize=6, frameon=False)
    else:
        ax.text(0.5, 0.5, "no metamer set with passing metamers", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def ood_by_layer(ood: pd.DataFrame) -> plt.Figure:
    """Per method: the AUROC that separates references from the passing metamers by each
    evaluator's maximum softmax probability, against the generation layer (one line per
    (generator, evaluator); 0.5: the evaluator is as confident on metamers as on references;
    with a method's diversity term, the mean over its members' sets)."""
    from .style import plt

    ood = ood[ood["passing_only"].astype(bool)]
    methods = list(dict.fromkeys(ood["method"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.4), squeeze=False, sharey=True)
    for ax, method in zip(axes[0], methods):
        sub = ood[ood["method"] == method]
        for (gen, evaluator), line in sub.groupby(["generator", "evaluator"], sort=False):
            line = line.groupby(["layer_index", "layer"])["auroc"].mean().reset_index()  # (over a term's members)
            ax.plot(line["layer"], line["auroc"], marker="o", label=f"{gen} → {evaluator}")
        ax.axhline(0.5, color="0.5", lw=0.8, ls="--")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"method: {method}", fontsize=8)
        ax.set_xlabel("generation layer")
        ax.set_ylabel("AUROC, references vs metamers (max softmax)")
        ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


def _single_reader(images: pd.DataFrame, generator: str, layer: str) -> tuple[str, str] | None:
    """The (evaluator, evaluator layer) an embedding panel shows for a generator's layer: the
    first evaluator that is another model than the generator (what a model outside it keeps;
    for a joint generator, the first evaluator); at the layer of the same name, else the
    evaluator's deepest."""
    mine = images[(images["generator"] == generator) & (images["layer"] == layer)]
    if mine.empty:
        return None
    evaluators = list(dict.fromkeys(mine["evaluator"]))
    evaluator = next((e for e in evaluators if e != generator), evaluators[0])
    layers = list(dict.fromkeys(mine.loc[mine["evaluator"] == evaluator, "evaluator_layer"]))
    return evaluator, layer if layer in layers else layers[-1]


def mds_embedding(images: pd.DataFrame) -> plt.Figure:
    """2-D classical MDS of references and metamers (correlation distance of an evaluator's
    activations), one panel per (generator, generation layer) of the first method, each metamer
    joined to its reference by a line (filled: passed the metamer test; open: failed); with a
    method's ``diversity``, its member 0 (each member's set has its own embedding)."""
    from .style import plt

    method = images["method"].iloc[0]
    images = images[(images["method"] == method) & (images["member"] == 0)]
    generators = list(dict.fromkeys(images["generator"]))
    layers = {g: list(dict.fromkeys(images.loc[images["generator"] == g].sort_values("layer_index")["layer"]))
              for g in generators}
    n_cols = max(len(v) for v in layers.values())
    fig, axes = plt.subplots(len(generators), n_cols, figsize=(2.6 * n_cols, 2.6 * len(generators)), squeeze=False)
    for r, g in enumerate(generators):
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(layers[g]):
                ax.set_axis_off()
                continue
            layer = layers[g][c]
            evaluator, evaluator_layer = _single_reader(images, g, layer)
            sub = images[(images["generator"] == g) & (images["layer"] == layer) & (images["evaluator"] == evaluator)
                         & (images["evaluator_layer"] == evaluator_layer)]
            ref = sub[sub["set"] == "reference"].set_index("image_id")
            met = sub[sub["set"] == "metamer"].set_index("image_id").reindex(ref.index)
            for i in ref.index:
                ax.plot([ref.at[i, "x"], met.at[i, "x"]], [ref.at[i, "y"], met.at[i, "y"]], color="0.7", lw=0.6, zorder=1)
            ax.scatter(ref["x"], ref["y"], s=14, color="0.2", label="reference", zorder=2)
            passed = met["passed_metamer_test"].astype(bool)
            ax.scatter(met.loc[passed, "x"], met.loc[passed, "y"], s=14, color="C3", label="metamer (passed)", zorder=3)
            ax.scatter(met.loc[~passed, "x"], met.loc[~passed, "y"], s=14, facecolors="none", edgecolors="C3",
                       label="metamer (failed)", zorder=3)
            ax.set_title(f"{g} · {layer}\nread by {evaluator} at {evaluator_layer}", fontsize=7)
            ax.set_xlabel("MDS 1 (correlation distance)", fontsize=7)
            ax.set_ylabel("MDS 2" if c == 0 else "", fontsize=7)
            ax.tick_params(labelsize=6)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(f"References and their metamers ({method})", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.965), ncol=3, fontsize=7, frameon=False)
    return fig


def msp_histograms(images: pd.DataFrame) -> plt.Figure:
    """Per (method, evaluator): histograms of the evaluator's maximum softmax probability on the
    references and on the metamers that passed the metamer test (every generator and layer)."""
    from .style import plt

    first_layer = images.groupby(["method", "generator", "layer", "evaluator"])["evaluator_layer"].transform("first")
    images = images[images["evaluator_layer"] == first_layer]  # one row per image: the MSP is the same at every layer
    methods = list(dict.fromkeys(images["method"]))
    evaluators = list(dict.fromkeys(images["evaluator"]))
    fig, axes = plt.subplots(len(methods), len(evaluators), figsize=(3.4 * len(evaluators), 2.6 * len(methods)),
                             squeeze=False, sharex=True)
    bins = np.linspace(0, 1, 21)
    for r, method in enumerate(methods):
        for c, evaluator in enumerate(evaluators):
            ax = axes[r, c]
            sub = images[(images["method"] == method) & (images["evaluator"] == evaluator)]
            refs = sub[sub["set"] == "reference"].drop_duplicates("image_id")["max_softmax"]
            mets = sub[(sub["set"] == "metamer") & sub["passed_metamer_test"].astype(bool)]["max_softmax"]
            ax.hist(refs, bins=bins, color="0.3", alpha=0.6, label=f"references (n={len(refs)})",
                    weights=np.full(len(refs), 100 / max(1, len(refs))))
            ax.hist(mets, bins=bins, color="C3", alpha=0.6, label=f"passing metamers (n={len(mets)})",
                    weights=np.full(len(mets), 100 / max(1, len(mets))))
            ax.set_title(f"{method} · read by {evaluator}", fontsize=8)
            ax.set_xlabel("maximum softmax probability")
            ax.set_ylabel("images (%)" if c == 0 else "")
            ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig
