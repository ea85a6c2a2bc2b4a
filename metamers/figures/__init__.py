"""Publication figures, drawn from the small tables only (never from the artifacts).

Each figure is registered in :data:`FIGURES` with the tables (under ``results/tables``) it
is drawn from and the config-derived options of its drawing function; the workflow makes one
``figure`` job per registered figure. matplotlib is imported when a figure is drawn, not when
this registry is read (the workflow reads it while it builds its DAG); :mod:`.style` sets the
theme and saves figures. Every drawing function takes its tables in that order
(CSV tables as pandas frames, ``.npz`` tables as dicts of arrays) and returns a Figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..registry import Registry
from .convergence import iterations_vs_distance, pass_by_iteration
from .diversity import diversity_vs_pass, member_grid, naturalness_by_depth
from .grid import grid_images, metamer_grid
from .inversion import inversion_panels
from .joint import joint_sets, joint_vs_single
from .layers import metamer_test_by_layer, recognizability_by_layer
from .nulls import null_histograms
from .relations import transfer_by_relation, transfer_matrix
from .representation import (
    mds_embedding,
    msp_histograms,
    ood_by_layer,
    representation_heatmap,
    representation_vs_recognizability,
)
from .transfer import transfer_heatmap


@dataclass(frozen=True)
class Figure:
    """A registered figure.

    Attributes
    ----------
    draw
        ``(*tables, **options) -> matplotlib Figure``.
    tables
        The file names of its tables under ``results/tables``, in the order ``draw`` takes them.
    options
        ``config -> keyword options`` of ``draw``.
    drawn
        ``config -> bool``: whether the study draws it (a figure of an optional stage is not drawn
        when the config turns the stage off).
    """

    draw: Callable[..., Any]
    tables: tuple[str, ...]
    options: Callable[[Mapping[str, Any]], dict[str, Any]] = field(default=lambda config: {})
    drawn: Callable[[Mapping[str, Any]], bool] = field(default=lambda config: True)


def _null_layers(config: Mapping[str, Any]) -> dict[str, Any]:

    return {"layers": config.null_layers()}


def _inverts(config: Mapping[str, Any]) -> bool:

    return bool(config.inversion_layers())


def _model_order(config: Mapping[str, Any]) -> dict[str, Any]:
    from ..relations import model_order

    return {"order": model_order(config)}


def _joints(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"joints": joint_sets(config)}


def _diverse(config: Mapping[str, Any]) -> bool:
    return bool(config.diversity_methods())


def _generation_targets(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"targets": {g: {layer: [[t.model, t.layer] for t in config.generator_targets(g, layer)]
                            for layer in config.generator_layers(g)} for g in config["generators"]}}


def study_figures(config: Mapping[str, Any]) -> list[str]:
    """The names of the figures a (validated) config's study draws, in registry order."""
    return [name for name in FIGURES if FIGURES[name].drawn(config)]


#: Figure name -> :class:`Figure`.
FIGURES: Registry[Figure] = Registry("figure")
FIGURES.register("metamer_grid", Figure(metamer_grid, ("metamer_grid.npz",)))
FIGURES.register("transfer_heatmap", Figure(transfer_heatmap, ("transfer.csv",)))
FIGURES.register("recognizability_by_layer", Figure(recognizability_by_layer, ("transfer.csv",)))
FIGURES.register("metamer_test_by_layer", Figure(metamer_test_by_layer, ("metamer_test_summary.csv",)))
FIGURES.register("pass_by_iteration", Figure(pass_by_iteration, ("metamer_test.csv",)))
FIGURES.register("iterations_vs_distance", Figure(iterations_vs_distance, ("metamer_test.csv",)))
FIGURES.register("null_histograms", Figure(null_histograms,
                                           ("null_histograms.csv", "null_thresholds.csv", "metamer_test.csv"),
                                           _null_layers))
FIGURES.register("representation_heatmap", Figure(representation_heatmap, ("representation.csv",)))
FIGURES.register("representation_vs_recognizability",
                 Figure(representation_vs_recognizability, ("representation.csv", "transfer.csv")))
FIGURES.register("ood_by_layer", Figure(ood_by_layer, ("ood.csv",)))
FIGURES.register("msp_histograms", Figure(msp_histograms, ("representation_images.csv",)))
FIGURES.register("mds_embedding", Figure(mds_embedding, ("representation_images.csv",)))
FIGURES.register("transfer_by_relation", Figure(transfer_by_relation, ("transfer_by_relation.csv",)))
FIGURES.register("transfer_matrix", Figure(transfer_matrix, ("transfer_pairs.csv",), _model_order))
FIGURES.register("inversion_panels", Figure(inversion_panels, ("inversions.csv", "inversions.npz"), drawn=_inverts))
FIGURES.register("member_grid", Figure(member_grid, ("metamer_grid.npz",), drawn=_diverse))
FIGURES.register("diversity_vs_pass", Figure(diversity_vs_pass, ("diversity_summary.csv",), drawn=_diverse))
FIGURES.register("naturalness_by_depth", Figure(naturalness_by_depth, ("image_quality.csv", "layer_depths.csv"),
                                                _generation_targets))
FIGURES.register("joint_vs_single", Figure(joint_vs_single, ("transfer.csv",), _joints,
                                           drawn=lambda config: bool(joint_sets(config))))

__all__ = ["FIGURES", "Figure", "diversity_vs_pass", "grid_images", "member_grid", "naturalness_by_depth", "inversion_panels", "iterations_vs_distance", "joint_vs_single", "mds_embedding",
           "metamer_grid", "study_figures",
           "metamer_test_by_layer", "msp_histograms", "null_histograms", "ood_by_layer", "pass_by_iteration",
           "recognizability_by_layer", "representation_heatmap", "representation_vs_recognizability",
           "transfer_by_relation", "transfer_heatmap", "transfer_matrix"]
