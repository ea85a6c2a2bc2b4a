"""Artifacts: the files jobs write and read, each format defined in one module.

- :mod:`.files`: atomic writes, HDF5 attributes, checksums (every artifact is sealed when
  written and verified when read: :class:`ArtifactIntegrityError` names the file, the part that
  differs and the rule that remakes it).
- :mod:`.metamers`: a generation job's metamers, activations and in-loop test (HDF5).
- :mod:`.nulls`: the null distributions of one (model, layer) (HDF5), and their tables.
- :mod:`.representations`: an evaluator's activations of one metamer set (HDF5).
- :mod:`.draws`: the representation test's aligned bootstrap values (npz).
- :mod:`.inversions`: an evaluator's inversions (HDF5).
"""

from .files import ArtifactError, ArtifactIntegrityError, atomic_path
from .metamers import (
    MetamerBatch,
    metamer_path,
    read_metamer_batch,
    write_metamer_batch,
)

__all__ = ["ArtifactError", "ArtifactIntegrityError", "MetamerBatch", "atomic_path", "metamer_path",
           "read_metamer_batch", "write_metamer_batch"]
