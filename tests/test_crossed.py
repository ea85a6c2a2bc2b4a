"""The crossed bootstrap over images and models (:mod:`metamers.stats.crossed`): each subset's
bootstrap variance against its hand computation on a balanced design, the corrected variance
against rsatoolbox's dual-bootstrap formula (two factors) and against the classic unbiased ANOVA
estimate of the variance of a grand mean (three factors), and the interval's edge cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from metamers.stats.crossed import (
    InnerFactor,
    correction_weights,
    corrected_variance,
    crossed_interval,
    subset_estimates,
)

FACTORS = ("images", "generators", "evaluators")


def _design(shape=(7, 4, 3), seed=0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A balanced 3-way array with every main effect and interaction, and its rows' levels."""
    rng = np.random.default_rng(seed)
    a, b, c = shape
    y = (rng.normal(size=(a, 1, 1)) + rng.normal(size=(1, b, 1)) + 0.7 * rng.normal(size=(1, 1, c))
         + 0.5 * rng.normal(size=(a, b, 1)) + 0.5 * rng.normal(size=(1, b, c)) + 0.6 * rng.normal(size=shape))
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return y, {name: g.ravel() for name, g in zip(FACTORS, grids)}


def _effects(y: np.ndarray) -> dict[frozenset, np.ndarray]:
    """The ANOVA effects of every subset of the axes (each broadcast to ``y``'s shape)."""
    axes = range(y.ndim)
    means = {frozenset(s): y.mean(axis=tuple(a for a in axes if a not in s), keepdims=True)
             for k in range(y.ndim + 1) for s in itertools.combinations(axes, k)}
    effects = {}
    for k in range(1, y.ndim + 1):
        for s in itertools.combinations(axes, k):
            e = means[frozenset(s)].copy()
            for j in range(k):
                for sub in itertools.combinations(s, j):
                    e = e - (effects[frozenset(sub)] if sub else means[frozenset()])
            effects[frozenset(s)] = e
    return effects


def test_each_subsets_bootstrap_variance_equals_the_hand_computation():
    # balanced design: V_S = sum over T in S of mean(effect_T^2) / prod_{f in T} n_f (multinomial
    # resampling of each factor in S; the weights' sum is constant, so the estimate is linear)
    y, factors = _design()
    effects = _effects(y)
    estimates, levels = subset_estimates(y.ravel(), factors, 40_000, seed=3)
    assert levels == dict(zip(FACTORS, y.shape))
    for subset, est in estimates.items():
        axes = {FACTORS.index(f) for f in subset}
        hand = sum(np.mean(effects[frozenset(t)] ** 2) / np.prod([y.shape[a] for a in t])
                   for k in range(1, len(axes) + 1) for t in itertools.combinations(sorted(axes), k))
        assert np.var(est) == pytest.approx(hand, rel=0.04), sorted(subset)
        assert est.mean() == pytest.approx(y.mean(), abs=4 * np.sqrt(hand / 40_000) + 1e-12)


def test_the_correction_is_the_unbiased_anova_estimate_of_the_grand_means_variance():
    # with each subset's exact bootstrap variance, the corrected variance equals
    # (MS_A + MS_B + MS_C - MS_AB - MS_AC - MS_BC + MS_ABC) / (a b c), the random-effects ANOVA's
    # unbiased estimate of Var(grand mean) (mean squares: sums of squares over their degrees of freedom)
    y, _ = _design(shape=(6, 5, 4), seed=1)
    effects = _effects(y)
    n = dict(zip(FACTORS, y.shape))
    exact = {frozenset(FACTORS[a] for a in s):
             sum(np.mean(effects[frozenset(t)] ** 2) / np.prod([y.shape[a] for a in t])
                 for k in range(1, len(s) + 1) for t in itertools.combinations(s, k))
             for k in range(1, 4) for s in itertools.combinations(range(3), k)}
    ms = {s: y.size * np.mean(e ** 2) / np.prod([y.shape[a] - 1 for a in s]) for s, e in effects.items()}
    anova = sum((-1) ** (len(s) + 1) * v for s, v in ms.items()) / y.size
    weights = correction_weights(n)
    assert sum(weights[s] * exact[s] for s in weights) == pytest.approx(anova, rel=1e-10)


def test_two_factors_equal_rsatoolboxs_dual_bootstrap_where_its_cap_does_not_bind():
    from rsatoolbox.util.inference_util import _dual_bootstrap

    rng = np.random.default_rng(0)
    equal = 0
    for _ in range(60):
        n_rdm, n_pattern = int(rng.integers(2, 40)), int(rng.integers(2, 80))
        v_rdm, v_pattern = rng.random(2)
        v_both = v_rdm + v_pattern + rng.random() * rng.choice([0.05, 0.5, 3.0])
        expected = float(_dual_bootstrap(np.array([v_both, v_rdm, v_pattern]), n_rdm=n_rdm, n_pattern=n_pattern))
        got = corrected_variance({frozenset(["models"]): v_rdm, frozenset(["images"]): v_pattern,
                                  frozenset(["models", "images"]): v_both}, {"models": n_rdm, "images": n_pattern})
        if expected < v_both:  # rsatoolbox's cap at the all-factor variance does not bind: the same formula
            assert got == pytest.approx(expected, rel=1e-12)
            equal += 1
        else:  # it binds: here the small-sample formula stands, at least that cap
            assert got >= v_both * (1 - 1e-12)
    assert equal >= 20


def test_intervals_contain_their_estimate_clip_to_bounds_and_say_when_there_is_none():
    y, factors = _design(shape=(20, 6, 6), seed=2)
    p = 1 / (1 + np.exp(-3 - y.ravel()))  # near 1: a symmetric interval would pass 1
    r = crossed_interval(p, factors, 300, 0.95, 0, bounds=(0.0, 1.0))
    assert r.low <= r.value <= r.high <= 1.0 and r.note == "" and r.levels == {"images": 20, "generators": 6,
                                                                                   "evaluators": 6}
    assert r.dof >= 5 and set(r.one_factor) == set(FACTORS)
    one = crossed_interval(y.ravel()[factors["generators"] == 0], {k: v[factors["generators"] == 0]
                                                                     for k, v in factors.items()}, 300, 0.95, 0)
    assert np.isnan(one.low) and one.note == "one level of generators: no interval over generators"
    few = crossed_interval(y.ravel(), factors | {"evaluators": factors["evaluators"] % 3}, 300, 0.95, 0)
    assert few.note == "rests on few models (3 evaluators)" and few.low < few.value < few.high


def test_an_inner_factor_is_resampled_inside_the_values_and_checked():
    rng = np.random.default_rng(4)
    values = rng.normal(size=12)
    models = np.repeat(np.arange(4), 3)
    draws = values + rng.normal(0, 0.5, size=(200, 12))
    r = crossed_interval(values, {"models": models}, 200, 0.9, 1, InnerFactor("images", draws, 30))
    assert r.levels == {"models": 4, "images": 30}
    # the images-only diagnostic is the percentile interval of the draws' row means
    assert r.one_factor["images"] == pytest.approx(tuple(np.percentile(draws.mean(axis=1), [5, 95])))
    with pytest.raises(ValueError, match=r"inner draws of shape \(100, 12\), expected \(200, 12\)"):
        crossed_interval(values, {"models": models}, 200, 0.9, 1, InnerFactor("images", draws[:100], 30))


def test_module_examples():
    import doctest

    import metamers.stats.crossed as crossed

    assert doctest.testmod(crossed).failed == 0


def test_a_correlations_interval_uses_the_weighted_pearson_on_fishers_scale():
    from metamers.stats.crossed import weighted_pearson

    rng = np.random.default_rng(5)
    gen, ev = np.meshgrid(np.arange(6), np.arange(5), indexing="ij")
    x = rng.normal(size=gen.shape) + rng.normal(size=6)[:, None]
    y = 0.6 * x + rng.normal(size=gen.shape) + rng.normal(size=5)[None, :]
    values = np.stack([x.ravel(), y.ravel()], axis=1)
    # weights are multiplicities: the weighted r is the r of the rows repeated that many times
    w = rng.integers(0, 4, size=len(values)).astype(float)
    repeated = np.repeat(values, w.astype(int), axis=0)
    assert weighted_pearson(values, w) == pytest.approx(np.corrcoef(repeated.T)[0, 1], abs=1e-12)
    r = crossed_interval(values, {"generators": gen.ravel(), "evaluators": ev.ravel()}, 400, 0.95, 0,
                         scale_name="fisher", statistic=weighted_pearson)
    assert r.value == pytest.approx(np.corrcoef(values.T)[0, 1], abs=1e-12)
    assert -1 < r.low < r.value < r.high < 1


def test_rows_that_do_not_vary_have_no_interval_and_a_proportion_near_zero_keeps_its_estimate():
    # every metamer wrong (or right): no resample differs, so there is nothing to infer from
    factors = {"images": np.arange(6) % 3, "generators": np.arange(6) // 3, "evaluators": np.arange(6) % 2}
    for constant in (0.0, 1.0):
        r = crossed_interval(np.full(6, constant), factors, 200, 0.95, 0, bounds=(0.0, 1.0), scale_name="logit")
        assert r.value == constant and np.isnan(r.low) and r.note == "the rows do not vary: no interval"
    # one right of 24: the log-odds interval holds the estimate and stays in [0, 1]
    big = {"images": np.arange(24) % 6, "generators": np.arange(24) // 12, "evaluators": (np.arange(24) // 6) % 2}
    r = crossed_interval(np.eye(24)[0], big, 300, 0.95, 0, bounds=(0.0, 1.0), scale_name="logit")
    assert 0.0 <= r.low <= r.value == 1 / 24 <= r.high <= 1.0


def test_a_model_in_both_roles_is_one_factor_resampled_once_per_draw():
    from metamers.stats.crossed import _row_weights

    m = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    codes = np.array([[0, 1], [1, 0], [0, 2], [2, 2]])  # g -> e rows, the last a model on itself
    np.testing.assert_array_equal(_row_weights(m, codes), [[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    # by_relation: another seed (models in both roles) is one factor of pairs; disjoint roles are two
    import pandas as pd

    from metamers.stats.by_relation import model_factors

    seeds = model_factors(pd.DataFrame({"generator": ["a", "b", "c"], "evaluator": ["b", "c", "a"]}))
    assert list(seeds) == ["models"] and seeds["models"].shape == (3, 2)
    assert list(model_factors(pd.DataFrame({"generator": ["a", "b"], "evaluator": ["x", "y"]}))) == [
        "generators", "evaluators"]
