"""Rule ``generate``: (method, generator, layer, batch of images) -> a metamer artifact."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.metamers import MetamerBatch, write_metamer_batch
from ..artifacts.nulls import read_nulls
from ..config import generator_targets, layer_options
from ..data import batch_ids, load_image_set, quantize, to_uint8
from ..labels import decide
from ..models.layers import LayerReader, uses_fake_relu
from ..models.loading import load_model, model_spec
from ..provenance import provenance
from ..registry import lookup
from ..stats.distances import pixel_distances
from ..synthesis.loop import MetamerSynthesis
from ..synthesis.methods import resolve_method
from ..synthesis.objective import Target, model_input
from ..synthesis.record import remove_checkpoint
from ..synthesis.starts import STARTS, StartData
from .common import class_decision, job_device

log = logging.getLogger(__name__)


def checkpoint_path(out_path: str | Path) -> Path:
    """Where the job of artifact ``out_path`` keeps its synthesis checkpoint (a hidden file beside it;
    its JSON sidecar is :func:`~metamers.synthesis.record.checkpoint_sidecar` of it)."""
    out_path = Path(out_path)
    return out_path.with_name(f".{out_path.stem}.checkpoint.pt")


def job_images(config: Mapping[str, Any], batch: str) -> tuple[list[str], Any]:
    """The image ids of job batch ``batch`` and the image set they come from."""
    images = load_image_set(config["images"])
    return lookup(batch_ids(images.ids, config["images_per_job"]), batch, "batch", listed="configured"), images


def generate(
    config: Mapping[str, Any],
    method: str,
    generator: str,
    layer: str,
    batch: str,
    out_path: str | Path,
    progress: bool = True,
    null_paths: Sequence[str | Path] = (),
) -> Path:
    """Synthesise the metamers of one job and write its artifact to ``out_path``.

    Parameters
    ----------
    config
        A validated config (:func:`metamers.config.validate_config`).
    method, generator, layer, batch
        The job's key: a configured method, a configured generator (a model, or a joint
        generator of several) and one of its layers, and a batch name from
        :func:`metamers.data.batch_ids`.
    out_path
        The HDF5 artifact to write (atomically).
    null_paths
        The null files of the job's (model, layer) targets (:func:`metamers.config.generator_targets`);
        needed when the method checks the metamer test during synthesis (``check_every > 0``).
    """
    settings = resolve_method(method, lookup(config["methods"], method, "method", listed="configured"))
    options = layer_options(config, generator, layer)
    specs = generator_targets(config, generator, layer)
    device = job_device(config)
    ids, images = job_images(config, batch)
    models = {spec.model: load_model(config["models"], spec.model, device) for spec in specs}
    model = models[specs[0].model]  # the images have its input shape; other members see them resized
    seed = int(config["seed"])  # the base seed: image i starts from start_seed(seed, id_i)
    fake = [uses_fake_relu(models[s.model], s.layer, settings["fake_relu"], s.fake_relu) for s in specs]
    log.info("job %s/%s/%s/%s: %d images on %s, base seed %d; targets %s", method, generator, layer, batch,
             len(ids), device, seed, ", ".join(f"{s.model}/{s.layer} (weight {s.weight:.3g}, "
                                                f"{'straight-through' if f else 'real'} ReLU)"
                                                for s, f in zip(specs, fake)))

    thresholds: list[dict[str, float]] = [{} for _ in specs]
    comparison = config["metamer_test"]["comparison"]
    if settings.get("check_every", 0):
        found = {}
        for path in null_paths:
            nulls, attrs = read_nulls(path)
            found[(attrs["generator"], attrs["layer"])] = nulls
        missing = [f"{s.model}/{s.layer}" for s in specs if (s.model, s.layer) not in found]
        if missing:
            raise ValueError(f"method {method!r} checks the metamer test during synthesis; it needs the null "
                             f"file(s) of {missing}")
        thresholds = [{name: found[(s.model, s.layer)][name].threshold for name in config["metamer_test"]["statistics"]}
                      for s in specs]

    # One reference: the 8-bit image, for the target, the in-loop test and the recorded test.
    reference = quantize(images.tensor(ids, model.input_shape).to(device))
    class_maps = {name: class_decision(config, name, images)[0] for name in models}
    targets = [Target(models[s.model], s.layer, s.weight, f, th, class_maps[s.model])
               for s, f, th in zip(specs, fake, thresholds)]
    labels = [images.labels[i] for i in ids]
    start_data = None
    if STARTS[settings["init"].get("type", "noise")].needs_pool:  # a start made from the null pool's images
        from ..data.pools import pool_images

        pool, pool_ids = pool_images(config["images"], config["metamer_test"].get("pool"), images.ids, 1)
        start_data = StartData(labels, pool.tensor(pool_ids, model.input_shape), [pool.labels[i] for i in pool_ids])
        log.info("starting points from the null pool %s (%d images)", pool.name, len(pool_ids))
    synth = MetamerSynthesis(targets, reference, settings, seed, ids, comparison=comparison,
                             batch_invariant=config["batch_invariant"], start_data=start_data)
    checkpoint = checkpoint_path(out_path)
    result = synth.synthesize(progress=progress, checkpoint=checkpoint,
                              checkpoint_every=int(config.get("checkpoint_every", 0)))

    metamer8 = to_uint8(torch.from_numpy(result.metamer))
    reference8 = to_uint8(reference.cpu())
    act_ref, act_met = [], []  # every target's activation, flattened and side by side
    with torch.no_grad():
        for t in targets:
            reader = LayerReader(t.model, [t.layer])
            for images8, out in ((reference8, act_ref), (metamer8, act_met)):
                out.append(reader(model_input(images8.to(device).float() / 255, t.model))[t.layer].flatten(1).cpu())
        prediction = decide(model(reference), class_maps[specs[0].model]).cpu()
    target_attrs = [{"model": s.model, "layer": s.layer, "weight": s.weight, "fake_relu": bool(f),
                     "dim": int(a.shape[1])} for s, f, a in zip(specs, fake, act_ref)]
    act_ref, act_met = torch.cat(act_ref, 1), torch.cat(act_met, 1)
    fake_relu = any(fake)
    reference01 = reference8.float() / 255
    distances = {"metamer": pixel_distances(metamer8.float() / 255, reference01),
                 "start": pixel_distances(torch.from_numpy(result.start), reference01)}
    # the in-loop test's thresholds: {statistic: value}, or per target for a joint generator
    threshold_attr = thresholds[0] if len(specs) == 1 else {
        f"{s.model}:{s.layer}": th for s, th in zip(specs, thresholds)}
    job_config = {
        "method": method,
        "method_settings": settings,
        "generator": generator,
        "model": dict(model_spec(config["models"], specs[0].model)) if len(specs) == 1 else
        {s.model: dict(model_spec(config["models"], s.model)) for s in specs},
        "targets": target_attrs,
        "layer": layer,
        "layer_options": options,
        "fake_relu": fake_relu,
        "batch": batch,
        "images": dict(config["images"]),
        "images_per_job": config["images_per_job"],
        "batch_invariant": config["batch_invariant"],
        "device": str(device),
        "base_seed": config["seed"],
    }
    artifact = MetamerBatch(
        image_ids=ids,
        labels=np.asarray(labels, dtype=np.int64),
        reference=reference8.numpy(),
        metamer=result.metamer,
        metamer_uint8=metamer8.numpy(),
        start_uint8=to_uint8(torch.from_numpy(result.start)).numpy(),
        loss=result.loss,
        final_loss=result.final_loss,
        generator_prediction=prediction.numpy(),
        activations_reference=act_ref.numpy(),
        activations_metamer=act_met.numpy(),
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
            **provenance(job_config, seed),
            "seed": seed,
            "method": method,
            "generator": generator,
            "layer": layer,
            "batch": batch,
            "iterations": int(settings["iterations"]),
            "iterations_run": int(result.iterations_run),
            "check_every": int(settings.get("check_every", 0)),
            "on_success": settings.get("on_success", "continue"),
            "thresholds": json.dumps(threshold_attr, sort_keys=True),
            "comparison": comparison,
            "fake_relu": int(fake_relu),
            "targets": json.dumps(target_attrs),
            "references_held_out": int(images.held_out),
            "seconds_per_iteration": float(result.seconds_per_iteration),
        },
    )
    path = write_metamer_batch(out_path, artifact)
    remove_checkpoint(checkpoint)  # and its sidecar
    log.info("wrote %s (mean final loss %.4g, median SSIM with the reference %.3g (start %.3g), %.3g ms per "
             "iteration)", path, float(result.final_loss.mean()), float(distances["metamer"]["ssim"].median()),
             float(distances["start"]["ssim"].median()), 1000 * result.seconds_per_iteration)
    return path
