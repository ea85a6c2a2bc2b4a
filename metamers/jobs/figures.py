"""Rules ``grid_images`` and ``figure``: the pixel table of the metamer grid, and drawing one figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..artifacts.files import read_npz, write_npz
from ..artifacts.metamers import read_metamer_batch

#: The rule that writes each ``.npz`` table (the remedy a bad one's error names).
NPZ_TABLE_RULES = {"metamer_grid.npz": "grid_images", "inversions.npz": "inversion_table"}


def grid_images(config: Mapping[str, Any], artifact_paths: Sequence[str | Path], out_path: str | Path) -> Path:
    """Rule ``grid_images``: the pixels of the ``figures.grid_images`` references that the metamer
    grid shows and their metamers in ``artifact_paths`` (with a method's ``diversity``, member 0;
    every member of a few of them for the members figure, :func:`~metamers.figures.diversity.member_images`),
    as a small ``.npz`` table with checksums (:func:`~metamers.artifacts.files.write_npz`)."""
    from ..figures.diversity import member_images
    from ..figures.grid import grid_images as table

    order = {gen: config.generator_layers(gen) for gen in config["generators"]}
    batches = [read_metamer_batch(p, activations=False) for p in artifact_paths]
    grid = table(batches, config["figures"]["grid_images"], order)
    shape = (grid["images"].shape[-1], *grid["images"].shape[2:4])  # (C, H, W)
    grid.update(member_images(batches, list(grid["image_ids"]), shape))  # a diversity term's members
    return write_npz(out_path, grid, compressed=True)


def read_figure_table(path: str | Path) -> Any:
    """A figure's table: a pandas frame from CSV, a dict of arrays from ``.npz`` (verified against
    its checksums, :func:`~metamers.artifacts.files.read_npz`)."""
    import pandas as pd

    if str(path).endswith(".npz"):
        return read_npz(path, "figure table", NPZ_TABLE_RULES.get(Path(path).name, "grid_images or inversion_table"))
    return pd.read_csv(path)


def figure(config: Mapping[str, Any], name: str, table_paths: Sequence[str | Path],
           out_paths: Sequence[str | Path]) -> list[Path]:
    """Rule ``figure``: draw registered figure ``name`` from its tables (``table_paths``, in the
    order :data:`~metamers.figures.FIGURES` gives) and save it in every format of ``out_paths``."""
    from ..figures import FIGURES
    from ..figures.style import save_figure

    spec = FIGURES[name]
    if len(table_paths) != len(spec.tables):
        raise ValueError(f"figure {name!r} is drawn from {len(spec.tables)} table(s) {list(spec.tables)}; "
                         f"got {len(table_paths)}")
    save_figure(spec.draw(*[read_figure_table(p) for p in table_paths], **spec.options(config)), out_paths)
    return [Path(p) for p in out_paths]
