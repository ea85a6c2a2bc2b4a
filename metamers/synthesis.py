"""Metamer synthesis: set up once, then :meth:`MetamerSynthesis.synthesize`.

The synthesis object holds a model, the layer to match, a batch of reference images and a
method's settings (see :mod:`metamers.methods`). It optimises the pixels of a batch of
candidates so that their activations at the layer match the references', with the
optimizer, step schedule, loss and starting point that the method names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .layers import LayerReader
from .losses import get_loss
from .metamer_test import passes
from .optimizers import effective_step, make_optimizer, make_scheduler
from .registry import Classifier
from .statistics import statistic


log = logging.getLogger(__name__)


class SynthesisError(RuntimeError):
    """Synthesis cannot go on (a non-finite loss, say)."""


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Quantise images in [0, 1] to the 8-bit values that are saved and shown to other models."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """The 8-bit image as floats in [0, 1]: what is saved and what other models see."""
    return to_uint8(x).to(x.device, torch.float32) / 255


def start_seed(base_seed: int, image_id: str) -> int:
    """The seed of an image's starting point: from the base seed and the image id alone, so an
    image starts from the same point at every layer, with every method and in any batch."""
    digest = hashlib.sha256(f"start/{int(base_seed)}/{image_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def initial_images(init: Mapping[str, Any], reference: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """The starting points, image ``i`` drawn on the CPU from ``seeds[i]`` (the same on every device).

    ``{type: noise, mean, std}``: ``clip_[0,1](N(mean, std^2))`` per pixel (Feather et al.:
    mean 0.5, std 0.05).
    """
    kind = init.get("type", "noise")
    if kind != "noise":
        raise KeyError(f"unknown init type {kind!r}; valid: noise")
    if len(seeds) != len(reference):
        raise ValueError(f"{len(seeds)} seeds for {len(reference)} images")
    shape = tuple(reference.shape[1:])
    noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32)
                         for s in seeds])
    return (float(init.get("mean", 0.5)) + float(init.get("std", 0.05)) * noise).clamp(0, 1)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of a model's state dict (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


@dataclass
class SynthesisResult:
    """What one synthesis run produced, as numpy arrays on the CPU.

    Attributes
    ----------
    metamer
        Last iterate (or the frozen iterate of an image that stopped at success),
        float32 ``(N, C, H, W)`` in [0, 1].
    loss
        Per-image loss at every iteration, ``(N, iterations)``; entry ``t`` is the loss of
        the image before step ``t`` (NaN after the run stopped because every image passed).
    final_loss
        Per-image loss of the metamer.
    pass_iteration
        Per image, the first checked iteration at which the 8-bit iterate passed the
        metamer test at the generation layer (-1: never, or not checked).
    test_iterations
        The checked iterations ``(C,)``.
    test_values
        Statistic name -> ``(N, C)`` values at the generation layer at those iterations.
    test_passed
        ``(N, C)``: the iterate passed (every statistic and the class) at that check.
    iterations_run
        Steps taken (less than the budget when every image stopped at success).
    """

    metamer: np.ndarray
    loss: np.ndarray
    final_loss: np.ndarray
    pass_iteration: np.ndarray
    test_iterations: np.ndarray
    test_values: dict[str, np.ndarray]
    test_passed: np.ndarray
    iterations_run: int


class MetamerSynthesis:
    """Synthesise metamers of a batch of reference images at one layer of one model.

    Parameters
    ----------
    model
        The generating classifier (frozen, inputs in [0, 1]).
    layer
        The layer whose activations are matched.
    reference
        Reference images ``(N, *model.input_shape)`` in [0, 1]. They are quantised to 8 bits,
        so that the target, the in-loop test and the recorded test all use the reference that
        other models see.
    method
        Full method settings (:func:`metamers.methods.resolve_method`).
    seed
        Base seed: image ``i`` starts from :func:`start_seed` ``(seed, image_ids[i])``.
    image_ids
        Ids of the references (default ``0..N-1``): they seed the starting points and name
        images in error messages.
    fake_relu
        Use the straight-through ReLU at ``layer`` (which must be a ReLU module).
    thresholds
        Statistic name -> null threshold at ``layer``; needed when the method checks the
        metamer test (``check_every > 0``). With ``on_success: stop`` an image is frozen at
        the first check it passes; with ``continue`` it runs to the budget.
    comparison
        How a statistic is compared with its threshold (:data:`metamers.metamer_test.COMPARISONS`).
    batch_invariant
        Run each image's forward and backward passes on their own (batches of one), so that an
        image's metamer is bitwise the same in any batch (float32 kernels round a batch of 20
        differently from a batch of 1, and on under-determined layers such as logits those
        differences grow over thousands of steps into different metamers). ``False`` runs the
        batch in one pass: faster on a GPU, equal to a batch of one only to rounding at first.
    """

    def __init__(
        self,
        model: Classifier,
        layer: str,
        reference: torch.Tensor,
        method: Mapping[str, Any],
        seed: int,
        image_ids: Sequence[str] | None = None,
        fake_relu: bool = False,
        thresholds: Mapping[str, float] | None = None,
        comparison: str = "at_least",
        batch_invariant: bool = True,
    ) -> None:
        if reference.dim() != 4 or tuple(reference.shape[1:]) != model.input_shape:
            raise ValueError(
                f"reference batch must have shape (N, {', '.join(map(str, model.input_shape))}), "
                f"got {tuple(reference.shape)}"
            )
        device = next(iter(model.buffers())).device
        self.model = model
        self.layer = layer
        self.method = dict(method)
        self.seed = int(seed)
        self.image_ids = list(image_ids) if image_ids is not None else [str(i) for i in range(len(reference))]
        self.loss_fn = get_loss(self.method.get("loss", "normalized_l2"))
        self.reader = LayerReader(model, [layer], fake_relu=[layer] if fake_relu else ())
        self.reference = quantize(reference.to(device))
        self.batch_invariant = bool(batch_invariant)
        self._plain_reader = LayerReader(model, [layer])
        with torch.no_grad():
            self.target = torch.cat([self._plain_reader(self.reference[p])[layer] for p in self._parts()]).detach()
        self.start_seeds = [start_seed(self.seed, i) for i in self.image_ids]
        self.x = initial_images(self.method.get("init", {}), reference, self.start_seeds).to(device)
        self.x.requires_grad_(True)
        options = dict(self.method)
        if self.method["optimizer"] == "normalized_gradient":
            options["lr"] = effective_step(
                float(self.method.get("step_size", 1.0)),
                int(np.prod(model.input_shape)),
                bool(self.method.get("scale_step_to_input", True)),
            )
        self.iterations = int(self.method["iterations"])
        self.check_every = int(self.method.get("check_every", 0))
        self.stop_at_success = self.method.get("on_success", "continue") == "stop"
        if self.check_every and not thresholds:
            raise ValueError(
                f"the method checks the metamer test every {self.check_every} iterations, "
                "which needs the null thresholds of the generation layer"
            )
        self.thresholds = dict(thresholds or {})
        self.comparison = comparison
        self.fake_relu = bool(fake_relu)
        if self.check_every:
            with torch.no_grad():
                self.reference_class = torch.cat([model(self.reference[p]).argmax(1) for p in self._parts()])
        self.optimizer = make_optimizer(self.method["optimizer"], [self.x], options)
        self.scheduler = make_scheduler(self.optimizer, self.iterations, self.method.get("schedule", {}))

    def _losses(self, x: torch.Tensor, images: slice = slice(None)) -> torch.Tensor:
        """Per-image losses of candidates ``x`` against the targets of ``images``."""
        return self.loss_fn(self.reader(x)[self.layer], self.target[images])

    def _parts(self) -> list[slice]:
        """The slices of the batch that run through the network together."""
        n = len(self.reference)
        return [slice(i, i + 1) for i in range(n)] if self.batch_invariant else [slice(0, n)]

    def _loss_and_gradient(self) -> torch.Tensor:
        """Per-image losses of the current iterate; leaves in ``self.x.grad`` each image's
        gradient of its own loss."""
        losses, grads = [], []
        for part in self._parts():
            x = self.x.detach()[part].clone().requires_grad_(True)
            loss = self._losses(x, part)
            loss.sum().backward()  # the sum keeps each image's gradient that of its own loss
            losses.append(loss.detach())
            grads.append(x.grad)
        self.x.grad = torch.cat(grads)
        return torch.cat(losses)

    @torch.no_grad()
    def _final_losses(self) -> torch.Tensor:
        return torch.cat([self._losses(self.x[part], part) for part in self._parts()])

    def _check_finite(self, losses: torch.Tensor, iteration: int) -> None:
        bad = ~torch.isfinite(losses)
        if bad.any():
            ids = [self.image_ids[i] for i in torch.nonzero(bad).flatten().tolist()]
            raise SynthesisError(
                f"non-finite loss at iteration {iteration} for image(s) {ids} "
                f"(model {self.model.name!r}, layer {self.layer!r})"
            )

    @torch.no_grad()
    def check(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The metamer test of the current 8-bit iterate at the generation layer:
        ``(passed (N,), {statistic: (N,) values})``."""
        xq = to_uint8(self.x).float() / 255
        act = torch.cat([self._plain_reader(xq[part])[self.layer] for part in self._parts()])
        values = {name: statistic(name)(act, self.target) for name in self.thresholds}
        predicted = torch.cat([self.model(xq[part]).argmax(1) for part in self._parts()])
        return passes(values, self.thresholds, self.comparison) & (predicted == self.reference_class), values

    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed: method, seed, model and its weights,
        layer, images, test settings and the project version."""
        from . import __version__

        key = {
            "method": self.method, "seed": self.seed, "model": self.model.name, "layer": self.layer,
            "weights": weights_digest(self.model), "version": __version__,
            "images": self.image_ids, "fake_relu": self.fake_relu, "thresholds": self.thresholds,
            "comparison": self.comparison, "batch_invariant": self.batch_invariant,
            "reference": hashlib.sha256(self.reference.detach().cpu().numpy().tobytes()).hexdigest(),
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
            File for the synthesis state. When it exists and belongs to this synthesis (the
            same :meth:`fingerprint`), synthesis resumes from it, and the result
            equals that of an uninterrupted run. It is written atomically every
            ``checkpoint_every`` iterations; the caller removes it once the result is saved.

        Raises
        ------
        SynthesisError
            A loss became NaN or infinite; the message names the images and the iteration.
        """
        n = len(self.x)
        trace = torch.full((n, self.iterations), float("nan"))
        pass_iteration = torch.full((n,), -1, dtype=torch.int64)
        frozen = torch.zeros(n, dtype=torch.bool, device=self.x.device)
        frozen_x = torch.zeros_like(self.x)
        checked, check_values, check_passed = [], {name: [] for name in self.thresholds}, []
        start = 0
        fingerprint = self.fingerprint() if checkpoint is not None else ""
        if checkpoint is not None and Path(checkpoint).is_file():
            state = torch.load(checkpoint, map_location=self.x.device, weights_only=False)
            if state.get("fingerprint") != fingerprint:
                log.warning("checkpoint %s belongs to another synthesis; starting afresh", checkpoint)
            else:
                start = int(state["iteration"])
                with torch.no_grad():
                    self.x.copy_(state["x"])
                self.optimizer.load_state_dict(state["optimizer"])
                self.scheduler.load_state_dict(state["scheduler"])
                trace, pass_iteration = state["trace"], state["pass_iteration"]
                frozen, frozen_x = state["frozen"].to(self.x.device), state["frozen_x"].to(self.x.device)
                checked, check_values, check_passed = state["checked"], state["check_values"], state["check_passed"]
                log.info("resumed from %s at iteration %d", checkpoint, start)

        def save_checkpoint(it: int) -> None:
            from .artifacts import atomic_path

            state = {
                "fingerprint": fingerprint, "iteration": it, "x": self.x.detach().cpu(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "trace": trace, "pass_iteration": pass_iteration, "frozen": frozen.cpu(),
                "frozen_x": frozen_x.cpu(), "checked": checked, "check_values": check_values,
                "check_passed": check_passed,
            }
            with atomic_path(checkpoint) as tmp:
                torch.save(state, tmp)

        def record_check(it: int) -> None:
            ok, values = self.check()
            checked.append(it)
            for name, v in values.items():
                check_values[name].append(v.cpu())
            check_passed.append(ok.cpu())
            newly = ok.cpu() & (pass_iteration < 0)
            pass_iteration[newly] = it
            if self.stop_at_success:
                fresh = ok & ~frozen
                frozen_x[fresh] = self.x.detach()[fresh]
                frozen.logical_or_(ok)

        bar = tqdm(
            range(start, self.iterations),
            initial=start,
            total=self.iterations,
            desc=f"{self.model.name}/{self.layer}",
            disable=not progress,
            mininterval=1.0 if sys.stderr.isatty() else 10.0,
            file=sys.stderr,
        )
        it = start
        for it in bar:
            if checkpoint is not None and checkpoint_every and it > start and it % checkpoint_every == 0:
                save_checkpoint(it)
            if self.check_every and it % self.check_every == 0:
                record_check(it)
                if frozen.all():
                    break
            self.optimizer.zero_grad(set_to_none=True)
            losses = self._loss_and_gradient()
            self._check_finite(losses, it)
            if frozen.any():
                self.x.grad[frozen] = 0
            self.optimizer.step()
            self.scheduler.step()
            with torch.no_grad():
                self.x.clamp_(0, 1)
                if frozen.any():
                    self.x[frozen] = frozen_x[frozen]
            trace[:, it] = losses.detach().cpu()
            if it % 50 == 0:
                bar.set_postfix(loss=f"{losses.mean().item():.4g}", passed=int((pass_iteration >= 0).sum()),
                                refresh=False)
        else:
            it = self.iterations
            if self.check_every:
                record_check(it)
        bar.close()
        final = self._final_losses()
        self._check_finite(final, it)
        c = len(checked)
        return SynthesisResult(
            metamer=self.x.detach().cpu().numpy().astype(np.float32),
            loss=trace.numpy(),
            final_loss=final.cpu().numpy(),
            pass_iteration=pass_iteration.numpy(),
            test_iterations=np.asarray(checked, dtype=np.int64),
            test_values={
                name: (torch.stack(v, 1).numpy().astype(np.float32) if v else np.empty((n, 0), np.float32))
                for name, v in check_values.items()
            },
            test_passed=torch.stack(check_passed, 1).numpy() if c else np.empty((n, 0), dtype=bool),
            iterations_run=it,
        )
