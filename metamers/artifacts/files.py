"""Writing files safely: atomic writes; reading HDF5 attributes back.

Every artifact is written under a temporary name in its folder and renamed when complete, so
a reader never sees a partial file and a killed job leaves none behind.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class ArtifactError(RuntimeError):
    """An artifact that is missing, unreadable or not of the expected schema."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def h5_attr(value: Any) -> Any:
    """An HDF5 attribute as a Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def checked_attrs(f: Any, path: str, kind: str, version: int, required: Sequence[str]) -> dict[str, Any]:
    """The attributes of the open HDF5 artifact ``f`` (``kind`` names it in errors), after checking
    that its schema version is ``version`` and that it has every ``required`` attribute.

    Raises
    ------
    ArtifactError
        Naming the file, and the version found or the attributes it lacks.
    """
    found = h5_attr(f.attrs.get("schema_version"))
    if found != version:
        raise ArtifactError(f"{kind} {path!r} has schema version {found!r}; this version reads {version} "
                            "(delete it to recompute)")
    attrs = {k: h5_attr(v) for k, v in f.attrs.items()}
    missing = [a for a in required if a not in attrs]
    if missing:
        raise ArtifactError(f"{kind} {path!r} lacks attribute(s) {missing}")
    return attrs


def artifact_attrs(path: str | os.PathLike, kind: str, version: int, attrs: dict[str, Any],
                   required: Sequence[str]) -> dict[str, Any]:
    """The attributes an artifact is written with: its schema ``version``, the time, and ``attrs``,
    which must hold every ``required`` attribute (:class:`ArtifactError` names the missing ones)."""
    import datetime

    out = {"schema_version": version,
           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **attrs}
    missing = [a for a in required if a not in out]
    if missing:
        raise ArtifactError(f"{kind} {str(path)!r} lacks attribute(s) {missing}")
    return out
