"""The representation test's natural-image baseline (:mod:`metamers.stats.baseline`): the
baseline images (same class, from the null pool, never a reference, independent of the
references' order), the difference with its paired bootstrap interval and p-value against
explicit computations, Benjamini-Hochberg q-values against a hand implementation and scipy, and
the floor of a p-value."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.stats import false_discovery_control

import metamers.stats.baseline as baseline_module
from metamers.data.pools import baseline_images
from metamers.stats.baseline import BASELINE, DIFFERENCE, at_floor, baseline_rows, bootstrap_p_value, q_values
from metamers.stats.pairs import NullError
from metamers.stats.representation import set_measures
from metamers.stats.resampling import bootstrap_samples

MEASURES = ["rsa_correlation_pearson", "rsa_euclidean_spearman", "rsa_correlation_cosine",
            "rsa_euclidean_kendall_tau_a", "linear_cka", "debiased_cka"]


def _sets(n=12, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(n, 40))
    metamer = reference + 0.6 * rng.normal(size=(n, 40)) + shift    # keeps much of the structure
    base = 0.5 * reference + rng.normal(size=(n, 40))                # same classes: keeps some
    return reference, metamer, base


def test_the_difference_its_interval_and_p_value_equal_explicit_computations():
    reference, metamer, base = _sets()
    n_perm, n_boot = 60, 80
    samples = bootstrap_samples(len(reference), n_boot, np.random.default_rng(9))
    met_rows = set_measures(reference, metamer, MEASURES, n_perm, n_boot, 0.9, seed=3, samples=samples)
    rows = baseline_rows(reference, base, met_rows, n_perm, n_boot, 0.9, seed=3, samples=samples)
    by_name = {r["measure"]: r for r in rows}
    assert list(by_name) == [f"{m}{s}" for m in MEASURES for s in (BASELINE, DIFFERENCE)]
    base_rows = {r["measure"]: r for r in set_measures(reference, base, MEASURES, n_perm, n_boot, 0.9, seed=3,
                                                       samples=samples)}
    for met in met_rows:
        name = met["measure"]
        own = by_name[name + BASELINE]
        assert own["value"] == base_rows[name]["value"] and own["p_value"] == base_rows[name]["p_value"]
        diff = by_name[name + DIFFERENCE]
        assert diff["value"] == pytest.approx(met["value"] - base_rows[name]["value"], abs=1e-12)
        # paired: sample b of the difference is both measures on the images of sample b
        np.testing.assert_allclose(diff["draws"], met["draws"] - base_rows[name]["draws"], atol=1e-12)
        assert diff["p_value"] == pytest.approx((1 + np.sum(diff["draws"] <= 0)) / (1 + n_boot))
        assert (diff["ci_low"], diff["ci_high"]) == pytest.approx(tuple(np.percentile(diff["draws"], [5, 95])))
    # metamers that keep more of the references' structure than the baseline: a small p-value
    assert by_name["rsa_correlation_pearson" + DIFFERENCE]["p_value"] < 0.05


def test_a_shared_offset_of_the_metamers_does_not_change_the_difference():
    # what broke a swap test (mixing metamers and natural images in one RDM) leaves this one alone:
    # correlation distances and centred CKA ignore an offset shared by all metamers
    reference, metamer, base = _sets()
    names = ["rsa_correlation_pearson", "linear_cka"]
    plain = baseline_rows(reference, base, set_measures(reference, metamer, names, 0, 50, seed=1), 0, 50, 0.95, 1)
    shifted = _sets(shift=5.0)[1]
    moved = baseline_rows(reference, base, set_measures(reference, shifted, names, 0, 50, seed=1), 0, 50, 0.95, 1)
    for a, b in zip(plain, moved):
        assert a["value"] == pytest.approx(b["value"], abs=1e-9)
        assert a["p_value"] == pytest.approx(b["p_value"], nan_ok=True)


def test_bootstrap_p_values_and_floors():
    assert bootstrap_p_value(np.array([0.1, 0.2, -0.1, np.nan])) == pytest.approx(2 / 4)
    assert bootstrap_p_value(np.array([0.3, 0.2])) == pytest.approx(1 / 3)
    assert np.isnan(bootstrap_p_value(None)) and np.isnan(bootstrap_p_value(np.array([np.nan])))
    assert at_floor([1 / 1001, 2 / 1001, np.nan], 1000).tolist() == [True, False, False]


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
    # and whatever the order of the references
    assert baseline_images(images_cfg, None, refs.ids[::-1], labels[::-1], seed=0)[1] == ids[::-1]
    assert baseline_images(images_cfg, None, refs.ids, labels, seed=1)[1] != ids
    with pytest.raises(NullError, match=r"too few \(class 0: 2 references, 1 pool images; "
                                        r".*class 3: 2 references, 0 pool images;"):
        small = {"type": "mnist_test", "per_class": 1, "seed": 5}   # a pool of the test digits, 1 per class
        baseline_images(images_cfg, small, refs.ids, labels, seed=0)
