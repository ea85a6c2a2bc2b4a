"""Optimizers for pixel-space synthesis, registered by name in :data:`OPTIMIZERS`.

Synthesis gives every image its own parameter tensor ``(1, C, H, W)``; an optimizer steps a
list of them with a closure that evaluates their objective (as :meth:`torch.optim.Optimizer.step`
takes it), so closure-based optimizers work. The normalized-gradient step
(:mod:`.normalized_gradient`) normalises each parameter's gradient, so its step is per image;
Polyak's step (:mod:`.polyak`) also takes each image's objective value, which the loop hands
to an optimizer with ``takes_objective`` before each step. The Gauss-Newton step
(:mod:`.gauss_newton`) steps each image's residual instead: the loop hands an optimizer with
``takes_jacobian`` each image's residual and Jacobian rather than back-propagating the objective.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..registry import Registry
from .losses import RESIDUALS

if TYPE_CHECKING:
    import torch
    from torch.optim import Optimizer

#: Number of pixels of the 3 x 224 x 224 input for which Feather et al.'s step size 1 was set.
FEATHER_REFERENCE_NUMEL = 3 * 224 * 224


@dataclass(frozen=True)
class OptimizerType:
    """A registered optimizer.

    Attributes
    ----------
    cls
        Where the :class:`torch.optim.Optimizer` class is, as ``"module:name"`` (imported when an
        optimizer is made, so that validating a method needs no torch).
    kwargs
        The keyword arguments of ``cls`` that a method's settings give.
    keys
        The method keys that configure it.
    required
        The keys a method must give (no silent library default for a step size).
    per_image
        It updates each parameter from that parameter's own gradient and state alone, so one
        optimizer may step every image's parameter; ``False`` (L-BFGS: one flat vector and a
        line search over all its parameters) gives every image an optimizer of its own.
    derived
        ``(method settings, values per image) -> keyword arguments`` computed from the settings
        rather than given (the normalized-gradient step's ``lr`` from ``step_size``), or None.
    param_groups
        It takes parameter groups: each image gets its own when a schedule gives each image its
        own step (L-BFGS takes none; it is made for one image).
    residual
        It zeroes a residual rather than minimising a scalar (Gauss-Newton): a method with it needs
        a loss in :data:`RESIDUAL_LOSSES` and takes no image priors.
    uses_value
        Its step uses the objective's value, not only its gradient (Polyak's step length, L-BFGS's
        line search, Gauss-Newton's residual): a method with it takes no diversity term, whose
        part of the objective is not a loss with minimum 0 (:mod:`metamers.synthesis.diversity`).
    """

    cls: str
    kwargs: tuple[str, ...]
    keys: tuple[str, ...]
    required: tuple[str, ...]
    per_image: bool
    derived: Callable[[Mapping[str, Any], int], dict[str, Any]] | None = None
    param_groups: bool = True
    residual: bool = False
    uses_value: bool = False


#: Losses whose zero set is ``a(x) = a(r)`` at every target: what a residual optimizer zeroes.
RESIDUAL_LOSSES = tuple(RESIDUALS)


def optimizer_keys(name: str) -> tuple[str, ...]:
    """The method keys that configure optimizer ``name``."""
    return OPTIMIZERS[name].keys


def make_optimizer(name: str, params: Iterable[torch.Tensor], method: Mapping[str, Any], numel: int,
                   group_per_image: bool = False) -> Optimizer:
    """Build optimizer ``name`` for images of ``numel`` values, with the keyword arguments it
    takes from the method's settings (given, or :attr:`OptimizerType.derived` from them).

    With ``group_per_image`` every parameter (image) is a parameter group of its own, so that a
    schedule may give each its own step; else they share one group, which multi-tensor
    (``foreach``) optimizers update in one call per operation rather than one per image."""
    kind = OPTIMIZERS[name]
    options = {**method, **(kind.derived(method, numel) if kind.derived else {})}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items() if k in kind.kwargs}
    module, attribute = kind.cls.split(":")
    params = list(params)
    groups = [{"params": [p]} for p in params] if kind.param_groups and group_per_image else params
    return getattr(importlib.import_module(module), attribute)(groups, **kwargs)


def effective_step(step_size: float, numel: int, scale_to_input: bool) -> float:
    """The initial step for an image of ``numel`` values.

    With ``scale_to_input`` the step is ``step_size * sqrt(numel / (3*224*224))``, which keeps
    the root-mean-square change per pixel of Feather et al.'s step on ImageNet inputs
    (a 1x28x28 MNIST digit takes steps 0.072 times as long).
    """
    return step_size * (numel / FEATHER_REFERENCE_NUMEL) ** 0.5 if scale_to_input else step_size


#: Optimizer name -> :class:`OptimizerType`.
OPTIMIZERS: Registry[OptimizerType] = Registry("optimizer")


def _normalized_step(method: Mapping[str, Any], numel: int) -> dict[str, Any]:
    return {"lr": effective_step(float(method.get("step_size", 1.0)), numel,
                                 bool(method.get("scale_step_to_input", True)))}


OPTIMIZERS.register("normalized_gradient", OptimizerType(
    "metamers.synthesis.normalized_gradient:NormalizedGradient", ("lr",), ("step_size", "scale_step_to_input"),
    ("step_size",), True, _normalized_step))
def _fused(method: Mapping[str, Any], numel: int) -> dict[str, Any]:
    # torch's fused implementation: one kernel updates every image (its default on the CPU is a
    # Python loop over them, which costs more than a forward pass at LeNet's first layer)
    return {"fused": True}


OPTIMIZERS.register("adam", OptimizerType("torch.optim:Adam", ("lr", "betas", "eps", "fused"), ("lr", "betas", "eps"),
                                          ("lr",), True, _fused))
OPTIMIZERS.register("sgd", OptimizerType("torch.optim:SGD", ("lr", "momentum", "nesterov", "fused"),
                                         ("lr", "momentum", "nesterov"), ("lr",), True, _fused))
# Polyak's step size (the objective's distance to its minimum 0 over the squared gradient norm),
# per image, with optional heavy-ball momentum.
OPTIMIZERS.register("polyak", OptimizerType("metamers.synthesis.polyak:PolyakStep", ("lr", "momentum", "max_step"),
                                            ("lr", "momentum", "max_step"), ("lr",), True,
                                            uses_value=True))
# The damped Gauss-Newton step (Levenberg-Marquardt), per image, for narrow targets (the logits).
OPTIMIZERS.register("gauss_newton", OptimizerType(
    "metamers.synthesis.gauss_newton:GaussNewton", ("lr", "damping", "max_outputs"), ("lr", "damping", "max_outputs"),
    ("lr",), True, residual=True, uses_value=True))
# L-BFGS treats its parameters as one vector with one line search: one optimizer per image.
OPTIMIZERS.register("lbfgs", OptimizerType("torch.optim:LBFGS", ("lr", "max_iter", "history_size", "line_search_fn"),
                                           ("lr", "max_iter", "history_size", "line_search_fn"), ("lr",), False,
                                           param_groups=False, uses_value=True))
