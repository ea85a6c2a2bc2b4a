"""Nothing the workflow reads executes code: a crafted pickle planted wherever the workflow reads
one (synthesis checkpoints, CIFAR-10 batches, every model source's weight file, ``.npz`` files)
runs nothing; it is refused with an error naming the file, or, for a checkpoint, discarded with a
warning naming it, and the job's result is that of a fresh run. A damaged checkpoint is discarded
likewise (one that fails to load for another reason, an I/O error or no memory, is kept and the
error raised), and another job's checkpoint is not read at all. A CIFAR-10 batch makes no numpy
object while it is unpickled, and holds no array but of a plain numeric dtype."""

from __future__ import annotations

import errno
import json
import logging
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from metamers.artifacts.files import file_sha256
from metamers.data.pixels import ImageError
from metamers.models import Classifier, load_model
from metamers.models.architectures import LeNet5
from metamers.models.sources import ModelLoadError, load_weights
from metamers.synthesis import MetamerSynthesis
from metamers.synthesis import record as record_module
from metamers.synthesis.methods import resolve_method
from metamers.synthesis.record import CHECKPOINT_FORMAT, checkpoint_sidecar


class Payload:
    """Unpickled, it writes ``marker`` (what a crafted file would do instead)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def crafted_torch_file(path: Path, marker: Path, wrap: bool = True) -> Path:
    """A torch file whose unpickling writes ``marker`` (inside a state-dict-like dict with ``wrap``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"weight": Payload(marker)}} if wrap else Payload(marker), path)
    return path


def test_the_payloads_are_live(tmp_path):
    """The crafted files do run code when read unsafely (so the tests below test something)."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()
    marker.unlink()
    torch.load(crafted_torch_file(tmp_path / "w.pt", marker), weights_only=False)
    assert marker.exists()


# --- synthesis checkpoints ---------------------------------------------------------------------------------------


@pytest.fixture
def lenet() -> Classifier:
    torch.manual_seed(0)
    return Classifier(LeNet5(), mean=(0.0,), std=(1.0,), input_shape=(1, 28, 28), num_classes=10, name="lenet")


METHOD = resolve_method("adam", {"iterations": 20})


def _make(lenet, seed=1):
    ref = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    return MetamerSynthesis.single(lenet, "relu1", ref, METHOD, seed=seed, image_ids=["a", "b", "c"])


class Preempted(Exception):
    pass


def _checkpoint_of(synth, ckpt: Path, at: int = 15) -> None:
    """Run ``synth`` with checkpoints every 10 iterations and stop it at iteration ``at``."""
    step, calls = synth._step, {"n": 0}

    def wrapped(*args):
        calls["n"] += 1
        if calls["n"] == at + 1:
            raise Preempted
        return step(*args)

    synth._step = wrapped
    with pytest.raises(Preempted):
        synth.synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)


def _sidecar(ckpt: Path, fingerprint: str) -> None:
    """A sidecar that vouches for ``ckpt`` as it is (right format, fingerprint and SHA-256)."""
    checkpoint_sidecar(ckpt).write_text(json.dumps({"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint,
                                                    "sha256": file_sha256(ckpt), "iteration": 10}))


@pytest.fixture
def fresh(lenet):
    return _make(lenet).synthesize(progress=False)


def test_a_checkpoint_is_written_with_its_sidecar_and_reads_weights_only(lenet, tmp_path):
    ckpt = tmp_path / "job.ckpt"
    synth = _make(lenet)
    _checkpoint_of(synth, ckpt)
    meta = json.loads(checkpoint_sidecar(ckpt).read_text())
    assert meta == {"format": CHECKPOINT_FORMAT, "fingerprint": synth.fingerprint(), "sha256": file_sha256(ckpt),
                    "iteration": 10}
    assert torch.load(ckpt, weights_only=True)["state"]["iteration"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.ckpt", "job.ckpt.json"]  # no temporary left


def test_a_crafted_checkpoint_with_a_valid_sidecar_runs_nothing(lenet, tmp_path, fresh, caplog):
    marker, ckpt = tmp_path / "ran", tmp_path / "job.ckpt"
    crafted_torch_file(ckpt, marker, wrap=False)
    _sidecar(ckpt, _make(lenet).fingerprint())  # so that torch.load is reached
    with caplog.at_level(logging.WARNING):
        got = _make(lenet).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    assert not marker.exists()
    assert f"checkpoint {ckpt} is damaged" in caplog.text and "starting afresh" in caplog.text
    np.testing.assert_array_equal(got.metamer, fresh.metamer)
    np.testing.assert_array_equal(got.loss, fresh.loss)


def test_with_checkpointing_off_a_checkpoint_is_not_even_looked_at(lenet, tmp_path, fresh, caplog, monkeypatch):
    marker, ckpt = tmp_path / "ran", tmp_path / "job.ckpt"
    crafted_torch_file(ckpt, marker, wrap=False)
    _sidecar(ckpt, _make(lenet).fingerprint())
    monkeypatch.setattr(record_module, "load_state", lambda *a, **k: pytest.fail("load_state was called"))
    with caplog.at_level(logging.WARNING):
        got = _make(lenet).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=0)
    assert not marker.exists() and not caplog.text
    np.testing.assert_array_equal(got.metamer, fresh.metamer)


def _damage(kind: str, ckpt: Path) -> None:
    data = ckpt.read_bytes()
    if kind == "truncated":
        ckpt.write_bytes(data[: len(data) // 2])
    elif kind == "flipped byte":
        ckpt.write_bytes(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    elif kind == "truncated, sidecar vouching for it":  # the SHA-256 passes; torch.load fails
        ckpt.write_bytes(data[: len(data) // 2])
        _sidecar(ckpt, json.loads(checkpoint_sidecar(ckpt).read_text())["fingerprint"])
    elif kind == "sidecar not JSON":
        checkpoint_sidecar(ckpt).write_bytes(b"\xff{not json")
    elif kind == "sidecar a list":
        checkpoint_sidecar(ckpt).write_text("[1, 2]")
    elif kind == "contents of another shape":  # a consistent pair, but not an iterate of this run
        payload = torch.load(ckpt, weights_only=True)
        payload["x"] = payload["x"][:2]
        torch.save(payload, ckpt)
        _sidecar(ckpt, payload["fingerprint"])
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "flipped byte", "truncated, sidecar vouching for it", "sidecar not JSON",
                                  "sidecar a list", "contents of another shape"])
def test_a_damaged_checkpoint_is_discarded_and_the_job_starts_afresh(lenet, tmp_path, fresh, caplog, kind):
    ckpt = tmp_path / "job.ckpt"
    _checkpoint_of(_make(lenet), ckpt)
    _damage(kind, ckpt)
    with caplog.at_level(logging.WARNING):
        got = _make(lenet).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    assert f"checkpoint {ckpt} is damaged" in caplog.text and "discarding it, starting afresh" in caplog.text
    np.testing.assert_array_equal(got.metamer, fresh.metamer)
    np.testing.assert_array_equal(got.loss, fresh.loss)
    caplog.clear()  # the run wrote a good checkpoint again (at 10): a rerun would resume from it, not fail
    meta = json.loads(checkpoint_sidecar(ckpt).read_text())
    assert meta["sha256"] == file_sha256(ckpt) and meta["iteration"] == 10


def test_torch_load_reports_damage_as_the_errors_counted_as_damage(lenet, tmp_path):
    """What ``torch.load`` raises for a truncated checkpoint is among what :func:`load_state`
    counts as damage (an OSError only with EINVAL, from its zip reader seeking before the start)."""
    ckpt = tmp_path / "job.ckpt"
    _checkpoint_of(_make(lenet), ckpt)
    data, seen = ckpt.read_bytes(), set()
    for n in range(0, len(data), max(1, len(data) // 300)):
        ckpt.write_bytes(data[:n])
        try:
            torch.load(ckpt, map_location="cpu", weights_only=True)
        except OSError as err:
            assert err.errno == errno.EINVAL, err
            seen.add("OSError")
        except (pickle.UnpicklingError, EOFError, RuntimeError, LookupError, TypeError, ValueError) as err:
            seen.add(type(err).__name__)
    assert {"RuntimeError", "EOFError"} <= seen  # (torch 2.x: "OSError" too, for some lengths)


@pytest.mark.parametrize("where", ["torch.load", "file_sha256", "sidecar"])
@pytest.mark.parametrize("error", [OSError(errno.EIO, "Input/output error"), OSError(errno.ESTALE, "Stale file handle"),
                                   MemoryError(), torch.cuda.OutOfMemoryError("CUDA out of memory")],
                         ids=["EIO", "ESTALE", "MemoryError", "CUDA OOM"])
def test_a_checkpoint_that_fails_to_load_for_another_reason_is_kept_and_the_error_raised(
        lenet, tmp_path, monkeypatch, caplog, where, error):
    """An I/O error or no memory is no damage: the checkpoint and its sidecar stay (a rerun
    resumes from them), and the error propagates."""
    ckpt = tmp_path / "job.ckpt"
    _checkpoint_of(_make(lenet), ckpt)
    files = {p: p.read_bytes() for p in (ckpt, checkpoint_sidecar(ckpt))}

    def fail(*args, **kwargs):
        raise error

    if where == "sidecar":
        read_text = Path.read_text
        monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: fail() if self.name.endswith(".json")
                            else read_text(self, *a, **k))
    elif where == "file_sha256":
        monkeypatch.setattr(record_module, "file_sha256", fail)
    else:
        monkeypatch.setattr(record_module.torch, "load", fail)
    with caplog.at_level(logging.WARNING), pytest.raises(type(error)) as raised:
        _make(lenet).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=10)
    assert raised.value is error
    assert "damaged" not in caplog.text and "discarding" not in caplog.text
    assert {p: p.read_bytes() for p in files} == files
    monkeypatch.undo()
    assert record_module.load_state(ckpt, _make(lenet).fingerprint(), torch.device("cpu")).state.iteration == 10


def test_a_checkpoint_of_another_job_or_without_sidecar_is_not_read(lenet, tmp_path, fresh, caplog, monkeypatch):
    ckpt = tmp_path / "job.ckpt"
    _checkpoint_of(_make(lenet, seed=5), ckpt)  # another job's
    monkeypatch.setattr(record_module.torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with caplog.at_level(logging.WARNING):
        got = _make(lenet).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=100)
    assert f"checkpoint {ckpt} belongs to another synthesis; starting afresh" in caplog.text
    np.testing.assert_array_equal(got.metamer, fresh.metamer)
    caplog.clear()
    checkpoint_sidecar(ckpt).unlink()  # a checkpoint of an older version (or a sidecar lost)
    with caplog.at_level(logging.WARNING):
        got = _make(lenet).synthesize(progress=False, checkpoint=ckpt, checkpoint_every=100)
    assert f"checkpoint {ckpt} has no sidecar job.ckpt.json" in caplog.text
    np.testing.assert_array_equal(got.metamer, fresh.metamer)


@pytest.mark.parametrize("every", [0, 4])
def test_a_generate_job_runs_nothing_from_a_crafted_checkpoint(config, tmp_path, monkeypatch, caplog, every):
    """At the job level: with checkpointing off the planted file is not read; with it on it is
    discarded with a warning naming it; either way the artifact is a fresh run's, and the job
    removes the checkpoint and its sidecar when it completes."""
    from metamers.artifacts import read_metamer_batch
    from metamers.config import validate_config
    from metamers.jobs.generate import checkpoint_path, generate

    config["images"].update(per_class=1, limit=2)
    config["methods"] = {"adam": {"iterations": 8}}
    config["checkpoint_every"] = every
    config = validate_config(config)
    monkeypatch.setattr(MetamerSynthesis, "fingerprint", lambda self: "this job")
    fresh = read_metamer_batch(generate(config, "adam", "lenet5_robust", "relu2", "b000", tmp_path / "fresh.h5",
                                        progress=False))
    out, marker = tmp_path / "job.h5", tmp_path / "ran"
    ckpt = crafted_torch_file(checkpoint_path(out), marker, wrap=False)
    _sidecar(ckpt, "this job")
    with caplog.at_level(logging.WARNING):
        got = read_metamer_batch(generate(config, "adam", "lenet5_robust", "relu2", "b000", out, progress=False))
    assert not marker.exists()
    assert (f"checkpoint {ckpt} is damaged" in caplog.text) == bool(every)
    np.testing.assert_array_equal(got.metamer, fresh.metamer)
    assert not ckpt.exists() and not checkpoint_sidecar(ckpt).exists()


# --- CIFAR-10 batches ----------------------------------------------------------------------------------------------


def _cifar_folder(tmp_path: Path, batch: object) -> Path:
    from metamers.data.training_sets import CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    good = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1], "batch_label": "b"}
    for name in [*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH]:
        (folder / name).write_bytes(pickle.dumps(batch if name == "data_batch_2" else good, protocol=2))
    return folder


def test_a_crafted_cifar_batch_runs_nothing(tmp_path):
    from metamers.data.training_sets import load_training_set

    marker = tmp_path / "ran"
    folder = _cifar_folder(tmp_path, {"data": Payload(marker), "labels": [0]})
    with pytest.raises(ImageError, match=re.escape(f"{str(folder / 'data_batch_2')!r} names the global builtins.exec")):
        load_training_set({"type": "cifar10", "root": str(tmp_path)})
    assert not marker.exists()


def test_cifar_batches_of_numpy_1_and_garbage(tmp_path):
    """A batch pickled under numpy 1's module names (as the CIFAR-10 archive's are) reads; a garbled
    one is an error naming it."""
    from metamers.data.training_sets import read_cifar_batches

    rows = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    old = pickle.dumps({"data": rows, "labels": [3, np.int64(4)], "batch_label": b"x"}, protocol=2)
    old = old.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    (tmp_path / "old").write_bytes(old)
    x, y = read_cifar_batches(tmp_path, ["old"])
    np.testing.assert_array_equal(x.reshape(2, 3072), rows)
    assert y.tolist() == [3, 4]
    (tmp_path / "bad").write_bytes(old[: len(old) // 2])
    with pytest.raises(ImageError, match=re.escape(f"cannot read batch {str(tmp_path / 'bad')!r}")):
        read_cifar_batches(tmp_path, ["bad"])
    (tmp_path / "codec").write_bytes(pickle.dumps(b"x", protocol=2).replace(b"latin1", b"rot_13"))
    with pytest.raises(ImageError, match="cannot read batch"):
        read_cifar_batches(tmp_path, ["codec"])


class _Python2Pickler(pickle._Pickler):
    """Writes ``bytes`` as Python 2's cPickle wrote ``str`` (BINSTRING opcodes, read back as text
    with ``encoding='latin1'``), as in the batches of the CIFAR-10 python archive."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        self.write((pickle.SHORT_BINSTRING + bytes([len(obj)])) if len(obj) < 256
                   else (pickle.BINSTRING + len(obj).to_bytes(4, "little")))
        self.write(obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def test_a_cifar_batch_as_python_2_wrote_it_reads(tmp_path):
    """The CIFAR-10 archive's batches: protocol 2 from Python 2 (numpy 1's module names, the
    array's bytes a str, ``__builtin__``), keys and file names str; the images read back."""
    from metamers.data.training_sets import read_cifar_batches

    rows = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    stream = __import__("io").BytesIO()
    _Python2Pickler(stream, protocol=2).dump({"batch_label": "training batch 1 of 5", "labels": [6, 9, 9],
                                              "data": rows, "filenames": ["a.png", "b.png", "c.png"]})
    data = stream.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"_codecs" not in data and b"SHORT_BINSTRING" not in data and pickle.SHORT_BINSTRING in data
    (tmp_path / "data_batch_1").write_bytes(data)
    x, y = read_cifar_batches(tmp_path, ["data_batch_1"])
    np.testing.assert_array_equal(x.reshape(3, 3072), rows)
    assert y.tolist() == [6, 9, 9]


PLAIN = {
    "bool": np.array([True, False, True]), "u1": np.arange(6, dtype=np.uint8).reshape(2, 3),
    "i1": np.array([-3, 4], np.int8), "u2": np.array([1, 65535], np.uint16), "i2": np.array([-2, 7], ">i2"),
    "u4": np.array([2**32 - 1], np.uint32), "i4": np.arange(24, dtype=np.int32).reshape(2, 3, 4),
    "u8": np.array([2**64 - 1], np.uint64), "i8": np.array([-(2**63)], np.int64), "f2": np.array([0.5], np.float16),
    "f4": np.array([1.5, -2.25], ">f4"), "f8": np.array([[np.pi, np.inf]]),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
    "transposed": np.arange(24, dtype=np.uint8).reshape(2, 3, 4).transpose(1, 0, 2),
    "strided": np.arange(10, dtype=np.int32)[::3], "0-d": np.array(7, np.int64), "empty": np.zeros((0, 3), np.float32),
    "scalars": [np.uint8(200), np.int64(-5), np.float32(0.25), np.bool_(True), np.dtype(">i4").type(123456)],
}


@pytest.mark.parametrize("protocol", range(6))
def test_cifar_batches_hold_numpy_arrays_of_every_plain_dtype_in_every_protocol(tmp_path, protocol):
    """Arrays (C and Fortran order, transposed, strided, 0-d, empty) and scalars of bool, int,
    uint and float dtypes, either byte order, pickled with every protocol (5: buffers in band),
    read back equal, of the same dtype."""
    from metamers.data.training_sets import _CifarUnpickler

    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(PLAIN, protocol=protocol))
    with open(path, "rb") as stream:
        got = _CifarUnpickler(stream, path).load()
    assert got.keys() == PLAIN.keys()
    for key, value in PLAIN.items():
        for want, have in zip(value, got[key]) if key == "scalars" else [(value, got[key])]:
            assert type(have) is type(want) and have.dtype == want.dtype, key
            np.testing.assert_array_equal(have, want)


class Reduce:
    """Pickles as ``reduce`` says (to write what numpy itself would not)."""

    def __init__(self, *reduce) -> None:
        self.reduce = reduce

    def __reduce__(self):
        return self.reduce


RECONSTRUCT = np.zeros(1).__reduce__()[0]  # the running numpy's _reconstruct (numpy._core.multiarray)


def fake_dtype(code: str, flags: int = 0, byteorder: str = "|", names=None, fields=None) -> Reduce:
    return Reduce(np.dtype, (code, False, True), (3, byteorder, None, names, fields, -1, -1, flags))


def fake_array(dtype, shape, raw) -> Reduce:
    return Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, shape, dtype, False, raw))


#: Reads a batch in a process of its own (a crash there cannot take pytest down): first with
#: plain pickle, looking only at the dtype it gets, then with the reader; exits 0 unless it crashed.
_READ_IN_A_SUBPROCESS = """
import os, pickle, sys
from pathlib import Path
from metamers.data.pixels import ImageError
from metamers.data.training_sets import read_cifar_batches

path = Path(sys.argv[1])
with open(path, "rb") as stream:
    plain = pickle.load(stream, encoding="latin1")
print("plain pickle gives dtype kind", plain["data"].dtype.kind, "hasobject", plain["data"].dtype.hasobject, flush=True)
try:
    read_cifar_batches(path.parent, [path.name])
except ImageError as err:
    print("ImageError:", err, flush=True)
else:
    print("read it", flush=True)
os._exit(0)  # (without tearing down the array plain pickle made)
"""


def test_a_cifar_batch_cannot_make_an_array_of_objects_from_bytes(tmp_path):
    """The attack on an unpickler that lets numpy's globals through: the allowed ``numpy.dtype``
    makes an 'O8' dtype, BUILD gives it flags 0 (so numpy no longer treats it as holding objects),
    and ``_reconstruct`` makes an array of it from the file's bytes: 8 bytes become an object
    pointer (plain pickle, then ``np.asarray(data, dtype=np.uint8)``, segfaults). The reader makes
    no numpy object while unpickling and refuses the dtype, naming the file; nothing crashes."""
    import subprocess
    import sys

    import metamers

    o8 = fake_dtype("O8", flags=0)
    assert o8.__reduce__() == (np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0))
    path = tmp_path / "data_batch_1"
    data = pickle.dumps({"data": fake_array(o8, (2,), b"A" * 16), "labels": [0, 1]}, protocol=2)
    globals_named = set(re.findall(rb"c([\w.]+)\n(\w+)\n", data))
    assert globals_named == {(b"numpy._core.multiarray", b"_reconstruct"), (b"numpy", b"ndarray"),
                             (b"numpy", b"dtype"), (b"_codecs", b"encode")}
    path.write_bytes(data)
    done = subprocess.run([sys.executable, "-c", _READ_IN_A_SUBPROCESS, str(path)], capture_output=True, text=True,
                          cwd=Path(metamers.__file__).parents[1], timeout=120)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert "plain pickle gives dtype kind O hasobject False" in done.stdout  # (the attack is live)
    assert (f"ImageError: training set 'cifar10': {str(path)!r} holds an array of dtype 'O8' (not bool, int, uint or "
            "float)") in done.stdout, done.stdout


@pytest.mark.parametrize(("batch", "refused"), [
    ({"data": fake_array(fake_dtype("O8", flags=63), (2,), b"A" * 16)}, "holds an array of dtype 'O8'"),
    ({"data": np.array([1, "x"], dtype=object)}, "holds an array of dtype 'O8'"),
    ({"data": np.zeros(2, dtype=[("a", "u1")])}, "holds an array of dtype 'V1'"),
    ({"data": np.array(["ab"])}, "holds an array of dtype 'U2'"),
    ({"data": np.array([b"ab"])}, "holds an array of dtype 'S2'"),
    ({"data": np.zeros(2, np.complex64)}, "holds an array of dtype 'c8'"),
    ({"data": np.zeros(2, "M8[s]")}, "holds an array of dtype 'M8'"),
    ({"data": fake_array(fake_dtype("b2"), (2,), b"AAAA")}, "holds an array of dtype 'b2' (not bool, int"),
    ({"data": fake_array(fake_dtype("u1", names=("a",)), (2,), b"AA")},
     "holds an array of dtype 'u1' with the state (3, '|', None, ('a',)"),
    ({"data": fake_array(fake_dtype("u1", byteorder="?"), (2,), b"AA")},
     "holds an array of dtype 'u1' with the state (3, '?'"),
    ({"data": fake_array(fake_dtype("u1"), (2,), b"A" * 16)},
     "holds an array of shape (2,) and dtype '|u1' with 16 bytes of data"),
    ({"data": fake_array(fake_dtype("i8"), (2, -1), b"A" * 16)}, "holds an array of shape (2, -1)"),
    ({"data": fake_array(fake_dtype("i8"), [2], b"A" * 16)}, "holds an array of shape [2]"),
    ({"data": fake_array(fake_dtype("u1"), (2,), [1, 2])}, "holds an array whose data is a list, not bytes"),
    ({"data": Reduce(RECONSTRUCT, (dict, (0,), b"b"), (1, (2,), fake_dtype("u1"), False, b"AA"))},
     "names the global builtins.dict"),
    ({"data": Reduce(np.int64(0).__reduce__()[0], (fake_dtype("O8"), b"A" * 8))}, "holds an array of dtype 'O8'"),
    ({"data": Reduce(np.int64(0).__reduce__()[0], (fake_dtype("i8", byteorder="<"), b"A" * 4))},
     "holds a numpy scalar of dtype '<i8' with 4 bytes of data"),
    ({"data": Reduce(np.zeros(1).__reduce_ex__(5)[0], (b"AAAA", fake_dtype("u1"), (2, 2), "K"))},
     "holds an array with the order 'K'"),
    ({"data": Reduce(np.zeros(1).__reduce_ex__(5)[0], (b"AAAA", fake_dtype("u1"), (2, 2), "K", (0, 0)))},
     "holds an array with the axis order (0, 0)"),
    ({"data": fake_dtype("u1")}, "holds a numpy dtype outside an array"),
    ({"data": {1, 2}}, "holds a set"),
    ({"data": frozenset([1])}, "holds a frozenset"),
    ({"data": 1 + 2j}, "names the global builtins.complex"),
    ({"data": bytearray(b"x")}, "names the global builtins.bytearray"),
])
def test_a_cifar_batch_of_anything_but_plain_arrays_and_values_is_refused(tmp_path, batch, refused):
    from metamers.data.training_sets import read_cifar_batches

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({**batch, "labels": [0]}, protocol=4 if isinstance(batch["data"], (set, frozenset))
                                  else 2))
    with pytest.raises(ImageError, match=re.escape(f"{str(path)!r} {refused}")):
        read_cifar_batches(tmp_path, ["data_batch_1"])


@pytest.mark.parametrize(("data", "error"), [
    (pickle.dumps(Reduce(bytes, (10**12,)), protocol=2), "builtins.bytes is called with arguments"),
    (pickle.dumps(Reduce(np.ndarray, ((2,),)), protocol=2), "numpy.ndarray is called"),
    (b"\x80\x02cnumpy\ndtype\n}b.", "the global dtype is given a state"),
    (pickle.dumps(fake_dtype("u1"), protocol=2)[:-1] + b"}b.", "the state of a dtype is set twice"),
])
def test_the_stand_ins_take_no_other_calls_or_states(tmp_path, data, error):
    from metamers.data.training_sets import read_cifar_batches

    (tmp_path / "b").write_bytes(data)
    with pytest.raises(ImageError, match=re.escape(f"cannot read batch {str(tmp_path / 'b')!r} (UnpicklingError: "
                                                   f"{error})")):
        read_cifar_batches(tmp_path, ["b"])


def test_a_cifar_batch_that_contains_itself_is_refused(tmp_path):
    from metamers.data.training_sets import read_cifar_batches

    batch: dict = {"labels": [0]}
    batch["data"] = [batch]
    (tmp_path / "b").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ImageError, match=re.escape("holds a dict that contains itself")):
        read_cifar_batches(tmp_path, ["b"])


# --- model weight files --------------------------------------------------------------------------------------------


def _specs(tmp_path: Path, monkeypatch) -> dict[str, tuple[dict, Path]]:
    """Each source's entry, with the file it reads."""
    from metamers.models.sources.robustbench import robustbench_checkpoint
    from metamers.models.sources.torchvision import torch_hub_checkpoint

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    w = tmp_path / "w.pt"
    specs = {
        "checkpoint": {"source": "checkpoint", "architecture": "lenet5", "path": str(w)},
        "train": {"source": "train", "architecture": "mlp", "seed": 0, "path": str(w)},
        "timm": {"source": "timm", "name": "resnet10t", "checkpoint": str(w)},
        "robustness": {"source": "robustness", "architecture": "resnet18", "path": str(w)},
        "efficientnet_lite": {"source": "efficientnet_lite", "name": "efficientnet-lite0", "weights": str(w)},
        "torchvision": {"source": "torchvision", "name": "squeezenet1_1",
                        "weights": "SqueezeNet1_1_Weights.IMAGENET1K_V1"},
        "robustbench": {"source": "robustbench", "name": "Ding2020MMA", "dataset": "cifar10", "threat_model": "Linf",
                        "model_dir": str(tmp_path / "rb")},
    }
    files = {name: w for name in specs}
    import torchvision

    files["torchvision"] = torch_hub_checkpoint(torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1.url)
    files["robustbench"] = robustbench_checkpoint(tmp_path / "rb", "cifar10", "Linf", "Ding2020MMA")
    return {name: (specs[name], files[name]) for name in specs}


SOURCES = ["checkpoint", "train", "timm", "robustness", "efficientnet_lite", "torchvision", "robustbench"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("wrap", [True, False], ids=["in a state dict", "bare"])
def test_a_crafted_weight_file_runs_nothing(tmp_path, monkeypatch, source, wrap):
    if source == "timm":
        pytest.importorskip("timm")
    if source == "efficientnet_lite":
        pytest.importorskip("efficientnet_lite_pytorch")
    if source == "robustbench":
        from metamers.models.sources.robustbench import import_robustbench

        import_robustbench()
    spec, path = _specs(tmp_path, monkeypatch)[source]
    marker = tmp_path / "ran"
    crafted_torch_file(path, marker, wrap)
    with pytest.raises(ModelLoadError, match=re.escape(f"cannot read weight file {str(path)!r}")):
        load_model({"m": spec}, "m")
    assert not marker.exists()


def test_advertorch_style_load_weights_runs_nothing(tmp_path):
    """``advertorch``'s files are in its installed package; they go through the same reader."""
    marker = tmp_path / "ran"
    path = crafted_torch_file(tmp_path / "mnist_lenet5_clntrained.pt", marker)
    with pytest.raises(ModelLoadError, match=re.escape(f"model 'lenet': cannot read weight file {str(path)!r}")):
        load_weights(LeNet5(), path, "lenet")
    assert not marker.exists()


def test_robustbench_reads_weights_only_even_when_asked_otherwise(tmp_path):
    """Within robustbench's load, ``torch.load(weights_only=False)`` (what robustbench does before
    torch 2.6) reads weights only all the same."""
    from metamers.models.sources.robustbench import weights_only_torch_load

    marker = tmp_path / "ran"
    path = crafted_torch_file(tmp_path / "w.pt", marker)
    load = torch.load
    with weights_only_torch_load(), pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location="cpu", weights_only=False)
    assert torch.load is load and not marker.exists()


def _no_downloads(monkeypatch):
    """robustbench's download paths fail the test if reached."""
    import timm

    from metamers.models.sources.robustbench import import_robustbench

    rb_utils = import_robustbench()
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: pytest.fail(f"timm.create_model{a, k} was called"))
    monkeypatch.setattr(rb_utils.timm, "create_model", timm.create_model)
    monkeypatch.setattr(rb_utils, "download_gdrive_new", lambda *a, **k: pytest.fail("a download was started"))
    return rb_utils


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet"])
def test_robustbench_entries_built_by_timm_with_pretrained_weights_are_refused(tmp_path, monkeypatch, dataset):
    """``Debenedetti2022Light_XCiT-*``: robustbench's load_model finds its timm name registered and
    returns ``timm.create_model(..., pretrained=True)`` (a download) without reading model_dir: it
    is refused, saying why and what to use, even with a (crafted) file in place."""
    import timm

    from metamers.models.sources.robustbench import robustbench_checkpoint, robustbench_timm_name

    _no_downloads(monkeypatch)
    model = "Debenedetti2022Light_XCiT-S12"
    assert timm.is_model(robustbench_timm_name(model, dataset, "Linf"))  # what robustbench's load_model tests
    path, marker = robustbench_checkpoint(tmp_path, dataset, "Linf", model), tmp_path / "ran"
    crafted_torch_file(path, marker)
    spec = {"source": "robustbench", "name": model, "dataset": dataset, "threat_model": "Linf",
            "model_dir": str(tmp_path)}
    message = (f"model 'm': robustbench builds {model!r} with timm.create_model("
               f"'debenedetti2022light_xcit_s12_{dataset}_linf', pretrained=True), which downloads its weights and "
               f"never reads {str(path)!r}; load it with source 'timm' and a local checkpoint of its weights instead")
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        load_model({"m": spec}, "m")
    assert not marker.exists()


def test_robustbench_refuses_any_entry_timm_would_build_and_names_the_others(tmp_path, monkeypatch):
    """The refusal follows robustbench's own test (timm knows the name), whatever the entry: an
    entry with a weight file is refused once timm knows its name; ensembles and entries without a
    weight file are refused with their own reasons."""
    import timm

    from metamers.models.sources.robustbench import robustbench_timm_name

    _no_downloads(monkeypatch)
    spec = {"source": "robustbench", "name": "Ding2020MMA", "dataset": "cifar10", "threat_model": "Linf",
            "model_dir": str(tmp_path)}
    with pytest.raises(ModelLoadError, match="checkpoint .* is missing"):  # read from model_dir: not refused
        load_model({"m": spec}, "m")
    is_model = timm.is_model
    monkeypatch.setattr(timm, "is_model", lambda n: n == "ding2020mma_cifar10_linf" or is_model(n))
    assert robustbench_timm_name("Ding2020MMA", "cifar10", "Linf") == "ding2020mma_cifar10_linf"
    with pytest.raises(ModelLoadError, match=re.escape("with timm.create_model('ding2020mma_cifar10_linf', "
                                                       "pretrained=True), which downloads its weights")):
        load_model({"m": spec}, "m")
    with pytest.raises(ModelLoadError, match=re.escape("'Chen2020Adversarial' is an ensemble of 3 networks")):
        load_model({"m": {**spec, "name": "Chen2020Adversarial"}}, "m")
    with pytest.raises(ModelLoadError, match=re.escape("'Standard_R50' has no weight file robustbench reads from "
                                                       "model_dir")):
        load_model({"m": {**spec, "name": "Standard_R50", "dataset": "imagenet"}}, "m")


# --- .npz files ----------------------------------------------------------------------------------------------------


def _object_npz(path: Path, marker: Path) -> Path:
    np.savez(path, pixels=np.array([Payload(marker)], dtype=object))
    return path


def test_an_npz_with_an_object_array_runs_nothing(tmp_path):
    from metamers.artifacts.draws import read_draws
    from metamers.jobs.figures import read_figure_table

    marker = tmp_path / "ran"
    path = _object_npz(tmp_path / "x.npz", marker)
    for read in (read_draws, read_figure_table):
        with pytest.raises(Exception, match=re.escape(repr(str(path)))):
            read(path)
    assert not marker.exists()


def test_the_packaged_mnist_subset_is_read_without_pickle(tmp_path, monkeypatch):
    import types

    from metamers.data import mnist

    marker = tmp_path / "ran"
    _object_npz(tmp_path / mnist.MNIST_TEST_FILE, marker)
    resources = types.SimpleNamespace(files=lambda package: tmp_path)
    monkeypatch.setattr(mnist, "importlib", types.SimpleNamespace(resources=resources))
    mnist._mnist_test_arrays.cache_clear()
    try:
        with pytest.raises(ImageError, match=re.escape(f"cannot read the package's MNIST test subset "
                                                       f"{mnist.MNIST_TEST_FILE!r}")):
            mnist._mnist_test_arrays()
    finally:
        mnist._mnist_test_arrays.cache_clear()
    assert not marker.exists()
