"""The representation test's activation artifact: one evaluator's activations of the references
and of one method's metamers from one generator, computed once so that adding a measure never
reruns a network.

``results/representation/{method}/{generator}/{evaluator}.h5`` (schema version 3)::

    attrs: schema_version, method, generator, evaluator, layers (JSON list, early to late),
           generation_layers (JSON list), statistics (JSON list), reductions (JSON: evaluator
           layer -> {type, max_dim, seed, units, stored_dim}), depths (JSON: evaluator layer ->
           normalized depth, metamers.models.layers.layer_depth), provenance (project_version,
           git_commit, packages, job_config, seed, host), created
    image_ids (n,) str          the references, in the order of every dataset below
    labels (n,) int64
    reference/{layer} (n, d)    float32, the evaluator's (reduced) activations of the 8-bit references
    reference/logits (n, k)     float32
    metamer/{gen_layer}/{layer} (n m, d), metamer/{gen_layer}/logits (n m, k)
                                the same for the 8-bit metamers made at generation layer gen_layer;
                                with m members per reference (attribute members, optional, default 1:
                                a method's diversity), member-major: rows j n to (j + 1) n - 1 are
                                member j of every reference, in the references' order
    baseline_ids (n,) str       the natural-image baseline (representation.baseline): for each
                                reference, another image of its class from the null pool
                                (:func:`metamers.data.pools.baseline_images`); absent when off
    baseline/{layer} (n, d), baseline/logits (n, k)
                                the evaluator's activations of the baseline images, as for the references
    similarity/{gen_layer}/{layer}/{statistic} (n m,)
                                float64, the metamer test's statistics between each metamer's and
                                its reference's activations of the whole layer (before reduction),
                                comparable with the evaluator's null at that layer

Every group and dataset, the root included, also has attribute ``sha256``: the checksums of its
data (or member names) and attributes (:func:`.files.seal`), checked when the artifact is read
(:func:`.files.verify`; new in version 2: an earlier file cannot be verified and is refused,
naming rule ``representation_activations`` to remake it). Version 3 added the baseline.

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
    verify,
    write_h5,
)

REPRESENTATION_SCHEMA_VERSION = SCHEMA_VERSIONS["representation_activations"]
#: What the messages call the artifact, and the rule that writes it (the remedy they name).
KIND, RULE = "activation artifact", "representation_activations"
#: Attributes every activation artifact carries.
REQUIRED_ATTRS = ("method", "generator", "evaluator", "layers", "generation_layers", "statistics", "reductions", "depths",
                  "project_version", "packages", "job_config", "seed")


def representation_path(results: str | os.PathLike, method: str, generator: str, evaluator: str) -> Path:
    """Where the activation artifact of (method, generator, evaluator) is."""
    return Path(results) / "representation" / method / generator / f"{evaluator}.h5"


@dataclass
class EvaluatorActivations:
    """The content of an activation artifact (module docstring)."""

    image_ids: list[str]
    labels: np.ndarray
    reference: dict[str, np.ndarray]
    metamer: dict[str, dict[str, np.ndarray]]
    similarity: dict[str, dict[str, dict[str, np.ndarray]]]
    attrs: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, np.ndarray] = field(default_factory=dict)
    baseline_ids: list[str] = field(default_factory=list)

    @property
    def layers(self) -> list[str]:
        return json.loads(self.attrs["layers"])

    @property
    def generation_layers(self) -> list[str]:
        return json.loads(self.attrs["generation_layers"])

    @property
    def reductions(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.attrs["reductions"])

    @property
    def members(self) -> int:
        """Metamers per reference (a method's ``diversity``; 1 without one)."""
        return int(self.attrs.get("members", 1))

    def validate(self) -> None:
        """Every dataset has one row per image, and every generation layer has every evaluator layer."""
        n = len(self.image_ids)
        wanted = [*self.layers, "logits"]
        groups = {"reference": self.reference, **{f"metamer/{g}": self.metamer.get(g, {})
                                                  for g in self.generation_layers}}
        if self.baseline_ids:
            if len(self.baseline_ids) != n or set(self.baseline_ids) & set(self.image_ids):
                raise ArtifactError(f"baseline_ids must be {n} images that are not references")
            groups["baseline"] = self.baseline
        elif self.baseline:
            raise ArtifactError("baseline activations without baseline_ids")
        for group, data in groups.items():
            missing = [k for k in wanted if k not in data]
            if missing:
                raise ArtifactError(f"{group} lacks {missing}")
            rows = n * self.members if group.startswith("metamer/") else n
            for name, value in data.items():
                if len(value) != rows:
                    raise ArtifactError(f"{group}/{name} has {len(value)} rows for {rows} "
                                        f"{'metamers' if rows != n else 'images'}")
        for g in self.generation_layers:
            for layer in self.layers:
                for stat, value in self.similarity.get(g, {}).get(layer, {}).items():
                    if len(value) != n * self.members:
                        raise ArtifactError(f"similarity/{g}/{layer}/{stat} has {len(value)} values for "
                                            f"{n * self.members} metamers")


def write_activations(path: str | os.PathLike, data: EvaluatorActivations) -> Path:
    """Write ``data`` to ``path`` atomically."""
    attrs = artifact_attrs(path, KIND, REPRESENTATION_SCHEMA_VERSION, data.attrs, REQUIRED_ATTRS)
    data.validate()
    with write_h5(path) as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        f.create_dataset("image_ids", data=np.asarray(data.image_ids, dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("labels", data=np.asarray(data.labels, dtype=np.int64))
        for group, by_layer in (("reference", data.reference), ("baseline", data.baseline)):
            for name, value in by_layer.items():
                f.create_dataset(f"{group}/{name}", data=np.asarray(value, dtype=np.float32))
        if data.baseline_ids:
            f.create_dataset("baseline_ids", data=np.asarray(data.baseline_ids, dtype=object),
                             dtype=h5py.string_dtype())
        for g, by_layer in data.metamer.items():
            for name, value in by_layer.items():
                f.create_dataset(f"metamer/{g}/{name}", data=np.asarray(value, dtype=np.float32))
        for g, by_layer in data.similarity.items():
            for layer, by_stat in by_layer.items():
                for stat, value in by_stat.items():
                    f.create_dataset(f"similarity/{g}/{layer}/{stat}", data=np.asarray(value, dtype=np.float64))
    return Path(path)


def read_activations(path: str | os.PathLike) -> EvaluatorActivations:
    """Read, verify (:func:`.files.verify`) and validate an activation artifact; errors
    (:class:`.files.ArtifactError`) name the file and the problem and, when it is unreadable or
    differs from its checksums, the remedy (rerun rule ``representation_activations``)."""
    path = str(path)
    with open_h5(path, KIND, RULE) as f:
        check_version(f, path, KIND, REPRESENTATION_SCHEMA_VERSION, RULE)
        arrays = verify(f, path, KIND, RULE)
        attrs = checked_attrs(f, path, KIND, REPRESENTATION_SCHEMA_VERSION, REQUIRED_ATTRS, RULE)

        def group(name: str) -> dict:
            g = f.get(name)
            return {} if g is None else {k: (arrays[f"{name}/{k}"] if isinstance(v, h5py.Dataset)
                                             else group(f"{name}/{k}")) for k, v in g.items()}

        def names(key: str) -> list[str]:
            return [s.decode() if isinstance(s, bytes) else str(s) for s in arrays.get(key, [])]

        data = EvaluatorActivations(
            image_ids=names("image_ids"), labels=arrays["labels"], reference=group("reference"),
            metamer=group("metamer"), similarity=group("similarity"), attrs=attrs, baseline=group("baseline"),
            baseline_ids=names("baseline_ids"))
    try:
        data.validate()
    except ArtifactError as err:
        raise ArtifactError(f"{KIND} {path!r}: {err}") from None
    return data
