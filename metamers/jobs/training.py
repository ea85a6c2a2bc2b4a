"""Rule ``train_model``: train a model declared with ``source: train`` and write its checkpoint.

``results/models/{model}.pt`` holds ``state_dict`` (what the ``train`` source loads),
``architecture``, ``settings`` (the full training settings, :func:`~metamers.models.training_settings.resolve_training`),
``metrics`` (clean and PGD accuracy on held-out images, training images, seconds) and
``provenance``; ``results/models/{model}.json`` repeats the settings, metrics and provenance
for people and tables. Both are written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..artifacts.files import atomic_path
from ..models.loading import model_spec
from ..provenance import provenance
from .common import job_device

log = logging.getLogger(__name__)


def train_model(config: Mapping[str, Any], model: str, out_path: str | Path, metrics_path: str | Path,
                progress: bool = True) -> Path:
    """Train configured model ``model`` (``source: train``); write its checkpoint to ``out_path``
    and its settings and metrics (JSON) to ``metrics_path``."""
    import torch

    from ..models.training import train_network

    spec = model_spec(config["models"], model)
    if spec.get("source") != "train":
        trained = [n for n, s in config["models"].items() if s.get("source") == "train"]
        raise ValueError(f"model {model!r} has source {spec.get('source')!r}, not train; trained models: "
                         f"{', '.join(trained) or '(none)'}")
    device = job_device(config)
    result = train_network(model, spec, progress=progress, device=device)
    record = provenance({"model": model, "spec": dict(spec), "device": str(device)}, result.settings["seed"])
    with atomic_path(out_path) as tmp:
        torch.save({"state_dict": result.state_dict, "architecture": result.settings["architecture"],
                    "settings": result.settings, "metrics": result.metrics, "provenance": record}, tmp)
    with atomic_path(metrics_path) as tmp:
        Path(tmp).write_text(json.dumps({"model": model, "settings": result.settings, "metrics": result.metrics,
                                         "provenance": record}, indent=2, sort_keys=True, default=str) + "\n")
    log.info("wrote %s and %s", out_path, metrics_path)
    return Path(out_path)
