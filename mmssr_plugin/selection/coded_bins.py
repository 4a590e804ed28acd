"""Style bins for a large pool given as codes: each sample's style set and source as small ints.

Readers of big pools (the authors' format) keep each sample's styles as an index into the
distinct style sets and its source as an index into the distinct sources; this builds the
sampler's bins from those codes without a Python loop per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmssr_plugin.selection.bins import StyleBins


def style_bins_from_codes(
    style_codes: np.ndarray,
    style_sets: Sequence[Sequence[str]],
    source_codes: np.ndarray,
    source_labels: Sequence[str],
) -> StyleBins:
    """The ``"{style}+{source}"`` bins of samples described by codes.

    Equal to ``StyleBins.from_styles([style_sets[c] for c in style_codes],
    [source_labels[s] for s in source_codes])``, computed once per distinct (styles, source)
    pair and gathered to samples with numpy.

    Args:
        style_codes: int ``[N]``, each sample's index into ``style_sets``.
        style_sets: the distinct style tuples (a tuple may be empty: bin ``unknown``).
        source_codes: int ``[N]``, each sample's index into ``source_labels``.
        source_labels: the distinct image source names.
    """
    style_codes = np.asarray(style_codes, dtype=np.int64)
    source_codes = np.asarray(source_codes, dtype=np.int64)
    if len(style_codes) != len(source_codes):
        raise ValueError(
            f"got style codes for {len(style_codes)} samples but {len(source_codes)} source codes"
        )
    width = max(len(source_labels), 1)
    combo, sample_combo = _dense_unique(style_codes * width + source_codes)
    small = StyleBins.from_styles(
        [style_sets[code] for code in (combo // width).tolist()],
        [source_labels[code] for code in (combo % width).tolist()],
    )
    sizes = np.diff(small.offsets)[sample_combo]
    offsets = np.zeros(len(style_codes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    starts = small.offsets[sample_combo]
    gather = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], sizes)
    return StyleBins(small.labels, offsets, small.ids[gather])


def _dense_unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` in O(N) when the keys are small non-negative ints."""
    if len(keys) and keys.max() < 8 * len(keys) + 4096:
        present = np.bincount(keys) > 0
        unique = np.flatnonzero(present)
        code = np.cumsum(present) - 1
        return unique, code[keys]
    return np.unique(keys, return_inverse=True)
