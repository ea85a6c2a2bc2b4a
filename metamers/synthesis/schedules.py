"""Step-size schedules, registered by type in :data:`SCHEDULES`: a multiplier of the initial
step for every iteration of a run's budget, applied with :class:`torch.optim.lr_scheduler.LambdaLR`
(imported when a schedule is made: validating a method needs no torch)."""

from __future__ import annotations

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


SCHEDULES.register("step_halving", Schedule(step_halving, ("blocks", "gamma")))
SCHEDULES.register("constant", Schedule(constant, ()))


def make_scheduler(optimizer: Optimizer, iterations: int, schedule: Mapping[str, Any]) -> LRScheduler:
    """A :class:`~torch.optim.lr_scheduler.LambdaLR` following schedule ``schedule['type']`` over ``iterations``."""
    from torch.optim.lr_scheduler import LambdaLR

    options = dict(schedule)
    kind = SCHEDULES[options.pop("type", "constant")]
    return LambdaLR(optimizer, kind.factory(iterations, **options))
