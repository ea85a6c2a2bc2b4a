"""Figures of several metamers per reference and of image quality: the members of a few
references side by side, diversity against pass rate per weight, and naturalness against
generation depth per generator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts.metamers import MetamerBatch
from .grid import display_pixels

if TYPE_CHECKING:  # (the registry of figures is read without pandas or matplotlib)
    import matplotlib.pyplot as plt
    import pandas as pd

#: References per (method, generator, layer) in the members figure.
MEMBER_REFERENCES = 3


def member_images(batches: Sequence[MetamerBatch], chosen: Sequence[str], shape: Sequence[int],
                  count: int = MEMBER_REFERENCES) -> dict[str, np.ndarray]:
    """The pixels of the members figure: for every (method, generator, layer) whose artifacts hold
    several metamers per reference, the first ``count`` of the ``chosen`` references they hold,
    each with its ``K`` metamers. Returns ``member_rows`` (R,) labels
    (``method | generator | layer | image``) and ``member_images`` ``(R, 1 + K, H, W, C)`` uint8
    (the reference first; every image adapted to ``shape``), or empty arrays when no artifact has
    several members."""
    rows, images = [], []
    k = 1 + max((int(b.member.max()) for b in batches if len(b.member)), default=0)
    if k < 2:
        return {"member_rows": np.asarray([], dtype=str), "member_images": np.zeros((0, 1, *shape[1:], shape[0]),
                                                                                       np.uint8)}

    keys = list(dict.fromkeys((b.attrs["method"], b.attrs["generator"], b.attrs["layer"]) for b in batches
                              if len(b.member) and int(b.member.max()) == k - 1))
    for key in keys:
        group = [b for b in batches if (b.attrs["method"], b.attrs["generator"], b.attrs["layer"]) == key]
        found = {}
        for b in group:
            for r, (i, m) in enumerate(zip(b.image_ids, b.member)):
                found.setdefault(i, {"reference": b.reference[r]})[int(m)] = b.metamer_uint8[r]
        for i in [i for i in chosen if i in found][:count]:
            rows.append(" | ".join((*key, str(i))))
            images.append(np.stack([display_pixels(found[i]["reference"], shape),
                                    *[display_pixels(found[i][m], shape) for m in range(k)]]))
    return {"member_rows": np.asarray(rows), "member_images": np.stack(images)}


def member_grid(grid: Mapping[str, Any]) -> plt.Figure:
    """Each row a reference (first column) and its metamers from one method with a diversity term
    (one column per member)."""
    from .style import plt

    images, rows = grid["member_images"], list(grid["member_rows"])
    if not len(rows):
        raise ValueError("the metamer grid table holds no references with several metamers (no method has a "
                         "diversity term with k above 1)")
    n_rows, n_cols = images.shape[:2]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(0.9 * n_cols + 3.2, 0.9 * n_rows + 0.6), squeeze=False,
                             layout="constrained")
    grey = images.shape[-1] == 1
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.imshow(images[r, c, ..., 0] if grey else images[r, c], cmap="gray" if grey else None, vmin=0,
                      vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("reference" if c == 0 else f"member {c - 1}", fontsize=7)
        axes[r, 0].set_ylabel(rows[r], rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle("Several metamers of one reference (method | generator | layer | image)", fontsize=9)
    return fig


def diversity_vs_pass(summary: pd.DataFrame) -> plt.Figure:
    """Per (generator, layer) and method: the members' mean pairwise pixel distance relative to the
    mean distance between different references, against the fraction of members that pass the
    metamer test; points labelled by the method's diversity weight (weight 0: independent seeds)."""
    from .style import plt

    pixels = summary[summary["space"] == "pixels"]
    panels = list(dict.fromkeys(zip(pixels["generator"], pixels["layer"])))
    if not panels:
        raise ValueError("diversity_summary.csv has no pixel rows")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False, sharey=True)
    for ax, (gen, layer) in zip(axes[0], panels):
        sub = pixels[(pixels["generator"] == gen) & (pixels["layer"] == layer)].sort_values("weight")
        ax.errorbar(100 * sub["pass_fraction"], sub["relative_mean"],
                    yerr=[sub["relative_mean"] - sub["ci_low"], sub["ci_high"] - sub["relative_mean"]], fmt="o-",
                    color="C0", ecolor="0.6", capsize=2, ms=4)
        for r in sub.itertuples():
            ax.annotate(f"{r.method}\nw={r.weight:g}", (100 * r.pass_fraction, r.relative_mean), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlim(-5, 105)
        ax.set_title(f"{gen} · {layer}", fontsize=8)
        ax.set_xlabel("members passing the metamer test (%)", fontsize=8)
    axes[0, 0].set_ylabel("mean pairwise pixel distance\n(relative to between references)", fontsize=8)
    fig.suptitle("Diversity of a reference's metamers against their pass rate (95 % intervals over references)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def naturalness_by_depth(quality: pd.DataFrame, depths: pd.DataFrame, targets: Mapping[str, Mapping[str, list]],
                         metric: str = "niqe") -> plt.Figure:
    """Per method, the median ``metric`` (default NIQE; lower: more natural) of the metamers that
    passed the metamer test against the generation layer's normalized depth (a joint generator's
    layer: the mean of its targets' depths), one line per generator; the references' median as a
    dashed line."""
    from .style import plt

    known = {(r.model, r.layer): float(r.depth) for r in depths.itertuples()}
    depth = {(g, layer): float(np.mean([known[(m, t)] for m, t in specs])) for g, by_layer in targets.items()
             for layer, specs in by_layer.items()}
    mets = quality[(quality["kind"] == "metamer") & quality["passed_metamer_test"].astype(bool)].copy()
    mets["depth"] = [depth.get((g, layer), np.nan) for g, layer in zip(mets["generator"], mets["layer"])]
    reference = float(quality.loc[quality["kind"] == "reference", metric].median())
    methods = list(dict.fromkeys(quality.loc[quality["kind"] == "metamer", "method"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods), 3.0), squeeze=False, sharey=True)
    for ax, method in zip(axes[0], methods):
        sub = mets[mets["method"] == method]
        for c, (gen, rows) in enumerate(sub.groupby("generator", sort=False)):
            line = rows.groupby("depth")[metric].median()
            ax.plot(line.index, line.values, "o-", color=f"C{c}", ms=4, label=gen)
        ax.axhline(reference, color="0.3", ls="--", lw=1, label="references")
        ax.set_title(method, fontsize=8)
        ax.set_xlabel("generation layer depth (normalized)", fontsize=8)
        ax.set_xlim(-0.05, 1.05)
    axes[0, 0].set_ylabel(f"median {metric.upper()} of passing metamers\n(lower: more natural)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes[0, 1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
    fig.suptitle("How natural metamers look by generation depth", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.8, 1))
    return fig
