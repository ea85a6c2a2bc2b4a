"""The tests on any images, from Python: the metamer test, recognizability, the representation test.

Metamers made elsewhere (another tool, a paper's supplementary images) need no artifact:
:func:`metamer_test` puts images to the test against their references and a null,
:func:`recognizability` asks a model to classify them, :func:`compare_representations` gives
the representation test's set measures between two sets of activations (or images read at a
layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .data.inputs import as_images
from .data.pixels import to_uint8
from .labels import decide
from .models.classifier import Classifier
from .models.layers import LayerReader
from .null import Null
from .stats.comparisons import compare
from .stats.metamer_test import measure


def _eight_bit(images: Any, model: Classifier, what: str) -> torch.Tensor:
    """Images as the tests read them: 8-bit, as floats in [0, 1], on the model's device."""
    return (to_uint8(as_images(images, model.input_shape, what)).float() / 255).to(model.device)


@torch.no_grad()
def metamer_test(model: Classifier, layer: str, images: Any, reference: Any, null: Null,
                 comparison: str = "at_least") -> pd.DataFrame:
    """The metamer test (Feather et al. 2023) of ``images`` against ``reference`` (same order) at
    ``layer``: one row per image with each statistic's value, whether it reaches the null's
    threshold (``<statistic>_passed``; a tie passes, as published, unless ``comparison`` is
    ``"greater"``), whether the model gives both the same class (``class_pass``) and ``passed``
    (all of them). Images are read in 8 bits, as the saved metamers are. The class is the highest
    logit (the workflow's class maps, such as the 16-way ImageNet decision, are not applied here).

    Raises
    ------
    ValueError
        ``null`` belongs to another model or layer.

    Examples
    --------
    >>> import torch, warnings
    >>> from metamers import as_model, compute_null, metamer_test
    >>> model = as_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)), input_shape=(1, 4, 4))
    >>> pool = torch.rand(60, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     null = compute_null(model, "1", pool)
    >>> references = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    >>> metamer_test(model, "1", references, references, null)["passed"].tolist()  # an image is its own metamer
    [True, True, True]
    """
    if not null.belongs_to(model, layer):
        raise ValueError(f"the null is that of {null.model}/{null.layer} (weights {null.weights[:12]}), not of "
                         f"{model.name}/{layer}: compute the null on the model under test")
    x = _eight_bit(images, model, "images")
    r = _eight_bit(reference, model, "references")
    if len(x) != len(r):
        raise ValueError(f"{len(x)} images but {len(r)} references: they pair image by image")
    values = measure(model, [layer], x, r, null.thresholds)[layer]
    out = pd.DataFrame({name: v.numpy() for name, v in values.items()})
    for name, threshold in null.thresholds.items():
        out[f"{name}_threshold"] = threshold
        out[f"{name}_passed"] = compare(out[name].to_numpy(), threshold, comparison)
    out["class_pass"] = (decide(model(x)) == decide(model(r))).cpu().numpy()
    out["passed"] = out[[f"{n}_passed" for n in null.thresholds]].all(axis=1) & out["class_pass"]
    return out


@torch.no_grad()
def recognizability(model: Classifier, images: Any, labels: Sequence[int]) -> float:
    """The fraction of ``images`` that ``model`` assigns their ``labels`` (read in 8 bits).

    Examples
    --------
    >>> import torch
    >>> from metamers import as_model, recognizability
    >>> model = as_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)), input_shape=(1, 2, 2))
    >>> images = torch.rand(5, 1, 2, 2)
    >>> predicted = model(images).argmax(1).tolist()
    >>> recognizability(model, images, predicted)
    1.0
    """
    x = _eight_bit(images, model, "images")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(x):
        raise ValueError(f"{len(x)} images but {len(labels)} labels")
    predicted = decide(model(x)).cpu().numpy()
    return float((predicted == labels).mean())


def compare_representations(reference: Any, metamer: Any, measures: Sequence[str] | None = None,
                            model: Classifier | None = None, layer: str | None = None, n_permutations: int = 1000,
                            n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The representation test's set measures (:data:`metamers.stats.representation.MEASURES`:
    RSA of correlation or Euclidean RDMs by Pearson, Spearman, Kendall's tau-a or cosine; linear
    and debiased CKA) between the activations of references and of their metamers (arrays
    ``(n, ...)``, same order), with permutation p-values and bootstrap intervals; or, given
    ``model`` and ``layer``, between the activations of two sets of images there.

    Examples
    --------
    >>> import numpy as np
    >>> from metamers import compare_representations
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(20, 50))
    >>> rows = compare_representations(a, a + 0.01 * rng.normal(size=a.shape), ["linear_cka"], n_permutations=0,
    ...                                n_bootstrap=0)
    >>> round(float(rows.loc[0, "value"]), 3)
    1.0
    """
    from .stats.representation import set_measures

    if model is not None or layer is not None:
        if model is None or layer is None:
            raise ValueError("reading images at a layer needs both model and layer")
        reader = LayerReader(model, [layer])
        with torch.no_grad():
            reference = reader(_eight_bit(reference, model, "references"))[layer].flatten(1).double().cpu().numpy()
            metamer = reader(_eight_bit(metamer, model, "metamers"))[layer].flatten(1).double().cpu().numpy()
    reference, metamer = np.asarray(reference, dtype=np.float64), np.asarray(metamer, dtype=np.float64)
    rows = set_measures(reference.reshape(len(reference), -1), metamer.reshape(len(metamer), -1), measures,
                        n_permutations=n_permutations, n_bootstrap=n_bootstrap, seed=seed)
    return pd.DataFrame([{k: v for k, v in row.items() if k != "draws"} for row in rows])
