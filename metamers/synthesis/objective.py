"""The synthesis objective: a weighted sum of per-image losses over (model, layer) targets.

A metamer matches its reference at one or several :class:`Target` s. Each target reads one
layer of one model (with the straight-through ReLU where asked); the objective of image ``i``
is ``sum_k weight_k * loss(a_k(x_i), a_k(r_i))`` (losses: :mod:`.losses`) plus any image priors
(:mod:`.priors`), one value per image,
so that an image's gradient is that of its own objective whatever batch it is in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data.pixels import to_input
from ..labels import ClassMap, decide
from ..models.classifier import Classifier
from ..models.layers import LayerReader, uses_fake_relu
from ..stats.comparisons import passes
from ..stats.statistics import STATISTICS
from .losses import LOSSES, RESIDUALS
from .priors import prior_penalty


@dataclass
class Target:
    """One (model, layer) whose activations a metamer must match.

    Attributes
    ----------
    model
        The frozen classifier (inputs in [0, 1]).
    layer
        The layer whose activations are matched.
    weight
        The term's weight in the objective.
    fake_relu
        Match the layer (a ReLU module) with the straight-through ReLU.
    thresholds
        Statistic name -> null threshold at the layer, for the metamer test during synthesis.
    class_map
        How the model's logits decide a class in the images' label space (None: the highest
        logit), for the class test during synthesis (:func:`metamers.labels.decide`).
    """

    model: Classifier
    layer: str
    weight: float = 1.0
    fake_relu: bool = False
    thresholds: Mapping[str, float] = field(default_factory=dict)
    class_map: ClassMap | None = None

    @property
    def name(self) -> str:
        """``model/layer``."""
        return f"{self.model.name}/{self.layer}"


def method_target(
    model: Classifier,
    layer: str,
    method: Mapping[str, Any],
    weight: float = 1.0,
    fake_relu: bool | None = None,
    thresholds: Mapping[str, float] | None = None,
    class_map: ClassMap | None = None,
) -> Target:
    """The :class:`Target` that ``method`` makes of ``(model, layer)``: the one place where a
    method's straight-through ReLU rule is applied (the generation and inversion jobs, the
    benchmarks and the library API all call it).

    ``fake_relu`` is the layer's own setting (a generator's layer entry ``{name, fake_relu}``);
    None leaves it to the method's ``fake_relu`` (default true, as published), which applies at
    ReLU stages only (:func:`~metamers.models.layers.uses_fake_relu`).
    """
    fake = uses_fake_relu(model, layer, bool(method.get("fake_relu", True)), fake_relu)
    return Target(model, layer, float(weight), fake, dict(thresholds or {}), class_map)


def model_input(x: torch.Tensor, model: Classifier) -> torch.Tensor:
    """Images ``x`` as ``model`` takes them: as they are when they have its input shape, else
    resized, centre-cropped and converted to its channels (:func:`~metamers.data.pixels.to_input`,
    differentiable), so that each model of a joint objective sees the image at its own size."""
    return x if tuple(x.shape[1:]) == tuple(model.input_shape) else to_input(x, model.input_shape)


class Objective:
    """The per-image objective of a batch of references over ``targets``.

    Parameters
    ----------
    targets
        The (model, layer) terms.
    reference
        The (8-bit) reference images ``(N, C, H, W)`` in [0, 1].
    loss
        A name in :data:`LOSSES`.
    parts
        Slices of the batch that run through the networks together (each image alone, for
        batch-invariant results, or the whole batch).
    priors
        Image priors added to every image's objective (:mod:`.priors`; none by default).
    """

    def __init__(self, targets: Sequence[Target], reference: torch.Tensor, loss: str, parts: Sequence[slice],
                 priors: Sequence[Mapping] = ()) -> None:
        if not targets:
            raise ValueError("an objective needs at least one (model, layer) target")
        self.targets = list(targets)
        self.loss_fn = LOSSES[loss]
        self.loss_name = loss
        self.parts = list(parts)
        self.priors = [dict(p) for p in priors]
        self.reference = reference
        self._readers = [LayerReader(t.model, [t.layer], fake_relu=[t.layer] if t.fake_relu else ()) for t in targets]
        self._plain = [LayerReader(t.model, [t.layer]) for t in targets]
        with torch.no_grad():
            self.activations = [torch.cat([reader(model_input(reference[p], t.model))[t.layer] for p in self.parts])
                                .detach()
                                for t, reader in zip(targets, self._plain)]

    def losses(self, x: torch.Tensor, images: slice = slice(None)) -> torch.Tensor:
        """Per-image objective of candidates ``x`` against the references ``images``: the weighted
        target terms plus the image priors."""
        total = None
        for t, reader, target in zip(self.targets, self._readers, self.activations):
            term = self.loss_fn(reader(model_input(x, t.model))[t.layer], target[images])
            term = term if t.weight == 1.0 else t.weight * term
            total = term if total is None else total + term
        penalty = prior_penalty(self.priors, x)
        return total if penalty is None else total + penalty

    def residuals(self, x: torch.Tensor, images: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """The residuals that a Gauss-Newton step zeroes, and the objective, from one forward pass:
        ``(residuals (N, M), losses (N,))``.

        Target ``k`` contributes ``rho_k``, ``sqrt(weight_k)`` times the loss's residual of its
        flattened activations (:data:`~.losses.RESIDUALS`; for the published ``normalized_l2``,
        ``(a_k(x) - a_k(r)) / ||a_k(r)||``, each target normalised as in the joint objective), side
        by side: ``||rho_k||^2`` is ``weight_k`` times the target's loss squared (``normalized_l2``,
        ``l2``) or its loss (``mse``), and the residuals are zero exactly where every target is
        matched. ``losses`` are :meth:`losses` (without priors, which a residual method does not take)."""
        if self.priors:
            raise ValueError("a residual (Gauss-Newton) objective takes no image priors")
        residual = RESIDUALS.get(self.loss_name)
        if residual is None:
            raise ValueError(f"loss {self.loss_name!r} has no residual; losses with one: {', '.join(RESIDUALS)}")
        parts, total = [], None
        for t, reader, target in zip(self.targets, self._readers, self.activations):
            act = reader(model_input(x, t.model))[t.layer]
            ref = target[images]
            parts.append(residual(act, ref) if t.weight == 1.0 else t.weight ** 0.5 * residual(act, ref))
            term = self.loss_fn(act.detach(), ref)  # (no graph: the step uses the residuals)
            term = term if t.weight == 1.0 else t.weight * term
            total = term if total is None else total + term
        return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)), total

    def output_sizes(self) -> list[tuple[str, int]]:
        """``(target name, activation values per image)`` of every target."""
        return [(t.name, int(a[0].numel())) for t, a in zip(self.targets, self.activations)]

    def test_names(self) -> list[str]:
        """The names of the values :meth:`test` returns: the statistic, prefixed by
        ``model:layer:`` when there are several targets."""
        return [self._prefix(t) + name for t in self.targets for name in t.thresholds]

    def _prefix(self, t: Target) -> str:
        """``model:layer:`` before a statistic's name when there are several targets, else nothing."""
        return f"{t.model.name}:{t.layer}:" if len(self.targets) > 1 else ""

    @torch.no_grad()
    def test(self, xq: torch.Tensor, reference_classes: Sequence[torch.Tensor], comparison: str,
             images: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The metamer test of 8-bit candidates ``xq`` at every target: ``(passed (N,), values)``,
        passing where every statistic of every target passes and every target model keeps the
        reference's class (``reference_classes[k]`` for target ``k``). ``values`` maps each
        statistic to ``(N,)`` values, its name prefixed by ``model:layer:`` when there are several
        targets. With ``images`` (indices into the batch), ``xq`` holds those images only, and so
        do the results."""
        if images is None:
            parts, pick = self.parts, slice(None)
        else:  # the chosen images, each alone when the parts are single images (batch-invariant)
            pick = images
            single = all(p.stop - p.start == 1 for p in self.parts) and len(self.parts) > 1
            parts = [slice(i, i + 1) for i in range(len(images))] if single else [slice(0, len(images))]
        ok, values = None, {}
        for t, reader, target, classes in zip(self.targets, self._plain, self.activations, reference_classes):
            act = torch.cat([reader(model_input(xq[p], t.model))[t.layer] for p in parts])
            mine = {name: STATISTICS[name].paired(act, target[pick]) for name in t.thresholds}
            predicted = torch.cat([decide(t.model(model_input(xq[p], t.model)), t.class_map) for p in parts])
            passed = passes(mine, t.thresholds, comparison) & (predicted == classes[pick])
            ok = passed if ok is None else ok & passed
            values.update({self._prefix(t) + name: v for name, v in mine.items()})
        return ok, values

    @torch.no_grad()
    def reference_classes(self) -> list[torch.Tensor]:
        """Each target model's class for each reference."""
        return [torch.cat([decide(t.model(model_input(self.reference[p], t.model)), t.class_map)
                           for p in self.parts])
                for t in self.targets]
