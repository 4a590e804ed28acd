"""Bin memberships of many samples at once, in the layouts the sampler's inner steps need."""

from __future__ import annotations

import numpy as np

from mmssr_plugin.selection.bins import StyleBins

PAD_WIDTH = 16  # most bins per sample for the padded membership table


class Memberships:
    """Fast access to the bins of many samples at once.

    Samples in at most ``PAD_WIDTH`` bins (always the case for style bins) use a padded
    ``[N, width]`` table of small-int bin ids, which makes gathers contiguous and lets numpy's
    radix sort group by bin; wider memberships fall back to CSR expansion.
    """

    def __init__(self, bins: StyleBins) -> None:
        self.n_bins = len(bins.labels)
        self.key_type = (
            np.uint8 if self.n_bins < 255 else np.uint16 if self.n_bins < 65535 else np.int32
        )  # leaves room for the padding value n_bins
        sizes = np.diff(bins.offsets)
        self.width = int(sizes.max()) if len(sizes) else 0
        self.offsets = bins.offsets
        self.keys = bins.ids.astype(self.key_type)
        self.table: np.ndarray | None = None
        if self.width <= PAD_WIDTH:
            self.table = np.full((len(sizes), self.width), self.n_bins, dtype=self.key_type)
            for slot in range(self.width):
                rows = np.flatnonzero(sizes > slot)
                self.table[rows, slot] = self.keys[bins.offsets[rows] + slot]

    def of(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bins of ``samples``, flattened, and the position in ``samples`` each belongs to."""
        if self.table is not None:
            rows = self.table[samples]
            valid = rows != self.n_bins
            return rows[valid], np.nonzero(valid)[0]
        starts = self.offsets[samples]
        sizes = self.offsets[samples + 1] - starts
        ends = np.cumsum(sizes)
        total = int(ends[-1]) if len(ends) else 0
        positions = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - sizes), sizes)
        return self.keys[positions], np.repeat(np.arange(len(samples)), sizes)

    def group(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Memberships of ``order``'s samples grouped by bin id, ``order`` kept within a bin.

        Returns:
            ``(sample ids as int32, members per bin)``.
        """
        if self.table is not None:
            flat = self.table[order].ravel()
            by_bin = np.argsort(flat, kind="stable")  # radix sort on 8/16-bit keys
            sizes = np.bincount(flat, minlength=self.n_bins + 1)[: self.n_bins]
            return order.astype(np.int32)[by_bin[: int(sizes.sum())] // self.width], sizes
        keys, owner = self.of(order)
        by_bin = np.argsort(keys, kind="stable")
        return order.astype(np.int32)[owner[by_bin]], np.bincount(keys, minlength=self.n_bins)
