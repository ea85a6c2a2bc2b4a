"""Similarity statistics between activation vectors: each defined once, in :data:`STATISTICS`.

A :class:`Statistic` has a name, a display label with its unit, a *paired* form (row ``i``
of ``a`` against row ``i`` of ``b``, for metamers against their references) and a *Gram*
form (pairs of rows of one matrix, for null distributions, read off the K x K Gram matrix of
transformed activations that :mod:`metamers.stats.activation_store` computes in bounded
memory). The Gram matrix a statistic reads is named by its :class:`Gram`: the stored kind of
data (``values`` or average ``ranks``) and whether rows are standardised.

``spearman``
    Spearman's rho: Pearson's r of the average ranks (ties share the mean of their ranks).
``pearson``
    Pearson's r.
``snr_db``
    ``20 log10(||a_r|| / ||a_m - a_r||)`` in dB, ``a_r`` the reference.
``snr_db_feather2023``
    ``10 log10`` of the same ratio, as in the published code of Feather et al. (2023).

A constant activation vector has an undefined correlation: it gives NaN, which never passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..registry import Registry


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks (1..D) along the last dimension, ties sharing the mean of their ranks
    (``scipy.stats.rankdata(method="average")``), for a ``(K, D)`` matrix."""
    values, order = torch.sort(x, dim=-1, stable=True)
    k, d = values.shape
    new_group = torch.ones_like(values, dtype=torch.bool)
    new_group[:, 1:] = values[:, 1:] != values[:, :-1]
    group = torch.cumsum(new_group, dim=-1) - 1  # group id per sorted position
    position = torch.arange(d, device=x.device, dtype=torch.float64).expand(k, d)
    first = torch.full((k, d), float(d), device=x.device, dtype=torch.float64)
    first = first.scatter_reduce(-1, group, position, reduce="amin")
    last = torch.zeros((k, d), device=x.device, dtype=torch.float64)
    last = last.scatter_reduce(-1, group, position, reduce="amax")
    rank_sorted = (first.gather(-1, group) + last.gather(-1, group)) / 2 + 1
    return torch.empty_like(rank_sorted).scatter_(-1, order, rank_sorted)


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Rows centred and scaled to unit norm (float64), so that dot products are Pearson's r.
    A constant row becomes NaN."""
    x = x.to(torch.float64)
    x = x - x.mean(dim=-1, keepdim=True)
    norm = x.norm(dim=-1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.full_like(norm, float("nan")))


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(len(x), -1)


def _correlation(r: torch.Tensor) -> torch.Tensor:
    """Clamp to [-1, 1] and round to 12 decimals, so that rounding noise of either summation
    order cannot lift a perfect correlation (1.0) above a null maximum of 1.0."""
    return r.clamp(-1.0, 1.0).round(decimals=12)


@dataclass(frozen=True)
class Gram:
    """Which Gram matrix a statistic's pool form reads: of the stored ``kind`` of data
    (``values`` or average ``ranks``), rows ``standardized`` (centred, unit norm) or not."""

    kind: str
    standardized: bool


@dataclass(frozen=True)
class Statistic:
    """One similarity statistic.

    Attributes
    ----------
    name
        Its name in configs and tables.
    label
        Axis label with the unit, for figures and reports.
    unit
        The unit of its values (``""`` for a correlation).
    paired
        ``(metamer, reference) -> (N,)``: row ``i`` of one batch against row ``i`` of the other.
    gram
        The Gram matrix its pool form reads.
    from_gram
        ``(gram, reference_rows, other_rows) -> values`` for pairs of pool rows.
    """

    name: str
    label: str
    unit: str
    paired: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    gram: Gram
    from_gram: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


#: Statistic name -> :class:`Statistic`.
STATISTICS: Registry[Statistic] = Registry("statistic")


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rho between row ``i`` of ``a`` and row ``i`` of ``b``."""
    return _correlation((standardize(average_ranks(_flat(a))) * standardize(average_ranks(_flat(b)))).sum(-1))


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson's r between row ``i`` of ``a`` and row ``i`` of ``b``."""
    return _correlation((standardize(_flat(a)) * standardize(_flat(b))).sum(-1))


def _correlation_from_gram(gram: torch.Tensor, reference: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    return _correlation(gram[reference, other])


def _snr(metamer: torch.Tensor, reference: torch.Tensor, factor: float) -> torch.Tensor:
    m, r = _flat(metamer).to(torch.float64), _flat(reference).to(torch.float64)
    return factor * torch.log10(r.norm(dim=-1) / (m - r).norm(dim=-1))


def snr_db(metamer: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``20 log10(||a_r|| / ||a_m - a_r||)``: +inf when the activations are identical."""
    return _snr(metamer, reference, 20.0)


def snr_db_feather2023(metamer: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``10 log10(||a_r|| / ||a_m - a_r||)``, the variant of the published code."""
    return _snr(metamer, reference, 10.0)


def _snr_from_gram(factor: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The SNR of pool pairs from the Gram matrix of the values (squared norms on its diagonal)."""

    def from_gram(gram: torch.Tensor, reference: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        sq = torch.diagonal(gram)
        dist = (sq[reference] + sq[other] - 2 * gram[reference, other]).clamp_min(0).sqrt()
        return factor * torch.log10(sq[reference].sqrt() / dist)

    return from_gram


STATISTICS.register("spearman", Statistic("spearman", "Spearman ρ", "", spearman, Gram("ranks", True),
                                          _correlation_from_gram))
STATISTICS.register("pearson", Statistic("pearson", "Pearson r", "", pearson, Gram("values", True),
                                         _correlation_from_gram))
STATISTICS.register("snr_db", Statistic("snr_db", "SNR (dB, 20 log10)", "dB", snr_db, Gram("values", False),
                                        _snr_from_gram(20.0)))
STATISTICS.register("snr_db_feather2023", Statistic("snr_db_feather2023", "SNR (dB, 10 log10)", "dB",
                                                    snr_db_feather2023, Gram("values", False),
                                                    _snr_from_gram(10.0)))


def statistic(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The paired form of statistic ``name`` (unknown names list the valid ones)."""
    return STATISTICS[name].paired


def pair_values_from_gram(
    name: str, gram: torch.Tensor, reference: torch.Tensor, other: torch.Tensor
) -> torch.Tensor:
    """Statistic ``name`` for the pairs ``(reference[p], other[p])`` of K pool images, from the
    K x K Gram matrix its :attr:`Statistic.gram` names (image ``reference[p]`` being the
    reference in the SNR)."""
    return STATISTICS[name].from_gram(gram, reference, other)
