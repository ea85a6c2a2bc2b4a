"""Bootstrap draws of the representation test (``.npz``): rule ``representation`` writes, per
(method, generator, evaluator), the aligned bootstrap values over images of every set measure of
the passing metamers, and rule ``transfer_by_relation`` pools them into intervals over images
(:func:`metamers.stats.resampling.aligned_bootstrap_samples`).

Layout (schema version 4, the version of rule ``representation``)::

    kind        "representation_draws"
    version     2
    keys        (R,) str, JSON ``[generation layer, evaluator layer, measure]`` of each row
    draws       (R, B) float64, the bootstrap values (NaN: a set too small, or a degenerate sample)
    universe    (N,) str, the reference image ids the samples are aligned over, in order
    method, generator, evaluator, seed, n_bootstrap
    sha256      JSON: the checksum of every other entry, checked when the file is read
                (:func:`.files.write_npz`, :func:`.files.read_npz`; new in version 2: an earlier
                file cannot be verified and is refused, naming rule ``representation`` to remake it)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import SCHEMA_VERSIONS, ArtifactError, read_npz, remedy, write_npz

DRAWS_KIND = "representation_draws"
DRAWS_VERSION = SCHEMA_VERSIONS["representation"]
#: The rule that writes draws files (the remedy the messages name).
RULE = "representation"


@dataclass
class RepresentationDraws:
    """The bootstrap values of one job: ``draws[(layer, evaluator_layer, measure)] -> (B,)``."""

    method: str
    generator: str
    evaluator: str
    draws: dict[tuple[str, str, str], np.ndarray]
    universe: list[str]
    seed: int
    n_bootstrap: int


def write_draws(path: str | os.PathLike, draws: RepresentationDraws) -> Path:
    """Write ``draws`` to ``path`` atomically, with checksums (:func:`.files.write_npz`)."""
    keys = list(draws.draws)
    matrix = np.stack([np.asarray(draws.draws[k], dtype=np.float64) for k in keys]) if keys else \
        np.empty((0, draws.n_bootstrap))
    return write_npz(path, {"kind": DRAWS_KIND, "version": DRAWS_VERSION,
                            "keys": np.array([json.dumps(k) for k in keys]), "draws": matrix,
                            "universe": np.array(draws.universe), "seed": draws.seed, "n_bootstrap": draws.n_bootstrap,
                            "method": draws.method, "generator": draws.generator, "evaluator": draws.evaluator})


def read_draws(path: str | os.PathLike) -> RepresentationDraws:
    """Read and verify a draws file (:func:`.files.read_npz`).

    Raises
    ------
    ArtifactError
        Missing, unreadable, differing from its checksums (:class:`.files.ArtifactIntegrityError`),
        or not a draws file of this schema version; the message names the file and the remedy.
    """
    f = read_npz(path, "representation draws", RULE)
    try:
        kind, version = str(f["kind"]), int(f["version"])
        if kind != DRAWS_KIND or version != DRAWS_VERSION:
            raise ArtifactError(f"{str(path)!r} is a {kind!r} file of version {version}, not "
                                f"{DRAWS_KIND!r} version {DRAWS_VERSION} ({remedy(RULE, path)})")
        keys = [tuple(json.loads(k)) for k in f["keys"]]
        return RepresentationDraws(str(f["method"]), str(f["generator"]), str(f["evaluator"]),
                                   dict(zip(keys, f["draws"])), [str(i) for i in f["universe"]], int(f["seed"]),
                                   int(f["n_bootstrap"]))
    except (KeyError, ValueError) as err:
        raise ArtifactError(f"cannot read representation draws {str(path)!r}: {err} ({remedy(RULE, path)})") from err


def check_aligned(parts: Sequence[tuple[str, RepresentationDraws]]) -> None:
    """Raise :class:`ArtifactError` unless every file's samples are aligned (one universe, seed and
    number of draws), naming the first file that differs."""
    if not parts:
        return
    first_path, first = parts[0]
    for path, d in parts[1:]:
        if (d.universe, d.seed, d.n_bootstrap) != (first.universe, first.seed, first.n_bootstrap):
            raise ArtifactError(f"representation draws {path!r} are not aligned with {first_path!r} (other reference "
                                "images, seed or number of draws): rerun rule representation")
