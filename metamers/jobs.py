"""Helpers for the workflow scripts: logging (and progress bars) to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path


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
