"""Rules ``representation_activations``, ``representation`` and ``representation_table``: the
representation test of one method's metamers from one generator, by one evaluator.

``representation_activations`` runs the evaluator once on the 8-bit references and metamers
and stores, per evaluator layer, the (reduced) activations, the logits, and the metamer test's
per-image statistics on the whole layer (:mod:`metamers.artifacts.representations`).
``representation`` reads only that artifact, the generator's metamer-test verdicts and the
evaluator's nulls, and writes one tidy row per (generation layer, metamer set, evaluator layer,
measure) and the out-of-distribution rows. Metamer sets: the metamers that passed the metamer
test at their generation layer (``passing_only`` true, the metamers that count, as published),
and all metamers.

Per-image measures (the metamer test run by the evaluator, against its own null at its layer):
``null_percentile_<statistic>`` (median over images of the percentile of the metamer's
statistic in the null), ``at_threshold_<statistic>`` (fraction of metamers at or above the
null's threshold, by the configured comparison) and ``at_threshold_all`` (every statistic);
their intervals are bootstrap percentile intervals over images. Set measures
(:data:`metamers.stats.representation.MEASURES`) need at least 4 images: smaller sets give NaN.
With ``representation.baseline`` (the default), every set measure ``M`` of the passing metamers
also has rows ``M_baseline`` (the references against as many other natural images of their classes, from the
null pool) and ``M_minus_baseline`` (how much more of the references' structure the metamers
keep, with a bootstrap p-value and, over the study, a q-value): :mod:`metamers.stats.baseline`.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..artifacts.metamers import read_metamer_batch
from ..artifacts.draws import RepresentationDraws, write_draws
from ..artifacts.nulls import read_nulls
from ..artifacts.representations import EvaluatorActivations, read_activations, write_activations
from ..data.pixels import from_uint8, quantize, to_input, to_uint8
from ..data.pools import baseline_images
from ..models.layers import LayerReader, layer_depth
from ..models.loading import load_model
from ..provenance import provenance
from ..stats.baseline import BASELINE, DIFFERENCE, at_floor, baseline_rows, q_values
from ..stats.comparisons import compare
from ..stats.metamer_test import metamer_verdicts
from ..stats.nulls import null_percentile
from ..stats.ood import auroc, max_softmax
from ..stats.rdm import classical_mds, rdm
from ..stats.reduction import Reduction
from ..stats.representation import set_measures, unstable
from ..stats.resampling import aligned_bootstrap_samples, percentile_interval
from ..stats.statistics import STATISTICS
from ..tables import concat_tables, read_tables, write_table
from .common import job_device

log = logging.getLogger(__name__)

#: Images run through the evaluator at once.
CHUNK = 256
#: Columns of ``representation.csv``: one row per (method, generator, generation layer, member,
#: metamer set, evaluator, evaluator layer, measure); ``member``: with a method's ``diversity``, each
#: member index's metamers of the references are a set of their own (0 for one metamer per reference). ``n_pairs_dropped``: of the set's ``n_images (n_images - 1) / 2``
#: pairs of images, those an RSA measure leaves out because their distance is undefined (NaN) in
#: either RDM, e.g. the correlation distances of an image with constant activations (0 for CKA;
#: empty for the per-image measures and for sets too small for set measures). ``q_value``: the
#: false discovery rate of the differences from the natural-image baseline (:func:`with_q_values`);
#: ``p_at_floor``: the permutation p-value is at its floor ``1 / (1 + n_permutations)``, so it
#: says only ``p <= 1 / (1 + n_permutations)`` (empty for the per-image measures). ``unstable``:
#: the row's interval is not to be read (debiased CKA over fewer than
#: :data:`~metamers.stats.cka.MIN_STABLE_IMAGES` images, :func:`~metamers.stats.representation.unstable`;
#: false for the per-image measures).
REPRESENTATION_COLUMNS = ["method", "generator", "layer", "layer_index", "member", "passing_only", "evaluator",
                          "evaluator_layer", "evaluator_depth", "measure", "value", "ci_low", "ci_high", "p_value",
                          "q_value", "p_at_floor", "n_images", "n_pairs_dropped", "unstable", "n_permutations",
                          "n_bootstrap", "confidence", "seed", "reduction", "stored_dim"]
#: Columns of ``ood.csv``: one row per (method, generator, generation layer, member, metamer set, evaluator).
OOD_COLUMNS = ["method", "generator", "layer", "layer_index", "member", "passing_only", "evaluator", "n_images",
               "median_msp_reference", "median_msp_metamer", "auroc"]
#: What a row takes from :func:`~metamers.stats.representation.set_measures` (the rest is the job's).
SET_ROW_KEYS = ("measure", "value", "ci_low", "ci_high", "p_value", "p_at_floor", "n_images", "n_pairs_dropped",
                "unstable")
#: Columns of ``representation_images.csv``: one row per (method, generator, generation layer,
#: member, evaluator, evaluator layer, image, set): the evaluator's maximum softmax probability on the
#: image (the same at every evaluator layer) and the image's 2-D classical MDS coordinates among
#: the references and metamers at that layer (correlation distance).
IMAGE_COLUMNS = ["method", "generator", "layer", "layer_index", "member", "evaluator", "evaluator_layer", "image_id",
                 "set", "passed_metamer_test", "max_softmax", "x", "y"]
#: Set measures need this many images (debiased CKA's estimator is undefined below 4).
MIN_SET_IMAGES = 4


def _read(model, reader: LayerReader, layers: Sequence[str], images_uint8: np.ndarray
          ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The evaluator's full activations at ``layers`` and its logits for 8-bit images."""
    acts: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    logits = []
    with torch.no_grad():
        for start in range(0, len(images_uint8), CHUNK):
            x = to_input(from_uint8(images_uint8[start:start + CHUNK]), model.input_shape).to(model.device)
            out = reader(x)
            for layer in layers:
                acts[layer].append(out[layer].float().cpu())
            logits.append(model(x).float().cpu())
    return {k: torch.cat(v) for k, v in acts.items()}, torch.cat(logits)


def representation_activations(config: Mapping[str, Any], method: str, generator: str, evaluator: str,
                               artifact_paths: Sequence[str | Path], out_path: str | Path) -> Path:
    """Rule ``representation_activations``: run ``evaluator`` on the references and on the
    metamers of ``artifact_paths`` (one method, one generator, every layer and batch) at its
    representation layers; write the artifact to ``out_path``."""
    layers = config.evaluator_layers(evaluator)
    gen_layers = config.generator_layers(generator)
    statistics = list(config["metamer_test"]["statistics"])
    reduction = Reduction.from_config(config["representation"]["reduction"])
    batches = [read_metamer_batch(p, activations=False) for p in artifact_paths]
    by_layer: dict[str, list] = {}
    for b in batches:
        by_layer.setdefault(b.attrs["layer"], []).append(b)
    missing = [g for g in gen_layers if g not in by_layer]
    if missing:
        raise ValueError(f"no artifacts of generator {generator!r} at layer(s) {missing} among {list(artifact_paths)}")
    first = by_layer[gen_layers[0]]
    own = [b.member == 0 for b in first]  # the references: the rows of their member 0
    ids = [i for b, keep in zip(first, own) for i, k in zip(b.image_ids, keep) if k]
    labels = np.concatenate([b.labels[keep] for b, keep in zip(first, own)])
    references = np.concatenate([b.reference[keep] for b, keep in zip(first, own)])
    members = 1 + max(int(b.member.max()) for b in batches if len(b.member))
    model = load_model(config["models"], evaluator, job_device(config))
    reader = LayerReader(model, layers)
    ref_full, ref_logits = _read(model, reader, layers, references)
    reductions = {layer: reduction.describe(int(np.prod(ref_full[layer].shape[1:])), f"{evaluator}/{layer}")
                  for layer in layers}
    reference = {layer: reduction(ref_full[layer], f"{evaluator}/{layer}").numpy() for layer in layers}
    reference["logits"] = ref_logits.numpy()
    for layer in layers:
        reductions[layer]["stored_dim"] = int(reference[layer].shape[1])
    baseline, baseline_ids = {}, []
    if config["representation"]["baseline"]:
        pool, baseline_ids = baseline_images(config["images"], config["metamer_test"].get("pool"), ids, labels,
                                             int(config["seed"]))
        pixels = to_uint8(quantize(pool.tensor(baseline_ids, references.shape[1:]))).numpy()
        base_full, base_logits = _read(model, reader, layers, pixels)
        baseline = {layer: reduction(base_full[layer], f"{evaluator}/{layer}").numpy() for layer in layers}
        baseline["logits"] = base_logits.numpy()
        log.info("%s read %d baseline images of the references' classes from the null pool %s", evaluator,
                 len(baseline_ids), pool.name)
    metamer, similarity = {}, {}
    for g in gen_layers:  # every member's metamers of the references, member-major
        position = {key: k for k, key in enumerate((i, int(m)) for b in by_layer[g]
                                                    for i, m in zip(b.image_ids, b.member))}
        wanted = [(i, m) for m in range(members) for i in ids]
        if sorted(position) != sorted(wanted):
            raise ValueError(f"the metamers of {generator}/{g} are not {members} member(s) of the same images as "
                             f"those of {generator}/{gen_layers[0]}")
        images = np.concatenate([b.metamer_uint8 for b in by_layer[g]])[[position[key] for key in wanted]]
        full, logits = _read(model, reader, layers, images)
        metamer[g] = {layer: reduction(full[layer], f"{evaluator}/{layer}").numpy() for layer in layers}
        metamer[g]["logits"] = logits.numpy()
        similarity[g] = {layer: {s: STATISTICS[s].paired(full[layer], ref_full[layer].repeat(
            members, *([1] * (ref_full[layer].dim() - 1)))).numpy() for s in statistics} for layer in layers}
        log.info("%s read %d metamers of %s/%s at %s", evaluator, len(wanted), generator, g, ", ".join(layers))
    job = {"method": method, "generator": generator, "evaluator": evaluator, "model": config["models"][evaluator],
           "layers": layers, "statistics": statistics, "reduction": config["representation"]["reduction"],
           "baseline_ids": baseline_ids}
    data = EvaluatorActivations(
        image_ids=ids, labels=labels, reference=reference, metamer=metamer, similarity=similarity,
        baseline=baseline, baseline_ids=baseline_ids,
        attrs={**provenance(job, reduction.seed), "method": method, "generator": generator, "evaluator": evaluator,
               "layers": json.dumps(layers), "generation_layers": json.dumps(gen_layers),
               "statistics": json.dumps(statistics), "reductions": json.dumps(reductions, sort_keys=True),
               "depths": json.dumps({layer: layer_depth(model, layer) for layer in layers}), "members": members})
    return write_activations(out_path, data)


def _bootstrap_interval(values: np.ndarray, fn, samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of ``fn`` (a numpy reduction taking ``axis``) over bootstrap samples of images."""
    if not len(values) or not len(samples):
        return np.nan, np.nan
    return percentile_interval(fn(values[samples], axis=1), confidence)


def _per_image_rows(similarity: Mapping[str, np.ndarray], nulls: Mapping[str, Any], comparison: str,
                    samples: np.ndarray, confidence: float) -> list[dict]:
    rows = []
    passing = None
    for stat, values in similarity.items():
        null = nulls[stat]
        pct = null_percentile(null, values)
        at = compare(torch.from_numpy(values), null.threshold, comparison).numpy().astype(float)
        passing = at if passing is None else passing * at
        rows.append(("null_percentile_" + stat, pct, np.nanmedian))
        rows.append(("at_threshold_" + stat, at, np.mean))
    rows.append(("at_threshold_all", passing, np.mean))
    out = []
    for name, values, fn in rows:
        value = float(fn(values, axis=0)) if len(values) else np.nan
        low, high = _bootstrap_interval(values, fn, samples, confidence)
        out.append({"measure": name, "value": value, "ci_low": low, "ci_high": high, "p_value": np.nan,
                    "n_images": len(values), "unstable": False})
    return out


def representation(config: Mapping[str, Any], method: str, generator: str, evaluator: str,
                   activations_path: str | Path, metamer_test_path: str | Path, null_paths: Sequence[str | Path],
                   out_path: str | Path, ood_path: str | Path, images_path: str | Path,
                   draws_path: str | Path | None = None) -> None:
    """Rule ``representation``: the measures of every metamer set of the activation artifact
    (rows of :data:`REPRESENTATION_COLUMNS` to ``out_path``, of :data:`OOD_COLUMNS` to ``ood_path``,
    and per image of :data:`IMAGE_COLUMNS` to ``images_path``; with ``draws_path``, the bootstrap
    values of the passing metamers' set measures, :mod:`metamers.artifacts.draws`).

    Every interval over images resamples with aligned bootstrap samples
    (:func:`~metamers.stats.resampling.aligned_bootstrap_samples`) over the artifact's reference
    images, so that ``transfer_by_relation`` can pool the sets' draws."""
    settings = config["representation"]
    comparison = config["metamer_test"]["comparison"]
    data = read_activations(activations_path)
    layers, gen_layers = data.layers, data.generation_layers
    nulls = {}
    for path in null_paths:
        by_statistic, attrs = read_nulls(path)
        if attrs["generator"] == evaluator:
            nulls[attrs["layer"]] = by_statistic
    missing = [layer for layer in layers if layer not in nulls]
    if missing:
        raise ValueError(f"no null of evaluator {evaluator!r} at layer(s) {missing} among {list(null_paths)}")
    verdicts = metamer_verdicts(read_tables([metamer_test_path]))
    verdicts = verdicts[(verdicts["method"] == method) & (verdicts["generator"] == generator)]
    passed = {(r.layer, str(r.image_id), int(r.member)): bool(r.passed_metamer_test) for r in verdicts.itertuples()}
    depth = json.loads(data.attrs["depths"])
    seed = int(config["seed"])
    reductions = data.reductions
    rows, ood, images = [], [], []
    draws: dict[tuple[str, str, str], list[np.ndarray]] = {}
    universe = list(data.image_ids)
    n_refs = len(universe)
    for g, member in ((g, m) for g in gen_layers for m in range(data.members)):  # each member a set of its own
        unknown = [i for i in data.image_ids if (g, i, member) not in passed]
        if unknown:
            raise ValueError(f"{len(unknown)} metamer(s) of {method}/{generator}/{g} (member {member}) have no "
                             f"metamer-test verdict in {metamer_test_path}, e.g. {unknown[:3]}")
        ok = np.array([passed[(g, i, member)] for i in data.image_ids])
        rows_of = slice(member * n_refs, (member + 1) * n_refs)  # this member's metamers of the references
        mine = {layer: values[rows_of] for layer, values in data.metamer[g].items()}
        key = {"method": method, "generator": generator, "layer": g, "layer_index": gen_layers.index(g),
               "member": member, "evaluator": evaluator}
        images.extend(_image_rows(data, mine, layers, ok, key))
        for passing_only, mask in ((True, ok), (False, np.ones_like(ok))):
            n = int(mask.sum())
            samples = aligned_bootstrap_samples(np.flatnonzero(mask), len(universe), settings["n_bootstrap"], seed) \
                if n >= 2 else np.empty((0, n), dtype=np.int64)
            msp_ref = max_softmax(data.reference["logits"][mask])
            msp_met = max_softmax(mine["logits"][mask])
            ood.append({**key, "passing_only": passing_only, "n_images": n,
                        "median_msp_reference": float(np.median(msp_ref)) if n else np.nan,
                        "median_msp_metamer": float(np.median(msp_met)) if n else np.nan,
                        "auroc": auroc(msp_ref, msp_met) if n else np.nan})
            for layer in layers:
                common = {**key, "passing_only": passing_only, "evaluator_layer": layer, "evaluator_depth": depth[layer],
                          "n_permutations": settings["n_permutations"], "n_bootstrap": settings["n_bootstrap"],
                          "confidence": settings["confidence"], "seed": seed,
                          "reduction": reductions[layer]["type"], "stored_dim": reductions[layer]["stored_dim"]}
                similarity = {s: v[rows_of][mask] for s, v in data.similarity[g][layer].items()}
                for row in _per_image_rows(similarity, nulls[layer], comparison, samples, settings["confidence"]):
                    rows.append({**common, **row})
                if n >= MIN_SET_IMAGES:
                    found = set_measures(data.reference[layer][mask], mine[layer][mask],
                                         settings["measures"], settings["n_permutations"], settings["n_bootstrap"],
                                         settings["confidence"], seed, threads=int(config["threads"]), samples=samples)
                    if data.baseline_ids and passing_only:  # the metamers that count
                        found += baseline_rows(data.reference[layer][mask], data.baseline[layer][mask], found,
                                               settings["n_permutations"],
                                               settings["n_bootstrap"], settings["confidence"], seed,
                                               int(config["threads"]), samples)
                else:
                    names = [m + suffix for m in settings["measures"]
                             for suffix in ("", *((BASELINE, DIFFERENCE) if data.baseline_ids and passing_only
                                                  else ()))]
                    found = [{"measure": m, "value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
                              "n_images": n, "n_pairs_dropped": np.nan, "unstable": unstable(m, n), "draws": None}
                             for m in names]
                for row in found:  # a difference's p-value is a bootstrap test's, the others permutation tests'
                    resamples = settings["n_bootstrap"] if row["measure"].endswith(DIFFERENCE) \
                        else settings["n_permutations"]
                    row["p_at_floor"] = bool(at_floor([row["p_value"]], resamples)[0])
                rows.extend({**common, **{k: row[k] for k in SET_ROW_KEYS}} for row in found)
                if passing_only:  # (aligned over the references: the members' draws average)
                    for row in found:
                        draws.setdefault((g, layer, row["measure"]), []).append(
                            row["draws"] if row["draws"] is not None else np.full(settings["n_bootstrap"], np.nan))
        log.info("representation test of %s/%s/%s (member %d) by %s: %d passing of %d", method, generator, g, member,
                 evaluator, int(ok.sum()), len(ok))
    write_table(pd.DataFrame(rows, columns=REPRESENTATION_COLUMNS).astype({"n_pairs_dropped": "Int64"}), out_path)
    write_table(pd.DataFrame(ood, columns=OOD_COLUMNS), ood_path)
    write_table(pd.DataFrame(images, columns=IMAGE_COLUMNS), images_path)
    if draws_path is not None:
        with warnings.catch_warnings():  # a sample undefined for every member stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = {k: np.nanmean(np.stack(v), axis=0) if len(v) > 1 else v[0] for k, v in draws.items()}
        write_draws(draws_path, RepresentationDraws(method, generator, evaluator, mean, universe, seed,
                                                    int(settings["n_bootstrap"])))


def _image_rows(data: EvaluatorActivations, metamer: Mapping[str, np.ndarray], layers: Sequence[str],
                passed: np.ndarray, key: Mapping[str, Any]) -> list[dict]:
    """Per image of one set of metamers (a generation layer's, one member each): the evaluator's
    confidence and the MDS coordinates of reference and metamer among all references and
    metamers, at every evaluator layer."""
    n = len(data.image_ids)
    msp = {"reference": max_softmax(data.reference["logits"]), "metamer": max_softmax(metamer["logits"])}
    out = []
    for layer in layers:
        stacked = np.concatenate([data.reference[layer], metamer[layer]]).astype(np.float64)
        coords = classical_mds(np.nan_to_num(rdm(stacked, "correlation"), nan=1.0))
        for s, offset in (("reference", 0), ("metamer", n)):
            out.extend({**key, "evaluator_layer": layer, "image_id": i, "set": s, "passed_metamer_test": bool(passed[k]),
                        "max_softmax": float(msp[s][k]), "x": float(coords[offset + k, 0]),
                        "y": float(coords[offset + k, 1])} for k, i in enumerate(data.image_ids))
    return out


def representation_table(row_paths: Sequence[str | Path], ood_paths: Sequence[str | Path],
                         rows_out: str | Path, ood_out: str | Path, image_paths: Sequence[str | Path],
                         images_out: str | Path) -> None:
    """Rule ``representation_table``: merge the per-job tables into ``representation.csv``,
    ``ood.csv`` and ``representation_images.csv``; ``q_value`` (:func:`with_q_values`)."""
    rows = concat_tables([read_tables([p], REPRESENTATION_COLUMNS) for p in row_paths], REPRESENTATION_COLUMNS)
    write_table(with_q_values(rows).astype({"n_pairs_dropped": "Int64"}), rows_out)
    write_table(concat_tables([read_tables([p], OOD_COLUMNS) for p in ood_paths], OOD_COLUMNS), ood_out)
    write_table(concat_tables([read_tables([p], IMAGE_COLUMNS) for p in image_paths], IMAGE_COLUMNS), images_out)


def with_q_values(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` of ``representation.csv`` with ``q_value``: Benjamini-Hochberg over the family of a
    measure's differences from the natural-image baseline (``<measure>_minus_baseline``) for the
    passing metamers, every (method, generator, generation layer, evaluator, evaluator layer) of
    the study; empty for every other row (their p-values test a null that is false by
    construction, :mod:`metamers.stats.baseline`)."""
    rows = rows.copy()
    rows["q_value"] = np.nan
    family = rows["passing_only"].astype(bool) & rows["measure"].astype(str).str.endswith(DIFFERENCE)
    for _, index in rows[family].groupby("measure").groups.items():
        rows.loc[index, "q_value"] = q_values(rows.loc[index, "p_value"].to_numpy(dtype=float))
    return rows
