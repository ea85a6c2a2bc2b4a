"""Representational distance matrices (RDMs) over a set of images, registered by name in
:data:`RDM_KINDS`.

An RDM of ``n`` images holds the distance between the activations of every two images at one
layer. Every kind is computed from the images' float64 Gram matrix ``G = A A^T`` and their
activation sums, accumulated over chunks of units (:func:`gram_and_sums`), so a layer of
100,000 units never needs a float64 copy of all its activations:

``correlation``
    ``1 - r_ij``, ``r_ij`` the Pearson correlation of images ``i`` and ``j`` over the units
    (rsatoolbox's ``calc_rdm(method="correlation")``). It is undefined (NaN) for an image whose
    activations are constant (all zero, say, at a ReLU layer): its ``n - 1`` distances are NaN, and
    the RDM comparisons drop them (:mod:`.rsa`). An image counts as constant when its variance
    over the units is at most :data:`CONSTANT_VARIANCE` times its mean square: the Gram form's
    rounding leaves a constant image a variance of ~1e-14 times its mean square, whose correlations
    would be rounding noise clipped to distances of 0 or 2.
``euclidean``
    ``||a_i - a_j||_2``, the plain Euclidean distance. (rsatoolbox's ``euclidean`` is the squared
    distance divided by the number of units, a monotone transform of this one.)

A distance matrix is symmetric with a zero diagonal; RDM comparisons (:mod:`.rsa`) read its upper
triangle (:func:`upper`, in the order of :func:`numpy.triu_indices` ``(n, 1)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..registry import Registry

#: Units per float64 chunk in :func:`gram_and_sums` (a chunk of 400 images is 26 MB).
CHUNK_UNITS = 8192
#: An image whose variance over the units is at most this times its mean square is constant: its
#: correlation distances are undefined (module docstring; rounding leaves a constant image ~1e-14,
#: from 10 to 300,000 units, float32 or float64).
CONSTANT_VARIANCE = 1e-12


def _as_matrix(activations) -> np.ndarray:
    """``(n, units)`` float32 or float64 numpy array of activations of any shape ``(n, ...)``."""
    if hasattr(activations, "detach"):  # a torch tensor
        activations = activations.detach().cpu().numpy()
    x = np.asarray(activations)
    if x.ndim < 2:
        raise ValueError(f"activations must have shape (images, units...), got {x.shape}")
    x = x.reshape(len(x), -1)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def gram_and_sums(activations) -> tuple[np.ndarray, np.ndarray, int]:
    """``(G (n, n), sums (n,), units)``: the float64 Gram matrix ``A A^T`` and per-image sums of
    activations ``A (n, ...)``, accumulated over chunks of :data:`CHUNK_UNITS` units."""
    x = _as_matrix(activations)
    n, units = x.shape
    gram = np.zeros((n, n))
    sums = np.zeros(n)
    for start in range(0, units, CHUNK_UNITS):
        block = x[:, start:start + CHUNK_UNITS].astype(np.float64)
        gram += block @ block.T
        sums += block.sum(axis=1)
    return gram, sums, units


def _symmetric(d: np.ndarray) -> np.ndarray:
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    return d


def correlation_distance(gram: np.ndarray, sums: np.ndarray, units: int) -> np.ndarray:
    """``1 - Pearson(a_i, a_j)`` from the Gram matrix and sums (NaN where an image is constant,
    :data:`CONSTANT_VARIANCE`)."""
    centred = gram - np.outer(sums, sums) / units
    norms = np.sqrt(np.clip(np.diag(centred), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = centred / np.outer(norms, norms)
    constant = np.diag(centred) <= CONSTANT_VARIANCE * np.diag(gram)
    if constant.any():
        r[constant, :] = np.nan
        r[:, constant] = np.nan
    return _symmetric(1.0 - np.clip(r, -1.0, 1.0))


def euclidean_distance(gram: np.ndarray, sums: np.ndarray, units: int) -> np.ndarray:
    """``||a_i - a_j||_2`` from the Gram matrix."""
    sq = np.diag(gram)
    return _symmetric(np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2 * gram, 0.0, None)))


@dataclass(frozen=True)
class RDMKind:
    """A distance between two images' activations.

    Attributes
    ----------
    from_gram
        ``(G, sums, units) -> (n, n)`` distance matrix.
    label
        Axis label.
    """

    from_gram: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    label: str


#: RDM kind name -> :class:`RDMKind`.
RDM_KINDS: Registry[RDMKind] = Registry("RDM kind")
RDM_KINDS.register("correlation", RDMKind(correlation_distance, "1 - Pearson r"))
RDM_KINDS.register("euclidean", RDMKind(euclidean_distance, "Euclidean distance"))


def rdm(activations, kind: str = "correlation") -> np.ndarray:
    """The ``(n, n)`` RDM of activations ``(n, ...)`` of kind ``kind`` (:data:`RDM_KINDS`)."""
    return RDM_KINDS.lookup(kind).from_gram(*gram_and_sums(activations))


def upper(matrix: np.ndarray) -> np.ndarray:
    """The upper triangle (diagonal excluded) of square ``matrix``, row by row."""
    n = len(matrix)
    return np.asarray(matrix)[np.triu_indices(n, 1)]


def classical_mds(distances: np.ndarray, dims: int = 2) -> np.ndarray:
    """``(n, dims)`` coordinates whose Euclidean distances best match ``distances (n, n)``
    (classical, Torgerson MDS: the top eigenvectors of ``-J D^2 J / 2``, scaled by the square
    roots of their eigenvalues; a negative eigenvalue gives a zero axis). Each axis is signed so
    that its largest coordinate in absolute value is positive, so the result is deterministic."""
    d = np.asarray(distances, dtype=np.float64)
    n = len(d)
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d * d) @ j
    values, vectors = np.linalg.eigh((b + b.T) / 2)
    top = np.argsort(values)[::-1][:dims]
    coords = vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None))
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(coords.shape[1])])
    return coords * np.where(signs == 0, 1.0, signs)
