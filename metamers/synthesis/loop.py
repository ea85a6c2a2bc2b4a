"""Metamer synthesis: set up once, then :meth:`MetamerSynthesis.synthesize`.

The synthesis object holds the objective (a batch of reference images and the weighted
(model, layer) targets to match, :mod:`.objective`), each image's pixels as its own parameter,
and the optimizers and step schedules of a method (:mod:`.methods`). Every iteration steps
each optimizer with a closure that evaluates its images' objective, so closure-based
optimizers (L-BFGS) work. An optimizer that updates each parameter from its own gradient
(normalized steps, SGD, Adam) steps every image at once; one that treats its parameters
jointly (L-BFGS, whose line search would couple images) gets one optimizer per image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.pixels import quantize, to_uint8
from ..models.classifier import Classifier, weights_digest
from .diversity import PIXELS, Diversity, diversity_settings, member_id, members_of
from .methods import resolve_method
from .objective import Objective, Target, method_target
from .gauss_newton import MAX_OUTPUTS, check_outputs, residual_jacobian
from .optimizers import OPTIMIZERS, make_optimizer
from .parameterizations import make_parameterization
from .record import SynthesisResult, SynthesisState, load_state, save_state
from .schedules import make_scheduler, per_image_schedule
from .starts import StartData, initial_images, start_seed

log = logging.getLogger(__name__)


class SynthesisError(RuntimeError):
    """Synthesis cannot go on (a non-finite loss, say)."""


@dataclass
class _Group:
    """Images stepped by one optimizer (one image, or the whole batch), and the slices of them
    that run through the networks together."""

    images: slice
    parts: list[slice]
    params: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler


class MetamerSynthesis:
    """Synthesise metamers of a batch of reference images at one or several (model, layer) targets.

    Parameters
    ----------
    targets
        The weighted (model, layer) targets (:class:`~.objective.Target`). The images have the
        first target's model's input shape; every other model sees them resized to its own input
        (:func:`~.objective.model_input`). A target's ``thresholds`` are needed when the method
        checks the metamer test (``check_every > 0``).
    reference
        Reference images ``(N, C, H, W)`` in [0, 1]. They are quantised to 8 bits, so that the
        target, the in-loop test and the recorded test all use the reference that other models see.
    method
        A preset name, or full method settings (:func:`metamers.synthesis.methods.resolve_method`,
        used as they are; :func:`~.methods.method_settings` checks a dict and resolves overrides).
    seed
        Base seed: image ``i`` starts from :func:`~.starts.start_seed` ``(seed, image_ids[i])``.
    image_ids
        Ids of the references (default ``0..N-1``): they seed the starting points and name
        images in error messages.
    comparison
        How a statistic is compared with its threshold (:data:`metamers.stats.comparisons.COMPARISONS`).
        With ``on_success: stop`` an image is frozen at the first check it passes; with
        ``continue`` it runs to the budget, tested at every check; with ``record`` it runs to the
        budget, tested only until it first passes (its iterate then is kept: ``first_pass``).
    batch_invariant
        Run each image's forward and backward passes on their own (batches of one), so that an
        image's metamer is bitwise the same in any batch (float32
        kernels round a batch of 20 differently from a batch of 1, and on under-determined layers
        such as logits those differences grow over thousands of steps into different metamers).
        ``False`` runs the images an optimizer steps in one pass (every image, except for joint
        optimizers such as L-BFGS, which step each image alone anyway): faster on a GPU, equal to
        a batch of one only to rounding at first.
    start_data
        The references' labels and the null pool, for starting points made from other images
        (``other_class``, ``pool_mean``: :class:`~.starts.StartData`).
    job_key
        The workflow job's key (:meth:`metamers.study.Study.generation_key`): part of the
        :meth:`fingerprint`, so a checkpoint resumes only the job that wrote it.
    diversity_model
        The model of a method's ``diversity`` space ``{model, layer}`` (:mod:`metamers.synthesis.diversity`); not
        needed for ``space: pixels``.

    With a method's ``diversity`` of ``k`` members, the synthesis makes ``k`` metamers of every
    reference: its rows (:attr:`x`, :attr:`image_ids`, :attr:`members`, the result's arrays) are
    the references' members, reference-major.
    """

    def __init__(
        self,
        targets: Sequence[Target],
        reference: torch.Tensor,
        method: str | Mapping[str, Any],
        seed: int,
        image_ids: Sequence[str] | None = None,
        comparison: str = "at_least",
        batch_invariant: bool = True,
        start_data: StartData | None = None,
        job_key: Mapping[str, Any] | None = None,
        diversity_model: Classifier | None = None,
    ) -> None:
        self.targets = list(targets)
        if not self.targets:
            raise ValueError("synthesis needs at least one (model, layer) target")
        shape = self.targets[0].model.input_shape  # the image synthesised; other targets' models get it
        first = self.targets[0].model            # resized to their own input (objective.model_input)
        if reference.dim() != 4 or tuple(reference.shape[1:]) != tuple(shape):
            raise ValueError(
                f"reference batch must have shape (N, {', '.join(map(str, shape))}), got "
                f"{tuple(reference.shape)} (the input of model {first.name!r})"
            )
        device = self.targets[0].model.device
        self.method = resolve_method(method) if isinstance(method, str) else dict(method)
        self.job_key = dict(job_key or {})
        self.seed = int(seed)
        references = len(reference)
        ids = list(image_ids) if image_ids is not None else [str(i) for i in range(references)]
        diversity = diversity_settings(self.method.get("diversity"))
        k = diversity["k"] if diversity else 1
        n = references * k  # the rows: every reference's k members, reference-major
        #: each row's reference id and member index (member 0 only, without a diversity term)
        self.image_ids = [i for i in ids for _ in range(k)]
        self.members = members_of(k, references)
        self.batch_invariant = bool(batch_invariant)
        self.parts = [slice(i, i + 1) for i in range(n)] if self.batch_invariant else [slice(0, n)]
        self.reference = quantize(reference.to(device))
        self.diversity = None
        if diversity is not None:
            if OPTIMIZERS[self.method["optimizer"]].uses_value:
                raise ValueError(f"optimizer {self.method['optimizer']!r} steps by the objective's value; a diversity "
                                 "term needs one that steps along the gradient alone (methods.MethodError says which)")
            space = diversity["space"]
            model = None
            if space != PIXELS:
                if diversity_model is None or diversity_model.name != space["model"]:
                    raise ValueError(f"the method's diversity space is {space['model']}/{space['layer']}: pass that "
                                     "model as diversity_model")
                if any(t.model.name == space["model"] and t.layer == space["layer"] for t in self.targets):
                    raise ValueError(f"the diversity space {space['model']}/{space['layer']} is a target of the "
                                     "synthesis: its members cannot both match it and differ in it")
                model = diversity_model
            self.diversity = Diversity(k, diversity["weight"], diversity["until"], self.reference, model,
                                       space["layer"] if model is not None else None, self.batch_invariant)
            self.reference = self.reference.repeat_interleave(k, 0)
            if start_data is not None:
                start_data = replace(start_data, labels=[v for v in start_data.labels for _ in range(k)])
        self.objective = Objective(self.targets, self.reference, self.method.get("loss", "normalized_l2"), self.parts,
                                   self.method.get("priors", ()))
        self.iterations = int(self.method["iterations"])
        self.check_every = int(self.method.get("check_every", 0))
        on_success = self.method.get("on_success", "continue")
        self.stop_at_success = on_success == "stop"
        #: test each image only until its first pass (``stop``, ``record``), keeping that iterate
        self.until_first_pass = on_success in ("stop", "record")
        if self.check_every and not all(t.thresholds for t in self.targets):
            raise ValueError(
                f"the method checks the metamer test every {self.check_every} iterations, "
                "which needs the null thresholds of the generation layer"
            )
        self.comparison = comparison
        if self.check_every:
            self.reference_classes = self.objective.reference_classes()

        self.start_seeds = [start_seed(self.seed, member_id(i, m)) for i, m in zip(self.image_ids, self.members)]
        start = initial_images(self.method.get("init", {}), self.reference, self.start_seeds, start_data).to(device)
        self.start = start.detach().cpu()  # the starting points, as drawn (before any clamping)
        # what the optimizer steps: each image's pixels, or coefficients that map to them
        self.image_map = make_parameterization(self.method.get("parameterization"), shape)
        self.params = [self.image_map.from_image(start[i : i + 1]).clone().requires_grad_(True) for i in range(n)]
        # An optimizer that updates each parameter from its own gradient alone steps every image
        # at once; one that treats its parameters jointly (L-BFGS) gets one image each.
        per_image = OPTIMIZERS[self.method["optimizer"]].per_image
        if OPTIMIZERS[self.method["optimizer"]].residual:  # one Jacobian row per matched activation
            check_outputs(self.objective.output_sizes(), int(self.method.get("max_outputs", MAX_OUTPUTS)))
        self.groups = []
        for images in [slice(0, n)] if per_image else [slice(i, i + 1) for i in range(n)]:
            params = self.params[images]
            optimizer = make_optimizer(self.method["optimizer"], params, self.method, int(np.prod(shape)),
                                       per_image_schedule(self.method.get("schedule", {})))
            parts = [slice(max(p.start, images.start), min(p.stop, images.stop)) for p in self.parts
                     if max(p.start, images.start) < min(p.stop, images.stop)]
            self.groups.append(_Group(images, parts, params, optimizer,
                                      make_scheduler(optimizer, self.iterations, self.method.get("schedule", {}))))

    @property
    def x(self) -> torch.Tensor:
        """A copy of the current iterate of every image, ``(N, C, H, W)`` (writing into it changes
        nothing: each image's pixels, or their coefficients, are its own parameter in :attr:`params`)."""
        with torch.no_grad():
            return torch.cat([self.image_map.to_image(p.detach()) for p in self.params])

    def _image(self, params: Sequence[torch.Tensor]) -> torch.Tensor:
        """The images of ``params`` (one or several images' parameters), in the graph."""
        return self.image_map.to_image(params[0] if len(params) == 1 else torch.cat(params))

    def _set_image(self, i: int, x: torch.Tensor) -> None:
        """Set image ``i``'s parameter to the one of image ``x`` ``(1, C, H, W)``."""
        with torch.no_grad():
            self.params[i].copy_(self.image_map.from_image(x))

    def _check_finite(self, losses: torch.Tensor, iteration: int) -> None:
        """Raise if an objective is not finite. An image whose pixels are no longer finite was
        made so by the previous iteration's step (a gradient or step that was not finite, from a
        finite objective): the message names that iteration, not the one that first saw it."""
        bad = ~torch.isfinite(losses)
        if bad.any():
            images = torch.nonzero(bad).flatten().tolist()
            finite_pixels = torch.isfinite(self.x).flatten(1).all(1)  # only on failure: no cost otherwise
            broken = [i for i in images if not finite_pixels[i]]
            targets = ", ".join(t.name for t in self.targets)
            if broken and iteration > 0:
                raise SynthesisError(
                    f"the step of iteration {iteration - 1} made the pixels of image(s) "
                    f"{[self.image_ids[i] for i in broken]} non-finite from a finite objective: a gradient or "
                    f"step that was not finite (targets {targets})"
                )
            raise SynthesisError(
                f"non-finite loss at iteration {iteration} for image(s) {[self.image_ids[i] for i in images]} "
                f"(targets {targets})"
            )

    def _step(self, iteration: int, frozen: torch.Tensor, frozen_any: bool) -> torch.Tensor:
        """One step of every optimizer; the per-image objective before the step.

        Raises
        ------
        SynthesisError
            The objective of some image was not finite before the step (the message names
            every such image; the images a gradient optimizer steps with such an image were not
            moved; a Gauss-Newton step moved those of them whose residual was finite).
        """
        losses = []
        for group in self.groups:
            first: list[torch.Tensor] = []

            def closure(group: _Group = group, first: list = first) -> torch.Tensor:
                group.optimizer.zero_grad(set_to_none=True)
                values, systems = [], []
                linear = getattr(group.optimizer, "takes_jacobian", False)
                for part in group.parts:  # forward and backward part by part: one graph at a time
                    params = self.params[part]
                    if linear and frozen_any and bool(frozen[part].all()):  # no step: a zero Jacobian
                        with torch.no_grad():
                            residual, loss = self.objective.residuals(self._image(params), part)
                        systems.append((residual, residual.new_zeros(*residual.shape, params[0].numel())))
                    elif linear:  # the Gauss-Newton step: each image's residual and its Jacobian
                        residual, loss = self.objective.residuals(self._image(params), part)
                        systems.append((residual.detach(), residual_jacobian(residual, params)))
                    else:
                        loss = self.objective.losses(self._image(params), part)
                        loss.sum().backward()  # the sum keeps each image's gradient that of its own objective
                    values.append(loss.detach())
                if self.diversity is not None and self.diversity.active(iteration, self.iterations):
                    k = self.diversity.k  # (a group steps whole references: every image, per_image optimizers)
                    self.diversity.penalty(self._image(group.params),
                                           range(group.images.start // k, group.images.stop // k)).backward()
                loss = values[0] if len(values) == 1 else torch.cat(values)
                total = loss.sum()
                if not first:  # the objective at the current iterate
                    first.append(loss)
                    if getattr(group.optimizer, "takes_objective", False):  # Polyak's step needs it
                        group.optimizer.set_objective(loss)
                    if linear:
                        group.optimizer.set_system(*(systems[0] if len(systems) == 1 else
                                                     (torch.cat([s[0] for s in systems]),
                                                      torch.cat([s[1] for s in systems]))))
                    if not torch.isfinite(total):  # no gradient: the group does not move
                        group.optimizer.zero_grad(set_to_none=True)  # (nor does an image whose residual
                        return total                                  # is not finite under Gauss-Newton)
                if frozen_any and frozen[group.images].any() and not linear:  # (a frozen image stepped by
                    for p, still in zip(group.params, frozen[group.images].tolist()):  # Gauss-Newton is reset
                        if still:                                                   # after the step)
                            p.grad.zero_()
                return total

            group.optimizer.step(closure)
            losses.append(first[0])
        losses = losses[0] if len(losses) == 1 else torch.cat(losses)
        finite = bool(torch.isfinite(losses).all())
        for group in self.groups:  # a group whose objective is not finite did not move: nor does its schedule
            if finite or torch.isfinite(losses[group.images]).all():
                group.scheduler.step(losses[group.images])
        if not finite:
            self._check_finite(losses, iteration)
        with torch.no_grad():  # every iterate is an image in [0, 1]
            self.image_map.project_(self.params)
        return losses

    @torch.no_grad()
    def _final_losses(self) -> torch.Tensor:
        x = self.x
        return torch.cat([self.objective.losses(x[part], part) for part in self.parts])

    @torch.no_grad()
    def check(self, frozen: torch.Tensor | None = None, last: Mapping[str, torch.Tensor] | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The metamer test of the current 8-bit iterate at every target:
        ``(passed (N,), {statistic: (N,) values})``.

        With ``frozen`` (images not to test again: frozen at their first pass, or past it with
        ``on_success: record``) and ``last`` (each statistic's values at the previous check), only
        the other images run; the others repeat the values and the verdict of their first pass
        (a frozen image's pixels do not change, so they are still its own)."""
        xq = to_uint8(self.x).float() / 255
        if frozen is None or last is None or not bool(frozen.any()):
            return self.objective.test(xq, self.reference_classes, self.comparison)
        ok = frozen.clone()
        values = {name: v.clone().to(frozen.device) for name, v in last.items()}
        todo = torch.nonzero(~frozen).flatten()
        if len(todo):
            passed, mine = self.objective.test(xq[todo], self.reference_classes, self.comparison, todo)
            ok[todo] = passed
            for name, v in mine.items():
                values[name][todo] = v
        return ok, values

    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed: the job's key (its config), method, seed,
        targets (models, their weights, layers, weights in the objective, straight-through ReLU,
        thresholds), images, test settings, which images each optimizer steps, and the project
        version."""
        from .. import __version__

        key = {
            "method": self.method, "seed": self.seed, "version": __version__, "images": self.image_ids,
            "targets": [{"model": t.model.name, "layer": t.layer, "weights": weights_digest(t.model),
                         "weight": t.weight, "fake_relu": t.fake_relu, "thresholds": dict(t.thresholds)}
                        for t in self.targets],
            "comparison": self.comparison, "batch_invariant": self.batch_invariant,
            "optimizer_groups": [(g.images.start, g.images.stop) for g in self.groups],
            "reference": hashlib.sha256(self.reference.detach().cpu().numpy().tobytes()).hexdigest(),
            **({"job": self.job_key} if self.job_key else {}),
            **({"diversity_model": weights_digest(self.diversity.model)}
               if self.diversity is not None and self.diversity.model is not None else {}),
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    def synthesize(
        self, progress: bool = True, checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 0
    ) -> SynthesisResult:
        """Run the method's budget (or until every image passed, with ``on_success: stop``).

        Parameters
        ----------
        progress
            Show a tqdm progress bar (on stderr).
        checkpoint
            File for the synthesis state, used only when ``checkpoint_every > 0`` (else it is not
            even looked at). When it exists and belongs to this synthesis (its sidecar has the
            same :meth:`fingerprint`; :func:`~.record.load_state`), synthesis resumes from it,
            and the result equals that of an uninterrupted run; a damaged one is discarded with
            a warning. It is written atomically every ``checkpoint_every`` iterations; the
            caller removes it once the result is saved (:func:`~.record.remove_checkpoint`).

        Raises
        ------
        SynthesisError
            A loss became NaN or infinite; the message names the images and the iteration (for
            an image whose pixels a non-finite gradient or step made non-finite: that step's).
        """
        n = len(self.params)
        device = self.reference.device
        if not checkpoint_every:
            checkpoint = None  # checkpointing off: a checkpoint there is neither read nor written
        fingerprint = self.fingerprint() if checkpoint is not None else ""
        state = SynthesisState.fresh(n, self.iterations, self.objective.test_names(), device)
        x_shape = (n, *self.params[0].shape[1:])
        loaded = load_state(checkpoint, fingerprint, device, x_shape) if checkpoint is not None else None
        if loaded is not None:
            state = loaded.state
            with torch.no_grad():  # a checkpoint holds the parameters themselves (pixels or coefficients)
                for i, p in enumerate(self.params):
                    p.copy_(loaded.x[i : i + 1])
            for group, opt, sched in zip(self.groups, loaded.optimizers, loaded.schedulers):
                group.optimizer.load_state_dict(opt)
                group.scheduler.load_state_dict(sched)
            log.info("resumed from %s at iteration %d", checkpoint, state.iteration)
        start = state.iteration

        def record_check(it: int) -> None:
            last = {name: v[-1] for name, v in state.check_values.items()} if state.checked else None
            done = (state.pass_iteration >= 0).to(device) if self.until_first_pass else None
            ok, values = self.check(done, last)
            state.record_check(it, ok, values, self.x if self.until_first_pass else None, freeze=self.stop_at_success)

        def all_passed() -> bool:  # with record, no image needs testing any more
            return self.until_first_pass and bool((state.pass_iteration >= 0).all())

        bar = tqdm(
            range(start, self.iterations),
            initial=start,
            total=self.iterations,
            desc=", ".join(t.name for t in self.targets),
            disable=not progress,
            mininterval=1.0 if sys.stderr.isatty() else 10.0,
            file=sys.stderr,
        )
        it = start
        stepping = 0.0  # wall time of the steps this call ran (checks and checkpoints excluded)
        for it in bar:
            if checkpoint is not None and it > start and it % checkpoint_every == 0:
                state.iteration = it
                save_state(checkpoint, fingerprint, state, torch.cat([p.detach() for p in self.params]),
                           [g.optimizer.state_dict() for g in self.groups],
                           [g.scheduler.state_dict() for g in self.groups])
            if self.image_map.at_iteration is not None:  # a map that changes over the run
                self.image_map.at_iteration(it)
            if self.check_every and it % self.check_every == 0 and not all_passed():
                record_check(it)
                if state.frozen.all():
                    break
            tick = time.perf_counter()
            frozen_any = state.frozen_x is not None and bool(state.frozen.any())
            losses = self._step(it, state.frozen, frozen_any)
            if frozen_any:
                with torch.no_grad():  # a frozen image keeps its pixels (only those are copied back)
                    for i in torch.nonzero(state.frozen).flatten().tolist():
                        self._set_image(i, state.frozen_x[i : i + 1])
            state.trace[:, it] = losses.cpu()  # (waits for the device: the step is timed whole)
            stepping += time.perf_counter() - tick
            if it % 50 == 0:
                bar.set_postfix(loss=f"{losses.mean().item():.4g}", passed=int((state.pass_iteration >= 0).sum()),
                                refresh=False)
        else:
            it = self.iterations
            if self.check_every and not all_passed():
                record_check(it)
        bar.close()
        final = self._final_losses()
        self._check_finite(final, it)
        steps = it - start
        metamer = self.x
        first_pass = None
        if self.until_first_pass:  # each image's iterate at its first pass (NaN: it never passed)
            first_pass = np.full(metamer.shape, np.nan, dtype=np.float32)
            if state.frozen_x is not None:
                passed = (state.pass_iteration >= 0).numpy()
                first_pass[passed] = state.frozen_x.cpu().numpy()[passed]
        if state.frozen_x is not None:  # exactly the image that passed (a parameterization may round)
            metamer[state.frozen] = state.frozen_x[state.frozen]
        return SynthesisResult(
            metamer=metamer.cpu().numpy().astype(np.float32),
            start=self.start.numpy().astype(np.float32),
            seconds_per_iteration=stepping / steps if steps else float("nan"),
            loss=state.trace.numpy(),
            final_loss=final.cpu().numpy(),
            pass_iteration=state.pass_iteration.numpy(),
            iterations_run=it,
            first_pass=first_pass,
            **state.test_arrays(n),
        )

    @classmethod
    def single(
        cls,
        model: Classifier,
        layer: str,
        reference: torch.Tensor,
        method: str | Mapping[str, Any],
        seed: int,
        image_ids: Sequence[str] | None = None,
        fake_relu: bool | None = None,
        thresholds: Mapping[str, float] | None = None,
        **options: Any,
    ) -> MetamerSynthesis:
        """Synthesis at one (model, layer): the method's target (:func:`~.objective.method_target`,
        which applies its straight-through ReLU rule; ``fake_relu`` True or False overrides it)."""
        settings = resolve_method(method) if isinstance(method, str) else dict(method)
        target = method_target(model, layer, settings, fake_relu=fake_relu, thresholds=thresholds)
        return cls([target], reference, settings, seed, image_ids, **options)
