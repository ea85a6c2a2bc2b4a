"""Metamer synthesis: set up once, then :meth:`MetamerSynthesis.synthesize`.

The synthesis object holds a model, the layer to match, a batch of reference images and a
method's settings (see :mod:`metamers.methods`). It optimises the pixels of a batch of
candidates so that their activations at the layer match the references', with the
optimizer, step schedule, loss and starting point that the method names.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .layers import LayerReader
from .losses import get_loss
from .optimizers import effective_step, make_optimizer, make_scheduler
from .registry import Classifier


class SynthesisError(RuntimeError):
    """Synthesis cannot go on (a non-finite loss, say)."""


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Quantise images in [0, 1] to the 8-bit values that are saved and shown to other models."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def initial_images(
    init: Mapping[str, Any], reference: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """The starting point, drawn on the CPU from ``generator`` (the same on every device).

    ``{type: noise, mean, std}``: ``clip_[0,1](N(mean, std^2))`` per pixel (Feather et al.:
    mean 0.5, std 0.05).
    """
    kind = init.get("type", "noise")
    if kind != "noise":
        raise KeyError(f"unknown init type {kind!r}; valid: noise")
    shape = tuple(reference.shape)
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    return (float(init.get("mean", 0.5)) + float(init.get("std", 0.05)) * noise).clamp(0, 1)


@dataclass
class SynthesisResult:
    """What one synthesis run produced, as numpy arrays on the CPU.

    Attributes
    ----------
    metamer
        Last iterate, float32 ``(N, C, H, W)`` in [0, 1].
    loss
        Per-image loss at every iteration, ``(N, iterations)``; entry ``t`` is the loss of
        the image before step ``t``.
    final_loss
        Per-image loss of the last iterate.
    """

    metamer: np.ndarray
    loss: np.ndarray
    final_loss: np.ndarray


class MetamerSynthesis:
    """Synthesise metamers of a batch of reference images at one layer of one model.

    Parameters
    ----------
    model
        The generating classifier (frozen, inputs in [0, 1]).
    layer
        The layer whose activations are matched.
    reference
        Reference images ``(N, *model.input_shape)`` in [0, 1].
    method
        Full method settings (:func:`metamers.methods.resolve_method`).
    seed
        Seed of the starting point.
    image_ids
        Ids of the references, for error messages (default ``0..N-1``).
    fake_relu
        Use the straight-through ReLU at ``layer`` (which must be a ReLU module).
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
        self.reference = reference.to(device)
        with torch.no_grad():
            self.target = LayerReader(model, [layer])(self.reference)[layer].detach()
        generator = torch.Generator().manual_seed(self.seed)
        self.x = initial_images(self.method.get("init", {}), reference, generator).to(device)
        self.x.requires_grad_(True)
        options = dict(self.method)
        if self.method["optimizer"] == "normalized_gradient":
            options["lr"] = effective_step(
                float(self.method.get("step_size", 1.0)),
                int(np.prod(model.input_shape)),
                bool(self.method.get("scale_step_to_input", True)),
            )
        self.iterations = int(self.method["iterations"])
        self.optimizer = make_optimizer(self.method["optimizer"], [self.x], options)
        self.scheduler = make_scheduler(self.optimizer, self.iterations, self.method.get("schedule", {}))

    def _losses(self, x: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.reader(x)[self.layer], self.target)

    def _check_finite(self, losses: torch.Tensor, iteration: int) -> None:
        bad = ~torch.isfinite(losses)
        if bad.any():
            ids = [self.image_ids[i] for i in torch.nonzero(bad).flatten().tolist()]
            raise SynthesisError(
                f"non-finite loss at iteration {iteration} for image(s) {ids} "
                f"(model {self.model.name!r}, layer {self.layer!r})"
            )

    def synthesize(self, progress: bool = True) -> SynthesisResult:
        """Run the method's full budget and return the last iterate.

        Raises
        ------
        SynthesisError
            A loss became NaN or infinite; the message names the images and the iteration.
        """
        trace = torch.empty(len(self.x), self.iterations)
        bar = tqdm(
            range(self.iterations),
            desc=f"{self.model.name}/{self.layer}",
            disable=not progress,
            mininterval=1.0 if sys.stderr.isatty() else 10.0,
            file=sys.stderr,
        )
        for it in bar:
            self.optimizer.zero_grad(set_to_none=True)
            losses = self._losses(self.x)
            self._check_finite(losses, it)
            # The sum keeps each image's gradient equal to that of its own loss.
            losses.sum().backward()
            self.optimizer.step()
            self.scheduler.step()
            with torch.no_grad():
                self.x.clamp_(0, 1)
            trace[:, it] = losses.detach().cpu()
            if it % 50 == 0:
                bar.set_postfix(loss=f"{losses.mean().item():.4g}", refresh=False)
        with torch.no_grad():
            final = self._losses(self.x)
        self._check_finite(final, self.iterations)
        return SynthesisResult(
            metamer=self.x.detach().cpu().numpy().astype(np.float32),
            loss=trace.numpy(),
            final_loss=final.cpu().numpy(),
        )
