"""Rules ``metamer_test`` and ``metamer_test_table``: the metamer test of one method's metamers
from one generator, and the merged table with its summary."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..artifacts.metamers import read_metamer_batch
from ..artifacts.nulls import read_nulls
from ..models.loading import load_model
from ..stats.metamer_test import METAMER_TEST_COLUMNS, metamer_test_rows, summarize
from ..tables import concat_tables, read_tables, write_table
from .common import class_decision, job_device

log = logging.getLogger(__name__)


def metamer_test(config: Mapping[str, Any], generator: str, artifact_paths: Sequence[str | Path],
                 null_paths: Sequence[str | Path], out_path: str | Path) -> Path:
    """Rule ``metamer_test``: test the metamers in ``artifact_paths`` (all made by ``generator``)
    by every model the generator runs (itself, or each member of a joint generator) at each of
    that model's layers that the generator matches, against the nulls in ``null_paths`` (one per
    (model, layer)), by the configured statistics and comparison; write the rows to ``out_path``."""
    layers = config.generator_layers(generator)
    measured = config.null_targets([generator])  # model -> its target layers over all the generator's layers
    settings = config["metamer_test"]
    nulls: dict[tuple[str, str], dict] = {}
    for path in null_paths:
        by_statistic, attrs = read_nulls(path)
        nulls[(attrs["generator"], attrs["layer"])] = {s: by_statistic[s] for s in settings["statistics"]}
    missing = [f"{m}/{layer}" for m, ls in measured.items() for layer in ls if (m, layer) not in nulls]
    if missing:
        raise ValueError(f"no null file for {missing} (targets of generator {generator!r}) among {list(null_paths)}")
    batches = [read_metamer_batch(p, activations=False) for p in artifact_paths]
    frames = []
    for name, own_layers in measured.items():
        model = load_model(config["models"], name, job_device(config))
        class_map, _ = class_decision(config, name)
        frames.extend(metamer_test_rows(model, b, {layer: nulls[(name, layer)] for layer in own_layers}, own_layers,
                                        settings["comparison"], layers, class_map) for b in batches)
        del model
    table = concat_tables(frames, METAMER_TEST_COLUMNS)
    log.info("metamer test of %s's metamers in %d artifacts by %s: %d rows", generator, len(artifact_paths),
             ", ".join(measured), len(table))
    return write_table(table, out_path)


def metamer_test_table(test_paths: Sequence[str | Path], rows_path: str | Path, summary_path: str | Path) -> None:
    """Rule ``metamer_test_table``: merge the metamer tests; the fraction of metamers passing per
    (method, generator, layer)."""
    rows = read_tables(test_paths, METAMER_TEST_COLUMNS)
    write_table(rows, rows_path)
    write_table(summarize(rows), summary_path)
