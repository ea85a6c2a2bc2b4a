"""Training the models a config declares with ``source: train``: seeded, deterministic on the CPU.

A trained model's entry names an architecture (:data:`~.architecture_specs.ARCHITECTURES`), a seed,
a training set (:data:`metamers.data.training_sets.TRAINING_SETS`) and a training style:

``standard``
    Minimise the cross-entropy of the training images.
``pgd``
    Adversarial training (Madry et al. 2018): minimise the cross-entropy of L∞ PGD adversarial
    examples of each batch (``epsilon``, ``steps``, ``step_size``; random start in the ε-ball),
    made with the network in eval mode (so batch-norm statistics see only the clean update).

Both use SGD with momentum and a cosine-annealed learning rate over ``epochs`` passes of the
training images in an order drawn from the seed, so the same entry gives the same weights
on the CPU (:func:`train_network` runs with ``torch.use_deterministic_algorithms``). The result
records its clean accuracy on held-out images and its accuracy under an L∞ PGD attack of the
``evaluation`` settings (the same for every style, so that styles compare).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.training_sets import TrainingData
from .architecture_specs import ARCHITECTURES
from .architectures import build_architecture
from .training_settings import TrainingError, resolve_training

log = logging.getLogger(__name__)

@contextmanager
def _deterministic():
    """Deterministic algorithms for the block (restored after)."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


class Normalized(nn.Module):
    """``net((x - mean) / std)``: the network as :class:`~.classifier.Classifier` will run it."""

    def __init__(self, net: nn.Module, mean: Any, std: Any) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def pgd_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int, step_size: float,
               generator: torch.Generator) -> torch.Tensor:
    """L∞ PGD adversarial examples of images ``x`` in [0, 1] with labels ``y`` (Madry et al. 2018):
    a uniform random start in the ε-ball, then ``steps`` signed-gradient ascent steps of the
    cross-entropy, each projected onto the ε-ball and [0, 1]."""
    start = (torch.rand(x.shape, generator=generator) * 2 - 1).to(x.device) * epsilon
    adv = (x + start).clamp(0, 1)
    for _ in range(int(steps)):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + step_size * grad.sign()
        adv = torch.minimum(torch.maximum(adv, x - epsilon), x + epsilon).clamp(0, 1)
    return adv.detach()


def _images(x: np.ndarray, idx: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x[idx.numpy() if isinstance(idx, torch.Tensor) else idx]).float() / 255


def held_out_indices(total: int, images: int | None) -> np.ndarray:
    """Which held-out images the accuracy is measured on: all, or a sample of ``images`` drawn
    with a fixed seed (the same for every model, so that their accuracies compare), in order."""
    if images is not None and images > total:  # the pre-flight check reports it before any job
        raise TrainingError(f"evaluation.images is {images}, but the training set has {total} held-out images")
    if images is None or images == total:
        return np.arange(total)
    return np.sort(np.random.default_rng(0).choice(total, int(images), replace=False))


def evaluate(model: nn.Module, data: TrainingData, evaluation: Mapping[str, Any], seed: int,
             batch_size: int = 500) -> dict[str, Any]:
    """Clean and PGD accuracy of ``model`` (images in [0, 1]) on ``evaluation['images']`` held-out
    images (:func:`held_out_indices`); the attack's random starts are drawn from ``seed``."""
    model.eval()
    chosen = held_out_indices(len(data.test_y), evaluation["images"])
    n = len(chosen)
    gen = torch.Generator().manual_seed(int(seed) + 1)
    clean = robust = 0
    device = next(model.buffers()).device
    for start in range(0, n, batch_size):
        idx = chosen[start:start + batch_size]
        x = _images(data.test_x, idx).to(device)
        y = torch.from_numpy(data.test_y[idx]).to(device)
        with torch.no_grad():
            clean += int((model(x).argmax(1) == y).sum())
        adv = pgd_attack(model, x, y, evaluation["epsilon"], evaluation["steps"], evaluation["step_size"], gen)
        with torch.no_grad():
            robust += int((model(adv).argmax(1) == y).sum())
    return {"clean_accuracy": clean / n, "pgd_accuracy": robust / n, "n_held_out": n,
            "pgd": {k: evaluation[k] for k in ("epsilon", "steps", "step_size")}}


@dataclass
class TrainedModel:
    """What :func:`train_network` returns: the network's state dict and what training measured."""

    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, Any]
    settings: dict[str, Any]


def train_network(name: str, spec: Mapping[str, Any], data: TrainingData | None = None,
                  progress: bool = True, device: torch.device | str = "cpu") -> TrainedModel:
    """Train model ``name`` of entry ``spec`` (``source: train``) on the CPU (or where torch runs).

    Parameters
    ----------
    name, spec
        The configured model (:func:`resolve_training` fills in the defaults).
    data
        Its training set (default: loaded from ``spec['data']``).
    progress
        Show a progress bar per epoch.
    device
        Where to train (deterministic on the CPU; a GPU's kernels may not be).
    """
    from ..data.training_sets import load_training_set

    settings = resolve_training(name, spec)
    training, seed = settings["training"], settings["seed"]
    data = data if data is not None else load_training_set(settings["data"])
    arch = ARCHITECTURES[settings["architecture"]]
    if data.num_classes > arch["num_classes"]:
        raise TrainingError(f"model {name!r}: training set has {data.num_classes} classes, architecture "
                            f"{settings['architecture']!r} {arch['num_classes']}")
    tick = time.perf_counter()
    with _deterministic():
        torch.manual_seed(seed)
        net = build_architecture(settings["architecture"])
        model = Normalized(net, arch["mean"], arch["std"]).to(device)
        n = len(data.train_y) if training["train_images"] is None else int(training["train_images"])
        if n > len(data.train_y):  # the pre-flight check reports it before any job
            raise TrainingError(f"model {name!r}: training.train_images is {n}, but the training set has "
                                f"{len(data.train_y)} images")
        order = torch.Generator().manual_seed(seed)
        attack = torch.Generator().manual_seed(seed + 2)
        batches = -(-n // int(training["batch_size"]))
        optimizer = torch.optim.SGD(net.parameters(), lr=training["lr"], momentum=training["momentum"],
                                    weight_decay=training["weight_decay"])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, batches * training["epochs"]))
        subset = torch.randperm(len(data.train_y), generator=order)[:n]  # which images, when not all
        last_loss = float("nan")
        for epoch in range(int(training["epochs"])):
            perm = subset[torch.randperm(n, generator=order)]
            correct = 0
            bar = tqdm(range(batches), desc=f"{name} epoch {epoch + 1}/{training['epochs']}", disable=not progress,
                       mininterval=10.0)
            for b in bar:
                idx = perm[b * training["batch_size"]:(b + 1) * training["batch_size"]]
                x = _images(data.train_x, idx).to(device)
                y = torch.from_numpy(data.train_y[idx.numpy()]).to(device)
                if training["style"] == "pgd":
                    model.eval()
                    x = pgd_attack(model, x, y, training["epsilon"], training["steps"], training["step_size"], attack)
                model.train()
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                correct += int((logits.argmax(1) == y).sum())
                last_loss = float(loss.detach())
            log.info("%s: epoch %d, training accuracy %.4f (%s), last batch loss %.4g", name, epoch + 1, correct / n,
                     "adversarial" if training["style"] == "pgd" else "clean", last_loss)
        metrics = evaluate(model, data, settings["evaluation"], seed)
    metrics.update({"train_images": n, "last_batch_loss": last_loss, "seconds": time.perf_counter() - tick,
                    "data": data.description})
    log.info("%s: held-out clean accuracy %.4f, PGD accuracy %.4f (eps %.3g, %d steps) on %d images", name,
             metrics["clean_accuracy"], metrics["pgd_accuracy"], metrics["pgd"]["epsilon"], metrics["pgd"]["steps"],
             metrics["n_held_out"])
    return TrainedModel({k: v.detach().cpu().clone() for k, v in net.state_dict().items()}, metrics,
                        copy.deepcopy(settings))
