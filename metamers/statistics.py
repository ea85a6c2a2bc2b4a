"""Similarity statistics between activation vectors, for metamer tests and null distributions.

One function per statistic, looked up by name in :data:`STATISTICS`:

``spearman``
    Spearman's rho: Pearson's r of the average ranks (ties share the mean of their ranks).
``pearson``
    Pearson's r.
``snr_db``
    ``20 log10(||a_r|| / ||a_m - a_r||)`` in dB, ``a_r`` the reference.
``snr_db_feather2023``
    ``10 log10`` of the same ratio, as in the published code of Feather et al. (2023).

Every statistic comes in two forms: *paired* (row ``i`` of ``a`` against row ``i`` of
``b``, for metamers against their references) and *pairwise over a pool* (pairs of rows of
one matrix, for null distributions), read off K x K Gram matrices of transformed
activations (:mod:`metamers.activation_store` computes them in bounded memory). A constant activation vector has an
undefined correlation: it gives NaN, which never passes a test.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


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


# ----------------------------------------------------------------------- paired forms


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rho between row ``i`` of ``a`` and row ``i`` of ``b``."""
    return _correlation((standardize(average_ranks(_flat(a))) * standardize(average_ranks(_flat(b)))).sum(-1))


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson's r between row ``i`` of ``a`` and row ``i`` of ``b``."""
    return _correlation((standardize(_flat(a)) * standardize(_flat(b))).sum(-1))


def _snr(metamer: torch.Tensor, reference: torch.Tensor, factor: float) -> torch.Tensor:
    m, r = _flat(metamer).to(torch.float64), _flat(reference).to(torch.float64)
    return factor * torch.log10(r.norm(dim=-1) / (m - r).norm(dim=-1))


def snr_db(metamer: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``20 log10(||a_r|| / ||a_m - a_r||)``: +inf when the activations are identical."""
    return _snr(metamer, reference, 20.0)


def snr_db_feather2023(metamer: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``10 log10(||a_r|| / ||a_m - a_r||)``, the variant of the published code."""
    return _snr(metamer, reference, 10.0)


#: Statistic name -> paired function ``(metamer, reference) -> (N,)``.
STATISTICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "spearman": spearman,
    "pearson": pearson,
    "snr_db": snr_db,
    "snr_db_feather2023": snr_db_feather2023,
}


def statistic(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in STATISTICS:
        raise KeyError(f"unknown statistic {name!r}; valid: {', '.join(STATISTICS)}")
    return STATISTICS[name]


# ------------------------------------------------------------------- pairwise forms


def pair_values_from_gram(
    name: str, gram: torch.Tensor, reference: torch.Tensor, other: torch.Tensor
) -> torch.Tensor:
    """Statistic ``name`` for the pairs ``(reference[p], other[p])`` of K pool images, from
    their K x K Gram matrix (:meth:`metamers.activation_store.ActivationStore.grams`): of
    standardised average ranks (Spearman), standardised values (Pearson) or the values (SNR,
    image ``reference[p]`` being the reference)."""
    statistic(name)
    if name in ("spearman", "pearson"):
        return _correlation(gram[reference, other])
    sq = torch.diagonal(gram)
    dist = (sq[reference] + sq[other] - 2 * gram[reference, other]).clamp_min(0).sqrt()
    return (20.0 if name == "snr_db" else 10.0) * torch.log10(sq[reference].sqrt() / dist)
