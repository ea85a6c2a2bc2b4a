"""Rules ``metamer_test`` and ``metamer_test_table``: the metamer test of one method's metamers
from one generator, and the merged table with its summary."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..artifacts.metamers import read_metamer_batch
from ..artifacts.nulls import read_nulls
from ..config import generator_layers
from ..models.loading import load_model
from ..stats.metamer_test import METAMER_TEST_COLUMNS, metamer_test_rows, summarize
from ..tables import concat_tables, read_tables, write_table
from .common import job_device

log = logging.getLogger(__name__)


def metamer_test(config: Mapping[str, Any], generator: str, artifact_paths: Sequence[str | Path],
                 null_paths: Sequence[str | Path], out_path: str | Path) -> Path:
    """Rule ``metamer_test``: test the metamers in ``artifact_paths`` (all made by ``generator``)
    at every layer of the generator, against the nulls in ``null_paths`` (one per layer), by the
    configured statistics and comparison; write the rows to ``out_path``."""
    layers = generator_layers(config, generator)
    settings = config["metamer_test"]
    nulls = {}
    for path in null_paths:
        by_statistic, attrs = read_nulls(path)
        nulls[attrs["layer"]] = {s: by_statistic[s] for s in settings["statistics"]}
    missing = [layer for layer in layers if layer not in nulls]
    if missing:
        raise ValueError(f"no null file for layer(s) {missing} of generator {generator!r} among {list(null_paths)}")
    model = load_model(config["models"], generator, job_device(config))
    table = concat_tables((metamer_test_rows(model, read_metamer_batch(p, activations=False), nulls, layers,
                                             settings["comparison"]) for p in artifact_paths), METAMER_TEST_COLUMNS)
    log.info("metamer test of %s's metamers in %d artifacts: %d rows", generator, len(artifact_paths), len(table))
    return write_table(table, out_path)


def metamer_test_table(test_paths: Sequence[str | Path], rows_path: str | Path, summary_path: str | Path) -> None:
    """Rule ``metamer_test_table``: merge the metamer tests; the fraction of metamers passing per
    (method, generator, layer)."""
    rows = read_tables(test_paths, METAMER_TEST_COLUMNS)
    write_table(rows, rows_path)
    write_table(summarize(rows), summary_path)
