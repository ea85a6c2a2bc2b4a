"""What a synthesis run records: its state between iterations, checkpoints of it, and its result.

A checkpoint holds the iterate, every optimizer's and schedule's state and the record so far
(:class:`SynthesisState`), with the :meth:`~.loop.MetamerSynthesis.fingerprint` of the run it
belongs to; a run resumes only from a checkpoint of its own fingerprint, and the result then
equals that of an uninterrupted run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.files import atomic_path

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


def save_state(path: str | os.PathLike, fingerprint: str, state: SynthesisState, x: torch.Tensor,
               optimizers: list[dict[str, Any]], schedulers: list[dict[str, Any]]) -> None:
    """Write a checkpoint atomically."""
    payload = {"fingerprint": fingerprint, "state": {**vars(state), "frozen": state.frozen.cpu(),
                                                     "frozen_x": None if state.frozen_x is None
                                                     else state.frozen_x.cpu()},
               "x": x.detach().cpu(), "optimizers": optimizers, "schedulers": schedulers}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_state(path: str | os.PathLike, fingerprint: str, device: torch.device) -> Checkpoint | None:
    """The checkpoint at ``path`` if it exists and belongs to the run of ``fingerprint``
    (another run's checkpoint is ignored with a warning)."""
    if not Path(path).is_file():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=False)  # the record stays on the CPU
    if not isinstance(payload, dict) or payload.get("fingerprint") != fingerprint or "state" not in payload:
        log.warning("checkpoint %s belongs to another synthesis; starting afresh", path)
        return None
    fields = dict(payload["state"])
    fields["frozen"] = fields["frozen"].to(device)
    if fields["frozen_x"] is not None:
        fields["frozen_x"] = fields["frozen_x"].to(device)
    return Checkpoint(SynthesisState(**fields), payload["x"].to(device), payload["optimizers"], payload["schedulers"])
