"""Named synthesis methods: presets that a config's ``methods`` section selects and overrides.

A config entry ``methods: {NAME: {preset: P, ...overrides}}`` starts from preset ``P``
(or from the preset called ``NAME`` when ``preset`` is absent) and replaces the keys it gives.
Every key must be used: a key that the method's optimizer, schedule or starting point does
not read (``momentum`` on ``adam``, ``lr`` on the normalized-gradient step) is an error that
names the key and the valid ones. Changing the optimizer drops the preset's keys of the old one;
a ``schedule``, ``init`` or ``parameterization`` of another ``type`` replaces the preset's, one of the
same type (or with no ``type``) overrides its keys.

``fake_relu`` (default true, as published): at a generation layer that is a ReLU module,
match its output with the straight-through ReLU (ReLU forward, identity backward); other
layers are matched as they are. A generator's layer entry ``{name, fake_relu}`` overrides it.

``diversity: {k, weight, space, until}`` (none by default): ``k`` metamers of every reference,
optimised together with a term that pushes them apart (:mod:`metamers.synthesis.diversity`); only with an optimizer
that steps along the gradient alone (``normalized_gradient``, ``adam``, ``sgd``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..registry import Registry
from .losses import LOSSES
from .optimizers import OPTIMIZERS, RESIDUAL_LOSSES, optimizer_keys
from .parameterizations import PARAMETERIZATIONS
from .diversity import diversity_settings
from .priors import PRIORS
from .schedules import SCHEDULES
from .starts import STARTS

#: Keys that every method has, whatever its optimizer.
COMMON_KEYS = ("preset", "optimizer", "iterations", "schedule", "loss", "init", "priors", "parameterization",
               "check_every", "on_success", "fake_relu", "diversity")
#: What ``on_success`` may say: freeze an image once it passes (``stop``); run every image to the
#: budget, testing it at every check (``continue``) or only until it first passes (``record``).
ON_SUCCESS = ("stop", "continue", "record")


class MethodError(KeyError):
    """A method entry that names an unknown preset or part, or a key that nothing uses."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


#: What every built-in preset shares: the published loss, noise start, no image prior, pixels,
#: straight-through ReLU, and no in-loop test (so the last iterate is the metamer).
_PUBLISHED = {
    "loss": "normalized_l2",
    "init": {"type": "noise", "mean": 0.5, "std": 0.05},
    "priors": [],
    "parameterization": {"type": "pixels"},
    "check_every": 0,
    "on_success": "continue",
    "fake_relu": True,
}

#: The built-in presets: name -> full method settings.
METHOD_PRESETS: Registry[dict[str, Any]] = Registry("preset", MethodError)
# Feather et al. (2023): normalized-gradient steps, step 1 halved after each of 8 blocks of 3000 iterations.
METHOD_PRESETS.register("feather2023", {
    "optimizer": "normalized_gradient", "iterations": 24000, "step_size": 1.0, "scale_step_to_input": True,
    "schedule": {"type": "step_halving", "blocks": 8, "gamma": 0.5}, **copy.deepcopy(_PUBLISHED),
})
METHOD_PRESETS.register("adam", {
    "optimizer": "adam", "iterations": 2000, "lr": 0.01, "schedule": {"type": "constant"}, **copy.deepcopy(_PUBLISHED),
})
# The fastest found by bench/generation.py (issue 9): Adam with a large first step (each pixel
# moves up to 0.1 per iteration), annealed by a cosine to 1/1000 of it over the budget.
METHOD_PRESETS.register("adam_cosine", {
    "optimizer": "adam", "iterations": 1000, "lr": 0.1, "schedule": {"type": "cosine", "eta_min": 0.001},
    **copy.deepcopy(_PUBLISHED),
})
# Coarse to fine (bench/generation.py, issue 9): Adam with a smaller first step (0.03), the same
# cosine, on a 3-level pyramid whose 7 x 7 (for a digit) level is optimised alone for 10
# iterations, the 14 x 14 level joining at 10 and the full image at 20. It passes the robust
# LeNet's relu3, where adam_cosine passes none.
METHOD_PRESETS.register("adam_coarse_to_fine", {
    "optimizer": "adam", "iterations": 1000, "lr": 0.03, "schedule": {"type": "cosine", "eta_min": 0.001},
    **copy.deepcopy(_PUBLISHED), "parameterization": {"type": "coarse_to_fine", "levels": 3, "open_every": 10},
})
# Polyak's step size (bench/generation.py, issue 9): a gradient step of half the length that a
# linear model of the objective says reaches 0, with heavy-ball momentum 0.5. Along the gradient
# like the published step, so its metamers stay about as far from their references, in a tenth
# of its iterations or fewer at most LeNet layers.
METHOD_PRESETS.register("polyak", {
    "optimizer": "polyak", "iterations": 1000, "lr": 0.5, "momentum": 0.5, "schedule": {"type": "constant"},
    **copy.deepcopy(_PUBLISHED),
})
# The damped Gauss-Newton step (bench/generation.py, issue 9): the shortest step that zeroes the
# linearised residual, for narrow targets (it forms a Jacobian row per matched value; at most
# max_outputs per image). At the LeNets' logits it passes the metamer test in a median of 4 and
# 6.5 steps (the published procedure: 79 and 66), every image within 20.
METHOD_PRESETS.register("gauss_newton", {
    "optimizer": "gauss_newton", "iterations": 50, "lr": 1.0, "damping": 0.01, "max_outputs": 1024,
    "schedule": {"type": "constant"}, **copy.deepcopy(_PUBLISHED),
})
#: Mahendran and Vedaldi's (2015) image priors as the inversions use them: total variation (beta 2)
#: and the alpha-norm (alpha 6), each of weight 1.
_PRIORS = [{"type": "total_variation", "weight": 1.0, "beta": 2.0}, {"type": "alpha_norm", "weight": 1.0, "alpha": 6.0}]
# Polyak's steps with those priors; the objective's minimum is then above 0, so a cosine anneals
# the step to 1/1000 of it over the budget. It passes the robust LeNet's relu3, where polyak
# passes none (bench/generation.py).
METHOD_PRESETS.register("polyak_priors", {
    "optimizer": "polyak", "iterations": 1000, "lr": 0.5, "momentum": 0.5,
    "schedule": {"type": "cosine", "eta_min": 0.001}, **copy.deepcopy(_PUBLISHED), "priors": copy.deepcopy(_PRIORS),
})
# Inverting a representation (config section ``inversion``): the adam_cosine steps for 500
# iterations, with the image priors of Mahendran and Vedaldi (2015), total variation (beta 2)
# and the alpha-norm (alpha 6), each of weight 1 (their optimizer was SGD with momentum: a deviation).
METHOD_PRESETS.register("inversion", {
    "optimizer": "adam", "iterations": 500, "lr": 0.1, "schedule": {"type": "cosine", "eta_min": 0.001},
    **copy.deepcopy(_PUBLISHED), "priors": copy.deepcopy(_PRIORS),
})
METHOD_PRESETS.register("sgd_momentum", {
    "optimizer": "sgd", "iterations": 2000, "lr": 0.1, "momentum": 0.9, "nesterov": True,
    "schedule": {"type": "constant"}, **copy.deepcopy(_PUBLISHED),
})


def resolve_method(name: str, entry: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full settings of method ``name`` configured as ``entry``.

    Raises
    ------
    MethodError
        An unknown preset, optimizer, schedule or starting point, or a key that the method
        would silently ignore; the message names the key and the valid ones.
    """
    entry = dict(entry or {})
    context = f"method {name!r}: "
    preset = entry.pop("preset", name)
    settings = copy.deepcopy(METHOD_PRESETS.lookup(preset, context))
    optimizer = entry.get("optimizer", settings["optimizer"])
    _part(OPTIMIZERS, optimizer, context)
    if optimizer != settings["optimizer"]:  # the preset's keys of its own optimizer no longer apply
        for key in optimizer_keys(settings["optimizer"]):
            settings.pop(key, None)
    for key, value in entry.items():
        old = settings.get(key)
        # a part of another type (schedule, init, parameterization) replaces the preset's; one of the
        # same type (or that names none) overrides its keys
        if isinstance(value, Mapping) and isinstance(old, Mapping) and value.get("type", old.get("type")) == old.get(
                "type"):
            settings[key] = {**old, **copy.deepcopy(dict(value))}
        else:
            settings[key] = copy.deepcopy(value)
    settings["preset"] = preset
    _check_keys(name, entry, settings)
    return settings


def method_settings(method: str | Mapping[str, Any]) -> dict[str, Any]:
    """Full, checked settings of ``method``: a preset name (``"feather2023"``), a preset's
    overrides naming it (``{"preset": "adam", "lr": 0.05}``), or settings already complete
    (:func:`resolve_method`'s, which are checked again and returned as they are).

    Raises
    ------
    MethodError
        An unknown preset, a dict that names no preset, or a key that the method would not use.

    Examples
    --------
    >>> from metamers.synthesis.methods import method_settings
    >>> method_settings("feather2023")["iterations"]
    24000
    >>> method_settings({"preset": "adam_cosine", "iterations": 200})["lr"]
    0.1
    """
    if isinstance(method, str):
        return resolve_method(method)
    if not isinstance(method, Mapping):
        raise MethodError(f"a method is a preset name ({', '.join(METHOD_PRESETS)}) or a dict of settings, got "
                          f"{type(method).__name__}")
    if "preset" not in method:
        raise MethodError(
            f"a method dict names the preset it overrides under 'preset' (one of {', '.join(METHOD_PRESETS)}), "
            f"for example {{'preset': 'adam', 'lr': 0.05}}; got keys {sorted(method)}")
    if all(key in method for key in ("optimizer", "iterations", *_PUBLISHED)):  # complete: check it as it is
        settings = copy.deepcopy(dict(method))
        METHOD_PRESETS.lookup(settings["preset"], f"method {settings['preset']!r}: ")
        _part(OPTIMIZERS, settings["optimizer"], f"method {settings['preset']!r}: ")
        _check_keys(settings["preset"], {}, settings)
        return settings
    entry = dict(method)
    return resolve_method(str(entry["preset"]), entry)


def _check_keys(name: str, entry: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
    """Raise :class:`MethodError` for any key that the resolved method would not use."""
    context = f"method {name!r}: "
    missing = [key for key in OPTIMIZERS[settings["optimizer"]].required if key not in settings]
    if missing:
        raise MethodError(
            f"method {name!r}: optimizer {settings['optimizer']!r} needs {', '.join(missing)} (the preset "
            f"{settings['preset']!r} sets no {', '.join(missing)} for it); add it to the method"
        )
    valid = (*COMMON_KEYS, *optimizer_keys(settings["optimizer"]))
    unused = [key for key in settings if key not in valid]
    if unused:
        raise MethodError(
            f"method {name!r}: key(s) {unused} are not used by optimizer {settings['optimizer']!r}; its keys: "
            f"{', '.join(optimizer_keys(settings['optimizer']))}; keys of every method: {', '.join(COMMON_KEYS)}"
        )
    _part(LOSSES, settings.get("loss", "normalized_l2"), context)
    if OPTIMIZERS[settings["optimizer"]].residual:
        if settings.get("loss", "normalized_l2") not in RESIDUAL_LOSSES:
            raise MethodError(
                f"method {name!r}: optimizer {settings['optimizer']!r} zeroes the difference of activations, so its "
                f"loss must be one whose zero set is a(x) = a(r): {', '.join(RESIDUAL_LOSSES)}; got "
                f"{settings['loss']!r}"
            )
        if settings.get("priors"):
            raise MethodError(
                f"method {name!r}: optimizer {settings['optimizer']!r} zeroes the difference of activations and "
                "takes no image priors (they have no zero to reach); remove priors"
            )
    defaults = {"schedule": "constant", "init": "noise", "parameterization": "pixels"}
    for part, registry in (("schedule", SCHEDULES), ("init", STARTS), ("parameterization", PARAMETERIZATIONS)):
        options = dict(settings.get(part, {}))
        kind = options.pop("type", defaults[part])
        keys = _part(registry, kind, context).keys
        extra = [key for key in options if key not in keys]
        if extra:
            raise MethodError(
                f"method {name!r}: {part} key(s) {extra} are not used by {part} {kind!r}; its keys: "
                f"{', '.join(keys) or '(none)'}"
            )
    for k, prior in enumerate(settings.get("priors", [])):
        kind = _part(PRIORS, prior.get("type"), context + f"priors[{k}]: ")
        extra = [key for key in prior if key not in ("type", "weight", *kind.keys)]
        if extra:
            raise MethodError(
                f"method {name!r}: priors[{k}] key(s) {extra} are not used by prior {prior['type']!r}; its keys: "
                f"weight, {', '.join(kind.keys)}"
            )
    if settings.get("diversity") is not None:
        try:
            diversity_settings(settings["diversity"])
        except ValueError as err:
            raise MethodError(f"method {name!r}: {err}") from None
        if OPTIMIZERS[settings["optimizer"]].uses_value:
            steps = [n for n, kind in OPTIMIZERS.items() if not kind.uses_value]
            raise MethodError(
                f"method {name!r}: optimizer {settings['optimizer']!r} steps by the objective's value, which the "
                f"diversity term makes negative; diversity needs an optimizer that steps along the gradient "
                f"alone: {', '.join(steps)}"
            )
    if "on_success" in entry and not settings.get("check_every", 0):
        raise MethodError(
            f"method {name!r}: on_success has no effect without check_every (the metamer test is never run "
            "during synthesis); set check_every to a number of iterations or remove on_success"
        )


def _part(registry: Registry, name: str, context: str) -> Any:
    """``registry[name]``, an unknown name raising :class:`MethodError` that names the method."""
    try:
        return registry.lookup(name, context)
    except registry.error as err:  # the registry's own error type, re-raised as a method error
        raise MethodError(str(err.args[0]) if err.args else str(err)) from None
