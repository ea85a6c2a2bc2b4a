"""RDM comparisons, one function per method, dispatched by name (:data:`RDM_COMPARISONS`).

Two RDMs of the same ``n`` images (references, and their metamers in the same order) are
compared on their upper triangles (:func:`metamers.stats.rdm.upper`):

``pearson``
    Pearson correlation of the distances (rsatoolbox ``compare_correlation``).
``spearman``
    Pearson correlation of their average ranks (rsatoolbox ``compare_spearman``).
``kendall_tau_a``
    Kendall's tau-a, ``(concordant - discordant) / (P (P - 1) / 2)`` over the ``P`` distances: a
    tie counts as neither, so ties lower it (rsatoolbox ``compare_kendall_tau_a``; Nili et al. 2014).
``cosine``
    Cosine similarity of the distance vectors (rsatoolbox ``compare_cosine``).

Every comparison has three forms: the value of two RDMs, the values under permutations of the
second RDM's images (rows and columns together, :mod:`.resampling`), both equal to rsatoolbox's
to rounding (tests check them), and the values in bootstrap samples of images, computed as
weights on the original pairs (:func:`.resampling.pair_weights`; a self-pair that a sample
creates is dropped). The permuted and bootstrap forms are vectorized: the first set's ranks and
order are computed once, and a sample's ranks come from cumulative weights, not from sorting.

**Copies in bootstrap samples.** In a bootstrap sample, the distance of pair ``p = (i, j)`` of the
original images is there ``w_p = m_i m_j`` times (``m`` the multiplicities), once for each draw
of ``i`` with each draw of ``j``. Two of them are *copies* of one measurement: tied in both RDMs
by construction, whether or not they share a draw. A statistic that compares the sample's
distances with each other leaves out every comparison of two copies, as the self-pairs are left
out; two distances of different pairs of images stay compared (tied or not). With every
multiplicity 1 each form is the value of the two RDMs, and each equals the statistic of the
explicitly repeated distances with those comparisons dropped (tests enumerate them):

``pearson``, ``cosine``
    weighted moments ``sum_p w_p f(x_p, y_p)``, which compare no two distances (the values of
    rsatoolbox's ``subsample_pattern``);
``kendall_tau_a``
    ``sum_{p<q} w_p w_q sign(x_p - x_q) sign(y_p - y_q) / ((N^2 - sum_p w_p^2) / 2)``,
    ``N = sum_p w_p``: the pairs of the sample's distances less the ``sum_p w_p (w_p - 1) / 2``
    pairs of copies. Counted as ties (as rsatoolbox's ``subsample_pattern`` does), they shrank
    every bootstrap value toward 0, and the intervals of close metamer sets missed their own
    estimate;
``spearman``
    the correlation of average ranks is ``sum_a S_x(a) S_y(a) / sqrt(sum_a S_x(a)^2 sum_a
    S_y(a)^2)``, ``S(a) = sum_b sign(d_a - d_b)`` over the sample's distances (twice the
    deviation of ``a``'s average rank from the mean rank): a sum over triples ``(a, b, c)`` of
    ``sign(x_a - x_b) sign(y_a - y_c)``. The triples whose ``b`` and ``c`` are two different
    copies of one distance are left out (``b = c`` stays, once for each copy), as linear CKA
    leaves out the products of two copies of one image (:mod:`.cka`). Kept, they add Kendall-type
    terms, whose mean is further from 1 than rho is when the RDMs nearly agree, and the intervals
    of close metamer sets missed their estimate (:func:`_bootstrap_spearman`).

**Undefined distances.** A distance can be undefined (NaN): the correlation distance of an image
whose activations are constant (:mod:`.rdm`). Every comparison drops, pairwise, the pairs whose
distance is NaN in either RDM and compares the rest, as rsatoolbox's ``compare`` does
(:func:`undefined_pairs` counts them). The permuted and bootstrap forms do the same in each
resample: a permutation moves the second RDM's undefined pairs, so each permuted pair of RDMs
drops its own; a bootstrap sample drops the undefined pairs it draws. Without an undefined
distance (the usual case) the computation is the one without the check, to the bit; with one,
the correlation-type comparisons stay vectorized (the dropped pairs get weight 0).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..registry import Registry
from .resampling import multiplicities

#: Permutations or bootstrap samples handled together (a block of (B, P) float64 arrays).
BLOCK = 8


def _vector(rdm: np.ndarray) -> np.ndarray:
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim == 2:
        if rdm.shape[0] != rdm.shape[1]:
            raise ValueError(f"an RDM must be square, got shape {rdm.shape}")
        return rdm[np.triu_indices(len(rdm), 1)]
    if rdm.ndim != 1:
        raise ValueError(f"an RDM is a square matrix or its upper-triangle vector, got shape {rdm.shape}")
    return rdm


def _n_images(n_pairs: int) -> int:
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(f"{n_pairs} distances are not the upper triangle of a square RDM")
    return n


def _square(vector: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, n), dtype=vector.dtype)
    i, j = np.triu_indices(n, 1)
    out[i, j] = vector
    out[j, i] = vector
    return out


def _permuted_pairs(matrix: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """``(B, P)`` upper triangles of ``matrix[pi][:, pi]`` for each permutation ``pi`` of ``perms``."""
    n = len(matrix)
    i, j = np.triu_indices(n, 1)
    return matrix.ravel()[perms[:, i] * n + perms[:, j]]


def _blocks(total: int):
    for start in range(0, total, BLOCK):
        yield slice(start, min(start + BLOCK, total))


# ---- undefined (NaN) distances ---------------------------------------------------------------

def _defined(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """The pairs whose distance is defined (not NaN) in both vectors, or None when all are (the
    usual case: callers then run the computation without the check)."""
    undefined = np.isnan(x) | np.isnan(y)
    return ~undefined if undefined.any() else None


def undefined_pairs(a: np.ndarray, b: np.ndarray) -> int:
    """How many pairs of images two RDMs (square matrices or upper triangles) leave out of a
    comparison: those whose distance is NaN in either."""
    x, y = _vector(a), _vector(b)
    return int(np.count_nonzero(np.isnan(x) | np.isnan(y)))


def _dropping_undefined(value: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray], float]:
    """``value`` of the pairs defined in both vectors (NaN when none is)."""
    def dropped(x: np.ndarray, y: np.ndarray) -> float:
        keep = _defined(x, y)
        if keep is None:
            return value(x, y)
        return value(x[keep], y[keep]) if keep.any() else float("nan")
    return dropped


def _pairs(n: int, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The images ``(i, j)`` of the pairs of :func:`numpy.triu_indices` ``(n, 1)`` kept by ``keep``."""
    i, j = np.triu_indices(n, 1)
    return (i, j) if keep is None else (i[keep], j[keep])


def _scatter(vector: np.ndarray, n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The symmetric ``(n, n)`` matrix with ``vector`` at pairs ``(i, j)`` and 0 elsewhere."""
    out = np.zeros((n, n), dtype=vector.dtype)
    out[i, j] = vector
    out[j, i] = vector
    return out


# ---- correlation-type comparisons: pearson, cosine, spearman -------------------------------

def _bootstrap_spearman(x: np.ndarray, y: np.ndarray, samples: np.ndarray, n: int,
                        keep: np.ndarray | None = None, threads: int = 1) -> np.ndarray:
    """Spearman's rho in bootstrap samples, copies' terms left out (module docstring).

    The sums over the sample's distances come from its average ranks computed in the order of
    each RDM (cumulative weights, no sorting). A sample of ``N`` distances with tie groups of
    sizes ``t`` has rank mean ``(N + 1) / 2`` and rank sum of squares about it
    ``(N^3 - N - sum(t^3 - t)) / 12``, so only the cross product needs the ranks. The copies'
    terms are, with ``v_q = w_q (w_q - 1)``, ``sum_{p,q} w_p v_q s_x(p, q) s_y(p, q)`` (a count of
    concordances, :meth:`_JointOrder.bilinear`) in the cross product and
    ``sum_{p,q} w_p v_q |s_x(p, q)|`` (from the weights of the tie groups) in a sum of squares,
    both in units of ``S = 2 (rank - mean rank)``: a quarter of each comes off the sums of ranks.
    ``keep``: the pairs defined in both RDMs (None: all)."""
    i, j = _pairs(n, keep)
    if keep is not None:
        x, y = x[keep], y[keep]
    joint = _JointOrder(x, y, i, j)

    def copies_cross(sample: np.ndarray) -> float:
        w = joint.weights(np.bincount(sample, minlength=n))
        return float(joint.bilinear(w, w * (w - 1)))

    copies_xy = np.array(_map(copies_cross, samples, threads), dtype=np.float64) / 4
    order_x, order_y = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    position_in_y = np.empty_like(order_y)
    position_in_y[order_y] = np.arange(len(y))
    y_to_x = position_in_y[order_x]  # where each x-ordered pair sits in the y order
    ties_x, ties_y = _tie_groups(x[order_x]), _tie_groups(y[order_y])
    out = np.empty(len(samples))
    for s in _blocks(len(samples)):
        m = multiplicities(samples[s], n).astype(np.float64)
        wx = m[:, i[order_x]] * m[:, j[order_x]]
        wy = m[:, i[order_y]] * m[:, j[order_y]]
        # copies of one distance are tied: without other ties, sum(t^3 - t) over the pairs'
        # weights m_i m_j follows from the multiplicities (over all pairs; over the kept ones
        # it is summed)
        if keep is None:
            m3, m6 = (m**3).sum(axis=1), (m**6).sum(axis=1)
            total = (m.sum(axis=1) ** 2 - (m * m).sum(axis=1)) / 2
            copies = ((m3 * m3 - m6) / 2 - total) / 12
        else:
            total = wx.sum(axis=1)
            copies = (wx * wx * wx - wx).sum(axis=1) / 12
        rx, tx = _sorted_ranks(wx, ties_x, copies)
        ry, ty = _sorted_ranks(wy, ties_y, copies)
        mean = (total + 1) / 2
        cross = np.einsum("bp,bp,bp->b", wx, rx, ry[:, y_to_x]) - total * mean * mean - copies_xy[s]
        scale = (total**3 - total) / 12
        sxx = scale - tx - _copies_in_squares(wx, ties_x)
        syy = scale - ty - _copies_in_squares(wy, ties_y)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s] = cross / np.sqrt(sxx * syy)
    return out


def _copies_in_squares(ws: np.ndarray, ties) -> np.ndarray:
    """``sum_{p,q} w_p v_q |s(p, q)| / 4``, ``v = w (w - 1)``, of sorted values repeated
    ``ws (B, P)`` times (tie groups ``ties``, :func:`_tie_groups`): all products less those
    within a tie group."""
    vs = ws * (ws - 1)
    within = (ws * vs).sum(axis=1) if ties is None else (_group_sums(ws, ties) * _group_sums(vs, ties)).sum(axis=1)
    return (ws.sum(axis=1) * vs.sum(axis=1) - within) / 4


def _group_sums(ws: np.ndarray, ties) -> np.ndarray:
    """``(B, G)`` sums of sorted weights ``ws (B, P)`` over each of the ``G`` tie groups."""
    _, first, last = ties
    cum = np.cumsum(ws, axis=1)
    return cum[:, last] - cum[:, first] + ws[:, first]


def _permuted_spearman_undefined(x: np.ndarray, y_matrix: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Spearman's rho under permutations when some distances are undefined: each permuted pair of
    RDMs ranks the pairs defined in both. A kept pair has weight 1 and a dropped one 0, and the
    ranks come from cumulative weights in each RDM's order, as in :func:`_bootstrap_spearman`
    (the second RDM's weights are scattered back to its own order)."""
    n = len(y_matrix)
    i, j = _pairs(n, ~np.isnan(x))  # x's undefined pairs are dropped from every permutation
    x = x[~np.isnan(x)]
    y = _vector(y_matrix)
    defined_y = ~np.isnan(y)
    pair_index = _square(np.arange(len(y)), n).ravel()  # pair (a, b) -> its index in y
    order_x, order_y = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")  # NaN last
    position_in_y = np.empty_like(order_y)
    position_in_y[order_y] = np.arange(len(y))
    ties_x, ties_y = _tie_groups(x[order_x]), _tie_groups(y[order_y])  # a NaN is a group of its own
    io, jo = i[order_x], j[order_x]
    out = np.empty(len(perms))
    for s in _blocks(len(perms)):
        p = perms[s]
        matched = pair_index[p[:, io] * n + p[:, jo]]  # the y pair matched with each x pair, x order
        w = defined_y[matched].astype(np.float64)
        at = position_in_y[matched]  # where it sits in the y order
        wy = np.zeros((len(p), len(y)))
        np.put_along_axis(wy, at, w, axis=1)  # y pairs matched with an undefined x pair keep 0
        total = w.sum(axis=1)
        none = np.zeros(len(p))
        rx, tx = _sorted_ranks(w, ties_x, none)
        ry, ty = _sorted_ranks(wy, ties_y, none)
        mean = (total + 1) / 2
        cross = np.einsum("bp,bp,bp->b", w, rx, np.take_along_axis(ry, at, axis=1)) - total * mean * mean
        scale = (total**3 - total) / 12
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s] = cross / np.sqrt((scale - tx) * (scale - ty))
    return out


def _permuted_moments_undefined(x: np.ndarray, y_matrix: np.ndarray, perms: np.ndarray, centred: bool) -> np.ndarray:
    """Pearson's r (``centred``) or the cosine under permutations when some distances are
    undefined: the moments of each permuted pair of RDMs over the pairs defined in both (an
    undefined distance is set to 0 and its pair weighted 0)."""
    n = len(y_matrix)
    i, j = _pairs(n, ~np.isnan(x))
    x = x[~np.isnan(x)]
    y = _vector(y_matrix)
    defined_y = ~np.isnan(y)
    if centred:  # centring on the defined means first keeps the moments accurate
        x, y = x - x.mean(), y - y[defined_y].mean()
    values = _square(np.where(defined_y, y, 0.0), n).ravel()
    weights = _square(defined_y.astype(np.float64), n).ravel()
    xx = x * x
    out = np.empty(len(perms))
    for s in _blocks(len(perms)):
        flat = perms[s][:, i] * n + perms[s][:, j]
        yp, w = values[flat], weights[flat]
        total, sx, sy, sxx, syy, sxy = w.sum(axis=1), w @ x, yp.sum(axis=1), w @ xx, (yp * yp).sum(axis=1), yp @ x
        with np.errstate(invalid="ignore", divide="ignore"):
            if centred:
                sxy, sxx, syy = sxy - sx * sy / total, sxx - sx * sx / total, syy - sy * sy / total
            out[s] = sxy / np.sqrt(sxx * syy)
    return out


def _tie_groups(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(group of each sorted position, first and last position of each group)`` of sorted
    values, or None when no two are equal."""
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    if new.all():
        return None
    first = np.flatnonzero(new)
    return np.cumsum(new) - 1, first, np.r_[first[1:], len(ordered)] - 1


def _sorted_ranks(ws: np.ndarray, ties, copies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks, in sorted order, of sorted values repeated ``ws (B, P)`` times, and the
    tie correction ``sum(t^3 - t) / 12`` over their tie groups (``copies`` when only copies of
    one value are tied)."""
    cum = np.cumsum(ws, axis=1)
    if ties is None:
        return cum - (ws - 1) / 2, copies
    group, first, last = ties
    before = cum[:, first] - ws[:, first]
    size = cum[:, last] - before
    return (before + (size + 1) / 2)[:, group], (size * size * size - size).sum(axis=1) / 12


@dataclass(frozen=True)
class _CorrelationType:
    """Pearson (``centred``), cosine (not) or Spearman (``ranked``): a normalized inner product."""

    centred: bool
    ranked: bool

    def _transform(self, v: np.ndarray) -> np.ndarray:
        v = rankdata(v) if self.ranked else v
        return v - v.mean() if self.centred else v

    def value(self, x: np.ndarray, y: np.ndarray) -> float:
        a, b = self._transform(x), self._transform(y)
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(a @ b / np.sqrt((a @ a) * (b @ b)))

    def permuted(self, x: np.ndarray, y_matrix: np.ndarray, perms: np.ndarray, threads: int = 1) -> np.ndarray:
        # vectorized (``threads`` is for the interface); a permutation reorders the second
        # RDM's distances: their mean, norm and ranks stay (unless some are undefined: then
        # which pairs are dropped changes with the permutation)
        if np.isnan(x).any() or np.isnan(y_matrix).any():
            if np.isnan(x).all() or np.isnan(_vector(y_matrix)).all():  # no pair can be defined
                return np.full(len(perms), np.nan)
            if self.ranked:
                return _permuted_spearman_undefined(x, y_matrix, perms)
            return _permuted_moments_undefined(x, y_matrix, perms, self.centred)
        a = self._transform(x)
        b = self._transform(_vector(y_matrix))
        square = _square(b, len(y_matrix))
        scale = np.sqrt((a @ a) * (b @ b))
        out = np.empty(len(perms))
        for s in _blocks(len(perms)):
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s] = _permuted_pairs(square, perms[s]) @ a / scale
        return out

    def bootstrap(self, x: np.ndarray, y: np.ndarray, samples: np.ndarray, threads: int = 1) -> np.ndarray:
        n = _n_images(len(x))
        keep = _defined(x, y)
        if keep is not None and not keep.any():
            return np.full(len(samples), np.nan)
        if self.ranked:
            return _bootstrap_spearman(x, y, samples, n, keep, threads)
        # A sample's sum over its pairs of f is sum_{i<j} m_i m_j f_ij = m^T F m / 2 (F symmetric,
        # zero diagonal): the weighted moments are quadratic forms of the multiplicities m.
        # Centring on the unweighted means first keeps them accurate. An undefined pair is not
        # in F (0, as if it had weight 0).
        if keep is None:
            xc, yc = (x - x.mean(), y - y.mean()) if self.centred else (x, y)
            forms = np.stack([_square(v, n) for v in (np.ones_like(xc), xc, yc, xc * xc, yc * yc, xc * yc)])
        else:
            i, j = _pairs(n, keep)
            xc, yc = x[keep], y[keep]
            xc, yc = (xc - xc.mean(), yc - yc.mean()) if self.centred else (xc, yc)
            forms = np.stack([_scatter(v, n, i, j) for v in (np.ones_like(xc), xc, yc, xc * xc, yc * yc, xc * yc)])
        out = np.empty(len(samples))
        for s in _blocks(len(samples)):
            m = multiplicities(samples[s], n).astype(np.float64)
            total, sx, sy, sxx, syy, sxy = (((m @ f) * m).sum(axis=1) / 2 for f in forms)
            with np.errstate(invalid="ignore", divide="ignore"):  # a sample without pairs gives NaN
                if self.centred:
                    sxy, sxx, syy = sxy - sx * sy / total, sxx - sx * sx / total, syy - sy * sy / total
                out[s] = sxy / np.sqrt(sxx * syy)
        return out


# ---- Kendall's tau-a -----------------------------------------------------------------------

def _kendall_dis():
    """scipy's count of discordant pairs (C; x sorted ascending, y ascending within x ties,
    both dense ranks from 1)."""
    from scipy.stats._stats import _kendall_dis as dis  # the routine scipy.stats.kendalltau runs

    return dis


def _dense(v: np.ndarray) -> np.ndarray:
    """Dense ranks from 1 (equal values share one)."""
    return np.unique(v, return_inverse=True)[1].astype(np.intp) + 1


def _tie_pairs(counts: np.ndarray) -> int:
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _tau_a_ratio(score: int, tot: int) -> float:
    """``score / tot`` clipped to [-1, 1] (NaN when ``tot`` is 0: no pair to compare)."""
    return float(np.clip(score / tot, -1.0, 1.0)) if tot > 0 else float("nan")


def _score_sorted(xd: np.ndarray, yd: np.ndarray) -> int:
    """Concordant minus discordant pairs of values, ``sum_{a<b} sign(x_a - x_b) sign(y_a - y_b)``,
    of dense ranks sorted by ``(x, y)`` (a pair tied in either counts 0)."""
    size = len(xd)
    if size < 2:
        return 0
    dis = int(_kendall_dis()(np.ascontiguousarray(xd), np.ascontiguousarray(yd)))
    boundary = np.r_[True, (xd[1:] != xd[:-1]) | (yd[1:] != yd[:-1]), True]
    joint = _tie_pairs(np.diff(np.flatnonzero(boundary)))
    xtie = _tie_pairs(np.bincount(xd))
    ytie = _tie_pairs(np.bincount(yd))
    return size * (size - 1) // 2 - xtie - ytie + joint - 2 * dis


def _tau_a_sorted(xd: np.ndarray, yd: np.ndarray) -> float:
    """tau-a of dense ranks sorted by ``(x, y)`` (NaN for fewer than 2 values)."""
    return _tau_a_ratio(_score_sorted(xd, yd), len(xd) * (len(xd) - 1) // 2)


def _repeated_score(xs: np.ndarray, ys: np.ndarray, counts: np.ndarray, untied: bool) -> int:
    """:func:`_score_sorted` of dense ranks sorted by ``(x, y)``, each repeated ``counts`` times.
    ``untied``: no two values of ``xs``, nor of ``ys``, are equal, so that only the copies of one
    value are tied (in both), and no tie needs counting."""
    xe, ye = np.repeat(xs, counts), np.repeat(ys, counts)
    if not untied or len(xe) < 2:
        return _score_sorted(xe, ye)
    return len(xe) * (len(xe) - 1) // 2 - _tie_pairs(counts) - 2 * int(_kendall_dis()(xe, ye))


def _map(fn, items, threads: int) -> list:
    """``[fn(item) for item in items]``, on ``threads`` threads (the C routines free the GIL)."""
    if threads <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))


class _JointOrder:
    """The pairs of images ``(i, j)`` of distances ``x``, ``y``, sorted by ``(x, y)``, for the
    concordance of bootstrap samples, whose distances are the pairs' copies."""

    def __init__(self, x: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
        xd, yd = _dense(x), _dense(y)
        order = np.lexsort((yd, xd))
        self.xs, self.ys = xd[order], yd[order]
        self.i, self.j = i[order], j[order]
        self.untied = len(np.unique(xd)) == len(xd) and len(np.unique(yd)) == len(yd)

    def weights(self, m: np.ndarray) -> np.ndarray:
        """How many copies of each pair, in the order of ``(x, y)``, a sample of multiplicities
        ``m (n,)`` holds: ``m_i m_j``."""
        return (m[self.i] * m[self.j]).astype(np.intp)

    def score(self, w: np.ndarray) -> int:
        """``sum_{p<q} w_p w_q sign(x_p - x_q) sign(y_p - y_q)`` (``w`` in the order of ``(x, y)``):
        the concordant minus discordant pairs of distances among ``w_p`` copies of each pair ``p``."""
        return _repeated_score(self.xs, self.ys, w, self.untied)

    def bilinear(self, w: np.ndarray, v: np.ndarray) -> int:
        """``sum_{p, q} w_p v_q sign(x_p - x_q) sign(y_p - y_q)``, from the scores of ``w``, ``v``
        and ``w + v`` (the score is half the quadratic form of the signs' products)."""
        return self.score(w + v) - self.score(w) - self.score(v)


class _KendallTauA:
    """Kendall's tau-a. Without ties among the distances of either RDM (the usual case for
    real-valued distances) the tie counts are known without counting: none under a permutation,
    and only copies of one pair in a bootstrap sample, which are not pairs of the sample
    (module docstring)."""

    @staticmethod
    def value(x: np.ndarray, y: np.ndarray) -> float:
        xd, yd = _dense(x), _dense(y)
        order = np.lexsort((yd, xd))
        return _tau_a_sorted(xd[order], yd[order])

    @staticmethod
    def permuted(x: np.ndarray, y_matrix: np.ndarray, perms: np.ndarray, threads: int = 1) -> np.ndarray:
        yv = _vector(y_matrix)
        undefined = bool(np.isnan(x).any() or np.isnan(yv).any())
        n = len(y_matrix)
        i, j = _pairs(n, ~np.isnan(x) if undefined else None)
        if undefined:  # x's undefined pairs are dropped from every permutation, y's where they land
            x = x[~np.isnan(x)]
            yd = np.zeros(len(yv), dtype=np.intp)  # rank 0: undefined
            yd[~np.isnan(yv)] = _dense(yv[~np.isnan(yv)])
        else:
            yd = _dense(yv)
        xd = _dense(x)
        ties = len(np.unique(xd)) < len(xd)
        order = np.argsort(xd, kind="stable")
        ranks = _square(yd, n).ravel()
        io, jo = i[order], j[order]
        xs = xd[order]
        tot = len(x) * (len(x) - 1) // 2
        ytie = _tie_pairs(np.unique(yv, return_counts=True)[1])
        dis = _kendall_dis()

        def one(perm: np.ndarray) -> float:
            yd = ranks[perm[io] * n + perm[jo]]  # the permuted distances' ranks, in the order of x
            if undefined:  # the pairs defined in both (ranks need not be dense for tau-a)
                kept = yd > 0
                xk, yk = xs[kept], yd[kept]
                return _tau_a_sorted(xk, yk[np.lexsort((yk, xk))] if ties else yk)
            if ties:  # y ascending within ties of x
                o = np.lexsort((yd, xs))
                return _tau_a_sorted(xs, yd[o])
            return float(np.clip((tot - ytie - 2 * int(dis(xs, yd))) / tot, -1.0, 1.0))

        return np.array(_map(one, perms, threads))

    @staticmethod
    def bootstrap(x: np.ndarray, y: np.ndarray, samples: np.ndarray, threads: int = 1) -> np.ndarray:
        n = _n_images(len(x))
        keep = _defined(x, y)
        i, j = _pairs(n, keep)
        if keep is not None:
            x, y = x[keep], y[keep]
        joint = _JointOrder(x, y, i, j)

        def one(sample: np.ndarray) -> float:
            w = joint.weights(np.bincount(sample, minlength=n))
            pairs = int(w.sum()) * (int(w.sum()) - 1) // 2 - _tie_pairs(w)  # less the pairs of copies
            return _tau_a_ratio(joint.score(w), pairs)

        return np.array(_map(one, samples, threads))


@dataclass(frozen=True)
class RDMComparison:
    """A comparison of two RDMs over the same images.

    Attributes
    ----------
    value
        ``(x (P,), y (P,)) -> float``, the comparison of two upper triangles.
    permuted
        ``(x (P,), y (n, n), permutations (K, n), threads=1) -> (K,)``: the comparison of ``x``
        with ``y`` whose images (rows and columns together) are relabelled by each permutation.
    bootstrap
        ``(x (P,), y (P,), samples (B, n), threads=1) -> (B,)``: the comparison in each bootstrap sample of
        images (indices drawn with replacement; a pair is counted as often as it is in the sample,
        :func:`.resampling.pair_weights`, self-pairs are dropped, and so are the comparisons of two
        copies of one pair, module docstring).
    label
        What the value is, for tables and figures.

    Each form drops the pairs whose distance is NaN in either RDM (module docstring).
    """

    value: Callable[[np.ndarray, np.ndarray], float]
    permuted: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    bootstrap: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    label: str


def _register(name: str, impl, label: str) -> None:
    RDM_COMPARISONS.register(name, RDMComparison(_dropping_undefined(impl.value), impl.permuted, impl.bootstrap, label))


#: RDM comparison name -> :class:`RDMComparison`.
RDM_COMPARISONS: Registry[RDMComparison] = Registry("RDM comparison")
_register("pearson", _CorrelationType(centred=True, ranked=False), "Pearson r of RDMs")
_register("spearman", _CorrelationType(centred=True, ranked=True), "Spearman rho of RDMs")
_register("kendall_tau_a", _KendallTauA(), "Kendall tau-a of RDMs")
_register("cosine", _CorrelationType(centred=False, ranked=False), "cosine similarity of RDMs")


def compare_rdms(a: np.ndarray, b: np.ndarray, method: str = "pearson") -> float:
    """Compare two RDMs (square matrices or their upper triangles) by ``method``
    (:data:`RDM_COMPARISONS`), over the pairs whose distance is defined (not NaN) in both."""
    x, y = _vector(a), _vector(b)
    if x.shape != y.shape:
        raise ValueError(f"RDMs of different sizes: {x.size} and {y.size} distances")
    _n_images(len(x))
    return RDM_COMPARISONS.lookup(method).value(x, y)
