"""Rule ``generate``: (method, generator, layer, batch of images) -> a metamer artifact."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.metamers import write_metamer_batch
from ..artifacts.nulls import read_nulls
from ..data import batch_ids, load_image_set, quantize
from ..models.loading import load_model
from ..registry import lookup
from ..synthesis.batch import metamer_batch
from ..synthesis.loop import MetamerSynthesis
from ..synthesis.objective import method_target
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
        The study (:func:`metamers.config.validate_config`).
    method, generator, layer, batch
        The job: a configured method, a configured generator (a model, or a joint generator of
        several) and one of its layers, and a batch name from :func:`metamers.data.batch_ids`;
        its key (:meth:`metamers.study.Study.generation_key`) is the provenance and part of the
        checkpoint's fingerprint, as it is the rule's params.
    out_path
        The HDF5 artifact to write (atomically).
    null_paths
        The null files of the job's (model, layer) targets (:meth:`metamers.study.Study.generator_targets`);
        needed when the method checks the metamer test during synthesis (``check_every > 0``).
    """
    key = config.generation_key(method, generator, layer, batch)  # params, provenance and fingerprint
    settings = key["method_settings"]
    specs = config.generator_targets(generator, layer)
    device = job_device(config)
    ids, images = job_images(config, batch)
    models = {spec.model: load_model(config["models"], spec.model, device) for spec in specs}
    model = models[specs[0].model]  # the images have its input shape; other members see them resized
    seed = int(config["seed"])  # the base seed: image i starts from start_seed(seed, id_i)
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
    targets = [method_target(models[s.model], s.layer, settings, s.weight, s.fake_relu, th, class_maps[s.model])
               for s, th in zip(specs, thresholds)]
    fake = [t.fake_relu for t in targets]
    log.info("job %s/%s/%s/%s: %d images on %s, base seed %d; targets %s", method, generator, layer, batch,
             len(ids), device, seed, ", ".join(f"{s.model}/{s.layer} (weight {s.weight:.3g}, "
                                                f"{'straight-through' if f else 'real'} ReLU)"
                                                for s, f in zip(specs, fake)))
    labels = [images.labels[i] for i in ids]
    start_data = None
    if STARTS[settings["init"].get("type", "noise")].needs_pool:  # a start made from the null pool's images
        from ..data.pools import pool_images

        pool, pool_ids = pool_images(config["images"], config["metamer_test"].get("pool"), images.ids, 1)
        start_data = StartData(labels, pool.tensor(pool_ids, model.input_shape), [pool.labels[i] for i in pool_ids])
        log.info("starting points from the null pool %s (%d images)", pool.name, len(pool_ids))
    space_model = config.diversity_model(method)  # a diversity term's (model, layer) space
    if space_model is not None and space_model not in models:
        models[space_model] = load_model(config["models"], space_model, device)
    synth = MetamerSynthesis(targets, reference, settings, seed, ids, comparison=comparison,
                             batch_invariant=config["batch_invariant"], start_data=start_data, job_key=key,
                             diversity_model=models[space_model] if space_model is not None else None)
    checkpoint = checkpoint_path(out_path)
    result = synth.synthesize(progress=progress, checkpoint=checkpoint,
                              checkpoint_every=int(config.get("checkpoint_every", 0)))

    job_config = {**key, "device": str(device)}
    artifact = metamer_batch(synth, result, labels, method, generator, layer, batch, job_config, images.held_out)
    path = write_metamer_batch(out_path, artifact)
    remove_checkpoint(checkpoint)  # and its sidecar
    log.info("wrote %s (mean final loss %.4g, median SSIM with the reference %.3g (start %.3g), %.3g ms per "
             "iteration)", path, float(result.final_loss.mean()), float(np.median(artifact.distances["metamer"]["ssim"])),
             float(np.median(artifact.distances["start"]["ssim"])), 1000 * result.seconds_per_iteration)
    return path
