"""Joint against single-model metamers, as models outside the joint set recognize them, from
``transfer.csv``: does optimizing several models at once leave fewer idiosyncratic invariances?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def joint_vs_single_rows(transfer: pd.DataFrame, joint: Mapping[str, Any]) -> pd.DataFrame:
    """The bars of one joint generator layer: for every method and every evaluator outside its
    members (held out), the recognizability of the joint generator's passing metamers and of each
    member's own single-model metamers at the member's layer (when the study made them).

    ``joint`` is ``{generator, layer, members: [[model, layer], ...]}``. Columns: ``method``,
    ``evaluator``, ``metamers`` (``joint: generator | layer`` or ``single: model | layer``),
    ``percent`` (NaN: no metamer passed), ``n`` (passing metamers) and ``chance`` (percent).
    """
    import pandas as pd

    members = [m for m, _ in joint["members"]]
    sets = [(f"joint: {joint['generator']} | {joint['layer']}", joint["generator"], joint["layer"])]
    sets += [(f"single: {m} | {layer}", m, layer) for m, layer in joint["members"]]
    held_out = transfer[~transfer["evaluator"].isin(members)]
    frames = []
    for label, generator, layer in sets:
        sub = held_out[(held_out["generator"] == generator) & (held_out["layer"] == layer)]
        if sub.empty:
            continue
        frames.append(pd.DataFrame({
            "method": sub["method"].to_numpy(), "evaluator": sub["evaluator"].to_numpy(), "metamers": label,
            "percent": 100 * sub["accuracy_metamers_passing"].to_numpy(dtype=float),
            "n": sub["n_metamers_passing"].to_numpy(), "chance": 100 * sub["chance"].to_numpy(dtype=float),
        }))
    columns = ["method", "evaluator", "metamers", "percent", "n", "chance"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def joint_vs_single(transfer: pd.DataFrame, joints: Sequence[Mapping[str, Any]] = ()) -> plt.Figure:
    """One panel per (joint generator layer, method): grouped bars of the percentage of passing
    metamers that each held-out evaluator (not a member) recognizes, the joint metamers beside each
    member's single-model ones; the dotted line is chance, and a missing bar had no passing metamer."""
    from .style import plt, sns

    panels = [(joint, method, rows[rows["method"] == method])
              for joint in joints for rows in [joint_vs_single_rows(transfer, joint)]
              for method in dict.fromkeys(rows["method"])]
    if not panels:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.text(0.5, 0.5, "no joint generator with models outside it:\nnothing to compare", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_xlabel("held-out evaluator model")
        ax.set_ylabel("passing metamers recognized (% correct)")
        return fig
    n_evaluators = max(rows["evaluator"].nunique() for _, _, rows in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(4.6 + 0.9 * n_evaluators, 2.6 * len(panels) + 1.0),
                             squeeze=False)
    for k, (ax, (joint, method, rows)) in enumerate(zip(axes[:, 0], panels)):
        order = list(dict.fromkeys(rows["evaluator"]))
        hues = list(dict.fromkeys(rows["metamers"]))
        sns.barplot(data=rows, x="evaluator", y="percent", hue="metamers", order=order, hue_order=hues, ax=ax,
                    palette=sns.color_palette("colorblind", len(hues)), errorbar=None)
        for chance in set(rows["chance"].dropna()):
            ax.axhline(chance, color="0.4", linestyle=":", linewidth=1)
        ax.set_ylim(0, 105)
        ax.set_title(f"{joint['generator']} at {joint['layer']}, method {method}", fontsize=9)
        last = k == len(panels) - 1 or panels[k + 1][0] is not joint
        ax.set_xlabel("held-out evaluator model (not a member of the joint set)" if last else "")
        ax.set_ylabel("passing metamers\nrecognized (% correct)")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(title="metamers", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Joint against single-model metamers, recognized by models outside the joint set", fontsize=9)
    fig.tight_layout()
    return fig


def joint_sets(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every (joint generator, layer) of a validated config with its members' (model, layer) targets."""

    return [{"generator": g, "layer": layer, "members": [[t.model, t.layer] for t in config.generator_targets(g, layer)]}
            for g in config["generators"] if config.is_joint(g) for layer in config.generator_layers(g)]
