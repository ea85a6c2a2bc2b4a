"""What a synthesis run records: its state between iterations, checkpoints of it, and its result.

A checkpoint holds the iterate, every optimizer's and schedule's state and the record so far
(:class:`SynthesisState`), with the :meth:`~.loop.MetamerSynthesis.fingerprint` of the run it
belongs to; a run resumes only from a checkpoint of its own fingerprint, and the result then
equals that of an uninterrupted run. A JSON sidecar beside it (:func:`checkpoint_sidecar`) holds
that fingerprint and the checkpoint's SHA-256; it is read first, and the checkpoint itself is read
(with ``torch.load(weights_only=True)``: no code in it runs) only when the two match this run.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.files import atomic_path, file_sha256

log = logging.getLogger(__name__)


@dataclass
class SynthesisState:
    """What a run has recorded so far.

    Attributes
    ----------
    iteration
        The next iteration to run.
    trace
        ``(N, iterations)`` per-image objective before every step (NaN where not run).
    pass_iteration
        ``(N,)`` first checked iteration that passed (-1: none yet).
    frozen
        Images frozen at success (``on_success: stop``).
    frozen_x
        Each image's iterate at its first pass (``stop``: its frozen pixels; ``record``: kept
        while the image runs on), or None before any image passed or when not kept.
    checked, check_values, check_passed
        The checked iterations, the statistics and the verdicts at each check.
    """

    iteration: int
    trace: torch.Tensor
    pass_iteration: torch.Tensor
    frozen: torch.Tensor
    frozen_x: torch.Tensor | None
    checked: list[int] = field(default_factory=list)
    check_values: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    check_passed: list[torch.Tensor] = field(default_factory=list)

    @classmethod
    def fresh(cls, n: int, iterations: int, statistics: list[str], device: torch.device) -> SynthesisState:
        return cls(0, torch.full((n, iterations), float("nan")), torch.full((n,), -1, dtype=torch.int64),
                   torch.zeros(n, dtype=torch.bool, device=device), None, [], {s: [] for s in statistics}, [])

    def record_check(self, iteration: int, ok: torch.Tensor, values: dict[str, torch.Tensor],
                     x: torch.Tensor | None, freeze: bool = True) -> None:
        """Record the test at ``iteration``; with the iterate ``x``, keep the images that passed for
        the first time (and freeze them, with ``freeze``: ``on_success: stop``)."""
        self.checked.append(iteration)
        for name, v in values.items():
            self.check_values[name].append(v.cpu())
        self.check_passed.append(ok.cpu())
        fresh = ok.cpu() & (self.pass_iteration < 0)  # passed for the first time
        self.pass_iteration[fresh] = iteration
        if x is not None and bool(fresh.any()):
            if self.frozen_x is None:
                self.frozen_x = torch.zeros_like(x)
            self.frozen_x[fresh.to(x.device)] = x[fresh.to(x.device)]
            if freeze:
                self.frozen.logical_or_(fresh.to(self.frozen.device))

    def test_arrays(self, n: int) -> dict[str, Any]:
        """``test_iterations``, ``test_values`` and ``test_passed`` as numpy arrays."""
        return {
            "test_iterations": np.asarray(self.checked, dtype=np.int64),
            "test_values": {
                name: (torch.stack(v, 1).numpy().astype(np.float32) if v else np.empty((n, 0), np.float32))
                for name, v in self.check_values.items()
            },
            "test_passed": torch.stack(self.check_passed, 1).numpy() if self.checked else np.empty((n, 0), dtype=bool),
        }


@dataclass
class SynthesisResult:
    """What one synthesis run produced, as numpy arrays on the CPU.

    Attributes
    ----------
    metamer
        Last iterate (or the frozen iterate of an image that stopped at success),
        float32 ``(N, C, H, W)`` in [0, 1].
    start
        The starting points as drawn, float32 ``(N, C, H, W)`` (``lowpass`` and
        ``phase_scrambled`` starts may leave [0, 1] a little).
    seconds_per_iteration
        Wall time of one step of the whole batch, averaged over the steps this run took (a
        resumed run times only its own; checks of the metamer test are not included). NaN when
        no step ran.
    loss
        Per-image objective at every iteration, ``(N, iterations)``; entry ``t`` is the value
        for the image before step ``t`` (NaN after the run stopped because every image passed).
    final_loss
        Per-image objective of the metamer.
    pass_iteration
        Per image, the first checked iteration at which the 8-bit iterate passed the
        metamer test at every target (-1: never, or not checked).
    test_iterations
        The checked iterations ``(C,)``.
    test_values
        Statistic -> ``(N, C)`` values at those iterations (the name prefixed by ``model:layer:``
        when there are several targets).
    test_passed
        ``(N, C)``: the iterate passed (every statistic and the class, at every target) at that check.
    iterations_run
        Steps taken (less than the budget when every image stopped at success).
    first_pass
        With ``on_success: stop`` or ``record``, each image's iterate at its first pass, float32
        ``(N, C, H, W)`` (NaN for an image that never passed); else None.
    """

    metamer: np.ndarray
    start: np.ndarray
    seconds_per_iteration: float
    loss: np.ndarray
    final_loss: np.ndarray
    pass_iteration: np.ndarray
    test_iterations: np.ndarray
    test_values: dict[str, np.ndarray]
    test_passed: np.ndarray
    iterations_run: int
    first_pass: np.ndarray | None = None

    def first_pass_or_metamer(self) -> np.ndarray:
        """Each image's iterate at its first pass, or its metamer where it never passed (or where
        the run kept no first passes), float32 ``(N, C, H, W)``."""
        if self.first_pass is None:
            return self.metamer.copy()
        return np.where(np.isnan(self.first_pass), self.metamer, self.first_pass).astype(np.float32)


@dataclass
class Checkpoint:
    """A checkpoint read back: the state, the iterate and the optimizers' and schedules' states."""

    state: SynthesisState
    x: torch.Tensor
    optimizers: list[dict[str, Any]]
    schedulers: list[dict[str, Any]]


#: Layout of a checkpoint and its sidecar (the sidecar's ``format``); another layout is not read.
CHECKPOINT_FORMAT = 1


def checkpoint_sidecar(path: str | os.PathLike) -> Path:
    """The JSON sidecar of checkpoint ``path`` (``<path>.json``): its format, fingerprint and SHA-256."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_state(path: str | os.PathLike, fingerprint: str, state: SynthesisState, x: torch.Tensor,
               optimizers: list[dict[str, Any]], schedulers: list[dict[str, Any]]) -> None:
    """Write a checkpoint (tensors and plain values), then its sidecar, each atomically.

    A sidecar thus only ever names a complete checkpoint: a kill between the two renames leaves
    the previous sidecar, whose SHA-256 the new checkpoint does not match, so that checkpoint is
    discarded and the run starts afresh (never resumes from a wrong state).
    """
    payload = {"fingerprint": fingerprint, "state": {**vars(state), "frozen": state.frozen.cpu(),
                                                     "frozen_x": None if state.frozen_x is None
                                                     else state.frozen_x.cpu()},
               "x": x.detach().cpu(), "optimizers": optimizers, "schedulers": schedulers}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
        digest = file_sha256(tmp)
    meta = {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "sha256": digest, "iteration": state.iteration}
    with atomic_path(checkpoint_sidecar(path)) as tmp:
        tmp.write_text(json.dumps(meta))


def remove_checkpoint(path: str | os.PathLike) -> None:
    """Delete checkpoint ``path`` and its sidecar (either may be missing)."""
    checkpoint_sidecar(path).unlink(missing_ok=True)
    Path(path).unlink(missing_ok=True)


def load_state(path: str | os.PathLike, fingerprint: str, device: torch.device,
               x_shape: tuple[int, ...] | None = None) -> Checkpoint | None:
    """The checkpoint at ``path``, if its sidecar says it belongs to the run of ``fingerprint``.

    The sidecar is read first: without one, or of another format or fingerprint (another run's
    checkpoint), the checkpoint is not read at all (a warning names it). Otherwise the checkpoint
    is read only if its SHA-256 is the sidecar's, with ``torch.load(weights_only=True)``
    (tensors and plain values; nothing in it runs). A damaged checkpoint (the sidecar not a JSON
    object, the checkpoint missing, its SHA-256 not the sidecar's, a file ``torch.load`` finds
    truncated or garbled, contents not of a checkpoint's layout, or an iterate not of shape
    ``x_shape``) is deleted with a warning naming it. In every case but a resume, the run starts
    afresh.

    Raises
    ------
    OSError, MemoryError, torch.cuda.OutOfMemoryError
        Reading the files failed for another reason than damage (an I/O error, a stale NFS
        handle, no memory) or moving the state to ``device`` failed: the checkpoint is kept, so
        that a rerun resumes from it.
    """
    path = Path(path)
    sidecar = checkpoint_sidecar(path)
    if not sidecar.is_file():
        if path.exists():
            log.warning("checkpoint %s has no sidecar %s (an older version's, or cut short); not reading it, "
                        "starting afresh", path, sidecar.name)
        return None
    try:
        meta = json.loads(sidecar.read_text())  # (an OSError propagates: the files are kept)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:  # (JSON and Unicode decoding errors are ValueErrors)
        return _discard(path, f"its sidecar {sidecar.name} is unreadable: {err}")
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("fingerprint") != fingerprint:
        log.warning("checkpoint %s belongs to another synthesis; starting afresh", path)
        return None
    if not path.is_file() or file_sha256(path) != meta.get("sha256"):
        return _discard(path, f"missing, or its SHA-256 is not the one its sidecar {sidecar.name} records")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)  # the record stays on the CPU
    except OSError as err:
        if err.errno != errno.EINVAL:  # an I/O error, not damage
            raise
        # torch's zip reader seeks before the start of a truncated or garbled file: EINVAL
        return _discard(path, f"{type(err).__name__}: {err}")
    except torch.cuda.OutOfMemoryError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, LookupError, TypeError, ValueError, AttributeError) as err:
        # what torch.load raises for a truncated or garbled file (RuntimeError: "PytorchStreamReader
        # failed ..."; UnpicklingError, also for anything but tensors and plain values; EOFError; ...)
        return _discard(path, f"{type(err).__name__}: {err}")
    try:
        loaded = _checkpoint_of(payload, fingerprint, x_shape)
    except (LookupError, TypeError, ValueError, AttributeError) as err:
        return _discard(path, f"{type(err).__name__}: {err}")
    # on the device (outside the checks above: a device error, such as no memory there, propagates)
    loaded.state.frozen = loaded.state.frozen.to(device)
    if loaded.state.frozen_x is not None:
        loaded.state.frozen_x = loaded.state.frozen_x.to(device)
    loaded.x = loaded.x.to(device)
    return loaded


def _checkpoint_of(payload: Any, fingerprint: str, x_shape: tuple[int, ...] | None) -> Checkpoint:
    """The checkpoint ``torch.load`` read as ``payload`` (on the CPU), checked against the layout
    :func:`save_state` writes (a ValueError, TypeError, KeyError or AttributeError where it is not)."""
    if not isinstance(payload, dict):
        raise TypeError(f"its contents are a {type(payload).__name__}, not a dict")
    if payload["fingerprint"] != fingerprint:
        raise ValueError("its fingerprint is not its sidecar's")
    fields = dict(payload["state"])
    for name in ("trace", "pass_iteration", "frozen", "x"):
        value = payload["x"] if name == "x" else fields[name]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"its {name} is a {type(value).__name__}, not a tensor")
    if fields["frozen_x"] is not None and not isinstance(fields["frozen_x"], torch.Tensor):
        raise TypeError(f"its frozen_x is a {type(fields['frozen_x']).__name__}, not a tensor")
    loaded = Checkpoint(SynthesisState(**fields), payload["x"], list(payload["optimizers"]),
                        list(payload["schedulers"]))
    if x_shape is not None and tuple(loaded.x.shape) != tuple(x_shape):
        raise ValueError(f"its iterate has shape {tuple(loaded.x.shape)}, not {tuple(x_shape)}")
    return loaded


def _discard(path: Path, reason: str) -> None:
    """Delete damaged checkpoint ``path`` and its sidecar, with a warning that names it and why."""
    log.warning("checkpoint %s is damaged (%s); discarding it, starting afresh", path, reason)
    remove_checkpoint(path)
