"""The summary the selection stage shows after making a selection: pool, subset, per-capability
scores, style-bin coverage, sources, written subsets and report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from mmssr_plugin.data.sample import Sample
from mmssr_plugin.data.subsets import SubsetPart
from mmssr_plugin.llamafactory.outcome import Picked
from mmssr_plugin.scoring.digits import finite_mean
from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.config import SelectionConfig


def summary_lines(
    selection: SelectionConfig,
    samples: list[Sample],
    valid: list[Sample],
    picked: Picked,
    parts: list[SubsetPart],
    dataset_dir: Path,
    skipped: list[str],
    report: Path | None,
) -> list[str]:
    """Human-readable lines (without the log prefix) describing a new selection."""
    result = picked.result
    chosen = result.indices
    lines = [
        f"===== data selection ({selection.method}, budget {selection.budget}) =====",
        f"pool: {len(valid)} valid samples ({len(samples) - len(valid)} excluded); "
        f"subset: {len(chosen)} of budget {result.budget}",
    ]
    if result.shortfall_reason:
        lines.append(f"shortfall {result.budget - len(chosen)}: {result.shortfall_reason}")
    scored = picked.scored
    if scored is not None:
        lines.append("capability      picked  mean score pool -> subset")
        for c, cap in enumerate(scored.capabilities):
            pool_mean = finite_mean(scored.scores[:, c])
            subset_mean = finite_mean(scored.scores[chosen, c])
            lines.append(f"  {cap:<14} {result.per_capability[cap]:>6}  "
                         f"{pool_mean:.2f} -> {subset_mean:.2f}")
        pool_bins = _bins_of(scored.bins, np.arange(len(valid)))
        subset_bins = _bins_of(scored.bins, chosen)
        lines.append(f"style bins covered: {len(subset_bins)} of {len(pool_bins)}")
    sources = Counter(valid[i].source for i in chosen)
    lines.append("sources in subset: "
                 + ", ".join(f"{name} {count}" for name, count in sorted(sources.items())))
    for part in parts:
        lines.append(f"subset {part.name}: {part.rows} rows -> {part.path}")
    for name in skipped:
        lines.append(f"dataset {name}: no sample selected, not registered")
    lines.append(f"registered in {dataset_dir / 'dataset_info.json'}")
    if report:
        lines.append(f"report: {report}")
    return lines


def _bins_of(bins: StyleBins, indices: np.ndarray) -> set[str]:
    """Labels of the bins the given samples stand in (vectorised over the CSR membership)."""
    owner = np.repeat(np.arange(len(bins.offsets) - 1), np.diff(bins.offsets))
    ids = np.unique(bins.ids[np.isin(owner, indices)])
    return {bins.labels[b] for b in ids.tolist()}
