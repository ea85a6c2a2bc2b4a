"""Out-of-distribution scores of metamers (Hendrycks and Gimpel 2017): an evaluator's maximum
softmax probability, and the AUROC that separates references from metamers by it.

A network is less confident on inputs unlike its training data; the maximum softmax
probability (MSP) is the baseline detector of such inputs. :func:`auroc` is the probability that
a randomly chosen reference has a higher MSP than a randomly chosen metamer, a tie counting
half (the Mann-Whitney U statistic over ``n_ref * n_met``): 0.5 when the evaluator cannot tell
metamers from references by its confidence, 1 when every metamer is less confident than every
reference.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from scipy.stats import rankdata


def max_softmax(logits) -> np.ndarray:
    """``(n,)`` the maximum softmax probability of each row of ``logits (n, classes)``."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (images, classes), got {logits.shape}")
    return softmax(logits, axis=1).max(axis=1)


def auroc(positive, negative) -> float:
    """``P(positive > negative) + P(tie) / 2`` over all (positive, negative) pairs, from the
    ranks of the pooled scores (ties share their average rank)."""
    positive = np.asarray(positive, dtype=np.float64).ravel()
    negative = np.asarray(negative, dtype=np.float64).ravel()
    if not len(positive) or not len(negative):
        raise ValueError(f"AUROC needs scores of both kinds, got {len(positive)} and {len(negative)}")
    ranks = rankdata(np.r_[positive, negative])
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))
