"""The artifact store: HDF5 files of metamers, one per generation job.

Layout of ``results/metamers/{method}/{generator}/{layer}/{batch}.h5`` (schema version 6).
N is the number of metamers of the job (its references times the method's diversity ``k``, 1 without one), T the iteration budget, D the size of the
generator's activation at the target layer, C the number of metamer-test checks during
synthesis (0 when the method does not check)::

    /                     attributes: schema_version, project_version, git_commit, packages (JSON),
                          job_config (JSON), seed, host, method, generator, layer, batch,
                          iterations, iterations_run, check_every, on_success,
                          thresholds (JSON), comparison, fake_relu (0/1: the straight-through
                          ReLU was used at the layer), references_held_out (0/1: the image
                          set is held out from the models' training), targets (JSON: the
                          (model, layer) targets matched, each with its weight, fake_relu and
                          activation size dim; several for a joint generator), diversity (JSON,
                          optional: the method's diversity term {k, weight, space, until}, or null),
                          seconds_per_iteration
                          (wall time of one step of the whole batch, checks excluded),
                          created (ISO 8601, UTC)
    /image_ids            (N,)          UTF-8 strings, the reference image ids (each repeated for its
                                        members, reference-major)
    /member               (N,)          int64, each metamer's member index among its reference's
                                        (0 to k - 1; all 0 without a diversity term)
    /labels               (N,)          int64, true labels
    /reference            (N, C, H, W)  uint8, the reference as shown to the generator
    /metamer              (N, C, H, W)  float32 in [0, 1], the last iterate
    /metamer_uint8        (N, C, H, W)  uint8, the saved image that other models see
    /start_uint8          (N, C, H, W)  uint8, each image's starting point (clipped to [0, 1])
    /loss                 (N, T)        float32, loss before every step (NaN after an early stop)
    /final_loss           (N,)          float32, loss of the float32 metamer
    /generator_prediction (N,)          int64, the generator's class for the reference, in the images' label space (labels.decide; a joint generator's first member)
    /activations/reference (N, D)       float16, gzip; generator's activation of the 8-bit reference
    /activations/metamer   (N, D)       float16, gzip; generator's activation of the 8-bit metamer
                                        (a joint generator's: every target's, side by side in the
                                        order of ``targets``, D the sum of their dims)
    /start_seed           (N,)          int64, seed of each image's starting point (from the base
                                        seed and the image id: the same at every layer and method)
    /pass_iteration       (N,)          int64, first checked iteration whose 8-bit iterate passed
                                        the metamer test at the generation layer (-1: none)
    /test_iterations      (C,)          int64, the checked iterations
    /test_passed          (N, C)        bool, passed (every statistic and the class) at each check
    /test_values/<statistic> (N, C)     float32, the statistic at the generation layer at each check
                                        (a joint generator's named model:layer:statistic); an image
                                        not tested after its first pass (on_success stop: frozen;
                                        record: run on untested, the checks ending once every image
                                        passed) repeats the values and verdict it passed with
    /distances/metamer/<distance> (N,)  float64, 8-bit metamer vs 8-bit reference
                                        (:data:`metamers.stats.distances.DISTANCES`: l2, rms, ssim)
    /distances/start/<distance>   (N,)  float64, the (float) starting point vs the 8-bit reference
    /first_pass_uint8     (N, C, H, W)  uint8, only with on_success record: each image's 8-bit iterate
                                        at its first pass (the metamer is the last iterate); an image
                                        that never passed (pass_iteration -1) has its metamer here

Every group and dataset, the root included, also has attribute ``sha256``: the checksums of its
data (or member names) and attributes (:func:`.files.seal`), checked when the file is read
(:func:`.files.verify`; new in version 5: a file of version 4 or earlier cannot be verified and
is refused, naming rule ``generate`` to remake it). Version 6 added ``member``.

Files are written under a temporary name in the same folder and renamed when complete,
so a reader never sees a partial file and a killed job leaves none behind.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..stats.distances import DISTANCES
from .files import (
    SCHEMA_VERSIONS,
    ArtifactError,
    ArtifactIntegrityError,
    atomic_path,
    attrs_of,
    check_version,
    file_sha256,
    open_h5,
    remedy,
    verify,
    write_h5,
)

SCHEMA_VERSION = SCHEMA_VERSIONS["generate"]
#: What the messages call the artifact, and the rule that writes it (the remedy they name).
KIND, RULE = "metamer artifact", "generate"
#: The datasets that ``read_metamer_batch(..., activations=False)`` neither reads nor verifies.
ACTIVATIONS = ("activations/reference", "activations/metamer")

#: Dataset name -> (dtype kind, number of dimensions) that a valid file holds.
DATASETS: dict[str, tuple[str, int]] = {
    "image_ids": ("O", 1),
    "member": ("i", 1),
    "labels": ("i", 1),
    "reference": ("u", 4),
    "metamer": ("f", 4),
    "metamer_uint8": ("u", 4),
    "start_uint8": ("u", 4),
    "loss": ("f", 2),
    "final_loss": ("f", 1),
    "generator_prediction": ("i", 1),
    "activations/reference": ("f", 2),
    "activations/metamer": ("f", 2),
    "start_seed": ("i", 1),
    "pass_iteration": ("i", 1),
    "test_iterations": ("i", 1),
    "test_passed": ("b", 2),
}

#: Attributes every file carries.
REQUIRED_ATTRS = (
    "schema_version",
    "project_version",
    "packages",
    "job_config",
    "seed",
    "method",
    "generator",
    "layer",
    "batch",
    "iterations",
    "iterations_run",
    "check_every",
    "on_success",
    "thresholds",
    "comparison",
    "fake_relu",
    "targets",
    "seconds_per_iteration",
    "created",
)


@dataclass
class MetamerBatch:
    """The content of one metamer artifact (see the module docstring for shapes)."""

    image_ids: list[str]
    labels: np.ndarray
    reference: np.ndarray
    metamer: np.ndarray
    metamer_uint8: np.ndarray
    start_uint8: np.ndarray
    loss: np.ndarray
    final_loss: np.ndarray
    generator_prediction: np.ndarray
    activations_reference: np.ndarray
    activations_metamer: np.ndarray
    start_seed: np.ndarray
    pass_iteration: np.ndarray
    test_iterations: np.ndarray
    test_passed: np.ndarray
    test_values: dict[str, np.ndarray]
    distances: dict[str, dict[str, np.ndarray]]
    attrs: dict[str, Any]
    first_pass_uint8: np.ndarray | None = None
    #: each metamer's member index (None: all 0, one metamer per reference)
    member: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        self.member = np.zeros(n, np.int64) if self.member is None else np.asarray(self.member, np.int64)
        keys = list(zip(self.image_ids, self.member.tolist()))
        if len(set(keys)) != len(keys):
            raise ArtifactError("two metamers of one reference have the same member index")
        per_image = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        if self.first_pass_uint8 is not None and self.first_pass_uint8.shape != self.metamer_uint8.shape:
            raise ArtifactError(f"first_pass_uint8 has shape {self.first_pass_uint8.shape}; expected "
                                f"{self.metamer_uint8.shape}, that of metamer_uint8")
        per_image.pop("test_iterations")
        per_image.update({f"test_values/{k}": v for k, v in per_image.pop("test_values").items()})
        distances = per_image.pop("distances")
        if set(distances) != {"metamer", "start"}:
            raise ArtifactError(f"distances must have groups 'metamer' and 'start', got {sorted(distances)}")
        per_image.update({f"distances/{g}/{k}": v for g, d in distances.items() for k, v in d.items()})
        for name, value in per_image.items():
            if isinstance(value, np.ndarray) and value.shape[0] != n:
                raise ArtifactError(f"{name} has {value.shape[0]} rows for {n} image ids")
        c = len(self.test_iterations)
        for name, value in [("test_passed", self.test_passed), *self.test_values.items()]:
            if value.ndim != 2 or value.shape[1] != c:
                raise ArtifactError(f"{name} has shape {value.shape}; expected ({n}, {c}) for {c} checks")


def write_metamer_batch(path: str | os.PathLike, batch: MetamerBatch) -> Path:
    """Write ``batch`` to ``path`` atomically (temporary name, then rename)."""
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **batch.attrs,
    }
    missing = [a for a in REQUIRED_ATTRS if a not in attrs]
    if missing:
        raise ArtifactError(f"metamer artifact {str(path)!r} lacks attribute(s) {missing}")
    with write_h5(path) as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        f.create_dataset("image_ids", data=np.asarray(batch.image_ids, dtype=object),
                         dtype=h5py.string_dtype())
        f.create_dataset("member", data=np.asarray(batch.member, dtype=np.int64))
        f.create_dataset("labels", data=np.asarray(batch.labels, dtype=np.int64))
        f.create_dataset("reference", data=np.asarray(batch.reference, dtype=np.uint8))
        f.create_dataset("metamer", data=np.asarray(batch.metamer, dtype=np.float32))
        f.create_dataset("metamer_uint8", data=np.asarray(batch.metamer_uint8, dtype=np.uint8))
        f.create_dataset("start_uint8", data=np.asarray(batch.start_uint8, dtype=np.uint8))
        f.create_dataset("loss", data=np.asarray(batch.loss, dtype=np.float32),
                         compression="gzip", shuffle=True)
        f.create_dataset("final_loss", data=np.asarray(batch.final_loss, dtype=np.float32))
        f.create_dataset("generator_prediction",
                         data=np.asarray(batch.generator_prediction, dtype=np.int64))
        for name in ("reference", "metamer"):
            data = getattr(batch, f"activations_{name}")
            f.create_dataset(f"activations/{name}", data=np.asarray(data, dtype=np.float16),
                             compression="gzip", shuffle=True)
        f.create_dataset("start_seed", data=np.asarray(batch.start_seed, dtype=np.int64))
        f.create_dataset("pass_iteration", data=np.asarray(batch.pass_iteration, dtype=np.int64))
        f.create_dataset("test_iterations", data=np.asarray(batch.test_iterations, dtype=np.int64))
        f.create_dataset("test_passed", data=np.asarray(batch.test_passed, dtype=bool))
        values = f.create_group("test_values")
        for name, data in batch.test_values.items():
            values.create_dataset(name, data=np.asarray(data, dtype=np.float32))
        for group, by_name in batch.distances.items():
            for name, data in by_name.items():
                f.create_dataset(f"distances/{group}/{name}", data=np.asarray(data, dtype=np.float64))
        if batch.first_pass_uint8 is not None:
            f.create_dataset("first_pass_uint8", data=np.asarray(batch.first_pass_uint8, dtype=np.uint8))
    return Path(path)


def _check_schema(f: h5py.File, path: str) -> None:
    missing = [a for a in REQUIRED_ATTRS if a not in f.attrs]
    if missing:
        raise ArtifactError(f"{KIND} {path!r} lacks attribute(s) {missing}")
    for name, (kind, ndim) in DATASETS.items():
        if name not in f:
            raise ArtifactError(f"{KIND} {path!r} lacks dataset {name!r}")
        ds = f[name]
        if ds.ndim != ndim or (kind != "O" and ds.dtype.kind != kind):
            raise ArtifactError(
                f"{KIND} {path!r}: dataset {name!r} is {ds.dtype}{ds.shape}, "
                f"expected kind {kind!r} with {ndim} dimensions"
            )
    for group in ("metamer", "start"):
        for name in DISTANCES:
            if f"distances/{group}/{name}" not in f:
                raise ArtifactError(f"{KIND} {path!r} lacks dataset 'distances/{group}/{name}'")
    if "first_pass_uint8" in f:  # optional (on_success: record)
        ds = f["first_pass_uint8"]
        if ds.dtype != np.uint8 or ds.shape != f["metamer_uint8"].shape:
            raise ArtifactError(f"{KIND} {path!r}: dataset 'first_pass_uint8' is {ds.dtype}{ds.shape}, "
                                f"expected uint8{f['metamer_uint8'].shape} (that of metamer_uint8)")


def read_metamer_batch(path: str | os.PathLike, activations: bool = True) -> MetamerBatch:
    """Read, verify (:func:`.files.verify`) and validate a metamer artifact.

    With ``activations=False`` the (large) activation datasets are neither read nor verified, and
    are empty.

    Raises
    ------
    ArtifactError
        Naming the file and what is wrong: an :class:`.files.ArtifactIntegrityError` (with the
        remedy, rerun rule ``generate``) when it is unreadable or differs from its checksums.
    """
    path = str(path)
    with open_h5(path, KIND, RULE) as f:
        check_version(f, path, KIND, SCHEMA_VERSION, RULE)
        data = verify(f, path, KIND, RULE, skip=() if activations else ACTIVATIONS)
        _check_schema(f, path)
        n = f["image_ids"].shape[0]
        acts = {name: data[f"activations/{name}"] if activations else np.empty((n, 0), np.float16)
                for name in ("reference", "metamer")}

        def group(name: str) -> dict[str, np.ndarray]:
            return {k: data[f"{name}/{k}"] for k in f[name]} if name in f else {}

        return MetamerBatch(
            image_ids=[s.decode() if isinstance(s, bytes) else str(s) for s in data["image_ids"]],
            labels=data["labels"],
            reference=data["reference"],
            metamer=data["metamer"],
            metamer_uint8=data["metamer_uint8"],
            start_uint8=data["start_uint8"],
            loss=data["loss"],
            final_loss=data["final_loss"],
            generator_prediction=data["generator_prediction"],
            activations_reference=acts["reference"],
            activations_metamer=acts["metamer"],
            start_seed=data["start_seed"],
            pass_iteration=data["pass_iteration"],
            test_iterations=data["test_iterations"],
            test_passed=data["test_passed"],
            test_values=group("test_values"),
            distances={g: group(f"distances/{g}") for g in ("metamer", "start")},
            attrs=attrs_of(f),
            first_pass_uint8=data.get("first_pass_uint8"),
            member=data["member"],
        )


def metamer_path(root: str | os.PathLike, method: str, generator: str, layer: str, batch: str) -> Path:
    """Where the artifact of a job lives under results root ``root``."""
    return Path(root) / "metamers" / method / generator / layer / f"{batch}.h5"


#: Format of a metamer index (:func:`write_metamer_index`).
METAMER_INDEX_VERSION = 1


def metamer_index_path(root: str | os.PathLike, method: str, generator: str) -> Path:
    """Where the index of one (method, generator)'s artifacts lives under results root ``root``."""
    return Path(root) / "metamers" / method / generator / "index.json"


def write_metamer_index(artifact_paths: list[str | os.PathLike], out_path: str | os.PathLike) -> Path:
    """Rule ``metamer_index``: list the artifacts of one (method, generator) with each file's
    SHA-256, as JSON, atomically.

    The index stands for its artifacts as the input of the jobs that read all of them, one per
    evaluator (``representation_activations``): a published-size study's DAG then holds one file
    per (method, generator) and evaluator where it held 160 (``bench/dag_scale.py``), and a new
    artifact still reruns the index, and so those jobs.
    """
    import json

    entries = [{"path": str(p), "sha256": file_sha256(p)} for p in artifact_paths]
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps({"format": METAMER_INDEX_VERSION, "artifacts": entries}, indent=1) + "\n")
    return Path(out_path)


def read_metamer_index(path: str | os.PathLike) -> list[str]:
    """The artifact paths of a metamer index, after checking that each file is still the one the
    index was made from (its SHA-256).

    Raises
    ------
    ArtifactIntegrityError
        The index is unreadable, of another format, or an artifact changed or vanished since it
        was written (the message names both files and the remedy).
    """
    import json

    path = str(path)
    try:
        index = json.loads(Path(path).read_text())
        if index.get("format") != METAMER_INDEX_VERSION:
            raise ValueError(f"format {index.get('format')!r}, not {METAMER_INDEX_VERSION}")
        entries = [(str(e["path"]), str(e["sha256"])) for e in index["artifacts"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ArtifactIntegrityError(f"cannot read metamer index {path!r}: {err}; {remedy('metamer_index', path)}"
                                     ) from err
    for artifact, digest in entries:
        found = file_sha256(artifact) if Path(artifact).is_file() else None
        if found != digest:
            what = "is missing" if found is None else "changed since the index was written"
            raise ArtifactIntegrityError(f"metamer index {path!r}: artifact {artifact!r} {what}; "
                                         f"{remedy('metamer_index', path)}")
    return [artifact for artifact, _ in entries]
