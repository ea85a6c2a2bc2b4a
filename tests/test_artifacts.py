"""The HDF5 artifact schema: round trip, validation errors, atomic writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from metamers import __version__
from metamers.artifacts.files import seal
from metamers.artifacts.metamers import (
    DATASETS,
    SCHEMA_VERSION,
    ArtifactError,
    MetamerBatch,
    atomic_path,
    metamer_path,
    read_metamer_batch,
    write_metamer_batch,
)
from metamers.provenance import provenance


def make_batch(n: int = 3, seed: int = 0) -> MetamerBatch:
    rng = np.random.default_rng(seed)
    metamer = rng.random((n, 1, 28, 28), dtype=np.float32)
    return MetamerBatch(
        image_ids=[f"mnist-{i:04d}" for i in range(n)],
        labels=np.arange(n),
        reference=rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8),
        metamer=metamer,
        metamer_uint8=(metamer * 255).round().astype(np.uint8),
        start_uint8=rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8),
        loss=rng.random((n, 50), dtype=np.float32),
        final_loss=rng.random(n, dtype=np.float32),
        generator_prediction=np.arange(n)[::-1].copy(),
        activations_reference=rng.normal(size=(n, 200)).astype(np.float32),
        activations_metamer=rng.normal(size=(n, 200)).astype(np.float32),
        start_seed=rng.integers(0, 2**32, n),
        pass_iteration=np.array([-1] + [10] * (n - 1)),
        test_iterations=np.array([0, 10, 20]),
        test_passed=np.array([[False, False, False]] + [[False, True, True]] * (n - 1)),
        test_values={"spearman": rng.random((n, 3), dtype=np.float32), "snr_db": rng.random((n, 3), dtype=np.float32)},
        distances={group: {name: rng.random(n) for name in ("l2", "rms", "ssim")} for group in ("metamer", "start")},
        attrs={**provenance({"method": "adam", "iterations": 50}, seed=17), "seed": 17, "method": "adam",
               "generator": "lenet5_standard", "layer": "relu3", "batch": "b000", "iterations": 50,
               "iterations_run": 50, "check_every": 10, "on_success": "continue",
               "thresholds": json.dumps({"spearman": 0.5, "snr_db": 1.0}), "comparison": "at_least",
               "fake_relu": 1, "seconds_per_iteration": 0.004,
               "targets": json.dumps([{"model": "lenet5_standard", "layer": "relu3", "weight": 1.0, "fake_relu": True,
                                       "dim": 200}])},
    )


def test_round_trip_keeps_every_field(tmp_path):
    batch = make_batch()
    path = write_metamer_batch(tmp_path / "a.h5", batch)
    back = read_metamer_batch(path)
    assert back.image_ids == batch.image_ids
    for name in ("labels", "reference", "metamer", "metamer_uint8", "start_uint8", "loss", "final_loss", "generator_prediction",
                 "start_seed", "pass_iteration", "test_iterations", "test_passed"):
        np.testing.assert_array_equal(getattr(back, name), getattr(batch, name))
    for name in ("activations_reference", "activations_metamer"):
        assert getattr(back, name).dtype == np.float16
        np.testing.assert_allclose(getattr(back, name), getattr(batch, name), rtol=1e-3, atol=1e-3)
    assert back.test_values.keys() == batch.test_values.keys()
    for name, values in batch.test_values.items():
        np.testing.assert_array_equal(back.test_values[name], values)
    for group, by_name in batch.distances.items():
        assert back.distances[group].keys() == by_name.keys()
        for name, values in by_name.items():
            np.testing.assert_array_equal(back.distances[group][name], values)
    assert back.attrs["schema_version"] == SCHEMA_VERSION
    assert back.attrs["project_version"] == __version__
    assert back.attrs["seed"] == 17 and back.attrs["layer"] == "relu3"
    assert json.loads(back.attrs["job_config"]) == {"iterations": 50, "method": "adam"}
    assert set(json.loads(back.attrs["packages"])) >= {"torch", "numpy", "h5py", "python"}


def test_file_layout_is_the_documented_schema(tmp_path):
    path = write_metamer_batch(tmp_path / "a.h5", make_batch(n=2))
    with h5py.File(path) as f:
        names = []
        f.visit(lambda name: names.append(name) if isinstance(f[name], h5py.Dataset) else None)
        distances = [f"distances/{g}/{d}" for g in ("metamer", "start") for d in ("l2", "rms", "ssim")]
        assert sorted(names) == sorted([*DATASETS, "test_values/snr_db", "test_values/spearman", *distances])
        assert f["activations/metamer"].dtype == np.float16
        assert f["activations/metamer"].compression == "gzip"
        assert f["metamer"].dtype == np.float32 and f["metamer_uint8"].dtype == np.uint8
        assert f["loss"].shape == (2, 50)


def test_missing_dataset_and_wrong_version_are_named(tmp_path):
    """The schema checks behind the checksums: files edited by hand and sealed again (an edit
    without resealing is refused first, tests/test_artifact_integrity.py)."""
    path = write_metamer_batch(tmp_path / "a.h5", make_batch())
    with h5py.File(path, "a") as f:
        del f["final_loss"]
        seal(f)
    with pytest.raises(ArtifactError, match=f"artifact '{path}' lacks dataset 'final_loss'"):
        read_metamer_batch(path)
    path = write_metamer_batch(tmp_path / "b.h5", make_batch())
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(ArtifactError, match=f"has schema version 99; this version reads {SCHEMA_VERSION}"):
        read_metamer_batch(path)
    path = write_metamer_batch(tmp_path / "c.h5", make_batch())
    with h5py.File(path, "a") as f:
        del f["distances/start/ssim"]
        seal(f)
    with pytest.raises(ArtifactError, match="lacks dataset 'distances/start/ssim'"):
        read_metamer_batch(path)


def test_first_passing_iterates_are_kept_only_when_given(tmp_path):
    """``on_success: record`` keeps each image's first passing 8-bit iterate beside the metamer
    (the last iterate); other artifacts have no such dataset, and a wrong shape is refused."""
    batch = make_batch()
    first = np.flip(batch.metamer_uint8, axis=-1).copy()
    with_first = MetamerBatch(**{**batch.__dict__, "first_pass_uint8": first})
    back = read_metamer_batch(write_metamer_batch(tmp_path / "a.h5", with_first))
    np.testing.assert_array_equal(back.first_pass_uint8, first)
    with h5py.File(tmp_path / "a.h5") as f:
        assert f["first_pass_uint8"].dtype == np.uint8 and f["first_pass_uint8"].shape == (3, 1, 28, 28)
    assert read_metamer_batch(write_metamer_batch(tmp_path / "b.h5", batch)).first_pass_uint8 is None
    with pytest.raises(ArtifactError, match=r"first_pass_uint8 has shape \(3, 1, 28, 27\); expected \(3, 1, 28, 28\)"):
        MetamerBatch(**{**batch.__dict__, "first_pass_uint8": first[..., :27]})
    with h5py.File(tmp_path / "a.h5", "a") as f:
        del f["first_pass_uint8"]
        f.create_dataset("first_pass_uint8", data=first.astype(np.float32))
        seal(f)  # a valid checksum: the schema check refuses it
    with pytest.raises(ArtifactError, match=r"dataset 'first_pass_uint8' is float32\(3, 1, 28, 28\), expected "
                                            r"uint8\(3, 1, 28, 28\)"):
        read_metamer_batch(tmp_path / "a.h5")


def test_corrupt_file_is_named(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(200))
    with pytest.raises(ArtifactError, match=f"cannot read metamer artifact '{path}'"):
        read_metamer_batch(path)


def test_inconsistent_rows_are_refused():
    batch = make_batch()
    with pytest.raises(ArtifactError, match="labels has 2 rows for 3 image ids"):
        MetamerBatch(**{**batch.__dict__, "labels": np.arange(2)})
    with pytest.raises(ArtifactError, match=r"test_passed has shape \(3, 2\); expected \(3, 3\) for 3 checks"):
        MetamerBatch(**{**batch.__dict__, "test_passed": batch.test_passed[:, :2]})


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_metamer_batch(tmp_path / "a.h5", make_batch(seed=1))
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


@pytest.mark.parametrize("existing", [False, True])
def test_killed_writer_leaves_no_partial_file(tmp_path, existing):
    """A process killed (SIGKILL) in the middle of writing leaves no file at the final path,
    or the complete earlier file when there was one."""
    target = tmp_path / "job.h5"
    if existing:
        write_metamer_batch(target, make_batch(seed=5))
    before = target.read_bytes() if existing else None
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import h5py
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_artifacts import make_batch
        from metamers.artifacts import write_metamer_batch
        original = h5py.Group.create_dataset
        count = []
        def dying(self, *args, **kwargs):
            count.append(1)
            if len(count) == 6:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args, **kwargs)
        h5py.Group.create_dataset = dying
        write_metamer_batch({str(target)!r}, make_batch(seed=6))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if existing:
        assert target.read_bytes() == before
        read_metamer_batch(target)
    else:
        assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "job.h5"]
    assert all(name.startswith(".job.h5.tmp-") for name in leftovers) and len(leftovers) == 1


def test_paths():
    assert str(metamer_path("results", "adam", "lenet", "relu1", "b002")) == "results/metamers/adam/lenet/relu1/b002.h5"
