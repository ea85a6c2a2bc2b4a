"""Artifacts are checked when read: every artifact the workflow writes carries checksums
(:func:`metamers.artifacts.files.seal`, :func:`~metamers.artifacts.files.write_npz`), and a
reader refuses a file whose bytes changed on disk, a truncated file, or a file without checksums,
naming the file, the part that is wrong and the rule that remakes it.

Each kind is written with the package's own writer, then damaged on disk: a flipped byte inside
a dataset's raw data (found with ``dataset.id.get_offset()``, so that data, not metadata,
changes), a flipped byte of an attribute, a truncation. The fault that motivated this (bytes of
``metamer_uint8`` inverted: a metamer test's 2/2 passes read as 0/2, exit status 0) is replayed
at the level of the jobs that read the artifact.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
from test_artifacts import make_batch

from metamers.artifacts.draws import DRAWS_VERSION, RepresentationDraws, read_draws, write_draws
from metamers.artifacts.files import CHECKSUM, ArtifactError, ArtifactIntegrityError, read_npz, remedy
from metamers.artifacts.inversions import INVERSION_SCHEMA_VERSION, Inversions, read_inversions, write_inversions
from metamers.artifacts.metamers import SCHEMA_VERSION, MetamerBatch, read_metamer_batch, write_metamer_batch
from metamers.artifacts.nulls import NULL_SCHEMA_VERSION, read_nulls, write_nulls
from metamers.artifacts.representations import (
    REPRESENTATION_SCHEMA_VERSION,
    EvaluatorActivations,
    read_activations,
    write_activations,
)
from metamers.provenance import provenance
from metamers.stats.nulls import NullDistribution

REMEDY = "remedy: delete the file and run snakemake again to remake it (rule {rule}), or `snakemake --forcerun {path}`"


# --- the artifacts, each written by its own writer ---------------------------------------------

def metamer_batch() -> MetamerBatch:
    """:func:`test_artifacts.make_batch`, its activations in the stored float16 (read back exactly)."""
    batch = make_batch(n=3)
    batch.activations_reference = batch.activations_reference.astype(np.float16)
    batch.activations_metamer = batch.activations_metamer.astype(np.float16)
    return batch


def nulls() -> dict[str, NullDistribution]:
    rng = np.random.default_rng(1)
    return {stat: NullDistribution(stat, threshold, "max", 1000, 2, {0.5: threshold / 2, 0.99: threshold * 0.999},
                                   rng.integers(0, 50, 20), np.linspace(0.0, 1.0, 21), rng.random(5),
                                   rng.random(1000).astype(np.float32))
            for stat, threshold in (("spearman", 0.8765432101), ("snr_db", 31.5))}


NULL_ATTRS = {**provenance({"metamer_test": {"n_pairs": 1000}}, seed=4), "generator": "lenet5_standard",
              "layer": "relu1", "n_pool": 50, "n_pairs": 1000, "n_draws": 5, "pool": "mnist", "pool_held_out": 0}


def activations() -> EvaluatorActivations:
    rng = np.random.default_rng(2)
    n, layers = 4, {"relu1": 300, "linear2": 10}

    def acts():
        return {**{k: rng.normal(size=(n, d)).astype(np.float32) for k, d in layers.items()},
                "logits": rng.normal(size=(n, 10)).astype(np.float32)}

    return EvaluatorActivations(
        image_ids=[f"mnist-{i}" for i in range(n)], labels=np.arange(n), reference=acts(),
        metamer={"relu1": acts()}, similarity={"relu1": {k: {"pearson": rng.random(n)} for k in layers}},
        attrs={**provenance({"representation": {"n_bootstrap": 40}}, seed=3), "method": "adam",
               "generator": "lenet5_standard", "evaluator": "lenet5_standard", "layers": json.dumps(list(layers)),
               "generation_layers": json.dumps(["relu1"]), "statistics": json.dumps(["pearson"]),
               "reductions": json.dumps({k: {"type": "none"} for k in layers}),
               "depths": json.dumps({"relu1": 0.3141, "linear2": 1.0})})


def inversions() -> Inversions:
    rng = np.random.default_rng(3)
    m = 3
    return Inversions(
        rows={"image_id": ["mnist-0", "mnist-0", "mnist-1"], "kind": ["reference", "metamer", "reference"],
              "method": ["", "adam", ""], "generator": ["", "lenet5_standard", ""], "layer": ["", "relu1", ""]},
        label=np.array([7, 7, 2]), source=rng.integers(0, 256, (m, 1, 28, 28), dtype=np.uint8),
        start=rng.random((m, 1, 28, 28), dtype=np.float32),
        inverted={"relu1": rng.random((m, 1, 28, 28), dtype=np.float32)}, loss={"relu1": rng.random(m)},
        mismatch={"relu1": rng.random(m)},
        attrs={**provenance({"inversion": {"images": 2}}), "evaluator": "lenet5_standard",
               "layers": json.dumps(["relu1"]), "method": json.dumps({"iterations": 8, "lr": 0.0271828}), "seed": 5})


def draws() -> RepresentationDraws:
    rng = np.random.default_rng(4)
    return RepresentationDraws("adam", "lenet5_standard", "lenet5_robust",
                               {("relu1", "relu2", m): rng.random(50) for m in ("rsa", "cka", "mean_pearson")},
                               [f"mnist-{i}" for i in range(6)], 7, 50)


def same(got: Any, want: Any, where: str = "") -> None:
    """``got`` read back equals ``want`` as written: arrays of the same dtype and values, the
    attributes written among those read (with schema version and time), no checksum among them."""
    if is_dataclass(want):
        for f in fields(want):
            same(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
    elif isinstance(want, dict) and where.endswith("attrs"):
        assert CHECKSUM not in got and {k: got[k] for k in want} == want, where
    elif isinstance(want, dict):
        assert set(got) == set(want), where
        for k in want:
            same(got[k], want[k], f"{where}/{k}")
    elif isinstance(want, np.ndarray):
        assert got.dtype == want.dtype or (want.dtype.kind == got.dtype.kind == "i"), where
        np.testing.assert_array_equal(got, want, err_msg=where)
    else:
        assert got == want, where


@dataclass
class Kind:
    """One HDF5 artifact kind: how to write and read it, and what to damage."""

    label: str                          # what its messages call it
    rule: str                           # the rule that writes it
    version: int
    write: Callable[[Path], Any]        # writes the artifact at the path; returns what was written
    read: Callable[[Path], Any]
    expected: Callable[[Any], Any]      # what the reader gives for what was written
    dataset: str                        # a contiguous dataset whose data byte is flipped
    attribute: tuple[bytes, str]        # (bytes found once in the file, in an attribute's value; what the error says)


HDF5 = {
    "metamers": Kind("metamer artifact", "generate", SCHEMA_VERSION,
                     lambda p: (write_metamer_batch(p, b := metamer_batch()), b)[1], read_metamer_batch,
                     lambda b: b, "metamer_uint8",
                     (b'"iterations": 50', "the root group: attribute 'job_config' differs from its checksum")),
    "nulls": Kind("null file", "null_distribution", NULL_SCHEMA_VERSION,
                  lambda p: (write_nulls(p, n := nulls(), NULL_ATTRS, ["p0", "p1"]), n)[1],
                  lambda p: dict(zip(("nulls", "attrs"), read_nulls(p))), lambda n: {"nulls": n, "attrs": NULL_ATTRS},
                  "spearman/histogram",  # a group's few attributes are in its header, which HDF5 checksums itself
                  (np.float64(0.8765432101).tobytes(),
                   "'spearman' cannot be read (Unable to synchronously open object (incorrect metadata checksum "
                   "after all read attempts))")),
    "representations": Kind("activation artifact", "representation_activations", REPRESENTATION_SCHEMA_VERSION,
                            lambda p: (write_activations(p, a := activations()), a)[1], read_activations,
                            lambda a: a, "metamer/relu1/relu1",
                            (b"0.3141", "the root group: attribute 'depths' differs from its checksum")),
    "inversions": Kind("inversion artifact", "inversion", INVERSION_SCHEMA_VERSION,
                       lambda p: (write_inversions(p, i := inversions()), i)[1], read_inversions,
                       lambda i: i, "mismatch/relu1",
                       (b"0.0271828", "the root group: attribute 'method' differs from its checksum")),
}


def flip(path: Path, offset: int, mask: int = 0x01) -> None:
    """Flip bits ``mask`` of the byte at ``offset`` of the file at ``path``, in place."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ mask]))


def data_offset(path: Path, dataset: str) -> tuple[int, int]:
    """File offset and size in bytes of contiguous dataset ``dataset``'s raw data."""
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        assert ds.chunks is None, f"{dataset} is chunked"
        return ds.id.get_offset(), ds.id.get_storage_size()


def once(path: Path, pattern: bytes) -> int:
    raw = path.read_bytes()
    assert raw.count(pattern) == 1, f"{pattern!r} occurs {raw.count(pattern)} times in {path}"
    return raw.index(pattern)


def integrity_error(read: Callable[[Path], Any], path: Path) -> str:
    with pytest.raises(ArtifactIntegrityError) as err:
        read(path)
    return str(err.value)


# --- every HDF5 kind --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(HDF5))
def test_an_untouched_artifact_reads_back_exactly(tmp_path, name):
    kind = HDF5[name]
    written = kind.write(tmp_path / "a.h5")
    same(kind.read(tmp_path / "a.h5"), kind.expected(written))
    with h5py.File(tmp_path / "a.h5") as f:  # every group and dataset, the root included, is sealed
        names = ["/"]
        f.visit(names.append)
        assert all(CHECKSUM in (f if n == "/" else f[n]).attrs for n in names)
    assert (tmp_path / "a.h5").read_bytes()[8] == 2  # superblock version 2: HDF5 checksums its metadata


@pytest.mark.parametrize("name", list(HDF5))
def test_a_flipped_data_byte_names_the_file_the_dataset_and_the_remedy(tmp_path, name):
    kind = HDF5[name]
    path = tmp_path / "a.h5"
    kind.write(path)
    offset, size = data_offset(path, kind.dataset)
    flip(path, offset + size // 2)
    assert integrity_error(kind.read, path) == (
        f"{kind.label} '{path}' is corrupt: dataset '{kind.dataset}': its dtype, shape or data differ from its "
        f"checksum; {REMEDY.format(rule=kind.rule, path=path)}")


@pytest.mark.parametrize("name", list(HDF5))
def test_a_flipped_attribute_byte_names_the_attribute(tmp_path, name):
    """The provenance and the other attributes are covered too: a flipped byte changes the value
    (the JSON stays valid: ``"iterations": 50`` reads ``40``), and the reader refuses it; the
    checksum attribute names it, or, for attributes in an object header, HDF5's own checksum
    refuses the header (the file format is :data:`metamers.artifacts.files.H5_FORMAT`)."""
    kind = HDF5[name]
    path = tmp_path / "a.h5"
    kind.write(path)
    pattern, says = kind.attribute
    flip(path, once(path, pattern))
    assert integrity_error(kind.read, path) == (
        f"{kind.label} '{path}' is corrupt: {says}; {REMEDY.format(rule=kind.rule, path=path)}")


@pytest.mark.parametrize("name", list(HDF5))
def test_a_truncated_artifact_names_the_file_and_the_remedy(tmp_path, name):
    kind = HDF5[name]
    path = tmp_path / "a.h5"
    kind.write(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    message = integrity_error(kind.read, path)
    assert message.startswith(f"cannot read {kind.label} '{path}' (truncated or garbled): ")
    assert "truncated file" in message  # HDF5's own words
    assert message.endswith(f"; {REMEDY.format(rule=kind.rule, path=path)}")


@pytest.mark.parametrize("name", list(HDF5))
def test_files_of_the_previous_version_or_without_checksums_are_refused_with_the_remedy(tmp_path, name):
    """Files written before checksums (the schema version before this one) cannot be verified:
    the reader says so and names the rule to rerun; so does a current file stripped of them."""
    kind = HDF5[name]
    old, bare = tmp_path / "old.h5", tmp_path / "bare.h5"
    kind.write(old)
    kind.write(bare)
    with h5py.File(old, "a") as f:
        f.attrs["schema_version"] = kind.version - 1
    with pytest.raises(ArtifactError) as err:
        kind.read(old)
    assert str(err.value) == (f"{kind.label} '{old}' has schema version {kind.version - 1}; this version reads "
                              f"{kind.version} ({REMEDY.format(rule=kind.rule, path=old)})")
    with h5py.File(bare, "a") as f:
        names = ["/"]
        f.visit(names.append)
        for n in names:
            del (f if n == "/" else f[n]).attrs[CHECKSUM]
    assert integrity_error(kind.read, bare) == (
        f"{kind.label} '{bare}': the root group has no checksum, so the file cannot be verified (written by an "
        f"earlier version of metamers, or not by it); {REMEDY.format(rule=kind.rule, path=bare)}")


def test_a_removed_or_added_dataset_is_named(tmp_path):
    path = tmp_path / "a.h5"
    write_metamer_batch(path, metamer_batch())
    with h5py.File(path, "a") as f:
        del f["distances/start/ssim"]
        f["distances/start/ssim2"] = np.zeros(3)
    assert integrity_error(read_metamer_batch, path) == (
        f"metamer artifact '{path}' is corrupt: group 'distances/start': member(s) ['ssim'] are missing; "
        f"member(s) ['ssim2'] were not written with it; {REMEDY.format(rule='generate', path=path)}")


def test_a_compressed_dataset_is_checked_when_read_and_only_then(tmp_path):
    """A flipped byte in a gzip chunk (``activations/metamer``) is named; a reader that skips the
    activations (``activations=False``) reads neither them nor their checksum."""
    path = tmp_path / "a.h5"
    batch = metamer_batch()
    write_metamer_batch(path, batch)
    with h5py.File(path) as f:
        chunk = f["activations/metamer"].id.get_chunk_info(0)
    flip(path, chunk.byte_offset + chunk.size // 2, 0xFF)
    message = integrity_error(read_metamer_batch, path)
    assert message.startswith(f"metamer artifact '{path}' is corrupt: dataset 'activations/metamer' cannot be read (")
    assert message.endswith(f"; {REMEDY.format(rule='generate', path=path)}")
    np.testing.assert_array_equal(read_metamer_batch(path, activations=False).metamer_uint8, batch.metamer_uint8)


def test_a_garbled_checksum_is_named(tmp_path):
    path = tmp_path / "a.h5"
    write_metamer_batch(path, metamer_batch())
    with h5py.File(path, "a") as f:
        f["labels"].attrs[CHECKSUM] = "{not json"
    assert integrity_error(read_metamer_batch, path) == (
        f"metamer artifact '{path}' is corrupt: the checksum of dataset 'labels' is garbled; "
        f"{REMEDY.format(rule='generate', path=path)}")


def test_the_remedy_is_one_sentence_for_every_rule():
    assert remedy("generate", "results/x.h5") == REMEDY.format(rule="generate", path="results/x.h5")


# --- the .npz files ---------------------------------------------------------------------------

def npz_entry_middle(path: Path, entry: str) -> int:
    """The file offset of the middle of entry ``entry``'s stored (maybe compressed) bytes."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(f"{entry}.npy")
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len + info.compress_size // 2


@pytest.fixture
def npz_files(tmp_path, config) -> dict[str, tuple[Path, str, str, Callable[[Path], Any], Any]]:
    """Every ``.npz`` the workflow writes, by its writer: name -> (path, what the messages call
    it, the rule that writes it, its reader, what the reader must give back)."""
    from metamers.config import validate_config
    from metamers.figures.diversity import member_images
    from metamers.figures.grid import grid_images as grid_table
    from metamers.jobs.figures import grid_images, read_figure_table
    from metamers.jobs.inversion import inversion_table

    d = draws()
    write_draws(tmp_path / "d.npz", d)
    batch = metamer_batch()
    write_metamer_batch(tmp_path / "m.h5", batch)
    config = validate_config(config)
    grid = grid_images(config, [tmp_path / "m.h5"], tmp_path / "metamer_grid.npz")
    want_grid = grid_table([batch], config["figures"]["grid_images"],
                           {"lenet5_standard": config["generators"]["lenet5_standard"]["layers"]})
    want_grid.update(member_images([batch], list(want_grid["image_ids"]), (1, 28, 28)))  # none: one member each
    inv = inversions()
    write_inversions(tmp_path / "inv.h5", inv)
    inversion_table([tmp_path / "inv.h5"], tmp_path / "inversions.csv", tmp_path / "inversions.npz")
    return {
        "draws": (tmp_path / "d.npz", "representation draws", "representation", read_draws, d),
        "metamer_grid": (grid, "figure table", "grid_images", read_figure_table, want_grid),
        "inversions": (tmp_path / "inversions.npz", "figure table", "inversion_table", read_figure_table,
                       {"source": inv.source, "inverted": np.round(inv.inverted["relu1"] * 255).astype(np.uint8)}),
    }


#: The entry of each .npz whose stored bytes are damaged.
NPZ_ENTRY = {"draws": "draws", "metamer_grid": "images", "inversions": "inverted"}


@pytest.mark.parametrize("name", list(NPZ_ENTRY))
def test_an_untouched_npz_reads_back_exactly(npz_files, name):
    path, _, _, read, want = npz_files[name]
    same(read(path), want)


@pytest.mark.parametrize("name", list(NPZ_ENTRY))
def test_a_flipped_npz_byte_names_the_file_the_entry_and_the_remedy(npz_files, name):
    path, label, rule, read, _ = npz_files[name]
    flip(path, npz_entry_middle(path, NPZ_ENTRY[name]))
    message = integrity_error(read, path)
    assert message.startswith(f"cannot read {label} '{path}' (entry '{NPZ_ENTRY[name]}'), truncated or garbled: ")
    assert message.endswith(f"; {REMEDY.format(rule=rule, path=path)}")


@pytest.mark.parametrize("name", list(NPZ_ENTRY))
def test_a_truncated_npz_names_the_file_and_the_remedy(npz_files, name):
    path, label, rule, read, _ = npz_files[name]
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    message = integrity_error(read, path)
    assert message.startswith(f"cannot read {label} '{path}', truncated or garbled: ")
    assert message.endswith(f"; {REMEDY.format(rule=rule, path=path)}")


@pytest.mark.parametrize("name", list(NPZ_ENTRY))
def test_an_npz_entry_changed_behind_its_checksum_or_without_checksums_is_refused(npz_files, name):
    """The zip's own CRC catches a flipped byte; the checksum entry also catches an entry
    rewritten whole (a consistent zip), and a file written before checksums has none."""
    path, label, rule, read, _ = npz_files[name]
    entry = NPZ_ENTRY[name]
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays[entry] = arrays[entry].copy()
    arrays[entry].flat[0] = 255 - arrays[entry].flat[0]
    np.savez(path, **arrays)
    assert integrity_error(read, path) == (
        f"{label} '{path}' is corrupt: entry '{entry}' differs from its checksum; {REMEDY.format(rule=rule, path=path)}")
    del arrays[CHECKSUM]
    np.savez(path, **arrays)  # as this version's predecessor wrote it
    assert integrity_error(read, path) == (
        f"{label} '{path}' has no checksum entry 'sha256', so it cannot be verified (written by an earlier version "
        f"of metamers, or not by it); {REMEDY.format(rule=rule, path=path)}")


def test_draws_carry_their_version(tmp_path):
    path = write_draws(tmp_path / "d.npz", draws())
    assert int(read_npz(path, "representation draws", "representation")["version"]) == DRAWS_VERSION == 4


# --- the fault as found: the jobs that read a damaged metamer artifact --------------------------

@pytest.fixture
def job_study(shared, config, tmp_path):
    """Two MNIST digits whose "metamers" are the references themselves (every test passes, every
    evaluator is right), in one artifact of lenet5_standard at relu1, with its null."""
    from metamers.config import validate_config
    from metamers.data import load_image_set

    config["generators"] = {"lenet5_standard": {"layers": ["relu1"]}}
    config["evaluators"] = ["lenet5_standard"]
    config["metamer_test"]["statistics"] = ["spearman"]
    config = validate_config(config)
    images = load_image_set({"type": "mnist", "per_class": 1, "seed": 0, "limit": 2})
    pixels = np.stack([images.pixels(i) for i in images.ids])[:, None]
    batch = make_batch(n=2)
    batch.image_ids, batch.labels = images.ids, np.array([images.labels[i] for i in images.ids])
    batch.reference, batch.metamer_uint8 = pixels, pixels.copy()
    batch.attrs = {**batch.attrs, "layer": "relu1", "generator": "lenet5_standard",
                   "targets": json.dumps([{"model": "lenet5_standard", "layer": "relu1", "weight": 1.0}])}
    artifact = write_metamer_batch(tmp_path / "metamers" / "b000.h5", batch)
    null = NullDistribution("spearman", 0.9, "max", 1000, 0, {1.0: 0.9}, np.ones(3), np.arange(4.0), np.array([0.9]))
    null_path = write_nulls(tmp_path / "nulls" / "relu1.h5", {"spearman": null},
                            {**NULL_ATTRS, "generator": "lenet5_standard", "layer": "relu1"}, ["p0"])
    return config, artifact, null_path, tmp_path


def run_jobs(config, artifact, null_path, out):
    from metamers.jobs.metamer_test import metamer_test
    from metamers.jobs.recognizability import recognizability

    tested = pd.read_csv(metamer_test(config, "lenet5_standard", [artifact], [null_path], out / "test.csv"))
    recognized = pd.read_csv(recognizability(config, [artifact], out / "recognizability.csv"))
    return tested, recognized


def test_inverted_metamer_bytes_fail_the_jobs_that_read_them_instead_of_a_wrong_table(job_study):
    config, artifact, null_path, tmp = job_study
    tested, recognized = run_jobs(config, artifact, null_path, tmp / "clean")
    passed = tested[tested["statistic"] == "spearman"]["passed"]
    assert passed.sum() == len(passed) == 2  # 2/2 pass
    assert (recognized["evaluator_pred_metamer"] == recognized["true_label"]).mean() == 1.0
    offset, size = data_offset(artifact, "metamer_uint8")
    for k in range(size):  # the fault injected: every byte of metamer_uint8 inverted
        flip(artifact, offset + k, 0xFF)
    expected = (f"metamer artifact '{artifact}' is corrupt: dataset 'metamer_uint8': its dtype, shape or data differ "
                f"from its checksum; {REMEDY.format(rule='generate', path=artifact)}")
    from metamers.jobs.metamer_test import metamer_test
    from metamers.jobs.recognizability import recognizability

    with pytest.raises(ArtifactIntegrityError) as err:
        metamer_test(config, "lenet5_standard", [artifact], [null_path], tmp / "bad" / "test.csv")
    assert str(err.value) == expected
    with pytest.raises(ArtifactIntegrityError) as err:
        recognizability(config, [artifact], tmp / "bad" / "recognizability.csv")
    assert str(err.value) == expected
    assert not (tmp / "bad").exists()  # no table written


def test_a_damaged_null_file_fails_the_metamer_test_job(job_study):
    config, artifact, null_path, tmp = job_study
    from metamers.jobs.metamer_test import metamer_test

    offset, size = data_offset(null_path, "spearman/draw_thresholds")
    flip(null_path, offset + size - 1)
    with pytest.raises(ArtifactIntegrityError) as err:
        metamer_test(config, "lenet5_standard", [artifact], [null_path], tmp / "test.csv")
    assert str(err.value) == (
        f"null file '{null_path}' is corrupt: dataset 'spearman/draw_thresholds': its dtype, shape or data differ "
        f"from its checksum; {REMEDY.format(rule='null_distribution', path=null_path)}")
    assert not (tmp / "test.csv").exists()


@pytest.mark.parametrize(("n_pool", "n_pairs", "weak"), [(50, 1000, True), (999, 100_000, True),
                                                         (1000, 99_999, True), (1000, 100_000, False)])
def test_null_thresholds_flag_a_weak_null(tmp_path, n_pool, n_pairs, weak):
    """``weak_null`` in null_thresholds.csv: fewer distinct pool images than MIN_NULL_IMAGES (1,000)
    or fewer pairs than MIN_NULL_PAIRS (100,000), at the documented boundaries."""
    from metamers.artifacts.nulls import THRESHOLD_COLUMNS, null_tables

    made = nulls()
    for null in made.values():
        null.n_pairs = n_pairs
    path = write_nulls(tmp_path / "null.h5", made, {**NULL_ATTRS, "n_pool": n_pool, "n_pairs": n_pairs}, ["p0"])
    thresholds, _ = null_tables([path])
    assert list(thresholds.columns) == THRESHOLD_COLUMNS
    assert thresholds["weak_null"].tolist() == [weak, weak]


def test_a_metamer_index_lists_its_artifacts_and_refuses_one_that_changed(tmp_path):
    """Rule metamer_index: the artifacts with their SHA-256, read back in order; an artifact
    rewritten or removed after the index was made is an error naming both files."""
    from metamers.artifacts.metamers import read_metamer_index, write_metamer_index
    from metamers.artifacts.files import file_sha256

    paths = [tmp_path / f"b00{k}.h5" for k in range(3)]
    for k, path in enumerate(paths):
        write_metamer_batch(path, metamer_batch())
    index = write_metamer_index(paths, tmp_path / "index.json")
    stored = json.loads(index.read_text())
    assert stored == {"format": 1, "artifacts": [{"path": str(p), "sha256": file_sha256(p)} for p in paths]}
    assert read_metamer_index(index) == [str(p) for p in paths]
    offset, _ = data_offset(paths[1], "labels")
    flip(paths[1], offset)
    with pytest.raises(ArtifactIntegrityError) as err:
        read_metamer_index(index)
    assert str(err.value) == (f"metamer index '{index}': artifact '{paths[1]}' changed since the index was written; "
                              f"{REMEDY.format(rule='metamer_index', path=index)}")
    paths[1].unlink()
    with pytest.raises(ArtifactIntegrityError, match="artifact .* is missing"):
        read_metamer_index(index)
    index.write_text("{")
    with pytest.raises(ArtifactIntegrityError, match=f"cannot read metamer index '{index}'"):
        read_metamer_index(index)
