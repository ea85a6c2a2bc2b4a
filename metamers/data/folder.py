"""Image set ``folder``: an ImageFolder-style tree ``root/<class>/<image>``, or a flat folder of
images whose file names give their labels (``label_pattern``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .image_set import IMAGE_SETS, ImageListError, ImageSet, ImageSetType, stratified_sample
from .pixels import IMAGE_EXTENSIONS, ImageError


def folder_images(cfg: Mapping[str, Any]) -> ImageSet:
    """An ImageFolder-style tree ``root/<class>/<image>``; labels follow the sorted class names
    unless ``class_index`` maps class names to labels. Ids are ``<class>/<file stem>``.
    ``held_out`` (boolean, default False) is the folder owner's word that the images were held
    out from the models' training. Two files of one class with one stem (``1/dup.png`` and
    ``1/dup.jpg``) are an error naming both (:func:`_listed`)."""
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
    return _listed(cfg, root, held_out, files, labels, [f"{f.parent.name}/{f.stem}" for f in files],
                   {c: int(class_index[c]) for c in classes}, "<class>/<file stem>")


IMAGE_SETS.register("folder", ImageSetType(folder_images))


def _flat_folder(cfg: Mapping[str, Any], root: Path, held_out: bool) -> ImageSet:
    """Images directly in ``root``, each labelled by group 1 of the regular expression
    ``label_pattern`` searched in its file name (an integer); ids are the file stems, so two files
    with one stem (``a_1.png`` and ``a_1.jpg``) are an error naming both."""
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
    names = cfg.get("class_index") or {str(label): label for label in sorted(set(labels))}
    return _listed(cfg, root, held_out, files, labels, [f.stem for f in files],
                   {str(k): int(v) for k, v in names.items()}, "file stems")


def _listed(cfg: Mapping[str, Any], root: Path, held_out: bool, files: Sequence[Path], labels: Sequence[int],
            ids: Sequence[str], class_index: dict[str, int], what_ids_are: str) -> ImageSet:
    """The image set of ``files`` (with their ``labels`` and ``ids``), sampled per class as
    ``cfg`` says.

    Raises
    ------
    ImageListError
        Two or more files have one id (``1/dup.png`` and ``1/dup.jpg``): the message names every
        such file; its partial set tells them apart by their suffixes.
    """
    by_id: dict[str, list[Path]] = {}
    for f, i in zip(files, ids):
        by_id.setdefault(i, []).append(f)
    shared = {i: fs for i, fs in by_id.items() if len(fs) > 1}
    if shared:
        ids = [f"{i}{f.suffix}" if i in shared else i for f, i in zip(files, ids)]
    idx = stratified_sample(
        np.asarray(labels), cfg.get("per_class"), int(cfg.get("seed", 0)), f"image folder {root}", cfg.get("limit")
    )
    chosen = [ids[k] for k in idx]
    image_set = ImageSet(str(root), chosen, {ids[k]: labels[k] for k in idx}, {ids[k]: files[k] for k in idx},
                         held_out=held_out, class_index=class_index)
    if shared:
        named = "; ".join(f"{i!r} is {' and '.join(repr(str(f)) for f in fs)}" for i, fs in shared.items())
        raise ImageListError(f"image folder {str(root)!r}: files share an id (ids are {what_ids_are}): {named}; "
                             "rename or remove all but one file of each id", image_set)
    return image_set
