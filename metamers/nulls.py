"""Null distributions: how similar the activations of two *different* natural images get.

For a (model, layer), the activations of K pool images are transformed once per image
(ranks for Spearman, centring for Pearson), and the statistics of all pairs come from one
K x K Gram matrix per statistic. K is the smallest pool that has ``n_pairs`` pairs
(1,415 images for the published 1,000,000); exactly ``n_pairs`` of its K(K-1)/2 pairs
are kept, drawn with the null's seed. The threshold is the maximum (published) or a
quantile, and is stored with the number of pairs it came from, since a maximum grows with N.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from .artifacts import ArtifactError, atomic_path
from .images import ImageSet, load_image_set
from .layers import LayerReader
from .registry import Classifier
from .statistics import pairwise_values, statistic

log = logging.getLogger(__name__)

NULL_SCHEMA_VERSION = 1
#: Quantiles stored with every null (besides the threshold).
STORED_QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)
HISTOGRAM_BINS = 100


class NullError(ValueError):
    """A null distribution that cannot be computed as configured."""


def pool_size_for(n_pairs: int) -> int:
    """The smallest K with K(K-1)/2 >= n_pairs."""
    if n_pairs < 1:
        raise NullError(f"n_pairs must be at least 1, got {n_pairs}")
    k = math.ceil((1 + math.sqrt(1 + 8 * n_pairs)) / 2)
    while (k - 1) * (k - 2) // 2 >= n_pairs:
        k -= 1
    return k


def pair_indices(k: int, n_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_pairs`` distinct pairs ``i < j`` of ``k`` items: all of them when there are exactly
    that many, else a subset drawn with ``seed`` (returned in row-major order)."""
    rows, cols = torch.triu_indices(k, k, offset=1)
    total = rows.numel()
    if n_pairs > total:
        raise NullError(f"{k} images give {total} pairs; {n_pairs} were requested")
    if n_pairs < total:
        keep = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n_pairs]
        keep = keep.sort().values
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def pool_images(
    images_cfg: Mapping[str, Any], pool_cfg: Mapping[str, Any] | None, reference_ids: Sequence[str],
    n_pairs: int, seed: int,
) -> tuple[ImageSet, list[str]]:
    """The pool image set and the ids of the K images the null uses.

    Without ``pool_cfg`` the pool is the reference set's whole source (no per-class sample,
    no limit) minus the references. A configured pool that holds references is used as
    given, with a warning that lists them.

    Raises
    ------
    NullError
        The pool has too few images for ``n_pairs`` pairs (the message gives the numbers).
    """
    if pool_cfg is None:
        source = {k: v for k, v in images_cfg.items() if k not in ("per_class", "limit")}
        pool = load_image_set(source)
        excluded = set(reference_ids)
        candidates = [i for i in pool.ids if i not in excluded]
    else:
        pool = load_image_set(pool_cfg)
        candidates = list(pool.ids)
        overlap = sorted(set(candidates) & set(reference_ids))
        if overlap:
            log.warning("the null pool holds %d reference image(s): %s", len(overlap), ", ".join(overlap))
    k = pool_size_for(n_pairs)
    if len(candidates) < k:
        have = len(candidates) * (len(candidates) - 1) // 2
        raise NullError(
            f"the null pool has {len(candidates)} images, which give {have} pairs; "
            f"{n_pairs} pairs need at least {k} images"
        )
    order = np.random.default_rng(seed).permutation(len(candidates))[:k]
    return pool, [candidates[i] for i in sorted(order)]


def threshold_of(values: np.ndarray, rule: str | float) -> float:
    """``max`` of the defined (non-NaN) values, or quantile ``rule`` (a number in (0, 1))."""
    defined = np.asarray(values, dtype=np.float64)
    defined = defined[~np.isnan(defined)]
    if defined.size == 0:
        raise NullError("every pair of the null is undefined (constant activations)")
    return float(defined.max()) if rule == "max" else float(np.quantile(defined, float(rule)))


@dataclass
class NullDistribution:
    """The null of one statistic at one (model, layer)."""

    statistic: str
    threshold: float
    threshold_rule: str
    n_pairs: int
    n_undefined: int
    quantiles: dict[float, float]
    histogram: np.ndarray
    bin_edges: np.ndarray
    values: np.ndarray | None = field(default=None, repr=False)


@torch.no_grad()
def compute_nulls(
    model: Classifier,
    layer: str,
    pool: torch.Tensor,
    statistics: Sequence[str],
    n_pairs: int,
    seed: int,
    threshold: str | float = "max",
    chunk_columns: int = 4096,
    batch_size: int = 256,
    keep_values: bool = False,
) -> dict[str, NullDistribution]:
    """Null distributions of ``statistics`` at ``layer`` over the pairs of ``pool`` images.

    Parameters
    ----------
    model, layer
        Where the activations are read.
    pool
        ``(K, *model.input_shape)`` images in [0, 1].
    n_pairs
        How many pairs of pool images (at most K(K-1)/2).
    threshold
        ``"max"`` or a quantile in (0, 1).
    chunk_columns
        Activation columns per Gram-matrix chunk (bounds memory at about K x chunk x 8 bytes).
    """
    for name in statistics:
        statistic(name)
    device = next(iter(model.buffers())).device
    reader = LayerReader(model, [layer])
    acts = torch.cat([
        reader(pool[i : i + batch_size].to(device))[layer].flatten(1).float()
        for i in range(0, len(pool), batch_size)
    ])
    rows, cols = pair_indices(len(pool), n_pairs, seed)
    rows, cols = rows.to(device), cols.to(device)
    out = {}
    for name in statistics:
        values = pairwise_values(acts, name, rows, cols, chunk_columns).cpu().numpy()
        defined = values[~np.isnan(values)]
        finite = defined[np.isfinite(defined)]
        hist, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
        out[name] = NullDistribution(
            statistic=name,
            threshold=threshold_of(values, threshold),
            threshold_rule=str(threshold),
            n_pairs=int(n_pairs),
            n_undefined=int(np.isnan(values).sum()),
            quantiles=dict(zip(STORED_QUANTILES, np.quantile(defined, STORED_QUANTILES).tolist())),
            histogram=hist,
            bin_edges=edges,
            values=values.astype(np.float32) if keep_values else None,
        )
    return out


def write_nulls(path: str | Path, nulls: Mapping[str, NullDistribution], attrs: Mapping[str, Any],
                pool_ids: Sequence[str]) -> Path:
    """Write the nulls of one (model, layer) atomically (one group per statistic)."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = NULL_SCHEMA_VERSION
            for key, value in attrs.items():
                f.attrs[key] = value
            f.create_dataset("pool_ids", data=np.asarray(pool_ids, dtype=object), dtype=h5py.string_dtype())
            for name, null in nulls.items():
                g = f.create_group(name)
                g.attrs["threshold"] = null.threshold
                g.attrs["threshold_rule"] = null.threshold_rule
                g.attrs["n_pairs"] = null.n_pairs
                g.attrs["n_undefined"] = null.n_undefined
                g.create_dataset("quantile_levels", data=np.asarray(list(null.quantiles)))
                g.create_dataset("quantiles", data=np.asarray(list(null.quantiles.values())))
                g.create_dataset("histogram", data=null.histogram)
                g.create_dataset("bin_edges", data=null.bin_edges)
                if null.values is not None:
                    g.create_dataset("values", data=null.values, compression="gzip", shuffle=True)
    return Path(path)


def read_nulls(path: str | Path) -> tuple[dict[str, NullDistribution], dict[str, Any]]:
    """Read a null file: ``({statistic: NullDistribution}, attributes)``; errors name the file."""
    path = str(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("schema_version") != NULL_SCHEMA_VERSION:
                raise ArtifactError(f"null file {path!r} has schema version {f.attrs.get('schema_version')!r}")
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            nulls = {}
            for name, g in f.items():
                if not isinstance(g, h5py.Group):
                    continue
                nulls[name] = NullDistribution(
                    statistic=name,
                    threshold=float(g.attrs["threshold"]),
                    threshold_rule=str(g.attrs["threshold_rule"]),
                    n_pairs=int(g.attrs["n_pairs"]),
                    n_undefined=int(g.attrs["n_undefined"]),
                    quantiles=dict(zip(g["quantile_levels"][()].tolist(), g["quantiles"][()].tolist())),
                    histogram=g["histogram"][()],
                    bin_edges=g["bin_edges"][()],
                    values=g["values"][()] if "values" in g else None,
                )
            return nulls, attrs
    except (OSError, KeyError) as err:
        raise ArtifactError(f"cannot read null file {path!r}: {err}") from err


#: Columns of ``null_thresholds.csv``: one row per (generator, layer, statistic).
THRESHOLD_COLUMNS = ["generator", "layer", "statistic", "threshold", "threshold_rule", "n_pairs", "n_undefined",
                     "n_pool", *[f"q{q:g}" for q in STORED_QUANTILES]]
#: Columns of ``null_histograms.csv``: one row per histogram bin.
HISTOGRAM_COLUMNS = ["generator", "layer", "statistic", "bin_left", "bin_right", "count"]


def null_tables(paths: Sequence[str | Path]):
    """The small tables of a set of null files: thresholds and histograms (pandas frames)."""
    import pandas as pd

    thresholds, histograms = [], []
    for path in paths:
        nulls, attrs = read_nulls(path)
        for name, null in nulls.items():
            key = {"generator": attrs["generator"], "layer": attrs["layer"], "statistic": name}
            thresholds.append({
                **key, "threshold": null.threshold, "threshold_rule": null.threshold_rule, "n_pairs": null.n_pairs,
                "n_undefined": null.n_undefined, "n_pool": attrs["n_pool"],
                **{f"q{q:g}": v for q, v in null.quantiles.items()},
            })
            histograms.append(pd.DataFrame({**key, "bin_left": null.bin_edges[:-1], "bin_right": null.bin_edges[1:],
                                            "count": null.histogram}))
    return (pd.DataFrame(thresholds, columns=THRESHOLD_COLUMNS),
            pd.concat(histograms, ignore_index=True)[HISTOGRAM_COLUMNS] if histograms
            else pd.DataFrame(columns=HISTOGRAM_COLUMNS))


def null_job(config: Mapping[str, Any], generator: str, layer: str, out_path: str | Path) -> Path:
    """Rule ``null_distribution``: the nulls of every configured statistic at one (model, layer)."""
    from .config import layer_options
    from .devices import resolve_device
    from .provenance import provenance
    from .registry import load_model

    layer_options(config, generator, layer)  # an unknown generator or layer lists the valid ones
    settings = config["metamer_test"]
    torch.set_num_threads(int(config.get("threads", 1)))
    device = resolve_device(config.get("device", "auto"))
    references = load_image_set(config["images"]).ids
    pool_set, pool_ids = pool_images(config["images"], settings.get("pool"), references, settings["n_pairs"],
                                     settings["seed"])
    model = load_model(config["models"], generator, device)
    log.info("null %s/%s: %d pairs of %d pool images on %s", generator, layer, settings["n_pairs"], len(pool_ids),
             device)
    pool = pool_set.tensor(pool_ids, model.input_shape)
    nulls = compute_nulls(
        model, layer, pool, settings["statistics"], settings["n_pairs"], settings["seed"], settings["threshold"],
        settings["chunk_columns"], keep_values=settings["keep_values"],
    )
    for name, null in nulls.items():
        log.info("  %s: threshold %.6g (%s of %d pairs, %d undefined)", name, null.threshold, null.threshold_rule,
                 null.n_pairs, null.n_undefined)
    job_config = {"generator": generator, "layer": layer, "metamer_test": dict(settings),
                  "images": dict(config["images"]), "model": dict(config["models"][generator]), "device": str(device)}
    attrs = {**provenance(job_config, settings["seed"]), "generator": generator, "layer": layer,
             "n_pool": len(pool_ids), "n_pairs": settings["n_pairs"]}
    return write_nulls(out_path, nulls, attrs, pool_ids)
