"""Step-size schedules, registered by type in :data:`SCHEDULES`.

Most are a multiplier of the initial step for every iteration of a run's budget, applied with
:class:`torch.optim.lr_scheduler.LambdaLR`; ``reduce_on_plateau`` follows each image's own loss
(:class:`ReduceOnPlateau`), for which every image is a parameter group of its optimizer, so that it may
give each image its own step (:attr:`Schedule.per_image`; the others step one group of every
image). Torch is imported when a schedule is made: validating a method
needs none. A scheduler's ``step(losses)`` takes the per-image objective of the iteration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..registry import Registry

if TYPE_CHECKING:
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler


@dataclass(frozen=True)
class Schedule:
    """A kind of schedule.

    Attributes
    ----------
    factory
        ``(iterations, **options) -> multiplier(iteration)``, or None for a schedule that
        follows the loss (then ``make``).
    keys
        The config keys (besides ``type``) that configure it.
    make
        ``(optimizer, iterations, **options) -> scheduler`` for a schedule that is not a
        multiplier of the iteration.
    per_image
        It gives each image its own step, so every image must be a parameter group of its own
        (a multiplier of the iteration is the same for every image: one group steps them all,
        one multi-tensor update instead of one per image).
    """

    factory: Callable[..., Callable[[int], float]] | None
    keys: tuple[str, ...]
    make: Callable[..., Any] | None = None
    per_image: bool = False


#: Schedule type (a method's ``schedule.type``) -> :class:`Schedule`.
SCHEDULES: Registry[Schedule] = Registry("schedule type")


def step_halving(iterations: int, blocks: int = 8, gamma: float = 0.5) -> Callable[[int], float]:
    """Multiplier of the initial step: ``gamma ** b`` during block ``b`` of ``blocks`` equal blocks.

    Feather et al. (2023): 8 blocks of 3000 iterations, the step halving after each.
    """
    block = max(1, -(-iterations // blocks))  # ceil: the last block may be shorter
    return lambda it: gamma ** min(it // block, blocks - 1)


def constant(iterations: int) -> Callable[[int], float]:
    """The initial step throughout."""
    return lambda it: 1.0


def cosine(iterations: int, eta_min: float = 0.0) -> Callable[[int], float]:
    """Cosine annealing from 1 to ``eta_min`` over the budget:
    ``eta_min + (1 - eta_min) (1 + cos(pi t / T)) / 2``."""
    return lambda it: eta_min + (1 - eta_min) * (1 + math.cos(math.pi * min(it, iterations) / iterations)) / 2


def warm_restarts(iterations: int, cycles: int = 4, eta_min: float = 0.0) -> Callable[[int], float]:
    """Cosine annealing restarted ``cycles`` times (Loshchilov and Hutter 2017): the budget in
    ``cycles`` equal cycles, each annealing from 1 to ``eta_min``."""
    length = max(1, -(-iterations // cycles))  # ceil: the last cycle may be shorter
    return lambda it: eta_min + (1 - eta_min) * (1 + math.cos(math.pi * (it % length) / length)) / 2


class ReduceOnPlateau:
    """Each image's step times ``factor`` once its objective has not fallen below
    ``(1 - threshold)`` times its best for ``patience`` iterations, down to ``min_factor`` times
    the initial step (an image's plateau never changes another image's step).

    Parameters
    ----------
    optimizer
        An optimizer whose parameter groups are the images, in order.
    """

    def __init__(self, optimizer: Optimizer, iterations: int, factor: float = 0.5, patience: int = 100,
                 threshold: float = 1e-3, min_factor: float = 1e-3) -> None:
        self.optimizer = optimizer
        self.factor, self.patience, self.threshold, self.min_factor = factor, int(patience), threshold, min_factor
        n = len(optimizer.param_groups)
        self.base = [float(g["lr"]) for g in optimizer.param_groups]
        self.scale = [1.0] * n
        self.best = [math.inf] * n
        self.waited = [0] * n

    def step(self, losses: Any = None) -> None:
        """Follow the objective of the iteration, ``losses`` (one value per image)."""
        if losses is None:
            return
        for k, loss in enumerate(losses.tolist()):
            if loss < self.best[k] * (1 - self.threshold):
                self.best[k], self.waited[k] = loss, 0
            else:
                self.waited[k] += 1
                if self.waited[k] >= self.patience:
                    self.scale[k] = max(self.scale[k] * self.factor, self.min_factor)
                    self.waited[k] = 0
            self.optimizer.param_groups[k]["lr"] = self.base[k] * self.scale[k]

    def state_dict(self) -> dict[str, Any]:
        return {"scale": list(self.scale), "best": list(self.best), "waited": list(self.waited)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scale, self.best, self.waited = list(state["scale"]), list(state["best"]), list(state["waited"])
        for k, group in enumerate(self.optimizer.param_groups):
            group["lr"] = self.base[k] * self.scale[k]


SCHEDULES.register("step_halving", Schedule(step_halving, ("blocks", "gamma")))
SCHEDULES.register("constant", Schedule(constant, ()))
SCHEDULES.register("cosine", Schedule(cosine, ("eta_min",)))
SCHEDULES.register("warm_restarts", Schedule(warm_restarts, ("cycles", "eta_min")))
SCHEDULES.register("reduce_on_plateau", Schedule(None, ("factor", "patience", "threshold", "min_factor"),
                                                 ReduceOnPlateau, per_image=True))


def per_image_schedule(schedule: Mapping[str, Any]) -> bool:
    """Whether ``schedule`` gives each image its own step (each image its own parameter group)."""
    return SCHEDULES[dict(schedule).get("type", "constant")].per_image


def make_scheduler(optimizer: Optimizer, iterations: int, schedule: Mapping[str, Any]) -> LRScheduler:
    """The scheduler of schedule ``schedule['type']`` over ``iterations``: a
    :class:`~torch.optim.lr_scheduler.LambdaLR` of the multiplier (the same for every image), or
    the schedule's own scheduler. Its ``step(losses)`` takes the iteration's per-image objective."""
    from torch.optim.lr_scheduler import LambdaLR

    options = dict(schedule)
    kind = SCHEDULES[options.pop("type", "constant")]
    if kind.make is not None:
        return kind.make(optimizer, iterations, **options)

    class _Multiplier(LambdaLR):
        def step(self, losses: Any = None) -> None:  # noqa: D102 - the multiplier ignores the loss
            super().step()

    return _Multiplier(optimizer, kind.factory(iterations, **options))
