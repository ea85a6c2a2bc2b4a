"""A synthesis run as a metamer artifact (:class:`~metamers.artifacts.metamers.MetamerBatch`).

The generation job and the library's :class:`metamers.Metamer` both turn a finished
:class:`~.loop.MetamerSynthesis` and its :class:`~.record.SynthesisResult` into the same
artifact here: the 8-bit metamers and references, every target's activations of both, the
generator's class for each reference, the pixel distances, the traces and the in-loop test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..artifacts.metamers import MetamerBatch
from ..data.pixels import to_uint8
from ..labels import decide
from ..models.layers import LayerReader
from ..provenance import provenance
from ..stats.distances import pixel_distances
from .diversity import diversity_settings
from .loop import MetamerSynthesis
from .objective import model_input
from .record import SynthesisResult


def target_attrs(synth: MetamerSynthesis, dims: Sequence[int]) -> list[dict[str, Any]]:
    """The artifact's ``targets``: each (model, layer) matched, its weight, straight-through ReLU
    and activation size."""
    return [{"model": t.model.name, "layer": t.layer, "weight": t.weight, "fake_relu": bool(t.fake_relu),
             "dim": int(d)} for t, d in zip(synth.targets, dims)]


@torch.no_grad()
def metamer_batch(
    synth: MetamerSynthesis,
    result: SynthesisResult,
    labels: Sequence[int],
    method: str,
    generator: str,
    layer: str,
    batch: str,
    job_config: Mapping[str, Any],
    held_out: bool,
) -> MetamerBatch:
    """The artifact of ``result``, made by ``synth``.

    Parameters
    ----------
    labels
        The references' true labels (one per reference: a diversity term's members share theirs).
    method, generator, layer, batch
        The artifact's key (a configured method, a generator and one of its layers, a batch name).
    job_config
        What made it, recorded as provenance (:func:`metamers.provenance.provenance`); the
        targets and the straight-through ReLU are added here.
    held_out
        Whether the references were held out from the models' training.
    """
    k = synth.diversity.k if synth.diversity is not None else 1
    if len(labels) * k != len(synth.image_ids):
        raise ValueError(f"{len(labels)} labels for {len(synth.image_ids) // k} references")
    labels = np.repeat(np.asarray(labels, dtype=np.int64), k)  # each reference's, for each of its members
    device = synth.reference.device
    metamer8 = to_uint8(torch.from_numpy(result.metamer))
    reference8 = to_uint8(synth.reference.cpu())
    act_ref, act_met = [], []  # every target's activation, flattened and side by side
    for t in synth.targets:
        reader = LayerReader(t.model, [t.layer])
        for images8, out in ((reference8, act_ref), (metamer8, act_met)):
            out.append(reader(model_input(images8.to(device).float() / 255, t.model))[t.layer].flatten(1).cpu())
    first = synth.targets[0]
    prediction = decide(first.model(synth.reference), first.class_map).cpu()
    targets = target_attrs(synth, [a.shape[1] for a in act_ref])
    fake_relu = any(t.fake_relu for t in synth.targets)
    reference01 = reference8.float() / 255
    distances = {"metamer": pixel_distances(metamer8.float() / 255, reference01),
                 "start": pixel_distances(torch.from_numpy(result.start), reference01)}
    # the in-loop test's thresholds: {statistic: value}, or per target for a joint generator
    thresholds = [dict(t.thresholds) for t in synth.targets]
    threshold_attr = thresholds[0] if len(thresholds) == 1 else {
        f"{t.model.name}:{t.layer}": th for t, th in zip(synth.targets, thresholds)}
    settings = synth.method
    job_config = {**job_config, "targets": targets, "fake_relu": fake_relu}
    return MetamerBatch(
        image_ids=list(synth.image_ids),
        labels=labels,
        member=synth.members,
        reference=reference8.numpy(),
        metamer=result.metamer,
        metamer_uint8=metamer8.numpy(),
        start_uint8=to_uint8(torch.from_numpy(result.start)).numpy(),
        loss=result.loss,
        final_loss=result.final_loss,
        generator_prediction=prediction.numpy(),
        activations_reference=torch.cat(act_ref, 1).numpy(),
        activations_metamer=torch.cat(act_met, 1).numpy(),
        start_seed=np.asarray(synth.start_seeds, dtype=np.int64),
        pass_iteration=result.pass_iteration,
        test_iterations=result.test_iterations,
        test_passed=result.test_passed,
        test_values=result.test_values,
        distances={group: {k: v.numpy() for k, v in d.items()} for group, d in distances.items()},
        # record: the metamer is the last iterate; keep each image's first passing iterate beside it
        first_pass_uint8=(to_uint8(torch.from_numpy(result.first_pass_or_metamer())).numpy()
                          if settings.get("on_success") == "record" else None),
        attrs={
            **provenance(job_config, synth.seed),
            "seed": synth.seed,
            "method": method,
            "generator": generator,
            "layer": layer,
            "batch": batch,
            "iterations": int(settings["iterations"]),
            "iterations_run": int(result.iterations_run),
            "check_every": int(settings.get("check_every", 0)),
            "on_success": settings.get("on_success", "continue"),
            "thresholds": json.dumps(threshold_attr, sort_keys=True),
            "comparison": synth.comparison,
            "fake_relu": int(fake_relu),
            "targets": json.dumps(targets),
            "diversity": json.dumps(diversity_settings(settings.get("diversity"))),
            "references_held_out": int(held_out),
            "seconds_per_iteration": float(result.seconds_per_iteration),
        },
    )
