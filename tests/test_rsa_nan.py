"""Undefined RDM entries (issue 26, item 5): the correlation distance of an image with constant
activations is NaN. Every RDM comparison drops, pairwise, the pairs undefined in either RDM, as
rsatoolbox does, in its value and in every permutation and bootstrap sample; the representation
rows count the dropped pairs; a set without undefined pairs is computed as before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from metamers.stats import rsa
from metamers.stats.rdm import rdm, upper
from metamers.stats.representation import MEASURES, set_measures
from metamers.stats.resampling import bootstrap_samples, permutations
from metamers.stats.rsa import RDM_COMPARISONS, compare_rdms, undefined_pairs
from test_interval_forms import ENUMERATED

with warnings.catch_warnings():  # rsatoolbox is a test dependency: the field's reference implementation
    warnings.simplefilter("ignore")
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import RDMs, calc_rdm
    from rsatoolbox.rdm import compare as rsa_compare

#: Our comparison name -> rsatoolbox's method name.
RSATOOLBOX = {"pearson": "corr", "spearman": "spearman", "kendall_tau_a": "tau-a", "cosine": "cosine"}
N = 12


def _sets(constant: list[int], seed: int = 0, ties: bool = False, metamer_constant: list[int] | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """References and metamers ``(N, d)``; the images ``constant`` have constant activations (zero,
    as a ReLU layer that none of its units passes) among the references and, unless
    ``metamer_constant`` says otherwise, among the metamers."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(N, 6 if ties else 30))
    b = a + rng.normal(size=a.shape)
    if ties:  # few distinct values: RDMs with tied distances
        a, b = np.round(a), np.round(b)
    a[constant] = 0.0
    b[constant if metamer_constant is None else metamer_constant] = 0.0
    return a, b


def _rsatoolbox(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """rsatoolbox's comparison of two RDM vectors. rsatoolbox needs the NaNs of both at the same
    pairs (it raises otherwise), so a pair undefined in one is made undefined in both: the
    pairwise dropping this repository does."""
    undefined = np.isnan(x) | np.isnan(y)
    x, y = np.where(undefined, np.nan, x), np.where(undefined, np.nan, y)
    index = {"index": np.arange(N)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(rsa_compare(RDMs(x[None], pattern_descriptors=index), RDMs(y[None], pattern_descriptors=index),
                                 method=RSATOOLBOX[method])[0, 0])


def test_registry_names_match_rsatoolbox_methods():
    assert set(RDM_COMPARISONS) == set(RSATOOLBOX)


@pytest.mark.parametrize("constant", [[4], [4, 9]], ids=["one constant image", "two constant images"])
@pytest.mark.parametrize("method", list(RDM_COMPARISONS))
def test_value_equals_rsatoolbox_computed_independently(method, constant):
    a, b = _sets(constant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox divides by a zero norm: its NaNs
        ra = calc_rdm(Dataset(a), method="correlation")
        rb = calc_rdm(Dataset(b), method="correlation")
        expected = float(rsa_compare(ra, rb, method=RSATOOLBOX[method])[0, 0])
    # rsatoolbox's RDMs have the constant images' pairs undefined: N - 1 per image, one shared
    assert np.isnan(ra.dissimilarities).sum() == (N - 1 if len(constant) == 1 else 2 * N - 3)
    assert np.isfinite(expected)
    ours = compare_rdms(rdm(a), rdm(b), method)
    assert ours == pytest.approx(expected, abs=1e-10)
    [row] = set_measures(a, b, [f"rsa_correlation_{method}"], n_permutations=0, n_bootstrap=0)
    assert row["value"] == ours


@pytest.mark.parametrize("constant, metamer_constant, dropped", [
    ([4], None, N - 1),                # one constant image, in both sets
    ([4, 9], None, 2 * N - 3),         # two: each has N - 1 undefined pairs, and they share one
    ([4], [], N - 1),                  # constant among the references only
    ([4], [7], 2 * N - 3),             # a different image constant in each set
    ([], None, 0),
])
def test_dropped_pairs_are_counted_in_the_rows(constant, metamer_constant, dropped):
    a, b = _sets(constant, metamer_constant=metamer_constant)
    assert undefined_pairs(rdm(a), rdm(b)) == dropped
    rows = set_measures(a, b, n_permutations=30, n_bootstrap=30, seed=5)
    assert [r["measure"] for r in rows] == list(MEASURES)
    for r in rows:
        on_correlation = r["measure"].startswith("rsa_correlation_")
        assert r["n_pairs_dropped"] == (dropped if on_correlation else 0), r["measure"]
        assert r["n_images"] == N
        # every value, p-value and interval is finite: the undefined pairs no longer spread NaN
        assert np.isfinite([r["value"], r["p_value"], r["ci_low"], r["ci_high"]]).all(), r["measure"]
        assert 0 < r["p_value"] <= 1 and r["ci_low"] <= r["ci_high"]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("constant, metamer_constant", [([4], None), ([4, 9], None), ([4], [7]), ([4], [])])
@pytest.mark.parametrize("method", list(RDM_COMPARISONS))
def test_each_permutation_and_bootstrap_sample_drops_its_own_undefined_pairs(method, constant, metamer_constant,
                                                                            ties):
    a, b = _sets(constant, seed=1, ties=ties, metamer_constant=metamer_constant)
    x, y_matrix = upper(rdm(a)), rdm(b)
    y = upper(y_matrix)
    if ties:
        assert len(np.unique(x[np.isfinite(x)])) < np.isfinite(x).sum()  # the case has tied distances
    comparison = RDM_COMPARISONS[method]
    assert comparison.value(x, y) == pytest.approx(_rsatoolbox(x, y, method), abs=1e-10)
    rng = np.random.default_rng(2)
    perms = permutations(N, 12, rng)
    # a permutation moves the metamers' undefined pairs: each permuted pair of RDMs drops its own
    expected = [_rsatoolbox(x, upper(y_matrix[p][:, p]), method) for p in perms]
    np.testing.assert_allclose(comparison.permuted(x, y_matrix, perms), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(comparison.permuted(x, y_matrix, perms, threads=2), expected, rtol=0, atol=1e-10)
    samples = bootstrap_samples(N, 12, rng)
    # rsatoolbox's subsample_pattern makes a sample's self-pairs NaN; compare drops them with the
    # undefined distances the sample draws (but compares two copies of one distance, which the rank
    # comparisons leave out: theirs by enumeration, test_interval_forms)
    undefined = np.isnan(x) | np.isnan(y)
    index = {"index": np.arange(N)}
    ra = RDMs(np.where(undefined, np.nan, x)[None], pattern_descriptors=index)
    rb = RDMs(np.where(undefined, np.nan, y)[None], pattern_descriptors=index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [ENUMERATED[method](x, y, s) if method in ENUMERATED else
                    rsa_compare(ra.subsample_pattern("index", s), rb.subsample_pattern("index", s),
                                method=RSATOOLBOX[method])[0, 0] for s in samples]
    np.testing.assert_allclose(comparison.bootstrap(x, y, samples), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(comparison.bootstrap(x, y, samples, threads=2), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", list(RDM_COMPARISONS))
def test_comparisons_without_defined_pairs_give_nan(method):
    comparison = RDM_COMPARISONS[method]
    x = np.full(N * (N - 1) // 2, np.nan)
    y = np.arange(len(x), dtype=np.float64)
    assert np.isnan(comparison.value(x, y))
    assert np.isnan(comparison.permuted(x, rdm(np.random.default_rng(0).normal(size=(N, 5))), permutations(
        N, 3, np.random.default_rng(0)))).all()
    assert np.isnan(comparison.bootstrap(x, y, bootstrap_samples(N, 3, np.random.default_rng(0)))).all()


@pytest.mark.parametrize("ties", [False, True])
def test_a_set_without_undefined_pairs_takes_the_unchecked_path(monkeypatch, ties):
    """Without an undefined distance nothing changes: the value is the implementation's own (no
    subsetting), and the resampled forms never reach the code for undefined pairs, so every number
    of a study without constant images is the one it was, to the bit."""
    a, b = _sets([], seed=3, ties=ties)
    x, y_matrix = upper(rdm(a)), rdm(b)
    y = upper(y_matrix)
    assert undefined_pairs(x, y) == 0
    raw = {"pearson": rsa._CorrelationType(True, False), "spearman": rsa._CorrelationType(True, True),
           "cosine": rsa._CorrelationType(False, False), "kendall_tau_a": rsa._KendallTauA()}
    for method, comparison in RDM_COMPARISONS.items():
        assert comparison.value(x, y) == raw[method].value(x, y), method

    def fail(*args, **kwargs):
        raise AssertionError("the path for undefined pairs was taken")

    for name in ("_permuted_spearman_undefined", "_permuted_moments_undefined", "_scatter"):
        monkeypatch.setattr(rsa, name, fail)
    rng = np.random.default_rng(4)
    perms, samples = permutations(N, 10, rng), bootstrap_samples(N, 10, rng)
    for method, comparison in RDM_COMPARISONS.items():
        assert np.isfinite(comparison.permuted(x, y_matrix, perms)).all(), method
        assert np.isfinite(comparison.bootstrap(x, y, samples)).all(), method


@pytest.mark.parametrize("units", [30, 1000, 20000])
@pytest.mark.parametrize("level", [0.0, 0.1, 0.3, 1.7, -2.9])
def test_a_constant_image_has_undefined_correlation_distances_whatever_its_level(level, units):
    """Rounding in the Gram form leaves a constant image a variance of ~1e-14 of its mean square:
    without the check its correlations are noise clipped to distances of 0 or 2, not NaN."""
    rng = np.random.default_rng(7)
    a = rng.normal(size=(N, units)).astype(np.float32)
    a[[3, 8]] = level
    d = rdm(a)
    undefined = np.isnan(d)
    assert undefined[[3, 8]].sum() == 2 * (N - 1) and undefined.sum() == 2 * (2 * N - 3)
    assert not undefined[np.ix_(*[np.setdiff1d(np.arange(N), [3, 8])] * 2)].any()
    # the comparisons then drop the same pairs whatever the level: one value for all levels
    b = a + rng.normal(size=a.shape).astype(np.float32)
    zero = a.copy()
    zero[[3, 8]] = 0.0
    for method in RDM_COMPARISONS:
        expected = compare_rdms(rdm(zero), rdm(b), method)
        assert compare_rdms(d, rdm(b), method) == pytest.approx(expected, abs=1e-12), method


def test_a_nearly_constant_image_keeps_its_distances():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(N, 500))
    a[5] = 3.0 + 1e-5 * rng.normal(size=500)  # a variance 1e-11 of its mean square: still defined
    d = rdm(a)
    assert not np.isnan(d).any()
    assert np.abs(upper(d) - calc_rdm(Dataset(a), method="correlation").dissimilarities[0]).max() < 1e-6
