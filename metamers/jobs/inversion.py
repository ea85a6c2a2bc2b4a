"""Rules ``inversion`` and ``inversion_table``: seeing what each model keeps.

``inversion`` takes one evaluator, a few references (``inversion.images``, chosen one per class
first, as the metamer grid chooses) and their metamers from every method, generator and
generation layer, and inverts the evaluator's representation of each at every configured
inversion layer (:func:`metamers.synthesis.inversion.invert`, with the image priors of the
inversion method). A reference and all its metamers start from the same point, so the
inversions differ only by what the layer's representations of them hold. Every image is
inverted at the evaluator's input shape (a metamer made at another size is resized as the
evaluator reads it). Image ``i``'s rows start from :func:`~metamers.synthesis.starts.start_seed`
``(seed, "inversion/" + i)``: not the start its metamers were made from, which a barely
optimised metamer would still be near. ``inversion_table`` gathers the evaluators' inversions into two small
tables the figure is drawn from: ``inversions.csv`` (one row per evaluator, evaluator layer and
source image) and ``inversions.npz`` (the pixels of those rows).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..artifacts.files import write_npz
from ..artifacts.inversions import Inversions, read_inversions, write_inversions
from ..artifacts.metamers import read_metamer_batch
from ..data import grid_selection, load_image_set, to_input, to_uint8
from ..models.loading import load_model
from ..provenance import provenance
from ..stats.distances import pixel_distances
from ..synthesis.inversion import invert
from ..tables import write_table
from .common import job_device

log = logging.getLogger(__name__)

#: Columns of ``inversions.csv``: one row per (evaluator, evaluator layer, source image); ``row``
#: indexes the pixel arrays of ``inversions.npz``. Distances are between 8-bit images in [0, 1].
INVERSION_COLUMNS = ["evaluator", "evaluator_layer", "image_id", "label", "kind", "method", "generator", "layer",
                     "row", "loss", "mismatch", "source_l2", "source_ssim", "reference_l2", "reference_ssim"]


def inversion_ids(config: Mapping[str, Any]) -> list[str]:
    """The references whose representations (and their metamers') are inverted: the first
    ``inversion.images`` of one per class first, in image order."""
    images = load_image_set(config["images"])
    return grid_selection(images.ids, [images.labels[i] for i in images.ids], int(config["inversion"]["images"]))


def _sources(config: Mapping[str, Any], ids: Sequence[str], artifact_paths: Sequence[str | Path]
             ) -> tuple[dict[str, list[str]], list[int], list[torch.Tensor]]:
    """The rows to invert: each reference, then its metamers (config order of methods, generators
    and layers), from the artifacts that hold them; images as float tensors at the generator's shape."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    references: dict[str, Any] = {}
    for path in artifact_paths:
        batch = read_metamer_batch(path, activations=False)
        key = (batch.attrs["method"], batch.attrs["generator"], batch.attrs["layer"])
        for k, i in enumerate(batch.image_ids):
            if i in ids and batch.member[k] == 0:  # a diversity term's member 0, as the grid shows
                found.setdefault(key, {})[i] = (batch.metamer_uint8[k], int(batch.labels[k]))
                references.setdefault(i, (batch.reference[k], int(batch.labels[k])))
    rows: dict[str, list[str]] = {name: [] for name in ("image_id", "kind", "method", "generator", "layer")}
    labels: list[int] = []
    pixels: list[torch.Tensor] = []

    def add(image_id: str, kind: str, key: tuple[str, str, str], image: np.ndarray, label: int) -> None:
        for name, value in zip(("image_id", "kind", "method", "generator", "layer"), (image_id, kind, *key)):
            rows[name].append(value)
        labels.append(label)
        pixels.append(torch.from_numpy(np.asarray(image)).float() / 255)

    for i in ids:
        if i not in references:
            raise ValueError(f"no metamer artifact among {len(artifact_paths)} holds reference image {i!r}")
        add(i, "reference", ("", "", ""), *references[i])
        for method in config["methods"]:
            for generator in config["generators"]:
                for layer in config.generator_layers(generator):
                    if i not in found.get((method, generator, layer), {}):
                        raise ValueError(f"no artifact of {method}/{generator}/{layer} among the inputs holds the "
                                         f"metamer of image {i!r}")
                    add(i, "metamer", (method, generator, layer), *found[(method, generator, layer)][i])
    return rows, labels, pixels


def inversion(config: Mapping[str, Any], evaluator: str, artifact_paths: Sequence[str | Path],
              out_path: str | Path, progress: bool = True) -> Path:
    """Rule ``inversion``: invert ``evaluator``'s representations of the inversion references and
    of their metamers (in ``artifact_paths``) at every inversion layer of the evaluator; write the
    artifact (:mod:`metamers.artifacts.inversions`) to ``out_path``."""
    layers = config.inversion_layers().get(evaluator)
    if not layers:
        raise ValueError(f"evaluator {evaluator!r} has no inversion layers; evaluators with some: "
                         f"{', '.join(config.inversion_layers()) or '(none)'}")
    method = config.inversion_method()
    ids = inversion_ids(config)
    rows, labels, pixels = _sources(config, ids, artifact_paths)
    model = load_model(config["models"], evaluator, job_device(config))
    # every source at the evaluator's input, as 8-bit pixels (a generator of another size is resized)
    source = to_uint8(torch.cat([to_input(p[None], model.input_shape) for p in pixels]))
    images = source.float() / 255
    seed = int(config["seed"])
    # one start per reference, not the start its metamers were made from (their ids' seeds)
    start_ids = [f"inversion/{i}" for i in rows["image_id"]]
    inverted, loss, mismatch, start = {}, {}, {}, None
    for layer in layers:
        log.info("inverting %s at %s: %d images (%d references and their metamers), %d iterations",
                 evaluator, layer, len(images), len(ids), int(method["iterations"]))
        result = invert(model, layer, images.to(model.device), method, seed, start_ids,
                        batch_invariant=config["inversion"]["batch_invariant"], progress=progress)
        inverted[layer], loss[layer], mismatch[layer] = result.inverted, result.loss, result.mismatch
        start = result.start if start is None else start
        log.info("%s/%s: median mismatch %.3g (references %.3g)", evaluator, layer, float(np.median(result.mismatch)),
                 float(np.median(result.mismatch[np.asarray(rows["kind"]) == "reference"])))
    job = {"evaluator": evaluator, "model": config["models"][evaluator], "layers": layers, "method": method,
           "images": ids, "methods": list(config["methods"]), "generators": list(config["generators"]),
           "batch_invariant": config["inversion"]["batch_invariant"], "base_seed": seed}
    data = Inversions(rows=rows, label=np.asarray(labels, dtype=np.int64), source=source.numpy(), start=start,
                      inverted=inverted, loss=loss, mismatch=mismatch,
                      attrs={**provenance(job, seed), "evaluator": evaluator, "layers": json.dumps(layers),
                             "method": json.dumps(method, sort_keys=True), "seed": seed})
    path = write_inversions(out_path, data)
    log.info("wrote %s", path)
    return path


def inversion_table(artifact_paths: Sequence[str | Path], csv_out: str | Path, npz_out: str | Path) -> None:
    """Rule ``inversion_table``: ``inversions.csv`` (rows of :data:`INVERSION_COLUMNS`) and
    ``inversions.npz`` (``source`` and ``inverted``, ``(R, C, H, W)`` uint8, row ``k`` of the CSV
    at index ``k``, with checksums: :func:`~metamers.artifacts.files.write_npz`) from the evaluators'
    inversion artifacts."""
    rows, sources, inverted = [], [], []
    for path in artifact_paths:
        data = read_inversions(path)
        evaluator = data.attrs["evaluator"]
        src = torch.from_numpy(data.source).float() / 255
        kinds = np.asarray(data.rows["kind"])
        ref_row = {i: k for k, i in enumerate(data.rows["image_id"]) if kinds[k] == "reference"}
        reference = src[[ref_row[i] for i in data.rows["image_id"]]]
        for layer in data.layers:
            inv8 = to_uint8(torch.from_numpy(data.inverted[layer]))
            inv = inv8.float() / 255
            to_source = pixel_distances(inv, src, ["l2", "ssim"])
            to_reference = pixel_distances(inv, reference, ["l2", "ssim"])
            for k in range(len(data)):
                rows.append({"evaluator": evaluator, "evaluator_layer": layer,
                             **{name: data.rows[name][k] for name in ("image_id", "kind", "method", "generator",
                                                                       "layer")},
                             "label": int(data.label[k]), "row": len(rows), "loss": float(data.loss[layer][k]),
                             "mismatch": float(data.mismatch[layer][k]),
                             "source_l2": float(to_source["l2"][k]), "source_ssim": float(to_source["ssim"][k]),
                             "reference_l2": float(to_reference["l2"][k]),
                             "reference_ssim": float(to_reference["ssim"][k])})
            sources.append(data.source)
            inverted.append(inv8.numpy())
    write_table(pd.DataFrame(rows, columns=INVERSION_COLUMNS), csv_out)
    write_npz(npz_out, {"source": np.concatenate(sources) if sources else np.zeros((0, 1, 1, 1), np.uint8),
                        "inverted": np.concatenate(inverted) if inverted else np.zeros((0, 1, 1, 1), np.uint8)},
              compressed=True)
