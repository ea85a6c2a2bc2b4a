"""The representation test's measures: RDMs and their comparisons (against rsatoolbox), CKA
(against the feature-space formulas), permutations and bootstrap samples, reductions of wide
layers, and the out-of-distribution AUROC."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
import torch

from metamers.stats.cka import CKA_MEASURES, unbiased_centre_gram
from metamers.stats.ood import auroc, max_softmax
from metamers.stats.rdm import RDM_KINDS, rdm, upper
from metamers.stats.reduction import Reduction, random_projection
from metamers.stats.representation import MEASURES, SET_MEASURE_COLUMNS, set_measures
from metamers.stats.resampling import bootstrap_samples, p_value, pair_weights, percentile_interval, permutations
from metamers.stats.rsa import RDM_COMPARISONS, compare_rdms
from test_interval_forms import ENUMERATED, enumerated_linear_cka

with warnings.catch_warnings():  # rsatoolbox is a test dependency: the field's reference implementation
    warnings.simplefilter("ignore")
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import RDMs, calc_rdm
    from rsatoolbox.rdm import compare as rsa_compare

#: Our comparison name -> rsatoolbox's method name.
RSATOOLBOX = {"pearson": "corr", "spearman": "spearman", "kendall_tau_a": "tau-a", "cosine": "cosine"}


def _pair(n: int, d: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = a + rng.normal(size=(n, d))
    if ties:  # few distinct values: RDMs with many tied distances
        a, b = np.round(a), np.round(b)
    return a, b


def _rsatoolbox_rdm(x: np.ndarray, kind: str):
    data = Dataset(x, obs_descriptors={"index": np.arange(len(x))})
    if kind == "correlation":
        return calc_rdm(data, method="correlation")
    rdms = calc_rdm(data, method="euclidean")  # squared distance over the number of units
    return RDMs(np.sqrt(rdms.dissimilarities * x.shape[1]), pattern_descriptors={"index": np.arange(len(x))})


def test_correlation_rdm_equals_rsatoolbox_and_euclidean_scipy():
    a, _ = _pair(15, 40, 0)
    assert np.abs(upper(rdm(a, "correlation")) - calc_rdm(Dataset(a), method="correlation").dissimilarities[0]).max() < 1e-12
    assert np.abs(upper(rdm(a, "euclidean")) - scipy.spatial.distance.pdist(a)).max() < 1e-10
    # float32 torch activations of any shape are flattened and summed in float64
    t = torch.from_numpy(a.astype(np.float32)).reshape(15, 4, 10)
    assert np.abs(rdm(t) - rdm(a.astype(np.float32).astype(np.float64))).max() < 1e-12
    assert set(RDM_KINDS) == {"correlation", "euclidean"}


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("kind", ["correlation", "euclidean"])
@pytest.mark.parametrize("method", list(RDM_COMPARISONS))
def test_comparison_value_permutations_and_bootstrap_equal_rsatoolbox(method, kind, ties):
    n = 11
    a, b = _pair(n, 6 if ties else 30, 1, ties)
    x, y_matrix = upper(rdm(a, kind)), rdm(b, kind)
    assert np.abs(x - _rsatoolbox_rdm(a, kind).dissimilarities[0]).max() < 1e-10
    # rsatoolbox compares our distances (its own differ in the last bits, which would split ties)
    index = {"index": np.arange(n)}
    ra, rb = RDMs(x[None], pattern_descriptors=index), RDMs(upper(y_matrix)[None], pattern_descriptors=index)
    if ties:
        assert len(np.unique(np.round(x, 12))) < len(x)  # the case has tied distances
    comparison = RDM_COMPARISONS[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert abs(comparison.value(x, upper(y_matrix)) - rsa_compare(ra, rb, method=RSATOOLBOX[method])[0, 0]) < 1e-10
        rng = np.random.default_rng(2)
        perms = permutations(n, 6, rng)
        expected = [rsa_compare(ra, RDMs(upper(y_matrix[p][:, p])[None]), method=RSATOOLBOX[method])[0, 0]
                    for p in perms]
        np.testing.assert_allclose(comparison.permuted(x, y_matrix, perms), expected, rtol=0, atol=1e-10)
        np.testing.assert_allclose(comparison.permuted(x, y_matrix, perms, threads=2), expected, rtol=0, atol=1e-10)
        samples = bootstrap_samples(n, 6, rng)
        # rsatoolbox's subsample_pattern drops the self-pairs a sample creates (NaN distances), but
        # compares two copies of one distance, which the rank comparisons leave out: theirs by
        # enumeration (test_interval_forms)
        expected = [ENUMERATED[method](x, upper(y_matrix), s) if method in ENUMERATED else
                    rsa_compare(ra.subsample_pattern("index", s), rb.subsample_pattern("index", s),
                                method=RSATOOLBOX[method])[0, 0] for s in samples]
        np.testing.assert_allclose(comparison.bootstrap(x, upper(y_matrix), samples), expected, rtol=0, atol=1e-10)


def test_compare_rdms_dispatches_and_rejects_bad_input():
    a, b = _pair(8, 10, 3)
    assert compare_rdms(rdm(a), rdm(b), "spearman") == pytest.approx(
        scipy.stats.spearmanr(upper(rdm(a)), upper(rdm(b))).statistic, abs=1e-12)
    with pytest.raises(KeyError, match="unknown RDM comparison 'kendall'.*kendall_tau_a"):
        compare_rdms(rdm(a), rdm(b), "kendall")
    with pytest.raises(ValueError, match="different sizes"):
        compare_rdms(rdm(a), rdm(b[:5]))
    with pytest.raises(ValueError, match="not the upper triangle"):
        compare_rdms(np.ones(7), np.ones(7))


def _feature_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. (2019), eq. 4: ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``, features centred."""
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def _hsic_unbiased(k: np.ndarray, ell: np.ndarray) -> float:
    """Song et al. (2012), eq. 5."""
    n = len(k)
    k, ell = k.copy(), ell.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(ell, 0)
    one = np.ones(n)
    return (np.trace(k @ ell) + (one @ k @ one) * (one @ ell @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ k @ ell @ one) / (n * (n - 3))


def test_cka_equals_feature_space_and_unbiased_hsic_formulas():
    x, y = _pair(20, 12, 4)
    y = y @ np.random.default_rng(5).normal(size=(12, 7))
    k, ell = x @ x.T, y @ y.T
    assert CKA_MEASURES["linear_cka"].value(k, ell) == pytest.approx(_feature_cka(x, y), abs=1e-12)
    expected = _hsic_unbiased(k, ell) / np.sqrt(_hsic_unbiased(k, k) * _hsic_unbiased(ell, ell))
    assert CKA_MEASURES["debiased_cka"].value(k, ell) == pytest.approx(expected, abs=1e-12)
    # the unbiased centring's inner product is the unbiased HSIC times n (n - 3)
    n = len(k)
    assert (unbiased_centre_gram(k) * unbiased_centre_gram(ell)).sum() / (n * (n - 3)) == pytest.approx(
        _hsic_unbiased(k, ell), rel=1e-10)


@pytest.mark.parametrize("name", list(CKA_MEASURES))
def test_cka_invariances_and_identity(name):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(16, 9))
    y = x @ rng.normal(size=(9, 9)) + rng.normal(size=(16, 9))
    q, _ = np.linalg.qr(rng.normal(size=(9, 9)))
    measure = CKA_MEASURES[name]
    base = measure.value(x @ x.T, y @ y.T)
    for transformed in (x @ q, 3.7 * x, 0.01 * x @ q):
        assert measure.value(transformed @ transformed.T, y @ y.T) == pytest.approx(base, abs=1e-10)
    assert measure.value(x @ x.T, x @ x.T) == pytest.approx(1.0, abs=1e-12)


def test_debiased_cka_is_near_zero_for_independent_data_where_linear_cka_is_not():
    rng = np.random.default_rng(7)
    biased, debiased = [], []
    for _ in range(30):
        x, y = rng.normal(size=(10, 200)), rng.normal(size=(10, 200))
        biased.append(CKA_MEASURES["linear_cka"].value(x @ x.T, y @ y.T))
        debiased.append(CKA_MEASURES["debiased_cka"].value(x @ x.T, y @ y.T))
    assert np.mean(biased) > 0.5         # few images of many units: linear CKA is far from 0
    assert abs(np.mean(debiased)) < 0.05


def _brute_hsic(k, ell, w):
    """The unbiased HSIC U-statistic over tuples of distinct images, each weighted by the product
    of its images' weights, by enumeration."""
    n = len(w)
    sums = {}
    for r in (2, 3, 4):
        num = den = 0.0
        for t in itertools.permutations(range(n), r):
            weight = np.prod(w[list(t)])
            if weight:
                den += weight
                num += weight * {2: lambda i, j: k[i, j] * ell[i, j],
                                 3: lambda i, j, q: k[i, j] * ell[i, q],
                                 4: lambda i, j, q, r_: k[i, j] * ell[q, r_]}[r](*t)
        if not den:  # fewer than r distinct images
            return np.nan
        sums[r] = num / den
    return sums[2] + sums[4] - 2 * sums[3]


def _direct_cka_bootstrap(k, ell, samples, debiased):
    """Each sample's value computed directly: linear CKA of the sample's Gram matrices built
    explicitly, less the products of two copies of one image (test_interval_forms); debiased CKA
    as the U-statistic over the sample's distinct images weighted by their multiplicities (two
    copies of one image are never a pair), by enumeration."""
    out = []
    for s in samples:
        if debiased:
            w = np.bincount(s, minlength=len(k)).astype(float)
            k0, l0 = k - np.diag(np.diag(k)), ell - np.diag(np.diag(ell))
            with np.errstate(invalid="ignore"):
                out.append(_brute_hsic(k0, l0, w) / np.sqrt(_brute_hsic(k0, k0, w) * _brute_hsic(l0, l0, w)))
            continue
        out.append(enumerated_linear_cka(k, ell, s))
    return np.array(out)


@pytest.mark.parametrize("name", list(CKA_MEASURES))
def test_cka_resampled_forms_equal_explicit_matrices(name):
    x, y = _pair(8, 8, 8)
    x, y = np.abs(x), np.abs(y)  # non-negative, as ReLU activations: far from 0 off the diagonal
    k, ell = x @ x.T, y @ y.T
    rng = np.random.default_rng(9)
    perms, samples = permutations(8, 10, rng), bootstrap_samples(8, 12, rng)
    measure = CKA_MEASURES[name]
    expected = [measure.value(k, ell[p][:, p]) for p in perms]
    np.testing.assert_allclose(measure.permuted(k, ell, perms), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(measure.bootstrap(k, ell, samples),
                               _direct_cka_bootstrap(k, ell, samples, name == "debiased_cka"), rtol=1e-9, atol=1e-12)


def test_pair_weights_count_the_distinct_pairs_of_a_sample():
    sample = np.array([[0, 0, 2, 3, 3, 3]])
    n = 6
    counts = np.zeros((n, n))
    for a in range(n):
        for c in range(a + 1, n):
            i, j = sorted((sample[0, a], sample[0, c]))
            if i != j:
                counts[i, j] += 1
    np.testing.assert_array_equal(pair_weights(sample, n)[0], counts[np.triu_indices(n, 1)])


def test_resampling_draws_are_reproducible_and_valid():
    a = permutations(9, 5, np.random.default_rng(1))
    assert (np.sort(a, axis=1) == np.arange(9)).all()
    np.testing.assert_array_equal(a, permutations(9, 5, np.random.default_rng(1)))
    assert not np.array_equal(a, permutations(9, 5, np.random.default_rng(2)))
    b = bootstrap_samples(9, 5, np.random.default_rng(1))
    assert b.shape == (5, 9) and b.min() >= 0 and b.max() < 9
    assert p_value(0.5, np.array([0.1, 0.6, 0.5, np.nan])) == pytest.approx(3 / 5)
    assert percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    with pytest.raises(ValueError, match="confidence"):
        percentile_interval(np.arange(3.0), 95)


@pytest.mark.parametrize("measure", ["rsa_correlation_pearson", "rsa_euclidean_kendall_tau_a", "linear_cka",
                                     "debiased_cka"])
def test_permutation_p_values_are_uniform_under_the_null_and_small_for_planted_structure(measure):
    rng = np.random.default_rng(10)
    p = []
    for seed in range(200):
        x, y = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))  # metamers unrelated to references
        p.append(set_measures(x, y, [measure], n_permutations=49, n_bootstrap=0, seed=seed)[0]["p_value"])
    # p-values take the values k / 50: compare with that discrete uniform
    levels = np.arange(1, 51) / 50
    ecdf = np.searchsorted(np.sort(p), levels, side="right") / len(p)
    assert np.abs(ecdf - levels).max() < 0.1  # the KS distance (the 1% critical value for 200 draws is 0.115)
    assert scipy.stats.kstest(np.array(p) - rng.uniform(0, 1 / 50, len(p)), "uniform").pvalue > 0.01
    x = rng.normal(size=(30, 20))
    planted = set_measures(x, x + 0.3 * rng.normal(size=x.shape), [measure], n_permutations=199, n_bootstrap=0)
    assert planted[0]["p_value"] == pytest.approx(1 / 200)


def test_bootstrap_interval_covers_the_population_cka_at_about_its_nominal_rate():
    # rows x ~ N(0, I_p), y = x + e, e ~ N(0, I_p): population CKA = 1 / (1 + 1) = 0.5
    rng = np.random.default_rng(11)
    covered = []
    for seed in range(150):
        x = rng.normal(size=(60, 10))
        y = x + rng.normal(size=(60, 10))
        row = set_measures(x, y, ["debiased_cka"], n_permutations=0, n_bootstrap=200, confidence=0.9, seed=seed)[0]
        covered.append(row["ci_low"] <= 0.5 <= row["ci_high"])
    assert 0.8 <= np.mean(covered) <= 0.97


def test_debiased_cka_bootstrap_is_centred_on_non_negative_activations():
    """Non-negative activations (as after a ReLU) sit far from 0 off the diagonal: bootstrap
    samples must not pair two copies of one image (an entry of 0 would be a pair of similarity 0),
    or their values fall far below the estimate. Here every interval holds its own estimate and
    the draws' median sits within 0.02 of it."""
    rng = np.random.default_rng(11)
    inside, shift = [], []
    for seed in range(40):
        x = np.abs(rng.normal(size=(30, 50))) + 0.5
        y = x + 0.3 * np.abs(rng.normal(size=(30, 50)))
        row = set_measures(x, y, ["debiased_cka"], n_permutations=0, n_bootstrap=200, confidence=0.9, seed=seed)[0]
        inside.append(row["ci_low"] <= row["value"] <= row["ci_high"])
        shift.append(np.nanmedian(row["draws"]) - row["value"])
    assert np.mean(inside) >= 0.95 and np.max(np.abs(shift)) < 0.02


def test_set_measures_rows_and_errors():
    x, y = _pair(12, 9, 12)
    rows = set_measures(x, y, n_permutations=20, n_bootstrap=20, seed=3)
    assert [r["measure"] for r in rows] == list(MEASURES) and len(MEASURES) == 10
    assert all(set(r) == {*SET_MEASURE_COLUMNS, "draws"} for r in rows)
    assert all(r["ci_low"] <= r["ci_high"] and 0 < r["p_value"] <= 1 and r["n_images"] == 12 for r in rows)
    assert all(r["n_pairs_dropped"] == 0 for r in rows)  # no constant image: no undefined distance (test_rsa_nan)
    assert [r["measure"] for r in rows if r["unstable"]] == ["debiased_cka"]  # 12 images (test_interval_forms)
    assert all((r["ci_low"], r["ci_high"]) == percentile_interval(r["draws"], 0.95) and r["draws"].shape == (20,)
               for r in rows)
    again = set_measures(x, y, n_permutations=20, n_bootstrap=20, seed=3)  # the seed fixes every resample
    assert [{k: v for k, v in r.items() if k != "draws"} for r in rows] == \
        [{k: v for k, v in r.items() if k != "draws"} for r in again]
    assert all(np.array_equal(a["draws"], b["draws"]) for a, b in zip(rows, again))
    # given samples replace the seeded ones: the linear CKA of each resample, recomputed
    samples = np.random.default_rng(0).integers(0, 12, size=(5, 12))
    given = {r["measure"]: r for r in set_measures(x, y, ["linear_cka"], n_permutations=0, samples=samples)}
    expected = [enumerated_linear_cka(x @ x.T, y @ y.T, s) for s in samples]
    np.testing.assert_allclose(given["linear_cka"]["draws"], expected, rtol=1e-9)
    with pytest.raises(ValueError, match=r"bootstrap samples of shape \(5, 12\) do not index 11 images"):
        set_measures(x[:11], y[:11], ["linear_cka"], n_permutations=0, samples=samples)
    by_name = {r["measure"]: r for r in rows}
    assert by_name["rsa_correlation_spearman"]["value"] == pytest.approx(
        scipy.stats.spearmanr(upper(rdm(x)), upper(rdm(y))).statistic, abs=1e-12)
    with pytest.raises(KeyError, match="unknown representation measure 'cka'.*linear_cka"):
        set_measures(x, y, ["cka"])
    with pytest.raises(ValueError, match="12 references but 11 metamers"):
        set_measures(x, y[:11])


def test_reduction_is_reproducible_from_its_seed_and_keeps_narrow_layers():
    x = torch.randn(5, 3000)
    r = Reduction("random_projection", max_dim=256, seed=4)
    assert torch.equal(r(x, "relu1"), Reduction("random_projection", 256, 4)(x, "relu1"))
    assert not torch.equal(r(x, "relu1"), Reduction("random_projection", 256, 5)(x, "relu1"))
    assert not torch.equal(r(x, "relu1"), r(x, "relu2"))  # each layer its own projection
    assert r(x, "relu1").shape == (5, 256)
    assert torch.equal(Reduction("random_projection", 4096, 4)(x, "relu1"), x)  # narrow: kept
    assert r.describe(3000, "relu1")["stored_dim"] == 256
    # the projection is the Gaussian matrix it says it is: E[|xR|^2 / k] = |x|^2
    y = random_projection(torch.eye(3000)[:1], 20000, 0)
    assert float(y.pow(2).sum()) == pytest.approx(1.0, rel=0.05)
    pooled = Reduction("spatial_mean", max_dim=16)(torch.arange(2 * 4 * 9.0).reshape(2, 4, 3, 3))
    torch.testing.assert_close(pooled, torch.arange(2 * 4 * 9.0).reshape(2, 4, 9).mean(-1))
    with pytest.raises(ValueError, match="spatial axes"):
        Reduction("spatial_mean", max_dim=16)(torch.randn(2, 40))
    with pytest.raises(KeyError, match="unknown reduction type 'pca'"):
        Reduction.from_config({"type": "pca"})


def test_kept_projection_blocks_give_the_values_drawn_afresh(monkeypatch):
    from metamers.stats import reduction

    x = torch.randn(3, 9000)  # three blocks of units
    reduction._BLOCKS.clear()
    fresh = random_projection(x, 64, 7)
    assert len(reduction._BLOCKS) == 3
    kept = random_projection(x, 64, 7)  # from the kept blocks
    monkeypatch.setattr(reduction, "CACHE_BYTES", 0)
    reduction._BLOCKS.clear()
    assert torch.equal(fresh, kept) and torch.equal(fresh, random_projection(x, 64, 7)) and not reduction._BLOCKS
    monkeypatch.setattr(reduction, "CACHE_BYTES", 4096 * 64 * 4)  # room for one block: the oldest go
    random_projection(x, 64, 7)
    assert list(reduction._BLOCKS) == [(7, 2, 9000 - 2 * 4096, 64)]


def test_random_projection_moves_rsa_and_cka_little_on_a_real_layer():
    """LeNet-5 relu1 (25,088 units) of 40 MNIST test digits and of noisy copies of them: the
    measures of the projected activations (4,096 values) against those of the full layer."""
    from metamers.data import load_image_set
    from metamers.models import load_model
    from metamers.models.layers import LayerReader

    model = load_model({"lenet": {"source": "advertorch", "weights": "clntrained"}}, "lenet")
    images = load_image_set({"type": "mnist_test", "per_class": 4, "seed": 0})
    x = images.tensor(images.ids, (1, 28, 28))
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    reader = LayerReader(model, ["relu1"])
    with torch.no_grad():
        a, b = reader(x)["relu1"], reader(noisy)["relu1"]
    full = {r["measure"]: r["value"] for r in set_measures(a, b, n_permutations=0, n_bootstrap=0)}
    reduce = Reduction("random_projection", max_dim=4096, seed=0)
    projected = {r["measure"]: r["value"]
                 for r in set_measures(reduce(a, "relu1"), reduce(b, "relu1"), n_permutations=0, n_bootstrap=0)}
    moved = {m: abs(projected[m] - full[m]) for m in full}
    assert max(moved.values()) < 0.02, moved
    assert 0.2 < full["linear_cka"] < 0.999  # the noisy copies are neither identical nor unrelated


def test_auroc_equals_pairwise_count_and_max_softmax():
    rng = np.random.default_rng(13)
    pos, neg = np.round(rng.normal(1, 1, 30), 1), np.round(rng.normal(0, 1, 25), 1)  # with ties
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auroc(pos, neg) == pytest.approx(pairs, abs=1e-12)
    assert auroc(pos, pos) == pytest.approx(0.5)
    logits = rng.normal(size=(4, 10))
    expected = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).max(1)
    np.testing.assert_allclose(max_softmax(logits), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="both kinds"):
        auroc(pos, [])


def test_a_bootstrap_sample_of_copies_of_one_image_gives_nan_not_an_error():
    x, y = _pair(5, 8, 14)
    samples = np.array([[2, 2, 2, 2, 2], [0, 1, 2, 3, 4]])
    for name, comparison in RDM_COMPARISONS.items():
        values = comparison.bootstrap(upper(rdm(x)), upper(rdm(y)), samples)
        assert np.isnan(values[0]) and values[1] == pytest.approx(comparison.value(upper(rdm(x)), upper(rdm(y)))), name
    for name, measure in CKA_MEASURES.items():
        values = measure.bootstrap(x @ x.T, y @ y.T, samples)
        assert np.isnan(values[0]) and values[1] == pytest.approx(measure.value(x @ x.T, y @ y.T)), name
    # percentile intervals leave such samples out
    assert percentile_interval(np.array([np.nan, 1.0, 2.0]), 0.5) == pytest.approx((1.25, 1.75))
