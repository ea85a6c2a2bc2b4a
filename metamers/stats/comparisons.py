"""How a statistic is compared with its null threshold, registered in :data:`COMPARISONS`."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..registry import Registry

#: How a statistic is compared with its null threshold: ``at_least`` (published: a tie passes)
#: or ``greater`` (strict). NaN fails both.
COMPARISONS: Registry = Registry("comparison", ValueError)
COMPARISONS.register("at_least", lambda value, threshold: value >= threshold)
COMPARISONS.register("greater", lambda value, threshold: value > threshold)


def compare(values, threshold, comparison: str = "at_least"):
    """Element-wise pass of ``values`` (tensor, array or Series) against ``threshold``."""
    return COMPARISONS[comparison](values, threshold)


def passes(
    values: Mapping[str, torch.Tensor], thresholds: Mapping[str, float], comparison: str = "at_least"
) -> torch.Tensor:
    """True where every statistic passes its threshold by ``comparison`` (NaN fails)."""
    out = None
    for name, threshold in thresholds.items():
        ok = compare(values[name], threshold, comparison)  # NaN >= t is False
        out = ok if out is None else out & ok
    if out is None:
        raise ValueError("no statistics to test")
    return out
