"""Style bins: which ``"{style}+{source}"`` bins each sample stands in, in CSR form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNKNOWN_STYLE = "unknown"  # the style of a sample whose style answer named none


def bin_label(style: str, source: str) -> str:
    """The label of the bin of ``style`` within image source ``source``."""
    return f"{style}+{source}"


def split_bin_label(label: str) -> tuple[str, str]:
    """``(style, source)`` of a bin label (sources may contain ``"+"``, styles do not)."""
    style, _, source = label.partition("+")
    return style, source


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class StyleBins:
    """Per-sample bin membership in CSR form.

    Sample ``i`` is in bins ``ids[offsets[i]:offsets[i + 1]]``; every sample is in at least one
    bin and in no bin twice.

    Attributes:
        labels: bin label per bin id (unique).
        offsets: int64, shape ``[N + 1]``.
        ids: int32 bin ids.
    """

    labels: tuple[str, ...]
    offsets: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        offsets = np.asarray(self.offsets, dtype=np.int64)
        ids = np.asarray(self.ids, dtype=np.int32)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "ids", ids)
        if not all(isinstance(label, str) for label in labels):
            raise ValueError("StyleBins labels must be strings")
        if len(set(labels)) != len(labels):
            raise ValueError("StyleBins labels must be unique")
        if offsets.ndim != 1 or ids.ndim != 1 or len(offsets) == 0:
            raise ValueError("StyleBins offsets and ids must be 1-D, offsets of length N + 1")
        if offsets[0] != 0 or offsets[-1] != len(ids):
            raise ValueError(
                f"StyleBins offsets must start at 0 and end at len(ids) = {len(ids)}, "
                f"got {offsets[0]} .. {offsets[-1]}"
            )
        sizes = np.diff(offsets)
        if len(sizes) and sizes.min() < 1:
            first = int(np.flatnonzero(sizes < 1)[0])
            raise ValueError(f"every sample needs at least one bin; sample {first} has none")
        if len(ids) and (ids.min() < 0 or ids.max() >= len(labels)):
            raise ValueError(f"StyleBins ids must lie in [0, {len(labels)})")
        if _has_duplicate_per_sample(offsets, ids, len(labels)):
            raise ValueError("a sample lists the same bin twice")

    @classmethod
    def from_lists(cls, per_sample: Sequence[Sequence[str]]) -> StyleBins:
        """Build bins from each sample's labels.

        Bin ids follow sorted label order, so nothing depends on string hashing; duplicate
        labels within a sample collapse.

        Args:
            per_sample: the bin labels of each sample, at least one per sample.

        Returns:
            The bins, ids sorted within each sample.
        """
        counts = np.fromiter((_label_count(labels) for labels in per_sample), np.int64)
        flat = [label for labels in per_sample for label in labels]
        labels = tuple(sorted(set(flat)))
        lookup = {label: i for i, label in enumerate(labels)}
        ids = np.fromiter((lookup[label] for label in flat), np.int64, count=len(flat))
        owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        width = max(len(labels), 1)
        pairs = np.unique(owner * width + ids)  # unique (sample, bin), by sample then bin id
        kept = np.bincount(pairs // width, minlength=len(counts))
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(kept, out=offsets[1:])
        return cls(labels, offsets, (pairs % width).astype(np.int32))

    @classmethod
    def from_styles(cls, styles: Sequence[Sequence[str]], sources: Sequence[str]) -> StyleBins:
        """Build the ``"{style}+{source}"`` bins of the method.

        Args:
            styles: each sample's styles (may be empty).
            sources: each sample's image source.

        Returns:
            The bins; a sample without a style is in ``"unknown+{source}"``.
        """
        if len(styles) != len(sources):
            raise ValueError(f"got styles for {len(styles)} samples but {len(sources)} sources")
        per_sample = []
        for sample, source in zip(styles, sources):
            named = sample if _label_count(sample) else (UNKNOWN_STYLE,)
            per_sample.append([bin_label(style, source) for style in named])
        return cls.from_lists(per_sample)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def member_counts(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Samples per bin id, int64 ``[n_bins]``; with a boolean ``mask`` only those it marks."""
        if mask is None:
            return np.bincount(self.ids, minlength=len(self.labels))
        member = np.repeat(np.asarray(mask, dtype=bool), np.diff(self.offsets))
        return np.bincount(self.ids[member], minlength=len(self.labels))


def _label_count(labels: Sequence[str]) -> int:
    if isinstance(labels, str):
        raise TypeError(f"expected a list of labels per sample, got the string {labels!r}")
    return len(labels)


def _has_duplicate_per_sample(offsets: np.ndarray, ids: np.ndarray, n_labels: int) -> bool:
    """True when some sample lists a bin twice (fast when ids ascend within samples)."""
    if len(ids) < 2:
        return False
    rises = ids[1:] > ids[:-1]
    starts = offsets[1:-1]
    rises[starts[(starts > 0) & (starts < len(ids))] - 1] = True  # sample boundaries
    if rises.all():
        return False
    keys = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    keys *= n_labels
    keys += ids
    keys.sort()
    return bool((keys[1:] == keys[:-1]).any())
