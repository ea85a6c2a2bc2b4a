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
    ``n`` (needs ``n >= 4``). In a bootstrap sample, entries of two copies of one image are
    self-pairs: they are set to 0, as the estimator's diagonal is.
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
        # A sample's Gram matrix is K[s][:, s]; its (unbiasedly) centred inner products are
        # sums over the original entries weighted by the multiplicities m (:func:`_sample_inner`,
        # :func:`_sample_inner_debiased`), so no n x n matrix is built per sample.
        n = len(k)
        if self.debiased:
            k, ell = _zero_diagonal(k), _zero_diagonal(ell)
        out = np.empty(len(samples))
        for start in range(0, len(samples), BLOCK):
            m = multiplicities(samples[start:start + BLOCK], n).astype(np.float64)
            km, lm = m @ k, m @ ell
            inner = _sample_inner_debiased if self.debiased else _sample_inner
            kl, kk, ll = (inner(m, a, b, ab) for a, b, ab in ((km, lm, k * ell), (km, km, k * k), (lm, lm, ell * ell)))
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


def _sample_inner_debiased(m: np.ndarray, km: np.ndarray, lm: np.ndarray, kl: np.ndarray) -> np.ndarray:
    """``<U(K_s), U(L_s)>_F`` (:func:`unbiased_centre_gram` of the samples' Gram matrices, self-
    pairs zeroed) from the zero-diagonal ``K``, ``L``: with ``a = U``'s row means of ``K_s`` and
    ``b`` of ``L_s`` (per original image), the sum over pairs of distinct images ``i != j`` of
    ``m_i m_j (K_ij - a_i - a_j)(L_ij - b_i - b_j)``."""
    total = m.sum(axis=1, keepdims=True)
    a = km / (total - 2)
    a -= (m * a).sum(axis=1, keepdims=True) / (2 * (total - 1))
    b = lm / (total - 2)
    b -= (m * b).sum(axis=1, keepdims=True) / (2 * (total - 1))
    return (((m @ kl) * m).sum(axis=1) - 2 * (m * b * km).sum(axis=1) - 2 * (m * a * lm).sum(axis=1)
            + 2 * (m * a * b * (total - m)).sum(axis=1)
            + 2 * ((m * a).sum(axis=1) * (m * b).sum(axis=1) - (m * m * a * b).sum(axis=1)))


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
