"""Rules ``image_quality``, ``image_quality_table``, ``diversity`` and ``diversity_table``: how
natural every metamer and reference looks (:mod:`metamers.stats.quality`), and how different a
reference's several metamers are (:mod:`metamers.stats.diversity`, methods with ``diversity``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..artifacts.metamers import read_metamer_batch
from ..artifacts.representations import read_activations
from ..stats.diversity import DIVERSITY_COLUMNS, SSIM, diversity_rows
from ..stats.metamer_test import METAMER_KEY, metamer_verdicts
from ..stats.resampling import bootstrap_samples, percentile_interval
from ..tables import concat_tables, read_tables, write_table
from .common import job_device

log = logging.getLogger(__name__)

#: Columns of ``image_quality.csv``: one row per metamer (``kind`` ``metamer``: method, generator,
#: layer, image, member) and one per reference (``kind`` ``reference``: method, generator, layer and
#: member empty). ``niqe``, ``brisque``: no-reference naturalness (lower: more natural; small images
#: upsampled to 224 pixels a side first, :data:`metamers.stats.quality.DEFAULT_UPSAMPLE_TO`);
#: ``gmsd`` (0: identical), ``haarpsi`` (1: identical): the metamer against its reference;
#: ``semantic_fidelity``: the mean over ``fidelity_evaluators`` (the evaluators held out from the
#: synthesis: not the generator's models, nor the method's diversity model) of the cosine between the penultimate-layer
#: embeddings of metamer and reference; ``passed_metamer_test`` (metamers only).
QUALITY_COLUMNS = ["method", "generator", "layer", "layer_index", "image_id", "member", "kind", "niqe", "brisque",
                   "gmsd", "haarpsi", "semantic_fidelity", "fidelity_evaluators", "passed_metamer_test"]
#: Columns of an ``image_quality`` job's table (before the verdicts are attached).
JOB_QUALITY_COLUMNS = QUALITY_COLUMNS[:-1]
#: Columns of ``diversity_summary.csv``: per (method, generator, layer, space), the method's
#: ``k`` and ``weight``, the mean over references of ``relative_mean`` and ``mean_distance``
#: (:data:`metamers.stats.diversity.DIVERSITY_COLUMNS`) with a percentile bootstrap interval over
#: references of the former (for ``space`` ``ssim``, of the mean pairwise SSIM, ``mean_distance``),
#: and the fraction of the metamers that passed the metamer test; ``independent_seeds``: the study's
#: method that is this one with weight 0 (:func:`independent_seeds`; empty if none), and
#: ``ratio_to_seeds``: the mean pairwise distance over theirs, with a paired bootstrap interval over
#: references (``ratio_ci_low``, ``ratio_ci_high``; empty for ``ssim``).
DIVERSITY_SUMMARY_COLUMNS = ["method", "generator", "layer", "layer_index", "space", "k", "weight", "n_images",
                             "mean_distance", "relative_mean", "ci_low", "ci_high", "pass_fraction",
                             "independent_seeds", "ratio_to_seeds", "ratio_ci_low", "ratio_ci_high", "n_bootstrap",
                             "confidence", "seed"]


def held_out_evaluators(config: Mapping[str, Any], method: str, generator: str) -> list[str]:
    """The evaluators held out from the synthesis of ``method``'s metamers from ``generator``: none
    of the generator's models, nor the model of the method's diversity space."""
    own = set(config.job_models(method, generator))
    return [e for e in config["evaluators"] if e not in own]


def image_quality(config: Mapping[str, Any], method: str, generator: str, artifact_paths: Sequence[str | Path],
                  out_path: str | Path) -> Path:
    """Rule ``image_quality``: the quality of the metamers in ``artifact_paths`` (one method, one
    generator) and of their references; rows of :data:`JOB_QUALITY_COLUMNS`."""
    from ..data.pixels import from_uint8, to_input
    from ..models.loading import load_model
    from ..stats.quality import brisque, gmsd, haarpsi, niqe, semantic_fidelity

    batches = [read_metamer_batch(p, activations=False) for p in artifact_paths]
    evaluators = held_out_evaluators(config, method, generator)
    fidelity: list[list[np.ndarray]] = [[] for _ in batches]
    for name in evaluators:  # one model in memory at a time
        model = load_model(config["models"], name, job_device(config))
        for k, b in enumerate(batches):
            shape = model.input_shape
            fidelity[k].append(semantic_fidelity(model, to_input(from_uint8(b.metamer_uint8), shape),
                                                 to_input(from_uint8(b.reference), shape)))
        del model
    frames, seen = [], set()
    for k, b in enumerate(batches):
        met, ref = b.metamer_uint8, b.reference
        layer_index = config.generator_layers(generator).index(b.attrs["layer"])
        mean_fidelity = np.mean(fidelity[k], axis=0) if evaluators else np.full(len(met), np.nan)
        frames.append(pd.DataFrame({
            "method": b.attrs["method"], "generator": generator, "layer": b.attrs["layer"],
            "layer_index": layer_index, "image_id": b.image_ids, "member": b.member, "kind": "metamer",
            "niqe": niqe(met), "brisque": brisque(met), "gmsd": gmsd(met, ref), "haarpsi": haarpsi(met, ref),
            "semantic_fidelity": mean_fidelity, "fidelity_evaluators": ";".join(evaluators)}))
        first = [r for r, (i, m) in enumerate(zip(b.image_ids, b.member)) if m == 0 and i not in seen]
        seen.update(b.image_ids[r] for r in first)
        if first:  # each reference once
            refs = ref[first]
            frames.append(pd.DataFrame({
                "image_id": [b.image_ids[r] for r in first], "kind": "reference", "niqe": niqe(refs),
                "brisque": brisque(refs), "gmsd": 0.0, "haarpsi": 1.0, "semantic_fidelity": 1.0,
                "fidelity_evaluators": ";".join(evaluators)}))
        log.info("image quality of %d metamers of %s/%s/%s", len(met), b.attrs["method"], generator, b.attrs["layer"])
    return write_table(concat_tables(frames, JOB_QUALITY_COLUMNS), out_path)


def image_quality_table(paths: Sequence[str | Path], metamer_test_path: str | Path, out_path: str | Path) -> Path:
    """Rule ``image_quality_table``: merge the jobs' rows (each reference once) and attach each
    metamer's metamer-test verdict."""
    rows = read_tables(paths, JOB_QUALITY_COLUMNS)
    refs = rows[rows["kind"] == "reference"].drop_duplicates("image_id")
    mets = rows[rows["kind"] == "metamer"].astype({"member": "int64", "layer_index": "int64"})
    verdicts = metamer_verdicts(read_tables([metamer_test_path]))[[*METAMER_KEY, "passed_metamer_test"]]
    mets = mets.merge(verdicts.astype({"member": "int64"}), on=METAMER_KEY, how="left", validate="one_to_one")
    missing = mets["passed_metamer_test"].isna()
    if missing.any():
        raise ValueError(f"{int(missing.sum())} metamer(s) of the image-quality table have no metamer-test verdict")
    table = pd.concat([mets, refs], ignore_index=True)[QUALITY_COLUMNS]
    return write_table(table.astype({"member": "Int64", "layer_index": "Int64"}), out_path)


def diversity(config: Mapping[str, Any], method: str, generator: str, artifact_paths: Sequence[str | Path],
              metamer_test_path: str | Path, activation_paths: Sequence[str | Path], out_path: str | Path) -> Path:
    """Rule ``diversity``: per reference, how different its metamers in ``artifact_paths`` (one
    method with a ``diversity`` of ``k`` members, one generator) are, in pixels, in SSIM and at
    every layer of the representation test's evaluators (their activation artifacts,
    ``activation_paths``); rows of :data:`~metamers.stats.diversity.DIVERSITY_COLUMNS`."""
    batches = [read_metamer_batch(p, activations=False) for p in artifact_paths]
    verdicts = metamer_verdicts(read_tables([metamer_test_path]))
    passed = {(r.layer, str(r.image_id), int(r.member)): bool(r.passed_metamer_test) for r in verdicts.itertuples()
              if r.method == method and r.generator == generator}
    evaluators = [read_activations(p) for p in activation_paths]
    frames = []
    for layer in config.generator_layers(generator):
        mine = [b for b in batches if b.attrs["layer"] == layer]
        if not mine:
            raise ValueError(f"no artifact of {method}/{generator}/{layer} among {list(artifact_paths)}")
        ids = [i for b in mine for i in b.image_ids]
        members = np.concatenate([b.member for b in mine])
        first_seen = list(dict.fromkeys(ids))
        pixels = {i: b.reference[r] for b in mine for r, i in enumerate(b.image_ids)}
        references = np.stack([pixels[i] for i in first_seen]).astype(np.float64) / 255
        spaces = {}
        for data in evaluators:  # the evaluator's (reduced) activations: metamers member-major
            n = len(data.image_ids)
            row_of = {(i, m): m * n + r for m in range(data.members) for r, i in enumerate(data.image_ids)}
            ref_of = {i: r for r, i in enumerate(data.image_ids)}
            rows = [row_of[(i, int(m))] for i, m in zip(ids, members)]
            for ev_layer in data.layers:
                spaces[f"{data.attrs['evaluator']}/{ev_layer}"] = (
                    data.metamer[layer][ev_layer][rows], data.reference[ev_layer][[ref_of[i] for i in first_seen]])
        key = {"method": method, "generator": generator, "layer": layer,
               "layer_index": config.generator_layers(generator).index(layer)}
        frames.append(diversity_rows(key, ids, members,
                                     np.concatenate([b.metamer_uint8 for b in mine]).astype(np.float64) / 255,
                                     references, [passed[(layer, i, int(m))] for i, m in zip(ids, members)], spaces))
        log.info("diversity of %s/%s/%s: %d references, %d metamers each; spaces pixels, ssim%s", method, generator,
                 layer, len(first_seen), len(ids) // max(1, len(first_seen)), "".join(f", {s}" for s in spaces))
    return write_table(concat_tables(frames, DIVERSITY_COLUMNS), out_path)


def independent_seeds(config: Mapping[str, Any], method: str) -> str | None:
    """The study's method that is ``method`` with a diversity weight of 0 (its ``k`` independent
    seeds: the same settings, ``k`` and space), or None."""
    mine = config.method_settings(method)
    for other in config.diversity_methods():
        theirs = config.method_settings(other)
        if other != method and theirs["diversity"].get("weight") == 0 and mine.get("diversity", {}).get("weight"):
            if {**theirs, "diversity": {**theirs["diversity"], "weight": mine["diversity"]["weight"]}} == mine:
                return other
    return None


def diversity_table(config: Mapping[str, Any], paths: Sequence[str | Path], rows_out: str | Path,
                    summary_out: str | Path) -> None:
    """Rule ``diversity_table``: merge the rows (``diversity.csv``) and summarise them per (method,
    generator, layer, space) (``diversity_summary.csv``, :data:`DIVERSITY_SUMMARY_COLUMNS`): the
    mean over references with a percentile bootstrap interval over references, and, where the
    study has the method's independent seeds (:func:`independent_seeds`), the ratio of the mean
    pairwise distances to theirs with a paired bootstrap interval (the same references resampled
    for both)."""
    rows = read_tables(paths, DIVERSITY_COLUMNS)
    write_table(rows, rows_out)
    settings = config["relations"]
    n_boot, confidence, seed = int(settings["n_bootstrap"]), float(settings["confidence"]), int(config["seed"])
    keys = ["method", "generator", "layer", "space"]
    by_key = {key: group.set_index("image_id") for key, group in rows.groupby(keys, sort=False)}
    out = []
    for (method, generator, layer, space), group in by_key.items():
        diversity_entry = config.method_settings(method).get("diversity") or {}
        value = group["relative_mean" if space != SSIM else "mean_distance"].to_numpy(float)
        n = len(value)  # references (one row each); the same samples serve the paired ratio below
        samples = bootstrap_samples(n, n_boot, np.random.default_rng([seed, n])) if n > 1 else None
        low, high = percentile_interval(value[samples].mean(1), confidence) if samples is not None else (np.nan, np.nan)
        seeds = independent_seeds(config, method)
        ratio = ratio_low = ratio_high = np.nan
        if seeds is not None and space != SSIM and (seeds, generator, layer, space) in by_key:
            base = by_key[(seeds, generator, layer, space)]["mean_distance"].reindex(group.index).to_numpy(float)
            mine = group["mean_distance"].to_numpy(float)
            ratio = float(mine.mean() / base.mean())
            if samples is not None:  # paired: each sample's references for both methods
                ratio_low, ratio_high = percentile_interval(mine[samples].mean(1) / base[samples].mean(1), confidence)
        out.append({"method": method, "generator": generator, "layer": layer,
                    "layer_index": int(group["layer_index"].iloc[0]), "space": space,
                    "k": int(diversity_entry.get("k", 1)), "weight": float(diversity_entry.get("weight", 0.0)),
                    "n_images": len(group), "mean_distance": float(group["mean_distance"].mean()),
                    "relative_mean": float(group["relative_mean"].mean()) if space != SSIM else np.nan,
                    "ci_low": low, "ci_high": high,
                    "pass_fraction": float(group["n_passing"].sum() / group["n_members"].sum()),
                    "independent_seeds": seeds or "", "ratio_to_seeds": ratio, "ratio_ci_low": ratio_low,
                    "ratio_ci_high": ratio_high, "n_bootstrap": n_boot, "confidence": confidence, "seed": seed})
    write_table(pd.DataFrame(out, columns=DIVERSITY_SUMMARY_COLUMNS), summary_out)
