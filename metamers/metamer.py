"""Metamers from Python: set up a :class:`Metamer`, then :meth:`Metamer.synthesize`.

The library's synthesis object, shaped after plenoptic's ``Metamer``: the references, one or
several (model, layer) targets and a method (a preset name, or a preset with overrides) are
checked when it is made; :meth:`~Metamer.synthesize` runs the method exactly as a workflow job
does (:class:`~metamers.synthesis.loop.MetamerSynthesis`; the method's straight-through ReLU,
in-loop checks and stopping applied by :func:`~metamers.synthesis.objective.method_target`) and
returns a :class:`MetamerResult`: the metamers, their traces, distances and, given a null, the
metamer test's verdicts; it saves to and loads from the workflow's HDF5 metamer artifact.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .artifacts.metamers import MetamerBatch, read_metamer_batch, write_metamer_batch
from .data.image_set import ImageSet
from .data.inputs import as_images
from .models.classifier import Classifier
from .null import Null
from .stats.comparisons import COMPARISONS
from .stats.distances import DISTANCES, gaussian_window
from .stats.metamer_test import metamer_test_rows
from .synthesis.batch import metamer_batch
from .synthesis.loop import MetamerSynthesis
from .synthesis.methods import method_settings
from .synthesis.objective import Target, method_target


#: The smallest image side the SSIM's Gaussian window fits in (11 pixels).
SSIM_MIN_SIZE = len(gaussian_window())


def _targets(model: Classifier | None, layer: str | None, targets: Sequence[tuple] | None
             ) -> list[tuple[Classifier, str, float]]:
    """``(model, layer, weight)`` of every target, weights summing to 1."""
    if targets is None:
        if model is None or layer is None:
            raise ValueError("a metamer needs a model and a layer, or targets=[(model, layer), ...]")
        targets = [(model, layer)]
    elif model is not None or layer is not None:
        raise ValueError("give either model and layer, or targets, not both")
    out = []
    for k, t in enumerate(targets):
        if not isinstance(t, (tuple, list)) or len(t) not in (2, 3):
            raise ValueError(f"targets[{k}] must be (model, layer) or (model, layer, weight), got {t!r}")
        if not isinstance(t[0], Classifier):
            raise TypeError(f"targets[{k}]: the model is a {type(t[0]).__name__}; make it a Classifier with "
                            "metamers.as_model(net, input_shape=..., mean=..., std=...) or metamers.load_model")
        out.append((t[0], str(t[1]), float(t[2]) if len(t) == 3 else 1.0))
    bad = [k for k, (*_, w) in enumerate(out) if not (w > 0 and math.isfinite(w))]
    if bad:
        raise ValueError(f"targets{bad}: a target's weight must be a positive number")
    named = {}
    for m, layer_, _ in out:
        if named.setdefault(m.name, m) is not m:
            raise ValueError(f"two different models are named {m.name!r}; name each (as_model(..., name=...))")
    pairs = [(m.name, layer_) for m, layer_, _ in out]
    if len(set(pairs)) != len(pairs):
        raise ValueError(f"a (model, layer) target is given twice: {pairs}")
    total = sum(w for *_, w in out)
    return [(m, layer_, w / total) for m, layer_, w in out]


def _null_of(nulls: Sequence[Null], model: Classifier, layer: str) -> Null | None:
    found = [n for n in nulls if n.belongs_to(model, layer)]
    return found[0] if found else None


class Metamer:
    """Metamers of a batch of reference images at one or several (model, layer) targets.

    Parameters
    ----------
    reference
        ``(N, C, H, W)`` images at the (first) model's input shape: float in [0, 1] or uint8
        (0-255); or an :class:`~metamers.data.image_set.ImageSet` (its ids and labels are kept).
    model, layer
        The model (:func:`metamers.as_model`, :func:`metamers.load_model`) and the layer whose
        activations the metamers match; or ``targets``.
    targets
        ``[(model, layer), ...]`` or ``[(model, layer, weight), ...]``: one metamer matched at
        several targets at once (weights normalised to sum to 1), as a joint generator.
    method
        A preset name (:data:`~metamers.synthesis.methods.METHOD_PRESETS`; default
        ``"feather2023"``, the published 24,000 steps) or a dict ``{"preset": ..., overrides}``.
    null
        The :class:`~metamers.null.Null` of each target (one, or a list): the metamer test of the
        result, and the in-loop test of a method with ``check_every``.
    labels, image_ids
        The references' labels (default: unknown, -1) and distinct ids (default ``"0"``, ``"1"``,
        ...; each id seeds its image's starting point). The class test takes each model's highest
        logit (the workflow's class maps, such as the 16-way ImageNet decision, are not applied).
    seed
        Base seed of the starting points.
    comparison, batch_invariant
        As for :class:`~metamers.synthesis.loop.MetamerSynthesis`.
    diversity_model
        The model of a ``diversity`` space ``{"model": name, "layer": ...}`` (its ``name``).
    **overrides
        Method settings that override the preset's (``iterations=200``, ``check_every=50``,
        ``on_success="stop"``, ...), checked like a config's. ``diversity={"k": 4, "weight": 0.05}``
        makes 4 metamers of every reference, pushed apart in pixels
        (:mod:`metamers.synthesis.diversity`): the result's rows are then every reference's
        members, reference-major, with their index in ``batch.member``.

    Raises
    ------
    metamers.data.inputs.InputError
        References that are not images in [0, 1] (or uint8) of the model's input shape.
    metamers.synthesis.methods.MethodError
        An unknown preset or a setting the method would not use.
    ValueError
        A method that checks the metamer test during synthesis without a null for every target.

    Examples
    --------
    >>> import torch
    >>> from metamers import Metamer, as_model
    >>> _ = torch.manual_seed(0)  # the network's initial weights
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> model = as_model(net, input_shape=(1, 12, 12), name="tiny")
    >>> references = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    >>> result = Metamer(references, model, "2", method="adam_cosine", iterations=300).synthesize(progress=False)
    >>> result.metamers.shape
    torch.Size([2, 1, 12, 12])
    >>> bool((result.batch.final_loss < 0.05).all())
    True
    """

    def __init__(
        self,
        reference: Any,
        model: Classifier | None = None,
        layer: str | None = None,
        *,
        targets: Sequence[tuple] | None = None,
        method: str | Mapping[str, Any] = "feather2023",
        null: Null | Sequence[Null] | None = None,
        labels: Sequence[int] | None = None,
        image_ids: Sequence[str] | None = None,
        seed: int = 0,
        comparison: str = "at_least",
        batch_invariant: bool = True,
        diversity_model: Classifier | None = None,
        **overrides: Any,
    ) -> None:
        chosen = _targets(model, layer, targets)
        first = chosen[0][0]
        if isinstance(reference, ImageSet):
            image_ids = list(reference.ids) if image_ids is None else image_ids
            labels = [reference.labels[i] for i in reference.ids] if labels is None else labels
            self.held_out = bool(reference.held_out)
        else:
            self.held_out = False
        x = as_images(reference, first.input_shape, "references")
        n = len(x)
        self.image_ids = [str(i) for i in range(n)] if image_ids is None else [str(i) for i in image_ids]
        self.labels = [-1] * n if labels is None else [int(v) for v in labels]
        if len(self.image_ids) != n or len(self.labels) != n:
            raise ValueError(f"{n} references, but {len(self.image_ids)} image ids and {len(self.labels)} labels")
        if len(set(self.image_ids)) != n:
            raise ValueError("image ids must be distinct (each seeds its image's starting point and names its rows)")
        if min(first.input_shape[1:]) < SSIM_MIN_SIZE:
            raise ValueError(f"images of {first.input_shape[1]} x {first.input_shape[2]} pixels: a result records "
                             f"each metamer's SSIM to its reference, which needs at least {SSIM_MIN_SIZE} x "
                             f"{SSIM_MIN_SIZE}")
        if comparison not in COMPARISONS:
            raise ValueError(f"unknown comparison {comparison!r}; valid: {', '.join(COMPARISONS)}")
        base = {"preset": method} if isinstance(method, str) else dict(method)
        self.settings = method_settings({**base, **overrides})
        preset = str(self.settings["preset"])
        #: the method's name in the result: its preset's, or ``custom_<preset>`` when the settings differ
        self.method = preset if self.settings == method_settings(preset) else f"custom_{preset}"
        self.nulls = [] if null is None else [null] if isinstance(null, Null) else list(null)
        stray = [f"{n.model}/{n.layer}" for n in self.nulls
                 if not any(n.belongs_to(m, layer_) for m, layer_, _ in chosen)]
        if stray:
            raise ValueError(f"null(s) of {stray} belong to no target (a null serves the model it was computed on); "
                             f"targets: {[f'{m.name}/{layer_}' for m, layer_, _ in chosen]}")
        built = []
        for m, layer_, weight in chosen:
            found = _null_of(self.nulls, m, layer_)
            if self.settings.get("check_every") and found is None:
                raise ValueError(f"the method checks the metamer test every {self.settings['check_every']} iterations; "
                                 f"it needs the null of {m.name}/{layer_} (metamers.compute_null)")
            built.append(method_target(m, layer_, self.settings, weight, thresholds=found.thresholds if found else None))
        self.synthesis = MetamerSynthesis(built, x.to(first.device), self.settings, seed, self.image_ids,
                                          comparison=comparison, batch_invariant=batch_invariant,
                                          diversity_model=diversity_model)

    @property
    def targets(self) -> list[Target]:
        """The (model, layer) targets, with the straight-through ReLU where the method applies it."""
        return self.synthesis.targets

    def synthesize(self, progress: bool = True, checkpoint: str | os.PathLike | None = None,
                   checkpoint_every: int = 0) -> MetamerResult:
        """Run the method (see :meth:`metamers.synthesis.loop.MetamerSynthesis.synthesize` for
        ``checkpoint``): the metamers as a :class:`MetamerResult`."""
        result = self.synthesis.synthesize(progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every)
        targets = self.synthesis.targets
        generator = "+".join(dict.fromkeys(t.model.name for t in targets))
        layer = "+".join(dict.fromkeys(t.layer for t in targets))
        job_config = {"method": self.method, "method_settings": self.settings, "generator": generator,
                      "layer": layer, "batch_invariant": self.synthesis.batch_invariant,
                      "device": str(self.synthesis.reference.device), "base_seed": self.synthesis.seed,
                      "api": "metamers.Metamer"}
        batch = metamer_batch(self.synthesis, result, self.labels, self.method, generator, layer, "api", job_config,
                              self.held_out)
        return MetamerResult(batch, targets, self.nulls)


class MetamerResult:
    """Metamers, how they were made, and (given a null) whether they pass the metamer test.

    Attributes
    ----------
    batch
        The artifact (:class:`~metamers.artifacts.metamers.MetamerBatch`): references and
        metamers in 8 bits, the float metamers, loss traces, activations, distances, the in-loop
        test and the provenance.
    targets
        The (model, layer) targets (needed by :meth:`test`; a loaded result has none until given).
    nulls
        The targets' :class:`~metamers.null.Null` s.
    """

    def __init__(self, batch: MetamerBatch, targets: Sequence[Target] = (), nulls: Sequence[Null] = ()) -> None:
        self.batch = batch
        self.targets = list(targets)
        self.nulls = list(nulls)

    @property
    def metamers(self) -> torch.Tensor:
        """The saved 8-bit metamers as floats in [0, 1], ``(N, C, H, W)``: the images every test reads."""
        return torch.from_numpy(self.batch.metamer_uint8).float() / 255

    @property
    def reference(self) -> torch.Tensor:
        """The 8-bit references as floats in [0, 1], ``(N, C, H, W)``."""
        return torch.from_numpy(self.batch.reference).float() / 255

    @property
    def loss(self) -> np.ndarray:
        """The objective of every image before every step ``(N, iterations)``."""
        return self.batch.loss

    def test(self) -> pd.DataFrame:
        """The metamer test at every target: one row per (image, target, statistic) with its value,
        the null's threshold and whether it passed, and the model's class for metamer and
        reference (the columns of :data:`metamers.stats.metamer_test.METAMER_TEST_COLUMNS`).

        Raises
        ------
        ValueError
            A target has no null (or the result has no targets: a loaded one without ``targets``).
        """
        if not self.targets:
            raise ValueError("this result has no targets to test at; load it with targets=[(model, layer), ...]")
        frames = []
        for t in self.targets:
            null = _null_of(self.nulls, t.model, t.layer)
            if null is None:
                raise ValueError(f"no null for target {t.name}; compute one with metamers.compute_null and pass "
                                 "it as null=")
            frames.append(metamer_test_rows(t.model, self.batch, {t.layer: null.distributions}, [t.layer],
                                            self.batch.attrs["comparison"], [self.batch.attrs["layer"]],
                                            class_map=t.class_map))
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """One row per metamer: its reference's id, its member index (a method's ``diversity``; else
        0) and label, the final loss, the distances from the reference
        (:data:`~metamers.stats.distances.DISTANCES`) and, when every target has a null, each
        target's statistics, whether they pass, whether the class is kept, and ``passed``."""
        b = self.batch
        out = pd.DataFrame({"image_id": b.image_ids, "member": b.member, "label": b.labels,
                            "final_loss": b.final_loss, **{name: b.distances["metamer"][name] for name in DISTANCES}})
        if self.targets and all(_null_of(self.nulls, t.model, t.layer) for t in self.targets):
            rows = self.test()
            rows["name"] = rows["measured_model"] + "/" + rows["measured_layer"] + ":" + rows["statistic"]
            key = ["image_id", "member"]
            values = rows.pivot_table(index=key, columns="name", values="value", sort=False)
            per_image = rows.groupby(key, sort=False).agg(statistics_pass=("passed", "all"),
                                                          class_pass=("class_matches_reference", "all"))
            out = out.join(values, on=key).join(per_image, on=key)
            out["passed"] = out["statistics_pass"].astype(bool) & out["class_pass"].astype(bool)
        return out

    @property
    def passed(self) -> np.ndarray:
        """Per image, whether the metamer passes the metamer test at every target (needs the nulls)."""
        summary = self.summary()
        if "passed" not in summary:
            raise ValueError("the metamer test needs a null for every target (metamers.compute_null)")
        return summary["passed"].to_numpy(bool)

    def plot(self, images: int = 8):
        """A figure: the first ``images`` references above their metamers, and every image's loss
        by iteration (log scale)."""
        import matplotlib.pyplot as plt

        b = self.batch
        n = min(images, len(b.image_ids))
        fig = plt.figure(figsize=(1.4 * max(n, 4), 5.2), layout="constrained")
        grid = fig.add_gridspec(3, max(n, 1), height_ratios=[1, 1, 1.4])
        for row, (name, pictures) in enumerate((("reference", b.reference), ("metamer", b.metamer_uint8))):
            for k in range(n):
                ax = fig.add_subplot(grid[row, k])
                picture = pictures[k].transpose(1, 2, 0)
                ax.imshow(picture[..., 0] if picture.shape[2] == 1 else picture, cmap="gray", vmin=0, vmax=255)
                ax.set_xticks([])
                ax.set_yticks([])
                if k == 0:
                    ax.set_ylabel(name)
                if row == 0:
                    ax.set_title(str(b.image_ids[k]), fontsize=8)
        ax = fig.add_subplot(grid[2, :])
        ax.plot(np.arange(b.loss.shape[1]), b.loss.T, lw=0.8, alpha=0.7)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("objective before the step")
        return fig

    def save(self, path: str | os.PathLike) -> Path:
        """Write the metamer artifact (HDF5, checksummed, atomically; the workflow's format)."""
        return write_metamer_batch(path, self.batch)

    @classmethod
    def load(cls, path: str | os.PathLike, targets: Sequence[tuple] | None = None,
             null: Null | Sequence[Null] | None = None) -> MetamerResult:
        """A saved result (checked against its checksums); ``targets`` ``[(model, layer), ...]`` and
        ``null`` make it testable again."""
        batch = read_metamer_batch(path)
        chosen = [Target(m, layer, w) for m, layer, w in _targets(None, None, targets)] if targets else []
        nulls = [] if null is None else [null] if isinstance(null, Null) else list(null)
        return cls(batch, chosen, nulls)
