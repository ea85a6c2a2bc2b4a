"""The small tables (CSV) that jobs write and figures read: merging, reading and writing them.

Each table's columns are defined beside the function that makes its rows
(:data:`~metamers.stats.metamer_test.METAMER_TEST_COLUMNS`,
:data:`~metamers.stats.recognizability.TRANSFER_COLUMNS`, ...).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from .artifacts.files import atomic_path


def concat_tables(frames: Iterable[pd.DataFrame], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """``frames`` one under the other, with ``columns`` in that order (an empty table with
    those columns when there are no frames)."""
    frames = list(frames)
    if not frames:
        return pd.DataFrame(columns=list(columns) if columns is not None else None)
    out = pd.concat(frames, ignore_index=True)
    return out[list(columns)] if columns is not None else out


def read_tables(paths: Iterable[str | os.PathLike], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The CSV tables at ``paths``, one under the other (see :func:`concat_tables`)."""
    return concat_tables((pd.read_csv(p) for p in paths), columns)


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as CSV, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)
