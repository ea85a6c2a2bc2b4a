"""Rules ``recognizability`` and ``transfer_table``: every evaluator classifies one method's
metamers from one generator; the merged table with the metamer test's verdicts, and accuracy
per (method, generator, layer, evaluator)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..artifacts.metamers import read_metamer_batch
from ..models.loading import load_model
from ..stats.recognizability import CLASSIFICATION_COLUMNS, attach_verdicts
from ..stats.recognizability import recognizability as classify
from ..stats.recognizability import transfer_table as transfer
from ..tables import concat_tables, read_tables, write_table
from .common import class_decision, job_device

log = logging.getLogger(__name__)


def recognizability(config: Mapping[str, Any], artifact_paths: Sequence[str | Path], out_path: str | Path) -> Path:
    """Rule ``recognizability``: every configured evaluator (one in memory at a time) classifies
    the metamers in ``artifact_paths`` and their references; rows to ``out_path``."""
    device = job_device(config)
    batches = [read_metamer_batch(p, activations=False) for p in artifact_paths]
    frames = []
    for evaluator in config["evaluators"]:
        model = load_model(config["models"], evaluator, device)
        class_map, n_classes = class_decision(config, evaluator)
        mine = [classify(b, model, config.generator_layers(b.attrs["generator"]), class_map, n_classes)
                for b in batches]
        log.info("%s classified %d metamers", evaluator, sum(len(f) for f in mine))
        frames.extend(mine)
        del model
    return write_table(concat_tables(frames, CLASSIFICATION_COLUMNS), out_path)


def transfer_table(recognizability_paths: Sequence[str | Path], metamer_test_path: str | Path,
                   recognizability_out: str | Path, transfer_out: str | Path) -> None:
    """Rule ``transfer_table``: merge the evaluators' tables with the metamer test's verdicts
    (``recognizability.csv``) and summarise them per evaluator (``transfer.csv``)."""
    rows = attach_verdicts(read_tables(recognizability_paths, CLASSIFICATION_COLUMNS),
                           read_tables([metamer_test_path]))
    write_table(rows, recognizability_out)
    write_table(transfer(rows), transfer_out)
