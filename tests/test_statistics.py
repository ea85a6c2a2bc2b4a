"""Vectorised statistics and null distributions against scipy and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from metamers.metamer_test import passes
from metamers.nulls import NullError, compute_nulls, pair_indices, pool_size_for, threshold_of
from metamers.registry import Classifier
from metamers.statistics import (
    average_ranks,
    pairwise_values,
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


@pytest.mark.parametrize("name", ["spearman", "pearson", "snr_db", "snr_db_feather2023"])
def test_pairwise_gram_path_equals_the_paired_form(tied, name):
    rows, cols = pair_indices(len(tied), 200, seed=3)
    got = pairwise_values(tied, name, rows, cols, chunk_columns=7)
    # for the SNR, image rows[p] is the reference: statistic(metamer=cols, reference=rows)
    expected = statistic(name)(tied[cols], tied[rows])
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)
    if name == "spearman":
        ref = [scipy.stats.spearmanr(tied[i], tied[j]).statistic for i, j in zip(rows.tolist(), cols.tolist())]
        np.testing.assert_allclose(got.numpy(), ref, atol=1e-6)


def test_identical_rank_orders_are_exactly_one_and_do_not_exceed_it():
    """Two different vectors with the same rank order: rho = 1 on both paths, so a metamer with
    that rank order does not exceed a null whose maximum is such a pair."""
    pool = torch.tensor([[0.1, 0.5, 0.2, 0.9, 0.3, 0.7, 0.05, 0.4, 0.8, 0.6],
                         [1.0, 6.0, 2.0, 9.5, 3.0, 7.0, 0.5, 4.0, 8.0, 6.5]], dtype=torch.float64)
    null = pairwise_values(pool.float(), "spearman", torch.tensor([0]), torch.tensor([1]))
    metamer = spearman(pool[:1] * 3 + 1, pool[:1])
    assert null.item() == 1.0 and metamer.item() == 1.0
    assert not passes({"spearman": metamer}, {"spearman": null.item()}).item()


def test_constant_activations_never_pass():
    a = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    for name in ("spearman", "pearson"):
        assert torch.isnan(statistic(name)(a, b)).all()
    values = {"spearman": spearman(a, b), "pearson": pearson(a, b)}
    assert passes(values, {"spearman": -1.0, "pearson": -1.0}).tolist() == [False, False]


def test_pass_is_strictly_above_every_threshold():
    values = {"spearman": torch.tensor([0.9, 0.95, 0.97, 0.99]), "snr_db": torch.tensor([30.0, 30.0, 5.0, 20.0])}
    thresholds = {"spearman": 0.95, "snr_db": 20.0}
    assert passes(values, thresholds).tolist() == [False, False, False, False]
    thresholds = {"spearman": 0.94, "snr_db": 19.9}
    assert passes(values, thresholds).tolist() == [False, True, False, True]


def test_threshold_definitions():
    values = np.array([0.1, 0.5, np.nan, 0.9, 0.3])
    assert threshold_of(values, "max") == 0.9
    assert threshold_of(values, 0.5) == pytest.approx(np.quantile([0.1, 0.5, 0.9, 0.3], 0.5))
    with pytest.raises(NullError, match="every pair of the null is undefined"):
        threshold_of(np.array([np.nan]), "max")


def test_pool_size_and_pairs():
    assert pool_size_for(1_000_000) == 1415 and 1415 * 1414 // 2 >= 1_000_000 > 1414 * 1413 // 2
    assert [pool_size_for(n) for n in (1, 2, 3, 4, 6, 7)] == [2, 3, 3, 4, 4, 5]
    rows, cols = pair_indices(5, 10, seed=0)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(i, j) for i in range(5) for j in range(i + 1, 5)]
    rows, cols = pair_indices(50, 300, seed=1)
    pairs = set(zip(rows.tolist(), cols.tolist()))
    assert len(pairs) == 300 and all(i < j for i, j in pairs)
    again = pair_indices(50, 300, seed=1)
    assert torch.equal(rows, again[0]) and torch.equal(cols, again[1])
    assert not torch.equal(rows, pair_indices(50, 300, seed=2)[0])


def test_null_of_a_hand_made_pool_and_its_seed(tiny_linear):
    pool = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    nulls = compute_nulls(tiny_linear, "fc", pool, ["spearman", "snr_db"], n_pairs=40, seed=5, keep_values=True)
    acts = tiny_linear.net.fc(pool.flatten(1)).detach()
    rows, cols = pair_indices(12, 40, seed=5)
    expected = [scipy.stats.spearmanr(acts[i], acts[j]).statistic for i, j in zip(rows.tolist(), cols.tolist())]
    np.testing.assert_allclose(nulls["spearman"].values, expected, atol=1e-6)
    assert nulls["spearman"].threshold == pytest.approx(max(expected), abs=1e-6)
    assert nulls["spearman"].n_pairs == 40 and nulls["spearman"].histogram.sum() == 40
    again = compute_nulls(tiny_linear, "fc", pool, ["spearman"], n_pairs=40, seed=5, keep_values=True)
    np.testing.assert_array_equal(again["spearman"].values, nulls["spearman"].values)
    other = compute_nulls(tiny_linear, "fc", pool, ["spearman"], n_pairs=40, seed=6, keep_values=True)
    assert not np.array_equal(other["spearman"].values, nulls["spearman"].values)
    q = compute_nulls(tiny_linear, "fc", pool, ["spearman"], n_pairs=40, seed=5, threshold=0.9)
    assert q["spearman"].threshold == pytest.approx(np.quantile(expected, 0.9), abs=1e-6)
    with pytest.raises(NullError, match="12 images give 66 pairs; 67 were requested"):
        compute_nulls(tiny_linear, "fc", pool, ["spearman"], n_pairs=67, seed=5)


def test_undefined_pairs_are_counted_not_thresholded():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.ReLU())
    model = Classifier(net, mean=(0.0,), std=(1.0,), input_shape=(1, 2, 3), num_classes=6)
    pool = torch.rand(6, 1, 2, 3, generator=torch.Generator().manual_seed(0))
    pool[0] = 0.0  # a constant activation vector
    nulls = compute_nulls(model, "1", pool, ["pearson"], n_pairs=15, seed=0, keep_values=True)
    assert nulls["pearson"].n_undefined == 5
    assert nulls["pearson"].threshold == pytest.approx(np.nanmax(nulls["pearson"].values))
