"""Centred kernel alignment (CKA) between two sets of activations of the same images,
registered by name in :data:`CKA_MEASURES`.

Both measures take the images' linear Gram matrices ``K = X X^T`` and ``L = Y Y^T`` (``n x n``;
:func:`metamers.stats.rdm.gram_and_sums` computes them in bounded memory), so a permutation of
the second set's images is ``L[pi][:, pi]`` and a bootstrap sample is ``K[s][:, s]``, ``L[s][:, s]``
(:mod:`.resampling`):

``linear_cka``
    ``<HKH, HLH>_F / (||HKH||_F ||HLH||_F)``, ``H`` the centring matrix (Kornblith et al. 2019):
    1 for identical inputs, invariant to orthogonal transforms and isotropic scaling of either
    set, and biased upward for few images of many units.
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
    the value far down).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..registry import Registry
from .resampling import multiplicities

#: Bootstrap samples or permutations computed together.
BLOCK = 8


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
        # multiplicities m (:func:`_sample_inner`: K[s][:, s] centred; :func:`weighted_hsic`: the
        # U-statistic over distinct images), so no n x n matrix is built per sample.
        n = len(k)
        if self.debiased:
            k, ell = _zero_diagonal(k), _zero_diagonal(ell)
        out = np.empty(len(samples))
        for start in range(0, len(samples), BLOCK):
            m = multiplicities(samples[start:start + BLOCK], n).astype(np.float64)
            if self.debiased:
                kl, kk, ll = (weighted_hsic(a, b, m) for a, b in ((k, ell), (k, k), (ell, ell)))
            else:
                km, lm = m @ k, m @ ell
                kl, kk, ll = (_sample_inner(m, a, b, ab) for a, b, ab in ((km, lm, k * ell), (km, km, k * k),
                                                                         (lm, lm, ell * ell)))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:start + len(m)] = kl / np.sqrt(kk * ll)
        return out


def _zero_diagonal(g: np.ndarray) -> np.ndarray:
    g = np.array(g, dtype=np.float64, copy=True)
    np.fill_diagonal(g, 0.0)
    return g


def _sample_inner(m: np.ndarray, km: np.ndarray, lm: np.ndarray, kl: np.ndarray) -> np.ndarray:
    """``<H K_s H, H L_s H>_F`` of bootstrap samples with multiplicities ``m (B, n)``, from
    ``K m``, ``L m`` and ``K * L``: ``m^T (K*L) m - (2/N) sum_j m_j (Km)_j (Lm)_j +
    (m^T K m)(m^T L m) / N^2``, ``N = sum(m)``."""
    total = m.sum(axis=1)
    return (((m @ kl) * m).sum(axis=1) - 2 / total * (m * km * lm).sum(axis=1)
            + (m * km).sum(axis=1) * (m * lm).sum(axis=1) / total**2)


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
    """

    value: Callable[[np.ndarray, np.ndarray], float]
    permuted: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    bootstrap: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    label: str


#: CKA measure name -> :class:`CKAMeasure`.
CKA_MEASURES: Registry[CKAMeasure] = Registry("CKA measure")
for _name, _impl, _label in (("linear_cka", _CKA(False), "linear CKA"),
                             ("debiased_cka", _CKA(True), "debiased linear CKA")):
    CKA_MEASURES.register(_name, CKAMeasure(_impl.value, _impl.permuted, _impl.bootstrap, _label))
