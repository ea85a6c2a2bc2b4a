"""Bootstrap forms whose intervals contain their estimate (issue 26, item 4).

A bootstrap sample repeats images, and so repeats distances and Gram entries: each resampled form
leaves out what compares two copies of one image or of one pair of images with each other
(:mod:`metamers.stats.rsa`, :mod:`metamers.stats.cka`). Here each form is checked against the
statistic computed on the explicitly repeated sample with those terms dropped (by enumeration),
against the plain value when no image repeats, and, on LeNet-5 activations of digits against
metamer-like sets, for intervals that contain their estimate; debiased CKA's intervals over too
few images are marked unstable.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metamers.stats.cka import CKA_MEASURES, MIN_STABLE_IMAGES, centre_gram
from metamers.stats.rdm import rdm, upper
from metamers.stats.representation import MEASURES, set_measures, unstable
from metamers.stats.resampling import bootstrap_samples, permutations
from metamers.stats.rsa import RDM_COMPARISONS

# ---- the forms by enumeration of the repeated sample (also used by test_representation, test_rsa_nan) ----


def sample_distances(x: np.ndarray, y: np.ndarray, sample: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distances of bootstrap sample ``sample`` of two RDMs' upper triangles ``x``, ``y``: one
    for each pair of draws of two different images whose distance is defined in both, with the
    index of its pair of original images (equal indices: copies of one distance)."""
    n = len(sample)
    i, j = np.triu_indices(n, 1)
    index = np.full((n, n), -1)
    index[i, j] = index[j, i] = np.arange(len(i))
    pair = index[sample[i], sample[j]]
    pair = pair[pair >= 0]
    pair = pair[~(np.isnan(x[pair]) | np.isnan(y[pair]))]
    return x[pair], y[pair], pair


def _signs(v: np.ndarray) -> np.ndarray:
    return np.sign(v[:, None] - v[None, :])


def enumerated_tau_a(x: np.ndarray, y: np.ndarray, sample: np.ndarray) -> float:
    """Kendall's tau-a over the pairs of the sample's distances that are not two copies of one."""
    xe, ye, pair = sample_distances(x, y, sample)
    compared = np.triu(pair[:, None] != pair[None, :], 1)
    return float((_signs(xe) * _signs(ye))[compared].sum() / compared.sum()) if compared.any() else np.nan


def enumerated_spearman(x: np.ndarray, y: np.ndarray, sample: np.ndarray) -> float:
    """Spearman's rho as ``sum_a S_x(a) S_y(a) / sqrt(...)`` with ``S(a) = sum_b sign(d_a - d_b)``,
    a sum over triples ``(a, b, c)`` less those whose ``b`` and ``c`` are two different copies."""
    xe, ye, pair = sample_distances(x, y, sample)
    sx, sy = _signs(xe), _signs(ye)
    kept = (pair[:, None] != pair[None, :]) | np.eye(len(pair), dtype=bool)

    def triples(s: np.ndarray, t: np.ndarray) -> float:
        return float(np.einsum("ab,ac,bc->", s, t, kept))

    with np.errstate(invalid="ignore", divide="ignore"):
        return triples(sx, sy) / np.sqrt(triples(sx, sx) * triples(sy, sy))


def enumerated_linear_cka(k: np.ndarray, ell: np.ndarray, sample: np.ndarray) -> float:
    """Linear CKA of the sample's Gram matrices ``K[s][:, s]``, ``L[s][:, s]`` centred, over the pairs
    of draws less those of two different draws of one image."""
    ks, ls = centre_gram(k[sample][:, sample]), centre_gram(ell[sample][:, sample])
    kept = (sample[:, None] != sample[None, :]) | np.eye(len(sample), dtype=bool)
    return float((ks * ls)[kept].sum() / np.sqrt((ks * ks)[kept].sum() * (ls * ls)[kept].sum()))


#: RDM comparison -> its bootstrap form by enumeration (Pearson's and the cosine's are rsatoolbox's).
ENUMERATED = {"kendall_tau_a": enumerated_tau_a, "spearman": enumerated_spearman}


def _sets(n: int, seed: int, ties: bool = False, constant: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """References and metamer-like sets ``(n, 6)``: with ``ties``, few distinct values (tied
    distances); ``constant``: an image with constant activations (undefined correlation distances)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 6))
    b = a + 0.5 * rng.normal(size=a.shape)
    if ties:
        a, b = np.round(a), np.round(b)
    if constant is not None:
        a[constant] = b[constant] = 0.0
    return a, b


#: Samples of 7 images: drawn, and two with heavy repeats.
SAMPLES = np.concatenate([bootstrap_samples(7, 6, np.random.default_rng(0)),
                          np.array([[0, 0, 0, 1, 1, 2, 3], [5, 5, 5, 5, 6, 6, 2]])])


@pytest.mark.parametrize("case", [{}, {"ties": True}, {"constant": 3}, {"ties": True, "constant": 0}])
@pytest.mark.parametrize("kind", ["correlation", "euclidean"])
@pytest.mark.parametrize("method", list(ENUMERATED))
def test_rank_comparisons_in_bootstrap_samples_equal_the_repeated_sample_less_the_copies(method, kind, case):
    a, b = _sets(7, 1, **case)
    x, y = upper(rdm(a, kind)), upper(rdm(b, kind))
    if case.get("ties"):
        assert len(np.unique(x[np.isfinite(x)])) < np.isfinite(x).sum()  # tied distances
    if "constant" in case and kind == "correlation":
        assert np.isnan(x).any()  # undefined distances
    expected = [ENUMERATED[method](x, y, s) for s in SAMPLES]
    comparison = RDM_COMPARISONS[method]
    np.testing.assert_allclose(comparison.bootstrap(x, y, SAMPLES), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(comparison.bootstrap(x, y, SAMPLES, threads=2), expected, rtol=0, atol=1e-12)


def test_a_tau_a_sample_counts_the_pairs_of_distances_that_are_not_copies():
    """Images 0, 0, 1, 2 of 4: the distances d01 and d02 twice, d12 once. Of the 10 pairs of them,
    2 are copies; the other 8 compare d01 with d02 (4 times, concordant), d01 with d12 (twice,
    concordant) and d02 with d12 (twice, discordant)."""
    x = np.array([1.0, 2.0, 5.0, 3.0, 6.0, 7.0])  # d01, d02, d03, d12, d13, d23
    y = np.array([1.0, 3.0, 5.0, 2.0, 6.0, 7.0])
    value = RDM_COMPARISONS["kendall_tau_a"].bootstrap(x, y, np.array([[0, 0, 1, 2]]))[0]
    assert value == (4 + 2 - 2) / 8  # rsatoolbox, counting the copies as ties: 4 / 10


@pytest.mark.parametrize("positive", [False, True])
def test_linear_cka_in_bootstrap_samples_equals_the_repeated_sample_less_the_copies(positive):
    a, b = _sets(7, 2)
    if positive:  # as ReLU activations: the self-similarities sit far above the rest
        a, b = np.abs(a), np.abs(b)
    k, ell = a @ a.T, b @ b.T
    expected = [enumerated_linear_cka(k, ell, s) for s in SAMPLES]
    np.testing.assert_allclose(CKA_MEASURES["linear_cka"].bootstrap(k, ell, SAMPLES), expected, rtol=1e-10)


@pytest.mark.parametrize("ties", [False, True])
def test_a_sample_without_repeats_gives_the_plain_value(ties):
    """A sample that is a permutation of the images (every multiplicity 1) has no copies: its
    value is the measure's, exactly for tau-a (the same integer counts)."""
    a, b = _sets(9, 3, ties=ties)
    perms = permutations(9, 4, np.random.default_rng(4))
    for kind in ("correlation", "euclidean"):
        x, y = upper(rdm(a, kind)), upper(rdm(b, kind))
        tau = RDM_COMPARISONS["kendall_tau_a"]
        assert (tau.bootstrap(x, y, perms) == tau.value(x, y)).all()
        rho = RDM_COMPARISONS["spearman"]
        np.testing.assert_allclose(rho.bootstrap(x, y, perms), rho.value(x, y), rtol=0, atol=1e-13)
    k, ell = a @ a.T, b @ b.T
    cka = CKA_MEASURES["linear_cka"]
    np.testing.assert_allclose(cka.bootstrap(k, ell, perms), cka.value(k, ell), rtol=0, atol=1e-13)


# ---- intervals on LeNet-5 activations ------------------------------------------------------------


@pytest.fixture(scope="module")
def lenet_activations() -> dict[str, np.ndarray]:
    """LeNet-5 relu1 (25,088 units) and relu3 (200) of 60 MNIST test digits (6 of each class), and
    relu1 of the digits with Gaussian pixel noise of standard deviation 0.6."""
    from metamers.data import load_image_set
    from metamers.models import load_model
    from metamers.models.layers import LayerReader

    model = load_model({"lenet": {"source": "advertorch", "weights": "clntrained"}}, "lenet")
    images = load_image_set({"type": "mnist_test", "per_class": 6, "seed": 0})
    x = images.tensor(images.ids, (1, 28, 28))
    noisy = (x + 0.6 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    reader = LayerReader(model, ["relu1", "relu3"])
    with torch.no_grad():
        clean, moved = reader(x), reader(noisy)
    return {"relu1": clean["relu1"].flatten(1).double().numpy(), "relu3": clean["relu3"].double().numpy(),
            "relu1_noisy": moved["relu1"].flatten(1).double().numpy()}


def test_every_interval_contains_its_estimate_on_metamer_like_sets(lenet_activations):
    """References: LeNet-5 activations of digits; metamers: the same plus noise of 1 % to 100 %
    of the activations' root mean square, from near copies (where counting copies' ties pulled
    tau-a and Spearman's samples below their estimate) to loose ones; sets of 10, 20 and 40
    images. Every measure's interval holds its estimate in every case."""
    rng = np.random.default_rng(5)
    missed = []
    for layer in ("relu1", "relu3"):
        acts = lenet_activations[layer]
        scale = np.sqrt(np.mean(acts**2))
        for noise in (0.01, 0.05, 0.3, 1.0):
            metamers = acts + noise * scale * rng.normal(size=acts.shape)
            for n in (10, 20, 40):
                idx = rng.choice(len(acts), n, replace=False)
                for row in set_measures(acts[idx], metamers[idx], n_permutations=0, n_bootstrap=300, seed=n):
                    assert np.isfinite([row["value"], row["ci_low"], row["ci_high"]]).all(), row["measure"]
                    if not row["ci_low"] - 1e-12 <= row["value"] <= row["ci_high"] + 1e-12:
                        missed.append((layer, noise, n, row["measure"], row["value"], row["ci_low"], row["ci_high"]))
    assert not missed, missed


def test_debiased_cka_intervals_over_few_images_are_marked_unstable(lenet_activations):
    """Over 20 images, debiased CKA's intervals between digits' relu1 activations and those of
    noisy digits reach beyond [-1, 1], the range of the estimate (a cosine of two matrices); from
    :data:`MIN_STABLE_IMAGES` on they do not. Rows say so, and only for debiased CKA."""
    a, b = lenet_activations["relu1"], lenet_activations["relu1_noisy"]
    reach = {}
    for n in (20, MIN_STABLE_IMAGES):
        rng = np.random.default_rng(6)
        rows = [set_measures(a[idx], b[idx], ["debiased_cka", "linear_cka"], n_permutations=0, n_bootstrap=1000,
                             seed=seed)
                for seed, idx in enumerate(rng.choice(len(a), n, replace=False) for _ in range(8))]
        reach[n] = np.mean([max(r[0]["ci_high"], -r[0]["ci_low"]) > 1 for r in rows])
        assert all(-1 <= r[0]["value"] <= 1 for r in rows)
        assert all(r[0]["unstable"] == (n < MIN_STABLE_IMAGES) and not r[1]["unstable"] for r in rows)
    assert reach[20] >= 0.5 and reach[MIN_STABLE_IMAGES] == 0, reach


def test_unstable_names_debiased_cka_below_the_threshold_and_the_rows_derived_from_it():
    assert [m for m in MEASURES if unstable(m, MIN_STABLE_IMAGES - 1)] == ["debiased_cka"]
    assert not any(unstable(m, MIN_STABLE_IMAGES) for m in MEASURES)
    assert unstable("debiased_cka_minus_baseline", 3) and not unstable("linear_cka_baseline", 3)
    with pytest.raises(KeyError, match="unknown representation measure 'cka_baseline'"):
        unstable("cka_baseline", 3)
