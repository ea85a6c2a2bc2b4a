"""Crossed bootstrap intervals: one interval over images and models together.

A pooled estimate of a study (the recognizability of a relation's metamers at a depth, a
representation measure averaged over a relation's metamer sets) rests on a crossed design:
every reference image goes through every generator, whose metamers every evaluator reads. Its
variance has a part from each random factor (which images, which generators, which
evaluators were drawn) and from their interactions; an interval from one factor alone misses
the others (nominal 95 % intervals covered 65-73 % in the review of issue 26).

**Factors.** Each observation (a row: one metamer read by one evaluator, or one metamer set's
value) carries a level of every factor: ``images``, and the models. Pairs that share a generator
share its metamers: resampling models resamples all their pairs together, and likewise for
images. The models are one factor ``models`` whose levels play two roles in a row (generator and
evaluator: a row's weight is ``m_g * m_e``, or ``m_g`` when the generator is its evaluator, the
relation ``self``) whenever some model is both a generator and an evaluator of the rows (another
seed of one architecture): its generator and evaluator effects, and the pairs ``g -> e`` and
``e -> g``, are then resampled together, as they may be correlated. Only when no model plays
both roles are ``generators`` and ``evaluators`` two independent factors
(:func:`metamers.stats.by_relation.model_factors`).

**Bootstrap.** For every non-empty subset ``S`` of the factors, ``n_bootstrap`` samples
resample the factors in ``S`` with replacement (independently; multiplicities ``m``) and keep
the others; a row's weight is the product of its levels' multiplicities, and the estimate of a
sample is the weighted mean of the rows (a ratio: rows need not form a full grid). A factor may
instead be resampled *inside* the rows' values (the images of a representation measure, whose
value is a statistic over its images): the caller then gives each row's value under sample
``b`` (:class:`InnerFactor`; aligned samples, :func:`~.resampling.aligned_bootstrap_samples`).
``V_S`` is the variance of the estimate over the samples of ``S``.

**Correction.** The bootstrap over all factors at once counts the interactions' variance
several times and over-covers; each one-factor bootstrap misses the other factors. For a
balanced design ``V_S = sum over non-empty T in S of u_T``, where ``u_T`` is the variance
part of the ``T`` interaction (the mean square of its ANOVA effect over ``prod_{f in T} n_f``),
so Möbius inversion gives ``u_T = sum over S in T of (-1)^(|T|-|S|) V_S``; the unbiased
estimate of the variance of the mean in the random-effects model is then::

    V = sum over non-empty T of (-1)^(|T|+1) * prod_{f in T} n_f / (n_f - 1) * u_T

floored at the largest ``n_f / (n_f - 1) V_f`` (whose expectation is at most the true variance:
the floor makes the estimate conservative, not unbiased). This holds exactly for a balanced,
complete grid of independent factors; rows missing from the grid (failed metamers), a factor of
two roles and a statistic other than the mean make it an approximation, whose coverage
``bench/coverage.py`` measures. Bootstrap samples where the statistic is undefined (no row keeps
a weight) are left out. For two
factors this is rsatoolbox's small-sample formula (``_dual_bootstrap``; Schuett et al. 2023,
eLife, "Statistical inference on representational geometries"), which ``tests/test_crossed.py``
checks against rsatoolbox itself; for three, against the random-effects ANOVA's unbiased
estimate of the variance of a grand mean. One deviation: rsatoolbox also caps the variance at
the all-factor bootstrap's, which undoes the small-sample factors ``n_f / (n_f - 1)`` when a
factor has few levels (``bench/coverage.py``'s designs of 6 models under-covered with it); the
cap is not applied here.

The interval is ``estimate +- t * sqrt(V)`` with Student's ``t`` at ``dof`` degrees of freedom:
the Welch-Satterthwaite combination of the factors' corrected one-factor variances, each with
``n_f - 1`` (so an interval resting on few models is wider, as it should be; an approximation
that leaves out the interactions' subtracted parts). A proportion
(recognizability) takes its interval on the log-odds scale (``scale_name="logit"``: the
variances are those of the samples' log-odds, and the bounds are transformed back), which keeps
it inside [0, 1] and follows the skew of a proportion near 0 or 1; ``bounds`` clip any interval
to the measure's range, and every interval holds its estimate (a proportion of 0 or 1, whose
log-odds are taken half a row inside, is extended to it). Rows that do not vary at all (every
metamer recognized) give no interval, and the note says so: a bootstrap has nothing to resample
there. Coverage is measured by ``bench/coverage.py`` (not by a timed test).

A factor with a single level has no variance to estimate: the result then has no interval
(NaN bounds) and a ``note`` naming the factor.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

#: Fewer levels than this in a factor: a row's note says its interval rests on few of them.
FEW_LEVELS = 5
#: The random stream of the factors' multiplicities (``default_rng([seed, CROSSED_STREAM])``),
#: apart from the aligned bootstrap samples' ``[seed, k]`` for small ``k``.
CROSSED_STREAM = 0x63726f73


@dataclass(frozen=True)
class InnerFactor:
    """A factor resampled inside the rows' values: ``draws[b, r]`` is row ``r``'s value under
    bootstrap sample ``b`` of the factor's ``n_levels`` levels (the same samples for every row,
    as far as the rows share levels)."""

    name: str
    draws: np.ndarray
    n_levels: int


@dataclass(frozen=True)
class CrossedInterval:
    """An estimate with its crossed bootstrap interval (module docstring)."""

    value: float
    low: float
    high: float
    variance: float          # the corrected variance of the estimate
    dof: float               # degrees of freedom of the t quantile
    levels: dict[str, int]   # levels of every factor
    note: str = ""           # why there is no interval, or that it rests on few levels
    one_factor: dict[str, tuple[float, float]] = field(default_factory=dict)  # diagnostic intervals


def factor_codes(labels: Sequence) -> tuple[np.ndarray, int]:
    """Integer codes ``0..k-1`` of ``labels`` (``(N,)``, or ``(N, 2)`` for a factor whose levels
    play two roles in a row) and ``k``."""
    labels = np.asarray(labels, dtype=object).astype(str)
    uniques, codes = np.unique(labels.ravel(), return_inverse=True)
    return codes.reshape(labels.shape).astype(np.int64), len(uniques)


def _row_weights(multiplicities: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``(B, N)`` each row's weight from its levels' multiplicities: ``m[level]``, or for a row of
    two levels of one factor ``m[a] * m[b]`` (two draws of one level are not a pair: ``m[a]``
    when ``a == b``)."""
    if codes.ndim == 1:
        return multiplicities[:, codes]
    first, second = codes[:, 0], codes[:, 1]
    return multiplicities[:, first] * np.where(first == second, 1.0, multiplicities[:, second])


def _multiplicities(n_levels: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    draws = rng.integers(0, n_levels, size=(n_bootstrap, n_levels))
    out = np.zeros((n_bootstrap, n_levels))
    np.add.at(out, (np.repeat(np.arange(n_bootstrap), n_levels), draws.ravel()), 1.0)
    return out


def correction_weights(levels: Mapping[str, int]) -> dict[frozenset, float]:
    """The coefficient of every subset's bootstrap variance ``V_S`` in the corrected variance
    ``V = sum_S c_S V_S`` (module docstring), for factors with ``levels`` (each at least 2).

    >>> {tuple(sorted(s)): round(c, 6) for s, c in correction_weights({"a": 2, "b": 3}).items()}
    {('a',): 5.0, ('b',): 4.5, ('a', 'b'): -3.0}
    """
    names = list(levels)
    ratio = {f: levels[f] / (levels[f] - 1) for f in names}
    subsets = [frozenset(c) for k in range(1, len(names) + 1) for c in itertools.combinations(names, k)]
    weights = dict.fromkeys(subsets, 0.0)
    for t in subsets:  # V = sum_T (-1)^(|T|+1) r_T u_T, u_T = sum_{S in T} (-1)^(|T|-|S|) V_S
        r_t = float(np.prod([ratio[f] for f in t]))
        for s in subsets:
            if s <= t:
                weights[s] += (-1) ** (len(t) + 1) * r_t * (-1) ** (len(t) - len(s))
    return weights


def corrected_variance(variances: Mapping[frozenset, float], levels: Mapping[str, int]) -> float:
    """The corrected variance from every subset's bootstrap variance (module docstring), at
    least ``max_f n_f / (n_f - 1) V_f``."""
    weights = correction_weights(levels)
    value = sum(c * variances[s] for s, c in weights.items())
    floor = max(levels[f] / (levels[f] - 1) * variances[frozenset([f])] for f in levels)
    return float(max(value, floor))


def satterthwaite_dof(variances: Mapping[frozenset, float], levels: Mapping[str, int]) -> float:
    """Welch-Satterthwaite degrees of freedom of the sum of the factors' corrected one-factor
    variances ``n_f / (n_f - 1) V_f``, each with ``n_f - 1``."""
    parts = {f: levels[f] / (levels[f] - 1) * variances[frozenset([f])] for f in levels}
    total = sum(parts.values())
    denominator = sum(v ** 2 / (levels[f] - 1) for f, v in parts.items())
    if denominator <= 0:
        return float(min(levels.values()) - 1)
    return float(total ** 2 / denominator)


@dataclass(frozen=True)
class Scale:
    """Where the interval is symmetric: ``forward(estimates, n_rows)``, ``backward(values)``."""

    forward: object
    backward: object


def _logit(p: np.ndarray, n: int) -> np.ndarray:
    eps = 0.5 / max(n, 1)  # a proportion of n rows at 0 or 1 is kept half a row inside
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


#: Scales of an interval: ``identity``, ``logit`` for a proportion (symmetric in log-odds),
#: ``fisher`` for a correlation (symmetric in Fisher's z, ``arctanh r``).
SCALES = {"identity": Scale(lambda x, n: np.asarray(x, dtype=np.float64), lambda x: np.asarray(x)),
          "logit": Scale(_logit, lambda x: 1 / (1 + np.exp(-np.asarray(x)))),
          "fisher": Scale(lambda r, n: np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12)), np.tanh)}


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The mean of ``values (N,)`` weighted by ``weights (..., N)`` (the default statistic)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights * values).sum(axis=-1) / weights.sum(axis=-1)


def weighted_pearson(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pearson's r between the columns of ``values (N, 2)`` weighted by ``weights (..., N)``."""
    values = np.asarray(values, dtype=np.float64)
    x, y = values[:, 0] - values[:, 0].mean(), values[:, 1] - values[:, 1].mean()  # centred: no cancellation
    with np.errstate(invalid="ignore", divide="ignore"):
        total = weights.sum(axis=-1)
        mx, my = (weights * x).sum(axis=-1) / total, (weights * y).sum(axis=-1) / total
        cov = (weights * x * y).sum(axis=-1) / total - mx * my
        vx = (weights * x * x).sum(axis=-1) / total - mx * mx
        vy = (weights * y * y).sum(axis=-1) / total - my * my
        return cov / np.sqrt(vx * vy)


def subset_estimates(values: np.ndarray, factors: Mapping[str, np.ndarray], n_bootstrap: int, seed: int,
                     inner: InnerFactor | None = None, statistic=weighted_mean
                     ) -> tuple[dict[frozenset, np.ndarray], dict[str, int]]:
    """The bootstrap estimates of ``statistic`` (default the weighted mean) of ``values`` for
    every non-empty subset of the factors (those in the subset resampled, the others kept; samples where no row keeps a
    weight are left out), and the levels of every factor (module docstring; arguments as for
    :func:`crossed_interval`)."""
    values = np.asarray(values, dtype=np.float64)
    coded = {name: factor_codes(labels) for name, labels in factors.items()}
    levels = {name: k for name, (_, k) in coded.items()}
    if inner is not None:
        levels[inner.name] = int(inner.n_levels)
        if inner.draws.shape != (n_bootstrap, len(values)):
            raise ValueError(f"inner draws of shape {inner.draws.shape}, expected {(n_bootstrap, len(values))}")
    rng = np.random.default_rng([seed, CROSSED_STREAM])
    row_weights = {name: _row_weights(_multiplicities(k, n_bootstrap, rng), codes)
                   for name, (codes, k) in coded.items()}
    out = {}
    for k in range(1, len(levels) + 1):
        for subset in itertools.combinations(levels, k):
            weights = np.ones((n_bootstrap, len(values)))
            for name in subset:
                if name in row_weights:
                    weights = weights * row_weights[name]
            sample_values = inner.draws if inner is not None and inner.name in subset else values
            est = np.atleast_1d(statistic(sample_values, weights))
            out[frozenset(subset)] = est[np.isfinite(est)]
    return out, levels


def crossed_interval(values: np.ndarray, factors: Mapping[str, np.ndarray], n_bootstrap: int, confidence: float,
                     seed: int, inner: InnerFactor | None = None,
                     bounds: tuple[float, float] = (-np.inf, np.inf), scale_name: str = "identity",
                     statistic=weighted_mean) -> CrossedInterval:
    """The mean of ``values`` (one per row; or another ``statistic``) with its crossed bootstrap interval.

    Parameters
    ----------
    values
        ``(N,)`` the rows' values; the estimate is their mean.
    factors
        Factor name -> ``(N,)`` each row's level (any hashable labels), resampled by weights.
    n_bootstrap, confidence, seed
        Samples per subset of factors, the interval's level, and the seed of every draw.
    inner
        A factor resampled inside the values (its draws have ``n_bootstrap`` rows).
    bounds
        The measure's range; the interval is clipped to it.
    scale_name
        Where the interval is symmetric (:data:`SCALES`).
    statistic
        ``(values, weights (B, N)) -> (B,)``: :func:`weighted_mean`, or another smooth statistic
        of the rows (:func:`weighted_pearson` of two columns, on the ``fisher`` scale); the
        correction then holds to first order (the statistic's linearisation is a weighted mean).

    Returns
    -------
    CrossedInterval
        ``one_factor`` holds each factor's own percentile interval (the others fixed), a diagnostic.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image, model = np.meshgrid(np.arange(30), np.arange(6), indexing="ij")
    >>> y = rng.normal(size=30)[image] + rng.normal(size=6)[model] + rng.normal(size=(30, 6))
    >>> r = crossed_interval(y.ravel(), {"images": image.ravel(), "models": model.ravel()}, 400, 0.95, 0)
    >>> r.levels, bool(r.low < r.value < r.high)
    ({'images': 30, 'models': 6}, True)
    """
    values = np.asarray(values, dtype=np.float64)
    value = float(statistic(values, np.ones(len(values)))) if len(values) else np.nan
    levels = {name: len(np.unique(np.asarray(labels, dtype=object).astype(str))) for name, labels in factors.items()}
    if inner is not None:
        levels[inner.name] = int(inner.n_levels)
    if n_bootstrap == 0 or not len(values):
        return CrossedInterval(value, np.nan, np.nan, np.nan, np.nan, levels,
                               "no bootstrap samples" if n_bootstrap == 0 else "no rows")
    single = [name for name, k in levels.items() if k < 2]
    if single:  # no interval; the other factors' one-factor intervals remain as diagnostics
        others = {name: labels for name, labels in factors.items() if name not in single}
        kept = inner if inner is not None and inner.name not in single else None
        one = _one_factor(subset_estimates(values, others, n_bootstrap, seed, kept, statistic)[0], confidence) \
            if others or kept else {}
        return CrossedInterval(value, np.nan, np.nan, np.nan, np.nan, levels,
                               f"one level of {', '.join(single)}: no interval over {', '.join(single)}", one)
    estimates, levels = subset_estimates(values, factors, n_bootstrap, seed, inner, statistic)
    if any(len(est) < 2 for est in estimates.values()):
        return CrossedInterval(value, np.nan, np.nan, np.nan, np.nan, levels, "too few defined bootstrap samples")
    scale = SCALES[scale_name]
    variances = {subset: float(np.var(scale.forward(est, len(values)))) for subset, est in estimates.items()}
    variance = corrected_variance(variances, levels)
    spread = max(float(np.ptp(est)) for est in estimates.values())
    if spread <= 1e-12 * max(1.0, abs(value)):  # every resample gives the estimate (all recognized, say)
        return CrossedInterval(value, np.nan, np.nan, 0.0, np.nan, levels,
                               "the rows do not vary: no interval", _one_factor(estimates, confidence))
    dof = satterthwaite_dof(variances, levels)
    centre = scale.forward(np.array([value]), len(values))[0]
    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * np.sqrt(variance)
    low, high = scale.backward(np.array([centre - half, centre + half]))
    # a proportion at 0 or 1 is centred half a row inside on the log-odds scale: the interval
    # still holds the estimate itself
    low, high = max(min(low, value), bounds[0]), min(max(high, value), bounds[1])
    few = [f"{k} {name}" for name, k in levels.items() if k < FEW_LEVELS and name != "images"]
    note = f"rests on few models ({', '.join(few)})" if few else ""
    return CrossedInterval(value, float(low), float(high), variance, dof, levels, note,
                           _one_factor(estimates, confidence))


def _one_factor(estimates: Mapping[frozenset, np.ndarray], confidence: float) -> dict[str, tuple[float, float]]:
    """Each factor's own percentile interval (the others kept) from the subsets' estimates."""
    tail = 100 * (1 - confidence) / 2
    return {next(iter(s)): tuple(float(q) for q in np.percentile(est, [tail, 100 - tail]))
            for s, est in estimates.items() if len(s) == 1 and len(est)}
