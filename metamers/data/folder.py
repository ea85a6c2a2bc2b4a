"""Image set ``folder``: an ImageFolder-style tree ``root/<class>/<image>``, or a flat folder of
images whose file names give their labels (``label_pattern``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .image_set import IMAGE_SETS, ImageSet, ImageSetType, stratified_sample
from .pixels import IMAGE_EXTENSIONS, ImageError


def folder_images(cfg: Mapping[str, Any]) -> ImageSet:
    """An ImageFolder-style tree ``root/<class>/<image>``; labels follow the sorted class names
    unless ``class_index`` maps class names to labels. Ids are ``<class>/<file stem>``.
    ``held_out`` (boolean, default False) is the folder owner's word that the images were held
    out from the models' training."""
    root = Path(cfg["root"])
    held_out = cfg.get("held_out", False)
    if not isinstance(held_out, bool):
        raise ImageError(f"image folder {str(root)!r}: held_out must be true or false, not {held_out!r}")
    if not root.is_dir():
        raise ImageError(f"image folder {str(root)!r} does not exist")
    if cfg.get("label_pattern"):
        return _flat_folder(cfg, root, held_out)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ImageError(f"image folder {str(root)!r} has no class sub-folders")
    class_index = cfg.get("class_index") or {c: k for k, c in enumerate(classes)}
    unmapped = [c for c in classes if c not in class_index]
    if unmapped:
        raise ImageError(f"class_index has no label for class folder(s) {unmapped}")
    files, labels = [], []
    for c in classes:
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(f)
                labels.append(int(class_index[c]))
    if not files:
        raise ImageError(f"image folder {str(root)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    idx = stratified_sample(
        np.asarray(labels), cfg.get("per_class"), int(cfg.get("seed", 0)), f"image folder {root}", cfg.get("limit")
    )
    ids = [f"{files[k].parent.name}/{files[k].stem}" for k in idx]
    return ImageSet(
        str(root),
        ids,
        {i: labels[k] for i, k in zip(ids, idx)},
        {i: files[k] for i, k in zip(ids, idx)},
        held_out=held_out,
        class_index={c: int(class_index[c]) for c in classes},
    )


IMAGE_SETS.register("folder", ImageSetType(folder_images))


def _flat_folder(cfg: Mapping[str, Any], root: Path, held_out: bool) -> ImageSet:
    """Images directly in ``root``, each labelled by group 1 of the regular expression
    ``label_pattern`` searched in its file name (an integer); ids are the file stems."""
    pattern = re.compile(cfg["label_pattern"])
    files = sorted(f for f in root.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ImageError(f"image folder {str(root)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    labels = []
    for f in files:
        found = pattern.search(f.name)
        try:
            labels.append(int(found.group(1)))  # type: ignore[union-attr]
        except (AttributeError, IndexError, ValueError):
            raise ImageError(f"image folder {str(root)!r}: label_pattern {cfg['label_pattern']!r} gives no integer "
                             f"label (group 1) for {f.name!r}") from None
    idx = stratified_sample(
        np.asarray(labels), cfg.get("per_class"), int(cfg.get("seed", 0)), f"image folder {root}", cfg.get("limit")
    )
    ids = [files[k].stem for k in idx]
    names = cfg.get("class_index") or {str(label): label for label in sorted(set(labels))}
    return ImageSet(str(root), ids, {i: labels[k] for i, k in zip(ids, idx)}, {i: files[k] for i, k in zip(ids, idx)},
                    held_out=held_out, class_index={str(k): int(v) for k, v in names.items()})
