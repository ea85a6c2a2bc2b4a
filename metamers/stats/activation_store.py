"""Gram matrices of many wide activation vectors, in bounded memory.

A null distribution needs, for K pool images, the K x K Gram matrices of their transformed
activations (standardised average ranks for Spearman, standardised values for Pearson, the
values themselves for the SNR). K activations of D values do not fit in memory for wide
layers (K = 2,000 images of ResNet-50 ``layer1``, D = 802,816 units, are 6.4 GB in float32),
so :class:`ActivationStore` keeps them column-chunk by column-chunk:

* :meth:`ActivationStore.add` takes a block of rows, computes per row what the statistics
  need (average ranks; mean and centred norm in float64), and writes the rows as float32 into
  a ``(chunks, K, C)`` array, in memory when it fits ``memory_bytes`` and in a scratch file
  otherwise. Ranks are stored exactly (half-integers up to 2D < 2^24 are float32 numbers;
  wider layers store float64).
* :meth:`ActivationStore.grams` reads one column chunk at a time, transforms it to float64
  and accumulates ``T T^T``. Peak memory: the K x K results, a few K x C float64 blocks, and
  the block of rows being added (:meth:`ActivationStore.rows_per_block` sizes it), whatever D is.

Every value is the float64 result of the same per-row transform as the paired statistics in
:mod:`metamers.stats.statistics`, so exact ties (a correlation of exactly 1) stay exact.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .statistics import STATISTICS, Gram, average_ranks

log = logging.getLogger(__name__)

#: Bytes of temporary memory per activation value while a block of rows is ranked and standardised.
BYTES_PER_VALUE_IN_TRANSFORM = 96


class ActivationStore:
    """K rows of D activations, stored by column chunks, for Gram matrices in bounded memory.

    Parameters
    ----------
    n_rows
        K, the number of images.
    dim
        D, the number of activation values per image.
    statistics
        The statistics whose Gram matrices :meth:`grams` returns (names in
        :data:`~metamers.stats.statistics.STATISTICS`; each names its :class:`~metamers.stats.statistics.Gram`).
    chunk_columns
        Columns per chunk C (at most; fewer when K x C float64 blocks would exceed a quarter of
        ``memory_bytes``).
    memory_bytes
        Budget for the stored rows in memory; a larger store goes to a scratch file, and the
        blocks of rows being added are sized to a quarter of it.
    scratch_dir
        Folder of the scratch file (default: the system's temporary folder). The file is removed
        by :meth:`close` (or on leaving a ``with`` block).
    """

    def __init__(
        self,
        n_rows: int,
        dim: int,
        statistics: Sequence[str],
        chunk_columns: int = 4096,
        memory_bytes: int = 1 << 30,
        scratch_dir: str | os.PathLike | None = None,
    ) -> None:
        self.gram_of = {name: STATISTICS[name].gram for name in statistics}  # unknown names list the valid ones
        if n_rows < 1 or dim < 1:
            raise ValueError(f"an activation store needs at least one row and one column, got {n_rows} x {dim}")
        self.n_rows, self.dim = int(n_rows), int(dim)
        self.statistics = list(dict.fromkeys(statistics))
        self.kinds = sorted({gram.kind for gram in self.gram_of.values()})
        self.memory_bytes = int(memory_bytes)
        widest = max(1, min(int(chunk_columns), dim, self.memory_bytes // (4 * 8 * self.n_rows)))
        self.n_chunks = -(-dim // widest)
        self.columns = -(-dim // self.n_chunks)  # chunks of (nearly) equal width: the padding is < n_chunks
        # Ranks are half-integers up to D: exact in float32 while 2D < 2^24.
        self.dtype = {"values": np.float32, "ranks": np.float32 if 2 * dim < 2**24 else np.float64}
        self._mean = {kind: np.full(n_rows, np.nan) for kind in self.kinds}
        self._norm = {kind: np.full(n_rows, np.nan) for kind in self.kinds}
        self._filled = np.zeros(n_rows, dtype=bool)
        size = sum(self._kind_bytes(kind) for kind in self.kinds)
        self.on_disk = size > self.memory_bytes
        self._arrays: dict[str, np.ndarray] = {}
        self._file = None
        self._offset: dict[str, int] = {}
        if self.on_disk:
            self._file = tempfile.NamedTemporaryFile(prefix="metamers-null-", suffix=".bin", dir=scratch_dir,
                                                     delete=False)
            self.path = Path(self._file.name)
            offset = 0
            for kind in self.kinds:
                self._offset[kind] = offset
                offset += self._kind_bytes(kind)
            self._file.truncate(offset)
            log.info("activation store: %d x %d values (%.2f GB) in scratch file %s", n_rows, dim, size / 1e9,
                     self.path)
        else:
            self.path = None
            for kind in self.kinds:
                self._arrays[kind] = np.zeros((self.n_chunks, n_rows, self.columns), dtype=self.dtype[kind])

    # ------------------------------------------------------------------ layout

    def _kind_bytes(self, kind: str) -> int:
        return self.n_chunks * self.n_rows * self.columns * np.dtype(self.dtype[kind]).itemsize

    def _chunk_width(self, chunk: int) -> int:
        return min(self.columns, self.dim - chunk * self.columns)

    def rows_per_block(self) -> int:
        """How many rows :meth:`add` should take at once to stay within a quarter of the budget."""
        return max(1, self.memory_bytes // (4 * BYTES_PER_VALUE_IN_TRANSFORM * self.dim))

    def _write(self, kind: str, chunk: int, start: int, block: np.ndarray) -> None:
        width = self._chunk_width(chunk)
        if not self.on_disk:
            self._arrays[kind][chunk, start : start + len(block), :width] = block
            return
        padded = np.zeros((len(block), self.columns), dtype=self.dtype[kind])
        padded[:, :width] = block
        itemsize = np.dtype(self.dtype[kind]).itemsize
        offset = self._offset[kind] + (chunk * self.n_rows + start) * self.columns * itemsize
        os.pwrite(self._file.fileno(), padded.tobytes(), offset)

    def _read(self, kind: str, chunk: int) -> np.ndarray:
        width = self._chunk_width(chunk)
        if not self.on_disk:
            return self._arrays[kind][chunk, :, :width]
        itemsize = np.dtype(self.dtype[kind]).itemsize
        offset = self._offset[kind] + chunk * self.n_rows * self.columns * itemsize
        count = self.n_rows * self.columns
        data = os.pread(self._file.fileno(), count * itemsize, offset)
        return np.frombuffer(bytearray(data), dtype=self.dtype[kind]).reshape(self.n_rows, self.columns)[:, :width]

    # --------------------------------------------------------------- interface

    @torch.no_grad()
    def add(self, start: int, activations: torch.Tensor) -> None:
        """Store rows ``start .. start + len(activations)`` (any shape ``(b, ...)`` with D values
        per row, on any device)."""
        block = activations.reshape(len(activations), -1)
        if block.shape[1] != self.dim:
            raise ValueError(f"rows have {block.shape[1]} values; this store holds {self.dim} per row")
        stop = start + len(block)
        if start < 0 or stop > self.n_rows:
            raise ValueError(f"rows {start}..{stop} are outside the store's {self.n_rows} rows")
        for kind in self.kinds:
            data = average_ranks(block) if kind == "ranks" else block.to(torch.float64)
            mean = data.mean(dim=1, keepdim=True)
            self._mean[kind][start:stop] = mean[:, 0].cpu().numpy()
            self._norm[kind][start:stop] = (data - mean).norm(dim=1).cpu().numpy()
            stored = data.cpu().numpy().astype(self.dtype[kind])
            for chunk in range(self.n_chunks):
                lo = chunk * self.columns
                self._write(kind, chunk, start, stored[:, lo : lo + self.columns])
        self._filled[start:stop] = True

    @torch.no_grad()
    def grams(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """``{statistic: K x K float64 Gram matrix}``, the one its :class:`Gram` names: dot products
        of standardised rows (entry ``(i, j)`` is the correlation of images i and j; NaN for a
        constant row), or of the stored rows themselves. Statistics that read the same Gram
        share one matrix."""
        if not self._filled.all():
            raise ValueError(f"{int((~self._filled).sum())} of the store's {self.n_rows} rows were never added")
        wanted = set(self.gram_of.values())
        out = {gram: torch.zeros(self.n_rows, self.n_rows, dtype=torch.float64, device=device) for gram in wanted}
        affine = {}
        for kind in self.kinds:
            norm = self._norm[kind]
            scale = np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), np.nan)
            affine[kind] = (torch.from_numpy(self._mean[kind]).to(device)[:, None],
                            torch.from_numpy(scale).to(device)[:, None])
        for chunk in range(self.n_chunks):
            for kind in self.kinds:
                block = torch.from_numpy(np.ascontiguousarray(self._read(kind, chunk))).to(device, torch.float64)
                if Gram(kind, False) in out:
                    out[Gram(kind, False)].addmm_(block, block.T)
                if Gram(kind, True) in out:
                    mean, scale = affine[kind]
                    t = (block - mean) * scale
                    out[Gram(kind, True)].addmm_(t, t.T)
        return {s: out[self.gram_of[s]] for s in self.statistics}

    def close(self) -> None:
        """Remove the scratch file (if any) and free the stored rows."""
        self._arrays.clear()
        if self._file is not None:
            self._file.close()
            Path(self._file.name).unlink(missing_ok=True)
            self._file = None

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
