"""Vectorised statistics and null distributions against scipy and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from metamers.models import Classifier
from metamers.stats.activation_store import ActivationStore
from metamers.stats.comparisons import passes
from metamers.stats.nulls import compute_nulls, threshold_of
from metamers.stats.pairs import (
    NullError,
    draw_pairs,
    n_possible_pairs,
    pair_from_index,
)
from metamers.stats.statistics import (
    average_ranks,
    pair_values_from_gram,
    pearson,
    snr_db,
    snr_db_feather2023,
    spearman,
    statistic,
)


@pytest.fixture
def tied() -> torch.Tensor:
    """ReLU-like rows with many exact zeros and repeated values."""
    rng = np.random.default_rng(0)
    x = np.maximum(rng.integers(-4, 6, size=(30, 80)), 0).astype(np.float64)
    return torch.from_numpy(x)


def test_average_ranks_equal_scipy(tied):
    np.testing.assert_array_equal(average_ranks(tied).numpy(), scipy.stats.rankdata(tied.numpy(), axis=1))


def test_paired_statistics_equal_scipy(tied):
    a, b = tied[:15], tied[15:]
    rho = [scipy.stats.spearmanr(a[i], b[i]).statistic for i in range(15)]
    r = [scipy.stats.pearsonr(a[i], b[i]).statistic for i in range(15)]
    np.testing.assert_allclose(spearman(a, b).numpy(), rho, atol=1e-12)
    np.testing.assert_allclose(pearson(a, b).numpy(), r, atol=1e-12)
    ratio = np.linalg.norm(b, axis=1) / np.linalg.norm(a - b, axis=1)
    np.testing.assert_allclose(snr_db(a, b).numpy(), 20 * np.log10(ratio), rtol=1e-12)
    np.testing.assert_allclose(snr_db_feather2023(a, b).numpy(), 10 * np.log10(ratio), rtol=1e-12)


def gram_values(acts: torch.Tensor, name: str, reference, other, **store) -> torch.Tensor:
    """Statistic ``name`` of the pairs through an ActivationStore (in memory unless told)."""
    with ActivationStore(len(acts), acts[0].numel(), [name], **store) as s:
        for start in range(0, len(acts), 4):  # rows added in blocks, as a null job does
            s.add(start, acts[start : start + 4])
        on_disk = s.on_disk
        gram = s.grams()[name]
    return pair_values_from_gram(name, gram, torch.as_tensor(reference), torch.as_tensor(other)), on_disk


@pytest.mark.parametrize("name", ["spearman", "pearson", "snr_db", "snr_db_feather2023"])
@pytest.mark.parametrize("where", ["memory", "disk"])
def test_gram_path_equals_the_paired_form(tied, name, where, tmp_path):
    reference, other = draw_pairs(len(tied), 200, seed=3)
    # 80 columns in 12 chunks of 7 (the last one padded); on disk: a budget below the store's size
    store = {"chunk_columns": 7, "memory_bytes": 8000 if where == "disk" else 1 << 30, "scratch_dir": tmp_path}
    with ActivationStore(30, 80, [name], **store) as s:
        assert (s.columns, s.n_chunks, s.on_disk) == (7, 12, where == "disk")
    got, on_disk = gram_values(tied.float(), name, reference, other, **store)
    assert on_disk == (where == "disk")
    assert not list(tmp_path.iterdir())  # the scratch file is gone afterwards
    # for the SNR, image reference[p] is the reference: statistic(metamer=other, reference=reference)
    expected = statistic(name)(tied[other], tied[reference])
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    if name == "spearman":
        ref = [scipy.stats.spearmanr(tied[i], tied[j]).statistic for i, j in zip(reference, other)]
        np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)


def test_store_rejects_rows_of_the_wrong_width_or_missing_rows():
    store = ActivationStore(3, 5, ["pearson"])
    with pytest.raises(ValueError, match="rows have 4 values; this store holds 5 per row"):
        store.add(0, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="rows 2..4 are outside the store's 3 rows"):
        store.add(2, torch.zeros(2, 5))
    store.add(0, torch.rand(2, 5))
    with pytest.raises(ValueError, match="1 of the store's 3 rows were never added"):
        store.grams()


def test_identical_rank_orders_are_exactly_one_and_tie_with_the_null():
    """Two different vectors with the same rank order: rho = 1 exactly on both paths. Under the
    published rule a metamer with that rank order ties the null's maximum and passes; under
    the strict rule it does not."""
    pool = torch.tensor([[0.1, 0.5, 0.2, 0.9, 0.3, 0.7, 0.05, 0.4, 0.8, 0.6],
                         [1.0, 6.0, 2.0, 9.5, 3.0, 7.0, 0.5, 4.0, 8.0, 6.5]])
    null, _ = gram_values(pool, "spearman", [0], [1])
    metamer = spearman(pool[:1].double() * 3 + 1, pool[:1].double())
    assert null.item() == 1.0 and metamer.item() == 1.0
    assert passes({"spearman": metamer}, {"spearman": null.item()}).item()
    assert passes({"spearman": metamer}, {"spearman": null.item()}, "at_least").item()
    assert not passes({"spearman": metamer}, {"spearman": null.item()}, "greater").item()


def test_constant_activations_never_pass():
    a = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    for name in ("spearman", "pearson"):
        assert torch.isnan(statistic(name)(a, b)).all()
    values = {"spearman": spearman(a, b), "pearson": pearson(a, b)}
    for comparison in ("at_least", "greater"):
        assert passes(values, {"spearman": -1.0, "pearson": -1.0}, comparison).tolist() == [False, False]


def test_a_value_equal_to_the_threshold_passes_and_one_just_below_fails():
    t_rho, t_snr = 0.95, 20.0
    below = float(np.nextafter(t_rho, 0.0))
    values = {"spearman": torch.tensor([t_rho, below, 0.99, 0.99], dtype=torch.float64),
              "snr_db": torch.tensor([t_snr, 30.0, float(np.nextafter(t_snr, 0.0)), float("inf")], dtype=torch.float64)}
    thresholds = {"spearman": t_rho, "snr_db": t_snr}
    assert passes(values, thresholds, "at_least").tolist() == [True, False, False, True]
    assert passes(values, thresholds, "greater").tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="unknown comparison 'above'; valid: at_least, greater"):
        passes(values, thresholds, "above")


def test_threshold_definitions():
    values = np.array([0.1, 0.5, np.nan, 0.9, 0.3])
    assert threshold_of(values, "max") == 0.9
    assert threshold_of(values, 0.5) == pytest.approx(np.quantile([0.1, 0.5, 0.9, 0.3], 0.5))
    with pytest.raises(NullError, match="every pair of the null is undefined"):
        threshold_of(np.array([np.nan]), "max")


@pytest.mark.parametrize("k", [2, 3, 7, 50, 1415])
def test_pair_index_is_the_row_major_upper_triangle(k):
    rows, cols = torch.triu_indices(k, k, offset=1)
    i, j = pair_from_index(np.arange(n_possible_pairs(k)), k)
    np.testing.assert_array_equal(i, rows.numpy())
    np.testing.assert_array_equal(j, cols.numpy())


def test_large_pair_indices_are_exact():
    k = 5000  # the published pool: 12,497,500 pairs; check the ends and a random sample by formula
    idx = np.r_[0, 1, k - 2, k - 1, n_possible_pairs(k) - 1, np.random.default_rng(0).integers(0, n_possible_pairs(k), 1000)]
    i, j = pair_from_index(idx, k)
    assert (0 <= i).all() and (i < j).all() and (j < k).all()
    np.testing.assert_array_equal(i * (2 * k - i - 1) // 2 + (j - i - 1), idx)


def test_pairs_are_distinct_pairs_of_distinct_images_covering_the_pool():
    reference, other = draw_pairs(5, 10, seed=0)
    assert sorted(zip(np.minimum(reference, other).tolist(), np.maximum(reference, other).tolist())) == [
        (i, j) for i in range(5) for j in range(i + 1, 5)]
    k, n = 300, 20_000
    reference, other = draw_pairs(k, n, seed=1)
    assert (reference != other).all()
    unordered = set(zip(np.minimum(reference, other).tolist(), np.maximum(reference, other).tolist()))
    assert len(unordered) == n
    assert set(reference.tolist()) | set(other.tolist()) == set(range(k))
    # the reference side is random: about half the pairs have the smaller index as the reference
    assert 0.48 < np.mean(reference < other) < 0.52
    again = draw_pairs(k, n, seed=1)
    assert np.array_equal(again[0], reference) and np.array_equal(again[1], other)
    assert not np.array_equal(draw_pairs(k, n, seed=2)[0], reference)
    assert not np.array_equal(draw_pairs(k, n, seed=1, draw=1)[0], reference)
    with pytest.raises(NullError, match="12 images give 66 pairs; 67 were requested"):
        draw_pairs(12, 67, seed=0)


def test_disjoint_pairs_use_each_image_once():
    reference, other = draw_pairs(100, 50, seed=4, sampling="disjoint")
    assert sorted(np.r_[reference, other].tolist()) == list(range(100))
    reference, other = draw_pairs(1000, 300, seed=4, sampling="disjoint")
    assert len(set(np.r_[reference, other].tolist())) == 600
    with pytest.raises(NullError, match="51 disjoint pairs need 102 images; the pool has 100"):
        draw_pairs(100, 51, seed=4, sampling="disjoint")
    with pytest.raises(NullError, match="unknown pair sampling 'some'; valid: all_pairs, disjoint"):
        draw_pairs(100, 5, seed=4, sampling="some")


def test_null_of_a_hand_made_pool_and_its_seed(tiny_linear):
    pool = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    nulls = compute_nulls(tiny_linear, "fc", pool, ["spearman", "snr_db"], n_pairs=40, seed=5, keep_values=True)
    acts = tiny_linear.net.fc(pool.flatten(1)).detach().double().numpy()
    reference, other = draw_pairs(12, 40, seed=5)
    expected = [scipy.stats.spearmanr(acts[i], acts[j]).statistic for i, j in zip(reference, other)]
    np.testing.assert_allclose(nulls["spearman"].values, expected, atol=1e-6)
    snr = [20 * np.log10(np.linalg.norm(acts[i]) / np.linalg.norm(acts[i] - acts[j])) for i, j in zip(reference, other)]
    np.testing.assert_allclose(nulls["snr_db"].values, snr, rtol=1e-5)
    assert nulls["spearman"].threshold == pytest.approx(max(expected), abs=1e-6)
    assert nulls["spearman"].n_pairs == 40 and nulls["spearman"].histogram.sum() == 40
    again = compute_nulls(tiny_linear, "fc", pool, ["spearman"], n_pairs=40, seed=5, keep_values=True)
    np.testing.assert_array_equal(again["spearman"].values, nulls["spearman"].values)
    other_seed = compute_nulls(tiny_linear, "fc", pool, ["spearman"], n_pairs=40, seed=6, keep_values=True)
    assert not np.array_equal(other_seed["spearman"].values, nulls["spearman"].values)
    q = compute_nulls(tiny_linear, "fc", pool, ["spearman"], n_pairs=40, seed=5, threshold=0.9)
    assert q["spearman"].threshold == pytest.approx(np.quantile(expected, 0.9), abs=1e-6)
    with pytest.raises(NullError, match="12 images give 66 pairs; 67 were requested"):
        compute_nulls(tiny_linear, "fc", pool, ["spearman"], n_pairs=67, seed=5)


def test_draws_give_the_thresholds_spread(tiny_linear, tmp_path):
    pool = torch.rand(30, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    acts = tiny_linear.net.fc(pool.flatten(1)).detach().double().numpy()
    nulls = compute_nulls(tiny_linear, "fc", pool, ["pearson"], n_pairs=20, seed=2, n_draws=4)
    expected = []
    for d in range(4):
        reference, other = draw_pairs(30, 20, seed=2, draw=d)
        expected.append(max(scipy.stats.pearsonr(acts[i], acts[j]).statistic for i, j in zip(reference, other)))
    np.testing.assert_allclose(nulls["pearson"].draw_thresholds, expected, atol=1e-12)
    assert nulls["pearson"].threshold == nulls["pearson"].draw_thresholds[0]
    assert len(set(np.round(expected, 12))) > 1
    # the same null from a pool loaded on demand, in forward passes of 7 images (float32
    # rounding differs with the batch size), through a scratch file
    lazy = compute_nulls(tiny_linear, "fc", lambda a, b: pool[a:b], ["pearson"], n_pairs=20, seed=2, n_draws=4,
                         n_pool=30, memory_gb=1e-9, scratch_dir=tmp_path, batch_size=7)
    np.testing.assert_allclose(lazy["pearson"].draw_thresholds, nulls["pearson"].draw_thresholds, rtol=1e-6)
    assert not list(tmp_path.iterdir())


def test_undefined_pairs_are_counted_not_thresholded():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.ReLU())
    model = Classifier(net, mean=(0.0,), std=(1.0,), input_shape=(1, 2, 3), num_classes=6)
    pool = torch.rand(6, 1, 2, 3, generator=torch.Generator().manual_seed(0))
    pool[0] = 0.0  # a constant activation vector
    nulls = compute_nulls(model, "1", pool, ["pearson"], n_pairs=15, seed=0, keep_values=True)
    assert nulls["pearson"].n_undefined == 5
    assert nulls["pearson"].threshold == pytest.approx(np.nanmax(nulls["pearson"].values))
