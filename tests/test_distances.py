"""Pixel distances of metamers and starting points from their references, against independent
computations (numpy, and scikit-image's SSIM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from metamers.stats.distances import DISTANCES, pixel_distances


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
