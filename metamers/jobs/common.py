"""What every job shares: its log file, its device and threads, its models."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from ..labels import ClassMap


@contextlib.contextmanager
def job_log(path: str | Path | None) -> Iterator[None]:
    """Send logging and stderr (tqdm's progress bars) to ``path`` for the block.

    An exception is written to the log with its traceback and raised again, so the
    job fails and its log says why.
    """
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_stderr = sys.stderr
        sys.stderr = stream
        logging.getLogger(__name__).info(
            "host %s, CUDA_VISIBLE_DEVICES=%s, SLURM_JOB_ID=%s", platform.node(),
            os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"), os.environ.get("SLURM_JOB_ID", "(none)"),
        )
        try:
            yield
        except BaseException:
            stream.write(traceback.format_exc())
            raise
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)


def resolve_device(name: str = "auto") -> torch.device:
    """Map a configured device name to a :class:`torch.device`.

    ``"auto"`` takes CUDA when a GPU is visible and the CPU otherwise; ``"cpu"``,
    ``"cuda"`` and ``"cuda:N"`` are taken as given (CUDA must then be present).
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was requested but no CUDA device is visible")
    return device


def job_device(config: Mapping[str, Any]) -> torch.device:
    """Set the job's CPU threads (``config['threads']``) and return its device (``config['device']``)."""
    import torch

    torch.set_num_threads(int(config.get("threads", 1)))
    return resolve_device(config.get("device", "auto"))


def class_decision(config: Mapping[str, Any], model: str, images: Any = None) -> tuple[ClassMap | None, int | None]:
    """How configured ``model`` decides a class in the images' label space: ``(None, None)`` by
    its highest logit (the same space, the images declare none, or no class map joins them: a
    generator's class test then compares its own classes, while an evaluator is a config error),
    else the class map from its space (:func:`metamers.labels.load_class_map`) and the images'
    number of classes. ``images``: the reference image set, when the caller has it loaded."""
    from ..data import load_image_set
    from ..labels import decides_through_map, load_class_map

    if not decides_through_map(config, model):
        return None, None
    images = images if images is not None else load_image_set(config["images"])
    return load_class_map(config, images.class_index), len(set(images.class_index.values()))
