"""Rules ``layer_depths`` and ``transfer_by_relation``: the normalized depth of every layer the
study matches or reads, and recognizability and the representation test by relation between
models (:mod:`metamers.relations`, :mod:`metamers.stats.by_relation`)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..artifacts.draws import check_aligned, read_draws
from ..relations import relation
from ..stats.by_relation import (
    BY_RELATION_COLUMNS,
    depth_bin,
    recognizability_by_relation,
    representation_by_relation,
    with_q_values,
)
from ..stats.baseline import DIFFERENCE
from ..tables import read_tables, write_table

log = logging.getLogger(__name__)

#: Columns of ``layer_depths.csv``: one row per (model, layer) the study matches or reads.
LAYER_DEPTH_COLUMNS = ["model", "layer", "depth", "n_modules"]
#: Columns of ``transfer_pairs.csv``: one row per (method, generator, generation layer, evaluator),
#: with its relation and depth bin and the evaluator's accuracy on the passing metamers.
PAIR_COLUMNS = ["method", "generator", "layer", "evaluator", "relation", "depth", "depth_bin", "depth_low",
                "depth_high", "n_metamers_passing", "accuracy_metamers_passing"]


def layer_depths(config: Mapping[str, Any], out_path: str | Path) -> Path:
    """Rule ``layer_depths``: load every model once (on the CPU) and write the normalized depth of
    each of its generator and evaluator layers (:func:`metamers.models.layers.layer_depth`)."""
    from ..models.layers import layer_depth
    from ..models.loading import load_model

    rows = []
    for model_name, layers in config.null_targets().items():
        model = load_model(config["models"], model_name, "cpu")
        rows.extend({"model": model_name, "layer": layer, "depth": layer_depth(model, layer),
                     "n_modules": len(model.layer_names())} for layer in layers)
    return write_table(pd.DataFrame(rows, columns=LAYER_DEPTH_COLUMNS), out_path)


def generation_depths(config: Mapping[str, Any], depths: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(generator, layer) -> the generation layer's normalized depth: its target's, or the mean of
    a joint generator's targets'."""
    known = {(r.model, r.layer): float(r.depth) for r in depths.itertuples()}
    out = {}
    for gen in config["generators"]:
        for layer in config.generator_layers(gen):
            targets = config.generator_targets(gen, layer)
            missing = [f"{t.model}/{t.layer}" for t in targets if (t.model, t.layer) not in known]
            if missing:
                raise ValueError(f"layer_depths.csv has no depth of {missing}")
            out[(gen, layer)] = float(np.mean([known[(t.model, t.layer)] for t in targets]))
    return out


def _with_relation(frame: pd.DataFrame, config: Mapping[str, Any], depth: Mapping[tuple[str, str], float],
                   edges: list[float]) -> pd.DataFrame:
    frame = frame.copy()
    frame["relation"] = [relation(config, g, e) for g, e in zip(frame["generator"], frame["evaluator"])]
    frame["depth"] = [depth[(g, layer)] for g, layer in zip(frame["generator"], frame["layer"])]
    bins = [depth_bin(d, edges) for d in frame["depth"]]
    frame["depth_bin"] = [b[0] for b in bins]
    frame["depth_low"] = [b[1] for b in bins]
    frame["depth_high"] = [b[2] for b in bins]
    return frame


def set_draws(draw_paths: Sequence[str | Path]) -> tuple[dict[tuple, np.ndarray], int | None]:
    """The aligned bootstrap values of every passing set measure in the representation jobs'
    draws files, averaged over the evaluator's layers: ``{(method, generator, layer, evaluator,
    measure): (B,)}``, and the number of reference images they resample (None without files).

    Raises
    ------
    ArtifactError
        A file is unreadable, or its samples are not aligned with the others'.
    """
    parts = [(str(p), read_draws(p)) for p in draw_paths]
    check_aligned(parts)
    by_set: dict[tuple, list[np.ndarray]] = {}
    for _, d in parts:
        for (layer, _evaluator_layer, measure), values in d.draws.items():
            by_set.setdefault((d.method, d.generator, layer, d.evaluator, measure), []).append(values)
    with warnings.catch_warnings():  # a sample undefined at every evaluator layer stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        draws = {key: np.nanmean(np.stack(values), axis=0) for key, values in by_set.items()}
    return draws, (len(parts[0][1].universe) if parts else None)


def transfer_by_relation(config: Mapping[str, Any], recognizability_path: str | Path,
                         representation_path: str | Path, depths_path: str | Path, out_path: str | Path,
                         pairs_path: str | Path | None = None, draw_paths: Sequence[str | Path] = ()) -> Path:
    """Rule ``transfer_by_relation``: ``transfer_by_relation.csv`` (:data:`BY_RELATION_COLUMNS`) and,
    with ``pairs_path``, ``transfer_pairs.csv`` (:data:`PAIR_COLUMNS`); the representation
    measures' intervals over images pool the sets' bootstrap values in ``draw_paths`` (the
    representation jobs' draws files; none: no such interval)."""
    settings = config["relations"]
    edges, seed = list(settings["depth_bins"]), int(config["seed"])
    depth = generation_depths(config, pd.read_csv(depths_path))
    rec = pd.read_csv(recognizability_path)
    rec = rec[rec["passed_metamer_test"].astype(bool)]
    rec = _with_relation(rec.assign(correct=(rec["evaluator_pred_metamer"] == rec["true_label"]).astype(float)),
                         config, depth, edges)
    rows = recognizability_by_relation(rec, settings["n_bootstrap"], settings["confidence"], seed)
    if pairs_path is not None:
        keys = ["method", "generator", "layer", "evaluator", "relation", "depth", "depth_bin", "depth_low",
                "depth_high"]
        pairs = (rec.groupby(keys, sort=False)["correct"].agg(["size", "mean"]).reset_index()
                 .rename(columns={"size": "n_metamers_passing", "mean": "accuracy_metamers_passing"}))
        write_table(pairs[PAIR_COLUMNS], pairs_path)
    rep = read_tables([representation_path])
    measures = [m + suffix for m in settings["measures"] for suffix in ("", DIFFERENCE)]
    rep = rep[rep["passing_only"].astype(bool) & rep["measure"].isin(measures)]
    if len(rep):
        keys = ["method", "generator", "layer", "evaluator", "measure"]
        sets = (rep.groupby(keys, sort=False)
                .agg(value=("value", "mean"), unstable=("unstable", lambda u: bool(u.astype(bool).any())))
                .reset_index())
        # a set's passing metamers: each member's set (a diversity term's) once, at any evaluator layer
        counts = rep.groupby([*keys, "member"], sort=False)["n_images"].first().groupby(level=keys).sum()
        sets["n_images"] = [counts[tuple(k)] for k in sets[keys].itertuples(index=False)]
        draws, n_images = set_draws(draw_paths)
        rows += representation_by_relation(_with_relation(sets, config, depth, edges), settings["n_bootstrap"],
                                           settings["confidence"], seed, draws, n_images)
    table = with_q_values(pd.DataFrame(rows, columns=BY_RELATION_COLUMNS))
    table["confidence"], table["seed"] = settings["confidence"], seed
    log.info("transfer by relation: %d rows, relations %s", len(table), sorted(set(table["relation"])))
    return write_table(table.sort_values(["method", "measure", "relation", "depth_low"], kind="stable"), out_path)
