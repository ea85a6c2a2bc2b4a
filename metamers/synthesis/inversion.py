"""Inverting a representation: the image a model's layer "sees" in another image.

Mahendran and Vedaldi (2015, "Understanding deep image representations by inverting them")
reconstruct an image from its representation ``a(x0)`` at a layer by minimising
``loss(a(x), a(x0))`` plus image priors (total variation, the alpha-norm: :mod:`.priors`) from
a random start. That is metamer synthesis with priors, so :func:`invert` runs the synthesis
machinery (:class:`~.loop.MetamerSynthesis`) with the images to invert as the references. Where
the inversion of a metamer looks like its reference, the layer keeps what makes the reference
what it is; where it does not, the metamer's representation has lost it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..models.classifier import Classifier
from ..models.layers import LayerReader
from .loop import MetamerSynthesis
from .losses import LOSSES


@dataclass
class InversionResult:
    """What :func:`invert` returns, per image to invert.

    Attributes
    ----------
    inverted
        ``(N, C, H, W)`` float32 in [0, 1]: the inversions (the last iterate).
    start
        ``(N, C, H, W)`` float32: the starting points.
    loss
        ``(N,)`` the final objective (representation loss plus the priors).
    mismatch
        ``(N,)`` ``||a(inversion) - a(image)|| / ||a(image)||`` at the layer (no priors).
    """

    inverted: np.ndarray
    start: np.ndarray
    loss: np.ndarray
    mismatch: np.ndarray


def invert(model: Classifier, layer: str, images: torch.Tensor, method: Mapping[str, Any], seed: int,
           image_ids: Sequence[str], batch_invariant: bool = True, progress: bool = False) -> InversionResult:
    """Invert ``model``'s representation of ``images`` at ``layer``.

    Parameters
    ----------
    model, layer
        The network and the layer whose representation is inverted. At a ReLU module the
        method's ``fake_relu`` applies, as in generation.
    images
        ``(N, C, H, W)`` in [0, 1], at the model's input shape (quantised to 8 bits, as every
        synthesis reference is).
    method
        Full method settings (:func:`~.methods.resolve_method`), without the in-loop metamer test
        (``check_every`` 0): an inversion has no null to pass.
    seed, image_ids
        Image ``i`` starts from :func:`~.starts.start_seed` ``(seed, image_ids[i])``: give the
        rows of one reference the same id to start them from the same point.
    batch_invariant
        As for :class:`~.loop.MetamerSynthesis`.
    progress
        Show a progress bar.

    Raises
    ------
    ValueError
        The method checks the metamer test during synthesis.
    """
    if method.get("check_every", 0):
        raise ValueError(f"an inversion runs no metamer test; its method has check_every {method['check_every']} "
                         "(set it to 0)")
    synth = MetamerSynthesis.single(model, layer, images, method, seed, list(image_ids),
                                    batch_invariant=batch_invariant)
    result = synth.synthesize(progress=progress)
    reader = LayerReader(model, [layer])
    with torch.no_grad():
        device = synth.reference.device
        got = reader(torch.from_numpy(result.metamer).to(device))[layer].flatten(1)
        want = reader(synth.reference)[layer].flatten(1)
        mismatch = LOSSES["normalized_l2"](got, want)
    return InversionResult(inverted=result.metamer, start=result.start, loss=result.final_loss.astype(np.float64),
                           mismatch=mismatch.double().cpu().numpy())
