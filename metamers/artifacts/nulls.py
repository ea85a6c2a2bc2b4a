"""Null files: the null distributions of one (model, layer), one HDF5 file each, and their tables.

Layout of ``results/nulls/{generator}/{layer}.h5`` (schema version 3)::

    /                 attributes: schema_version, provenance (project_version, packages,
                      job_config, seed, ...), generator, layer, n_pool, n_pairs, n_draws,
                      pool, pool_held_out
    /pool_ids         (K,) UTF-8 strings, the pool images the pairs were drawn from
    /<statistic>/     attributes threshold, threshold_rule, n_pairs, n_undefined;
                      datasets quantile_levels, quantiles, histogram, bin_edges,
                      draw_thresholds (one per draw), values (only with keep_values)

Every group and dataset, the root included, also has attribute ``sha256``: the checksums of its
data (or member names) and attributes (:func:`.files.seal`), checked when the file is read
(:func:`.files.verify`; new in version 3: an earlier file cannot be verified and is refused,
naming rule ``null_distribution`` to remake it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..stats.nulls import STORED_QUANTILES, NullDistribution
from ..stats.pairs import weak_null_reason
from .files import SCHEMA_VERSIONS, attrs_of, check_version, open_h5, verify, write_h5

NULL_SCHEMA_VERSION = SCHEMA_VERSIONS["null_distribution"]
#: What the messages call the file, and the rule that writes it (the remedy they name).
KIND, RULE = "null file", "null_distribution"


def write_nulls(path: str | Path, nulls: Mapping[str, NullDistribution], attrs: Mapping[str, Any],
                pool_ids: Sequence[str]) -> Path:
    """Write the nulls of one (model, layer) atomically (one group per statistic)."""
    with write_h5(path) as f:
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
    """Read and verify (:func:`.files.verify`) a null file: ``({statistic: NullDistribution},
    attributes)``; errors (:class:`.files.ArtifactError`) name the file, what is wrong and, when it is
    unreadable or differs from its checksums, the remedy (rerun rule ``null_distribution``)."""
    path = str(path)
    with open_h5(path, KIND, RULE) as f:
        check_version(f, path, KIND, NULL_SCHEMA_VERSION, RULE)
        data = verify(f, path, KIND, RULE)
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
                quantiles=dict(zip(data[f"{name}/quantile_levels"].tolist(), data[f"{name}/quantiles"].tolist())),
                histogram=data[f"{name}/histogram"],
                bin_edges=data[f"{name}/bin_edges"],
                draw_thresholds=data[f"{name}/draw_thresholds"],
                values=data.get(f"{name}/values"),
            )
        return nulls, attrs_of(f)


#: Columns of ``null_thresholds.csv``: one row per (generator, layer, statistic). ``threshold`` is
#: the first draw's (used by the metamer test); ``threshold_min/max/sd`` its spread over the draws;
#: ``weak_null`` marks a null of fewer distinct pool images or pairs than
#: :data:`~metamers.stats.pairs.MIN_NULL_IMAGES` and :data:`~metamers.stats.pairs.MIN_NULL_PAIRS`.
THRESHOLD_COLUMNS = ["generator", "layer", "statistic", "threshold", "threshold_rule", "n_pairs", "n_undefined",
                     "n_pool", "n_draws", "weak_null", "threshold_min", "threshold_max", "threshold_sd",
                     *[f"q{q:g}" for q in STORED_QUANTILES]]
#: Columns of ``null_histograms.csv``: one row per histogram bin.
HISTOGRAM_COLUMNS = ["generator", "layer", "statistic", "bin_left", "bin_right", "count"]


def null_tables(paths: Sequence[str | Path]):
    """The small tables of a set of null files: thresholds and histograms (pandas frames)."""
    import pandas as pd

    from ..tables import concat_tables

    thresholds, histograms = [], []
    for path in paths:
        nulls, attrs = read_nulls(path)
        for name, null in nulls.items():
            key = {"generator": attrs["generator"], "layer": attrs["layer"], "statistic": name}
            draws = np.asarray(null.draw_thresholds, dtype=np.float64)
            thresholds.append({
                **key, "threshold": null.threshold, "threshold_rule": null.threshold_rule, "n_pairs": null.n_pairs,
                "n_undefined": null.n_undefined, "n_pool": attrs["n_pool"], "n_draws": len(draws),
                "weak_null": weak_null_reason(int(attrs["n_pool"]), int(null.n_pairs)) is not None,
                "threshold_min": draws.min(), "threshold_max": draws.max(),
                "threshold_sd": draws.std(ddof=1) if len(draws) > 1 else 0.0,
                **{f"q{q:g}": v for q, v in null.quantiles.items()},
            })
            histograms.append(pd.DataFrame({**key, "bin_left": null.bin_edges[:-1], "bin_right": null.bin_edges[1:],
                                            "count": null.histogram}))
    return pd.DataFrame(thresholds, columns=THRESHOLD_COLUMNS), concat_tables(histograms, HISTOGRAM_COLUMNS)
