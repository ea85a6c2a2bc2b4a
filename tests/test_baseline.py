"""The representation test's natural-image baseline (:mod:`metamers.stats.baseline`): the
baseline images (same class, from the null pool, never a reference), the difference and its
paired swap test against explicit computations, Benjamini-Hochberg q-values against a hand
implementation and scipy, and the permutation floor."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.stats import false_discovery_control

import metamers.stats.baseline as baseline_module
from metamers.data.pools import baseline_images
from metamers.stats.baseline import (
    BASELINE,
    DIFFERENCE,
    at_floor,
    baseline_rows,
    q_values,
    swap_p_value,
    swap_patterns,
)
from metamers.stats.pairs import NullError
from metamers.stats.representation import set_measures

MEASURES = ["rsa_correlation_pearson", "rsa_euclidean_spearman", "rsa_correlation_cosine", "rsa_euclidean_kendall_tau_a",
            "linear_cka", "debiased_cka"]  # vectorized swap nulls (the first three) and looped ones


def _sets(n=12, seed=0):
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(n, 40))
    metamer = reference + 0.6 * rng.normal(size=(n, 40))          # keeps much of the structure
    base = 0.5 * reference + rng.normal(size=(n, 40))             # same classes: keeps some
    return reference, metamer, base


def test_the_difference_and_its_swap_null_equal_explicit_computations():
    reference, metamer, base = _sets()
    n_perm, n_boot = 60, 80
    met_rows = set_measures(reference, metamer, MEASURES, n_perm, n_boot, 0.9, seed=3)
    rows = baseline_rows(reference, metamer, base, met_rows, n_perm, n_boot, 0.9, seed=3)
    by_name = {r["measure"]: r for r in rows}
    assert list(by_name) == [f"{m}{s}" for m in MEASURES for s in (BASELINE, DIFFERENCE)]
    base_rows = {r["measure"]: r for r in set_measures(reference, base, MEASURES, n_perm, n_boot, 0.9, seed=3)}
    patterns = swap_patterns(len(metamer), n_perm, np.random.default_rng([3, 2]))
    for met in met_rows:
        name = met["measure"]
        own = by_name[name + BASELINE]
        assert own["value"] == base_rows[name]["value"] and own["p_value"] == base_rows[name]["p_value"]
        diff = by_name[name + DIFFERENCE]
        assert diff["value"] == pytest.approx(met["value"] - base_rows[name]["value"], abs=1e-12)
        np.testing.assert_allclose(diff["draws"], met["draws"] - base_rows[name]["draws"], atol=1e-12)
        # the swap null: each pattern's statistic from explicitly swapped image sets
        null = []
        for s in patterns:
            one = np.where(s[:, None], base, metamer)
            other = np.where(s[:, None], metamer, base)
            values = [set_measures(reference, x, [name], 0, 0)[0]["value"] for x in (one, other)]
            null.append(values[0] - values[1])
        assert diff["p_value"] == pytest.approx((1 + np.sum(np.array(null) >= diff["value"] - 1e-12)) / (1 + n_perm))
        assert diff["ci_low"] <= diff["value"] <= diff["ci_high"]
    # metamers that keep more of the references' structure than the baseline: a small p-value
    assert by_name["rsa_correlation_pearson" + DIFFERENCE]["p_value"] < 0.05


def test_exchangeable_metamers_and_baseline_images_give_uniform_swap_p_values():
    # under the null (both sides drawn alike) the p-values are about uniform
    ps = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        reference = rng.normal(size=(10, 20))
        metamer, base = (0.7 * reference + rng.normal(size=(10, 20)) for _ in range(2))
        met_rows = set_measures(reference, metamer, ["rsa_correlation_pearson"], 0, 0)
        rows = baseline_rows(reference, metamer, base, met_rows, 99, 0, 0.95, seed)
        ps.append(rows[1]["p_value"])
    assert 0.3 < np.mean(ps) < 0.7 and np.mean(np.array(ps) <= 0.1) < 0.25


def _bh(p):
    """Benjamini-Hochberg by hand: q_(i) = min_{k >= i} p_(k) m / k."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p)
    q = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1)
    return out


def test_q_values_are_benjamini_hochberg_over_the_defined_p_values():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=30), rng.uniform(0, 0.01, size=10), [np.nan, np.nan]])
    got = q_values(p)
    assert np.isnan(got[-2:]).all()
    np.testing.assert_allclose(got[:-2], _bh(p[:-2]), rtol=1e-12)
    np.testing.assert_allclose(got[:-2], false_discovery_control(p[:-2], method="bh"), rtol=1e-12)
    assert at_floor([1 / 1001, 2 / 1001, np.nan], 1000).tolist() == [True, False, False]
    assert swap_p_value(np.nan, np.zeros(3)) != swap_p_value(np.nan, np.zeros(3))  # NaN


def test_module_examples():
    assert doctest.testmod(baseline_module).failed == 0


def test_baseline_images_are_other_images_of_each_references_class(monkeypatch):
    images_cfg = {"type": "mnist_test", "per_class": 2, "seed": 0}
    from metamers.data.image_set import load_image_set

    refs = load_image_set(images_cfg)
    labels = [refs.labels[i] for i in refs.ids]
    pool, ids = baseline_images(images_cfg, None, refs.ids, labels, seed=0)
    assert len(ids) == len(refs.ids) == len(set(ids)) and not set(ids) & set(refs.ids)
    assert [pool.labels[i] for i in ids] == labels
    assert baseline_images(images_cfg, None, refs.ids, labels, seed=0)[1] == ids   # the same for every job
    assert baseline_images(images_cfg, None, refs.ids, labels, seed=1)[1] != ids
    with pytest.raises(NullError, match=r"too few \(class 0: 2 references, 1 pool images; "
                                        r".*class 3: 2 references, 0 pool images;"):
        small = {"type": "mnist_test", "per_class": 1, "seed": 5}   # a pool of the test digits, 1 per class
        baseline_images(images_cfg, small, refs.ids, labels, seed=0)
