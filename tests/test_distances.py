"""Pixel distances of metamers and starting points from their references, against independent
computations (numpy, and scikit-image's SSIM)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from metamers.stats.distances import DISTANCES, at_equal_distance, pixel_distances


def _pairs(shape, seed=0):
    rng = np.random.default_rng(seed)
    reference = rng.random(shape)
    x = np.clip(reference + rng.normal(scale=0.15, size=shape), 0, 1)
    x[0] = rng.random(shape[1:])  # an unrelated image
    return x, reference


def _skimage_ssim(x: np.ndarray, reference: np.ndarray) -> float:
    channel = {"channel_axis": 0} if x.shape[0] > 1 else {}
    return structural_similarity(x.squeeze(0) if not channel else x, reference.squeeze(0) if not channel
                                 else reference, gaussian_weights=True, use_sample_covariance=False,
                                 data_range=1.0, **channel)


@pytest.mark.parametrize("shape", [(4, 1, 28, 28), (3, 3, 32, 32), (2, 3, 40, 23)])
def test_distances_equal_numpy_and_scikit_image(shape):
    x, reference = _pairs(shape)
    d = pixel_distances(torch.from_numpy(x), torch.from_numpy(reference))
    assert list(d) == list(DISTANCES) == ["l2", "rms", "ssim"]
    diff = (x - reference).reshape(len(x), -1)
    np.testing.assert_allclose(d["l2"].numpy(), np.sqrt((diff**2).sum(1)), rtol=1e-12)
    np.testing.assert_allclose(d["rms"].numpy(), np.sqrt((diff**2).mean(1)), rtol=1e-12)
    expected = [_skimage_ssim(x[i], reference[i]) for i in range(len(x))]
    np.testing.assert_allclose(d["ssim"].numpy(), expected, rtol=0, atol=1e-10)
    assert d["ssim"][0] < 0.2 < d["ssim"][1] < 1  # an unrelated image is far less similar than a noisy copy


def test_identical_images_are_at_distance_zero_and_ssim_one():
    x, _ = _pairs((2, 1, 28, 28))
    d = pixel_distances(torch.from_numpy(x), torch.from_numpy(x.copy()))
    assert d["l2"].tolist() == [0.0, 0.0] and d["rms"].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(d["ssim"].numpy(), 1.0, atol=1e-12)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"images \(1, 1, 8, 8\) and references \(1, 1, 8, 9\) differ in shape"):
        pixel_distances(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="SSIM needs images of at least 11 x 11 pixels, got 8 x 8"):
        pixel_distances(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(KeyError, match="unknown distance 'l1'; valid: l2, rms, ssim"):
        pixel_distances(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), ["l1"])


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 1, 0, 2]])
@pytest.mark.parametrize("distance", [2.0, 3.7, 5.5, 8.0])
def test_at_equal_distance_is_exact_for_geometric_iterations(order, distance):
    # tests until the first pass falling geometrically as the metamers near the reference:
    # iterations + 1 = exp(a + b d)
    d = np.array([2.0, 4.0, 6.0, 8.0])[order]
    iterations = np.exp(0.5 + 0.3 * d) - 1
    assert at_equal_distance(d, iterations, distance) == pytest.approx(math.exp(0.5 + 0.3 * distance) - 1,
                                                                       rel=1e-12)


def test_at_equal_distance_uses_the_bracketing_members_only():
    # the members at 1 and 9 are ignored: the nearest on either side of 4 are 3 and 5
    d, it = [1.0, 3.0, 5.0, 9.0], [1000.0, 9.0, 39.0, 1.0]
    assert at_equal_distance(d, it, 4.0) == pytest.approx(19.0)  # 20 tests: the geometric mean of 10 and 40
    assert at_equal_distance(d, it, 3.0) == pytest.approx(9.0, rel=1e-12)
    # a start that passes at once (iteration 0: one test) and one after 3 iterations (4 tests)
    assert at_equal_distance([1.0, 3.0], [0.0, 3.0], 2.0) == pytest.approx(1.0)


def test_at_equal_distance_does_not_extrapolate_and_skips_failed_members():
    d, it = [2.0, 4.0, math.nan], [8.0, 3.0, 1.0]
    assert math.isnan(at_equal_distance(d, it, 5.0))  # every member's metamers are nearer
    assert math.isnan(at_equal_distance(d, it, 1.0))
    assert math.isnan(at_equal_distance([], [], 1.0))
    assert at_equal_distance([2.0, 4.0, 3.0], [8.0, 3.0, math.nan], 3.0) == pytest.approx(5.0)  # √(9·4) - 1


def test_at_equal_distance_names_bad_input():
    with pytest.raises(ValueError, match="3 distances and 2 iteration counts"):
        at_equal_distance([1.0, 2.0, 3.0], [1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match=r"must not be negative, got \[-1.0\]"):
        at_equal_distance([1.0, 2.0], [-1.0, 2.0], 1.5)


def test_at_equal_distance_averages_members_at_the_same_distance_in_any_order():
    # two members at 2 (1 and 100 tests: geometric mean 10) and one at 4 (10 tests)
    for d, it in (([2.0, 2.0, 4.0], [0.0, 99.0, 9.0]), ([4.0, 2.0, 2.0], [9.0, 99.0, 0.0])):
        assert at_equal_distance(d, it, 3.0) == pytest.approx(9.0)
    assert at_equal_distance([2.0, 4.0, math.nan], [8.0, 3.0, 1.0], 3.0) == pytest.approx(5.0)  # NaN member left out
