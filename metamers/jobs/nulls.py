"""Rules ``null_distribution`` and ``null_tables``: the nulls of one (model, layer), and their tables."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..artifacts.nulls import null_tables as read_null_tables
from ..artifacts.nulls import write_nulls
from ..data import load_image_set
from ..data.pools import pool_images
from ..models.loading import load_model
from ..provenance import provenance
from ..registry import lookup
from ..stats.nulls import compute_nulls
from ..tables import write_table
from .common import job_device

log = logging.getLogger(__name__)


def null_distribution(config: Mapping[str, Any], generator: str, layer: str, out_path: str | Path) -> Path:
    """Rule ``null_distribution``: the nulls of every configured statistic at one (model, layer)
    that a generator matches (``generator`` is the model: a single generator, or a member of a
    joint one)."""
    needed = config.null_targets()  # an unknown model or layer lists the valid ones
    layers = lookup(needed, generator, "generator", listed="configured")
    lookup(dict.fromkeys(layers), layer, "layer", listed="configured", context=f"generator {generator!r}: ")
    settings = config["metamer_test"]
    device = job_device(config)
    references = load_image_set(config["images"]).ids
    pool_set, pool_ids = pool_images(config["images"], settings.get("pool"), references, settings["n_pairs"],
                                     settings["pair_sampling"])
    model = load_model(config["models"], generator, device)
    log.info("null %s/%s: %d draws of %d pairs of %d pool images (%s) on %s", generator, layer, settings["n_draws"],
             settings["n_pairs"], len(pool_ids), pool_set.name, device)
    nulls = compute_nulls(
        model, layer, lambda a, b: pool_set.tensor(pool_ids[a:b], model.input_shape), settings["statistics"],
        settings["n_pairs"], settings["seed"], settings["threshold"], n_draws=settings["n_draws"],
        pair_sampling=settings["pair_sampling"], n_pool=len(pool_ids), chunk_columns=settings["chunk_columns"],
        memory_gb=settings["memory_gb"],
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


def null_tables(null_paths: Sequence[str | Path], thresholds_path: str | Path, histograms_path: str | Path) -> None:
    """Rule ``null_tables``: the thresholds and histograms of every null as two small CSV tables."""
    thresholds, histograms = read_null_tables(null_paths)
    write_table(thresholds, thresholds_path)
    write_table(histograms, histograms_path)
