"""Writing files safely: atomic writes; reading HDF5 attributes back; checksums.

Every artifact is written under a temporary name in its folder and renamed when complete, so
a reader never sees a partial file and a killed job leaves none behind.

Every artifact also carries checksums, checked when it is read, so that a file changed after it
was written (a flipped bit, a truncated copy) is an error that names the file, the part that
differs and the rule that remakes it, never a wrong result:

- HDF5 (:func:`write_h5`, which calls :func:`seal`; :func:`verify` when read, in
  :func:`open_h5`): every group and dataset, the root included, has attribute ``sha256``, JSON of
  the SHA-256 of a dataset's dtype, shape and data (or a group's member names) and of each of its
  own attributes (the provenance among them); the files are in a format whose metadata HDF5
  checksums itself (:data:`H5_FORMAT`);
- ``.npz`` (:func:`write_npz`, :func:`read_npz`): entry ``sha256``, JSON of each other entry's
  SHA-256 over its dtype, shape and data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


#: Rule -> the schema version of the artifact it writes (each artifact module reads its own from
#: here; ``representation``: its draws, and the columns of its tables). The workflow puts it in each rule's params, so results of an earlier schema are remade
#: by the next run rather than refused by the reader.
SCHEMA_VERSIONS = {"generate": 6, "null_distribution": 3, "representation_activations": 3, "inversion": 2,
                   "representation": 4}


class ArtifactError(RuntimeError):
    """An artifact that is missing, unreadable or not of the expected schema."""


class ArtifactIntegrityError(ArtifactError):
    """An artifact that cannot be trusted: unreadable (truncated or garbled), without the checksums
    this version writes, or whose content differs from them. The message names the file, the part
    that is wrong and the remedy (:func:`remedy`)."""


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


# --- Checksums: every artifact is sealed when written and verified when read. ---------------------
#: The attribute of every HDF5 group and dataset, and the entry of every ``.npz``, that holds checksums.
CHECKSUM = "sha256"


def remedy(rule: str, path: str | os.PathLike) -> str:
    """What to do about a bad artifact ``path`` written by rule ``rule``: remake that file alone."""
    return (f"remedy: delete the file and run snakemake again to remake it (rule {rule}), or "
            f"`snakemake --forcerun {path}`")


def array_sha256(value: Any) -> str:
    """The SHA-256 (hex) of an array's dtype, shape and bytes; of each element's bytes for object
    arrays (HDF5 variable-length strings). ``value`` goes through :func:`numpy.asarray` first."""
    a = np.asarray(value)
    digest = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    if a.dtype.kind != "O":
        digest.update(np.ascontiguousarray(a))
        return digest.hexdigest()
    for x in a.ravel():
        b = x if isinstance(x, bytes) else str(x).encode()
        digest.update(len(b).to_bytes(8, "little") + b)
    return digest.hexdigest()


#: What h5py raises for a garbled file.
H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError)


def _why(err: BaseException) -> str:
    """An exception's message (a KeyError's without the quotes ``str`` adds)."""
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def _h5_objects(f: Any) -> Iterator[tuple[str, Any]]:
    """``(name, object)`` for every group and dataset of the open HDF5 file ``f``, the root ``/``
    first, then ``(name, the error)`` and no more if HDF5 cannot open one or list a group's members."""
    import h5py

    yield "/", f
    groups = [("", f)]
    while groups:
        prefix, group = groups.pop(0)
        try:
            names = list(group)
        except H5_ERRORS as err:
            yield prefix.rstrip("/") or "/", err
            return
        for name in names:
            try:
                obj = group[name]
            except H5_ERRORS as err:
                yield prefix + name, err
                return
            yield prefix + name, obj
            if isinstance(obj, h5py.Group):
                groups.append((f"{prefix}{name}/", obj))


def _h5_record(obj: Any) -> tuple[dict[str, Any], np.ndarray | None]:
    """What the checksum of an HDF5 object holds, and a dataset's data (read once; None for a group):
    the SHA-256 of a dataset's dtype, shape and data, or a group's member names, and the SHA-256
    of each of its attributes."""
    import h5py

    if isinstance(obj, h5py.Dataset):
        data = obj[()]
        record: dict[str, Any] = {"data": array_sha256(data)}
    else:
        data, record = None, {"members": sorted(obj)}
    record["attrs"] = {k: array_sha256(v) for k, v in obj.attrs.items() if k != CHECKSUM}
    return record, data


def seal(f: Any) -> None:
    """Store its checksum in every group and dataset of the open, complete HDF5 file ``f`` (the
    root included): attribute :data:`CHECKSUM`, JSON of what :func:`verify` checks. Call it last."""
    for _, obj in list(_h5_objects(f)):
        obj.attrs[CHECKSUM] = json.dumps(_h5_record(obj)[0], sort_keys=True)


#: The HDF5 file format the artifacts are written in (h5py ``libver``): from HDF5 1.8 on, whose
#: object headers and superblock carry HDF5's own checksums, so that a garbled header is an error
#: rather than parsed (the default, earliest format, has none: a flipped byte in its metadata can
#: crash the HDF5 library).
H5_FORMAT = "v108"


@contextlib.contextmanager
def write_h5(path: str | os.PathLike) -> Iterator[Any]:
    """Yield a new HDF5 file (format :data:`H5_FORMAT`) to write an artifact in; when the block
    succeeds, :func:`seal` it, close it and rename it to ``path`` (:func:`atomic_path`)."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver=H5_FORMAT) as f:
            yield f
            seal(f)


def _differences(stored: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """How an object's ``found`` checksum record differs from the ``stored`` one, in words."""
    out = []
    if "data" in found and stored.get("data") != found["data"]:
        out.append("its dtype, shape or data differ from its checksum")
    if "members" in found:
        written = stored.get("members", [])
        if missing := sorted(set(written) - set(found["members"])):
            out.append(f"member(s) {missing} are missing")
        if extra := sorted(set(found["members"]) - set(written)):
            out.append(f"member(s) {extra} were not written with it")
    attrs = stored.get("attrs", {})
    for name in sorted({*attrs, *found["attrs"]}):
        if name not in found["attrs"]:
            out.append(f"attribute {name!r} is missing")
        elif name not in attrs:
            out.append(f"attribute {name!r} was not written with it")
        elif attrs[name] != found["attrs"][name]:
            out.append(f"attribute {name!r} differs from its checksum")
    return out


def verify(f: Any, path: str | os.PathLike, kind: str, rule: str, skip: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Check every group and dataset of the open HDF5 artifact ``f`` against the checksum that
    :func:`seal` stored in it; return every dataset's data by name (each read once).

    Parameters
    ----------
    f
        The open file.
    path, kind, rule
        Its path, what it is and the rule that writes it, for the messages.
    skip
        Names of datasets neither read nor checked (a reader that does not use them).

    Raises
    ------
    ArtifactIntegrityError
        Naming the file, the group or dataset (and attribute) that is unreadable, lacks its
        checksum or differs from it, and the remedy.
    """
    import h5py

    data = {}
    for name, obj in _h5_objects(f):
        if isinstance(obj, Exception):
            raise ArtifactIntegrityError(f"{kind} {str(path)!r} is corrupt: {name!r} cannot be read ({_why(obj)}); "
                                         f"{remedy(rule, path)}")
        if name in skip:
            continue
        what = "the root group" if name == "/" else \
            f"{'dataset' if isinstance(obj, h5py.Dataset) else 'group'} {name!r}"
        try:
            stored = obj.attrs[CHECKSUM] if CHECKSUM in list(obj.attrs) else None
        except H5_ERRORS as err:
            raise ArtifactIntegrityError(f"{kind} {str(path)!r} is corrupt: the attributes of {what} cannot be read "
                                         f"({_why(err)}); {remedy(rule, path)}") from err
        if stored is None:
            raise ArtifactIntegrityError(
                f"{kind} {str(path)!r}: {what} has no checksum, so the file cannot be verified (written by an "
                f"earlier version of metamers, or not by it); {remedy(rule, path)}")
        try:
            stored = json.loads(h5_attr(stored))
            if not isinstance(stored, dict):
                raise ValueError("not a JSON object")
        except (ValueError, TypeError, AttributeError):
            raise ArtifactIntegrityError(f"{kind} {str(path)!r} is corrupt: the checksum of {what} is garbled; "
                                         f"{remedy(rule, path)}") from None
        try:
            found, value = _h5_record(obj)
        except H5_ERRORS as err:
            raise ArtifactIntegrityError(f"{kind} {str(path)!r} is corrupt: {what} cannot be read ({_why(err)}); "
                                         f"{remedy(rule, path)}") from err
        wrong = _differences(stored, found)
        if wrong:
            raise ArtifactIntegrityError(f"{kind} {str(path)!r} is corrupt: {what}: {'; '.join(wrong)}; "
                                         f"{remedy(rule, path)}")
        if value is not None:
            data[name] = value
    return data


@contextlib.contextmanager
def open_h5(path: str | os.PathLike, kind: str, rule: str) -> Iterator[Any]:
    """Open HDF5 artifact ``path`` (a ``kind`` written by rule ``rule``) for reading, as a context.

    Raises
    ------
    ArtifactIntegrityError
        When the file cannot be opened (truncated, garbled) or HDF5 fails while the block reads it
        (a garbled object), naming the file and the remedy; :class:`ArtifactError` when it is absent.
    """
    import h5py

    path = str(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError as err:
        raise ArtifactError(f"{kind} {path!r} does not exist; {remedy(rule, path)}") from err
    except (OSError, ValueError) as err:
        raise ArtifactIntegrityError(f"cannot read {kind} {path!r} (truncated or garbled): {_why(err)}; "
                                     f"{remedy(rule, path)}") from err
    try:
        with f:
            yield f
    except ArtifactError:
        raise
    except H5_ERRORS as err:
        raise ArtifactIntegrityError(f"cannot read {kind} {path!r} (garbled): {_why(err)}; {remedy(rule, path)}") from err


def write_npz(path: str | os.PathLike, arrays: Mapping[str, Any], compressed: bool = False) -> Path:
    """Write ``arrays`` to ``.npz`` file ``path`` atomically, with entry :data:`CHECKSUM`: JSON of
    each array's :func:`array_sha256` (no object arrays; ``compressed``: deflate them)."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    bad = [k for k, v in arrays.items() if v.dtype.kind == "O"] + [CHECKSUM] * (CHECKSUM in arrays)
    if bad:
        raise ValueError(f"cannot write {str(path)!r}: entries {bad} are object arrays or named {CHECKSUM!r}")
    sums = json.dumps({k: array_sha256(v) for k, v in arrays.items()}, sort_keys=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as stream:
            (np.savez_compressed if compressed else np.savez)(stream, **arrays, **{CHECKSUM: np.asarray(sums)})
    return Path(path)


def read_npz(path: str | os.PathLike, kind: str, rule: str) -> dict[str, np.ndarray]:
    """The arrays of ``.npz`` file ``path`` (a ``kind`` written by rule ``rule`` with
    :func:`write_npz`), after checking each against its checksum.

    Raises
    ------
    ArtifactIntegrityError
        Unreadable (truncated, garbled: the entry is named when it is one), without checksums, or
        an entry that is missing, extra or differs from its checksum; the message names the file
        and the remedy. :class:`ArtifactError` when the file is absent.
    """
    import zipfile
    import zlib

    path, entry = str(path), None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {}
            for entry in npz.files:
                arrays[entry] = npz[entry]
    except FileNotFoundError as err:
        raise ArtifactError(f"{kind} {path!r} does not exist; {remedy(rule, path)}") from err
    except (OSError, ValueError, EOFError, KeyError, NotImplementedError, zipfile.BadZipFile, zlib.error) as err:
        where = f" (entry {entry!r})" if entry else ""
        raise ArtifactIntegrityError(f"cannot read {kind} {path!r}{where}, truncated or garbled: {_why(err)}; "
                                     f"{remedy(rule, path)}") from err
    if CHECKSUM not in arrays:
        raise ArtifactIntegrityError(f"{kind} {path!r} has no checksum entry {CHECKSUM!r}, so it cannot be verified "
                                     f"(written by an earlier version of metamers, or not by it); {remedy(rule, path)}")
    try:
        sums = json.loads(str(arrays.pop(CHECKSUM)))
        if not isinstance(sums, dict):
            raise ValueError("not a JSON object")
    except ValueError:
        raise ArtifactIntegrityError(f"{kind} {path!r} is corrupt: its checksum entry is garbled; "
                                     f"{remedy(rule, path)}") from None
    wrong = [f"entry {k!r} is missing" for k in sorted(set(sums) - set(arrays))]
    wrong += [f"entry {k!r} was not written with it" for k in sorted(set(arrays) - set(sums))]
    wrong += [f"entry {k!r} differs from its checksum" for k in sorted(set(sums) & set(arrays))
              if array_sha256(arrays[k]) != sums[k]]
    if wrong:
        raise ArtifactIntegrityError(f"{kind} {path!r} is corrupt: {'; '.join(wrong)}; {remedy(rule, path)}")
    return arrays


def attrs_of(obj: Any) -> dict[str, Any]:
    """The attributes of an open HDF5 object as Python values, less its checksum (:data:`CHECKSUM`)."""
    return {k: h5_attr(v) for k, v in obj.attrs.items() if k != CHECKSUM}


def check_version(f: Any, path: str, kind: str, version: int, rule: str | None = None) -> None:
    """Raise :class:`ArtifactError` unless the open HDF5 artifact ``f`` has schema version
    ``version``, naming the file, the version found and the remedy (rerun ``rule``);
    :class:`ArtifactIntegrityError` when it has none that can be read."""
    fix = remedy(rule, path) if rule else "delete it to recompute"
    try:
        found = h5_attr(f.attrs["schema_version"])
    except (KeyError, OSError) as err:
        raise ArtifactIntegrityError(f"{kind} {path!r} has no readable schema version ({_why(err)}): not an "
                                     f"artifact of this workflow, or garbled ({fix})") from None
    if found != version:
        raise ArtifactError(f"{kind} {path!r} has schema version {found!r}; this version reads {version} ({fix})")


def checked_attrs(f: Any, path: str, kind: str, version: int, required: Sequence[str],
                  rule: str | None = None) -> dict[str, Any]:
    """The attributes of the open HDF5 artifact ``f`` (``kind`` names it in errors; ``rule``, the
    rule that writes it, is the remedy), after checking that its schema version is ``version``
    (:func:`check_version`) and that it has every ``required`` attribute.

    Raises
    ------
    ArtifactError
        Naming the file, and the version found or the attributes it lacks.
    """
    check_version(f, path, kind, version, rule)
    attrs = attrs_of(f)
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


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of the file at ``path``, in hex (read in 1 MiB blocks)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
