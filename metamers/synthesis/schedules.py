"""Step-size schedules, registered by type in :data:`SCHEDULES`: a multiplier of the initial
step for every iteration of a run's budget, applied with :class:`torch.optim.lr_scheduler.LambdaLR`
(imported when a schedule is made: validating a method needs no torch)."""

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
        ``(iterations, **options) -> multiplier(iteration)``.
    keys
        The config keys (besides ``type``) that configure it.
    """

    factory: Callable[..., Callable[[int], float]]
    keys: tuple[str, ...]


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


SCHEDULES.register("step_halving", Schedule(step_halving, ("blocks", "gamma")))
SCHEDULES.register("constant", Schedule(constant, ()))
SCHEDULES.register("cosine", Schedule(cosine, ("eta_min",)))
SCHEDULES.register("warm_restarts", Schedule(warm_restarts, ("cycles", "eta_min")))


def make_scheduler(optimizer: Optimizer, iterations: int, schedule: Mapping[str, Any]) -> LRScheduler:
    """A :class:`~torch.optim.lr_scheduler.LambdaLR` following schedule ``schedule['type']`` over ``iterations``."""
    from torch.optim.lr_scheduler import LambdaLR

    options = dict(schedule)
    kind = SCHEDULES[options.pop("type", "constant")]
    return LambdaLR(optimizer, kind.factory(iterations, **options))
