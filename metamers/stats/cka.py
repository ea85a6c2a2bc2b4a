"""Centred kernel alignment (CKA) between two sets of activations of the same images,
registered by name in :data:`CKA_MEASURES`.

Both measures take the images' linear Gram matrices ``K = X X^T`` and ``L = Y Y^T`` (``n x n``;
:func:`metamers.stats.rdm.gram_and_sums` computes them in bounded memory), so a permutation of
the second set's images is ``L[pi][:, pi]`` and a bootstrap sample of images ``s`` has the
matrices ``K[s][:, s]``, ``L[s][:, s]`` (:mod:`.resampling`), in which an image drawn ``m_i``
times is repeated; each measure says what it makes of the repeats:

``linear_cka``
    ``<HKH, HLH>_F / (||HKH||_F ||HLH||_F)``, ``H`` the centring matrix (Kornblith et al. 2019):
    1 for identical inputs, invariant to orthogonal transforms and isotropic scaling of either
    set, and biased upward for few images of many units. In a bootstrap sample each inner
    product is ``sum_ij W_ij Kc_ij Lc_ij`` over the distinct images, ``Kc``, ``Lc`` the Gram
    matrices centred on the sample's mean image (each draw counted) and ``W = m m^T -
    diag(m (m - 1))`` (:func:`distinct_inner`): the sum over the sample's pairs of draws
    ``(a, b)``, less the pairs of two different draws of one image. Such a pair's entry is the
    image's own ``Kc_ii``: kept (``K[s][:, s]`` centred), the diagonal terms that bias linear CKA
    upward weigh ``m_i^2``, twice their share in expectation, and the bootstrap values sat above
    the estimate (the interval missed it for about a quarter of the sets of 20 to 40 images
    of LeNet-5 activations); left out, ``E[W_ii] = 1`` and ``E[W_ij] = 1 - 1/n``. With every
    multiplicity 1 it is the value of ``K``, ``L``.
``debiased_cka``
    The same ratio of the unbiased HSIC estimator (Song et al. 2012), as debiased CKA (Nguyen et
    al. 2021; Kornblith's ``center_gram(unbiased=True)``): near 0 for independent sets whatever
    ``n`` (needs ``n >= 4``). The estimator is a U-statistic over tuples of distinct images,
    ``HSIC = A / (n)_2 + B / (n)_4 - 2 C / (n)_3`` with ``A = sum_{i!=j} K_ij L_ij``,
    ``B = sum_{i,j,q,r distinct} K_ij L_qr`` and ``C = sum_{i,j,q distinct} K_ij L_iq``
    (:func:`weighted_hsic`). A bootstrap sample is that U-statistic over the tuples of distinct
    *images* of the sample, each weighted by the product of their multiplicities: two copies of
    one image are never a pair, as in the RSA bootstrap (setting their entries to 0 instead,
    as the diagonal is, would add pairs of similarity 0, which for non-negative activations pulls
    the value far down). A sample holds about ``0.63 n`` distinct images, and the ratio of
    U-statistics over few of them is heavy-tailed: intervals over fewer than
    :data:`MIN_STABLE_IMAGES` images are marked unstable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..registry import Registry
from .resampling import multiplicities

#: Bootstrap samples or permutations computed together.
BLOCK = 8
#: Debiased CKA's bootstrap intervals over fewer images are unstable (:attr:`CKAMeasure.min_stable_images`).
#: The estimate is a cosine of two matrices, within [-1, 1]; a sample's U-statistic over its
#: distinct images is not, and over few of them its ratio is heavy-tailed. Measured on LeNet-5
#: activations of MNIST test digits (relu1, relu2, relu3, linear2) against metamer-like sets (the
#: activations of noisy digits, or the references' plus noise), sets drawn from 200 digits of
#: ten classes or 60 of three, 1,000 samples: the share of 95 % intervals that reach beyond
#: [-1, 1] is, in the worst configuration (relu1, noisy digits), 100 % at 20 images, 85 % at
#: 25, 10 % at 28 and none at 30 or more (none in any configuration from 30 on); the 90th
#: percentile of the interval's width falls from 2.5 at 10 images to 0.46 at 20 and 0.26 at 30.
MIN_STABLE_IMAGES = 30


def centre_gram(gram: np.ndarray) -> np.ndarray:
    """``H G H``, ``H = I - 11^T / n``: the Gram matrix of the feature-centred activations.
    A leading batch axis is allowed."""
    g = gram - gram.mean(axis=-1, keepdims=True)
    return g - g.mean(axis=-2, keepdims=True)


def unbiased_centre_gram(gram: np.ndarray, self_pairs: np.ndarray | None = None) -> np.ndarray:
    """Kornblith's unbiased centring of ``gram`` (diagonal, and any ``self_pairs`` mask, set to
    0): ``<U(K), U(L)>_F / (n (n - 3))`` is the unbiased HSIC estimator of Song et al. (2012).
    A leading batch axis is allowed."""
    g = np.asarray(gram, dtype=np.float64)
    n = g.shape[-1]
    if n < 4:
        raise ValueError(f"debiased CKA needs at least 4 images, got {n}")
    mask = np.eye(n, dtype=bool) if self_pairs is None else (self_pairs | np.eye(n, dtype=bool))
    g = np.where(mask, 0.0, g)
    means = g.sum(axis=-2) / (n - 2)
    means = means - means.sum(axis=-1, keepdims=True) / (2 * (n - 1))
    return np.where(mask, 0.0, g - means[..., :, None] - means[..., None, :])


def _ratio(k: np.ndarray, ell: np.ndarray) -> np.ndarray:
    num = (k * ell).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / np.sqrt((k * k).sum(axis=(-2, -1)) * (ell * ell).sum(axis=(-2, -1)))


def linear_cka(k: np.ndarray, ell: np.ndarray) -> float:
    """Linear CKA of Gram matrices ``k``, ``ell``."""
    return float(_ratio(centre_gram(k), centre_gram(ell)))


def debiased_cka(k: np.ndarray, ell: np.ndarray) -> float:
    """Debiased linear CKA of Gram matrices ``k``, ``ell``."""
    return float(_ratio(unbiased_centre_gram(k), unbiased_centre_gram(ell)))


@dataclass(frozen=True)
class _CKA:
    debiased: bool

    def _centre(self, g: np.ndarray, self_pairs: np.ndarray | None = None) -> np.ndarray:
        return unbiased_centre_gram(g, self_pairs) if self.debiased else centre_gram(g)

    def value(self, k: np.ndarray, ell: np.ndarray) -> float:
        return float(_ratio(self._centre(k), self._centre(ell)))

    def permuted(self, k: np.ndarray, ell: np.ndarray, perms: np.ndarray) -> np.ndarray:
        # centring commutes with relabelling the images: centre once, then permute
        kc, lc = self._centre(k), self._centre(ell)
        scale = np.sqrt((kc * kc).sum() * (lc * lc).sum())
        out = np.empty(len(perms))
        for start in range(0, len(perms), BLOCK):
            p = perms[start:start + BLOCK]
            permuted = lc[p[:, :, None], p[:, None, :]]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:start + len(p)] = (permuted * kc).sum(axis=(1, 2)) / scale
        return out

    def bootstrap(self, k: np.ndarray, ell: np.ndarray, samples: np.ndarray) -> np.ndarray:
        # A sample's centred inner products are sums over the original entries weighted by the
        # multiplicities m (:func:`distinct_inner`; :func:`weighted_hsic`: the U-statistic over
        # distinct images), so no n x n matrix is built per sample.
        n = len(k)
        if self.debiased:
            k, ell = _zero_diagonal(k), _zero_diagonal(ell)
        out = np.empty(len(samples))
        for start in range(0, len(samples), BLOCK):
            m = multiplicities(samples[start:start + BLOCK], n).astype(np.float64)
            if self.debiased:
                kl, kk, ll = (weighted_hsic(a, b, m) for a, b in ((k, ell), (k, k), (ell, ell)))
            else:
                kl, kk, ll = (distinct_inner(a, b, m) for a, b in ((k, ell), (k, k), (ell, ell)))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:start + len(m)] = kl / np.sqrt(kk * ll)
        return out


def _zero_diagonal(g: np.ndarray) -> np.ndarray:
    g = np.array(g, dtype=np.float64, copy=True)
    np.fill_diagonal(g, 0.0)
    return g


def _centred_diagonal(g: np.ndarray, gm: np.ndarray, m: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``(B, n)`` the diagonal of ``G`` centred on the ``m``-weighted mean image:
    ``G_ii - 2 (G m)_i / N + m^T G m / N^2``."""
    return np.diag(g)[None, :] - 2 * gm / total[:, None] + ((m * gm).sum(axis=1) / total**2)[:, None]


def distinct_inner(k: np.ndarray, ell: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``sum_ij W_ij Kc_ij Lc_ij`` of bootstrap samples with multiplicities ``m (B, n)``, ``Kc``,
    ``Lc`` the Gram matrices centred on the ``m``-weighted mean image and ``W = m m^T -
    diag(m (m - 1))``: the centred inner product over the sample's pairs of draws, less those of
    two copies of one image (module docstring). ``m = 1`` gives ``<HKH, HLH>_F``."""
    m = np.atleast_2d(np.asarray(m, dtype=np.float64))
    km, lm = m @ k, m @ ell
    total = m.sum(axis=1)
    every = (((m @ (k * ell)) * m).sum(axis=1) - 2 / total * (m * km * lm).sum(axis=1)
             + (m * km).sum(axis=1) * (m * lm).sum(axis=1) / total**2)  # W = m m^T
    kd, ld = _centred_diagonal(k, km, m, total), _centred_diagonal(ell, lm, m, total)
    return every - (m * (m - 1) * kd * ld).sum(axis=1)


def weighted_hsic(k: np.ndarray, ell: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The unbiased HSIC U-statistic of zero-diagonal Gram matrices ``k``, ``ell`` over tuples of
    distinct images weighted by ``w (B, n)`` (each tuple by the product of its images' weights;
    ``w = 1``: Song et al.'s estimator, up to a constant factor). ``A / N2 + B / N4 - 2 C / N3``
    with the sums of the module docstring and ``N_r`` the summed weights of the ``r``-tuples of
    distinct images; NaN where fewer than 4 images have weight."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    kw, lw, w2 = w @ k, w @ ell, w * w
    kl = k * ell
    s_k, s_l = (w * kw).sum(axis=1), (w * lw).sum(axis=1)  # sum_{i!=j} w_i w_j K_ij (zero diagonal)
    a = ((w @ kl) * w).sum(axis=1)
    c = (w * kw * lw).sum(axis=1) - ((w2 @ kl) * w).sum(axis=1)
    b = s_k * s_l - 4 * (w2 * kw * lw).sum(axis=1) + 2 * ((w2 @ kl) * w2).sum(axis=1)
    p1, p2, p3, p4 = (np.sum(w**r, axis=1) for r in (1, 2, 3, 4))
    n2 = p1**2 - p2
    n3 = p1**3 - 3 * p1 * p2 + 2 * p3
    n4 = p1**4 - 6 * p1**2 * p2 + 3 * p2**2 + 8 * p1 * p3 - 6 * p4
    with np.errstate(invalid="ignore", divide="ignore"):
        out = a / n2 + b / n4 - 2 * c / n3
    return np.where((w > 0).sum(axis=1) >= 4, out, np.nan)



@dataclass(frozen=True)
class CKAMeasure:
    """A CKA measure on Gram matrices.

    Attributes
    ----------
    value
        ``(K (n, n), L (n, n)) -> float``.
    permuted
        ``(K, L, permutations (P, n)) -> (P,)``: with the second set's images relabelled.
    bootstrap
        ``(K, L, samples (B, n)) -> (B,)``: in bootstrap samples of images (indices).
    label
        What the value is.
    min_stable_images
        Below this many images its bootstrap interval is unstable (0: never).
    """

    value: Callable[[np.ndarray, np.ndarray], float]
    permuted: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    bootstrap: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    label: str
    min_stable_images: int = 0


#: CKA measure name -> :class:`CKAMeasure`.
CKA_MEASURES: Registry[CKAMeasure] = Registry("CKA measure")
for _name, _impl, _label, _stable in (("linear_cka", _CKA(False), "linear CKA", 0),
                                      ("debiased_cka", _CKA(True), "debiased linear CKA", MIN_STABLE_IMAGES)):
    CKA_MEASURES.register(_name, CKAMeasure(_impl.value, _impl.permuted, _impl.bootstrap, _label, _stable))
