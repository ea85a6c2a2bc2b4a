"""The inversion artifact: one evaluator's representations of a few references and of their
metamers, inverted at chosen layers (Mahendran and Vedaldi 2015; config section ``inversion``).

``results/inversions/{evaluator}.h5`` (schema version 2)::

    attrs: schema_version, evaluator, layers (JSON list, early to late), method (JSON: the full
           inversion method settings), seed (the base seed of the starting points), provenance
           (project_version, git_commit, packages, job_config, host), created
    image_id (m,) str          the reference each source row belongs to
    label (m,) int64
    kind (m,) str              "reference" or "metamer"
    method, generator, layer (m,) str
                               the metamer's method, generator and generation layer ("" for a reference)
    source (m, C, H, W) uint8  the image whose representation is inverted, at the evaluator's input
    start (m, C, H, W) float32 the starting point (one per reference: its metamers' rows start there too)
    inverted/{layer} (m, C, H, W) float32   the inversion at evaluator layer ``layer``, in [0, 1]
    loss/{layer} (m,) float64               its final objective (representation loss plus priors)
    mismatch/{layer} (m,) float64           ``||a(inversion) - a(source)|| / ||a(source)||`` at the layer

Every group and dataset, the root included, also has attribute ``sha256``: the checksums of its
data (or member names) and attributes (:func:`.files.seal`), checked when the artifact is read
(:func:`.files.verify`; new in version 2: an earlier file cannot be verified and is refused,
naming rule ``inversion`` to remake it).

The artifact is written to a temporary name and renamed (:func:`.files.atomic_path`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .files import (
    SCHEMA_VERSIONS,
    ArtifactError,
    artifact_attrs,
    check_version,
    checked_attrs,
    open_h5,
    remedy,
    verify,
    write_h5,
)

INVERSION_SCHEMA_VERSION = SCHEMA_VERSIONS["inversion"]
#: What the messages call the artifact, and the rule that writes it (the remedy they name).
KIND, RULE = "inversion artifact", "inversion"
#: Attributes every inversion artifact carries.
REQUIRED_ATTRS = ("evaluator", "layers", "method", "seed", "project_version", "packages", "job_config")
#: The per-row string columns, in the order of the module docstring.
ROW_COLUMNS = ("image_id", "kind", "method", "generator", "layer")
#: What ``kind`` may be.
KINDS = ("reference", "metamer")


def inversion_path(results: str | os.PathLike, evaluator: str) -> Path:
    """Where the inversion artifact of ``evaluator`` is."""
    return Path(results) / "inversions" / f"{evaluator}.h5"


@dataclass
class Inversions:
    """The content of an inversion artifact (module docstring)."""

    rows: dict[str, list[str]]
    label: np.ndarray
    source: np.ndarray
    start: np.ndarray
    inverted: dict[str, np.ndarray]
    loss: dict[str, np.ndarray]
    mismatch: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return json.loads(self.attrs["layers"])

    def __len__(self) -> int:
        return len(self.source)

    def validate(self) -> None:
        """One row per source everywhere, every layer present, images of one shape, known kinds."""
        m = len(self.source)
        if self.source.ndim != 4 or self.source.dtype != np.uint8:
            raise ArtifactError(f"source must be (m, C, H, W) uint8, got {self.source.shape} {self.source.dtype}")
        for name in ROW_COLUMNS:
            if len(self.rows.get(name, ())) != m:
                raise ArtifactError(f"row column {name!r} has {len(self.rows.get(name, ()))} values for {m} sources")
        bad = sorted(set(self.rows["kind"]) - set(KINDS))
        if bad:
            raise ArtifactError(f"unknown kind(s) {bad}; known: {', '.join(KINDS)}")
        if len(self.label) != m or self.start.shape != self.source.shape:
            raise ArtifactError(f"label ({len(self.label)}) and start {self.start.shape} must match the "
                                f"{m} sources {self.source.shape}")
        for layer in self.layers:
            for group, data in (("inverted", self.inverted), ("loss", self.loss), ("mismatch", self.mismatch)):
                if layer not in data:
                    raise ArtifactError(f"{group} lacks layer {layer!r}")
            if self.inverted[layer].shape != self.source.shape:
                raise ArtifactError(f"inverted/{layer} has shape {self.inverted[layer].shape}, the sources "
                                    f"{self.source.shape}")
            for group in ("loss", "mismatch"):
                if len(getattr(self, group)[layer]) != m:
                    raise ArtifactError(f"{group}/{layer} has {len(getattr(self, group)[layer])} values for {m} sources")


def write_inversions(path: str | os.PathLike, data: Inversions) -> Path:
    """Write ``data`` to ``path`` atomically."""
    attrs = artifact_attrs(path, KIND, INVERSION_SCHEMA_VERSION, data.attrs, REQUIRED_ATTRS)
    data.validate()
    with write_h5(path) as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for name in ROW_COLUMNS:
            f.create_dataset(name, data=np.asarray(data.rows[name], dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("label", data=np.asarray(data.label, dtype=np.int64))
        f.create_dataset("source", data=data.source, compression="gzip")
        f.create_dataset("start", data=np.asarray(data.start, dtype=np.float32), compression="gzip")
        for layer in data.layers:
            f.create_dataset(f"inverted/{layer}", data=np.asarray(data.inverted[layer], dtype=np.float32),
                             compression="gzip")
            f.create_dataset(f"loss/{layer}", data=np.asarray(data.loss[layer], dtype=np.float64))
            f.create_dataset(f"mismatch/{layer}", data=np.asarray(data.mismatch[layer], dtype=np.float64))
    return Path(path)


def read_inversions(path: str | os.PathLike) -> Inversions:
    """Read, verify (:func:`.files.verify`) and validate an inversion artifact; errors
    (:class:`.files.ArtifactError`) name the file and the problem and, when it is unreadable or
    differs from its checksums, the remedy (rerun rule ``inversion``)."""
    path = str(path)
    with open_h5(path, KIND, RULE) as f:
        check_version(f, path, KIND, INVERSION_SCHEMA_VERSION, RULE)
        arrays = verify(f, path, KIND, RULE)
        attrs = checked_attrs(f, path, KIND, INVERSION_SCHEMA_VERSION, REQUIRED_ATTRS, RULE)
        layers = json.loads(attrs["layers"])
        wanted = [*ROW_COLUMNS, "label", "source", "start",
                  *[f"{group}/{layer}" for group in ("inverted", "loss", "mismatch") for layer in layers]]
        absent = [name for name in wanted if name not in arrays]
        if absent:
            raise ArtifactError(f"{KIND} {path!r} lacks dataset(s) {absent} ({remedy(RULE, path)})")
        data = Inversions(
            rows={name: [s.decode() if isinstance(s, bytes) else str(s) for s in arrays[name]]
                  for name in ROW_COLUMNS},
            label=arrays["label"], source=arrays["source"], start=arrays["start"],
            inverted={layer: arrays[f"inverted/{layer}"] for layer in layers},
            loss={layer: arrays[f"loss/{layer}"] for layer in layers},
            mismatch={layer: arrays[f"mismatch/{layer}"] for layer in layers}, attrs=attrs)
    try:
        data.validate()
    except ArtifactError as err:
        raise ArtifactError(f"{KIND} {path!r}: {err}") from None
    return data
