"""Counting the figures of one selection from arrays: sizes, score histograms per capability,
style x source bins, image sources and examples. Only the examples' records are fetched, so a
multi-million-sample pool needs no per-sample Python object; every list shown is capped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from mmssr_plugin.core.taxonomy import STYLES
from mmssr_plugin.report.examples import example_facts
from mmssr_plugin.report.listing import add_listings
from mmssr_plugin.report.model import DEFAULT_TOP_K, PoolScores, PoolView, ReportData, SelectionFacts
from mmssr_plugin.report.values import finite_mean, plain
from mmssr_plugin.selection.bins import UNKNOWN_STYLE, StyleBins, split_bin_label

SCORE_LABELS = ("0", "1", "2", "3", "4", "5", "missing")
MAX_TABLE_ROWS = 300  # bins / sources listed in full up to this many
MAX_MATRIX_SOURCES = 30  # sources (columns) of the style x source matrix


def count_report_data(
    pool: PoolView,
    facts: SelectionFacts,
    scores: PoolScores | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> ReportData:
    """Count the figures of one selection from arrays; only the examples' records are fetched.

    Args:
        pool: the pool's source codes and a way to fetch a few of its records.
        facts: the selection: picks, budget, configuration and what else the report states.
        scores: the pool's scores, bins and scoring facts; None for the random method.
        top_k: examples shown per capability at each end of the score range.

    Raises:
        ValueError: the scores or bins do not cover the pool, or an index is out of range.
    """
    n = len(pool)
    chosen = np.asarray(facts.selected, dtype=np.int64)
    if (np.diff(chosen) <= 0).any():  # not ascending and unique already (np.unique is slow)
        chosen = np.unique(chosen)
    if len(chosen) and (chosen[0] < 0 or chosen[-1] >= n):
        raise ValueError(f"selected indices must lie in [0, {n})")
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    key, loaded, budget = facts.key, facts.loaded, int(facts.budget)
    method = str(facts.config.get("method", "mmssr" if scores is not None else "random"))
    data = ReportData(
        title=f"mmSSR selection report ({method}{', ' + key if key else ''})",
        key=key,
        method=method,
        config=plain(dict(facts.config)),
        scorer_fingerprint=plain(dict(facts.scorer_fingerprint)) if facts.scorer_fingerprint else None,
        sizes={
            "loaded": loaded,
            "pool": n,
            "excluded": None if loaded is None else loaded - n,
            "budget": budget,
            "subset": len(chosen),
            "shortfall": budget - len(chosen),
            "shortfall_reason": facts.shortfall_reason,
            "exhausted": list(facts.exhausted),
        },
        excluded_by_reason={str(k): int(v) for k, v in dict(facts.excluded_by_reason or {}).items()},
        scoring=None,
        sources=_count_table(_source_counts(pool, mask), ("source",)),
    )
    if scores is None:
        add_listings(data, pool, facts, chosen, None)
        return data
    if len(scores.argmax) != n or (scores.expected is not None and len(scores.expected) != n):
        raise ValueError(f"the scores cover {len(scores.argmax)} samples but the pool has {n}")
    if len(scores.bins) != n:
        raise ValueError(f"style bins cover {len(scores.bins)} samples but the pool has {n}")
    picks = dict(facts.per_capability or {})
    pairs = list(zip(scores.capabilities, scores.columns))
    data.scoring = plain(scores.scoring)
    if scores.expected is None:
        data.scoring["expected_available"] = False
    data.capabilities = [
        _capability_facts(scores, cap, col, mask, picks.get(cap, 0)) for cap, col in pairs
    ]
    data.style_bins = _bin_facts(scores.bins, mask)
    data.examples = example_facts(scores, pairs, pool, mask, top_k)
    add_listings(data, pool, facts, chosen, scores)
    return data


def _capability_facts(
    scores: PoolScores, cap: str, col: int, mask: np.ndarray, picked: int
) -> dict[str, Any]:
    codes = scores.argmax[:, col].view(np.uint8)  # digits 0..5; missing (-1) reads as 255
    expected = scores.expected[:, col] if scores.expected is not None else None
    return {
        "id": cap,
        "picked": int(picked),
        "labels": list(SCORE_LABELS),
        "pool": _score_counts(codes),
        "subset": _score_counts(codes[mask]),
        "mean_expected_pool": None if expected is None else finite_mean(expected),
        "mean_expected_subset": None if expected is None else finite_mean(expected[mask]),
    }


def _score_counts(codes: np.ndarray) -> list[int]:
    """Samples per digit 0..5, then missing, of uint8 digit codes."""
    counts = np.bincount(codes, minlength=256)
    return [*counts[:6].tolist(), int(counts[6:].sum())]


def _bin_facts(bins: StyleBins, mask: np.ndarray) -> dict[str, Any]:
    pool = bins.member_counts()
    subset = bins.member_counts(mask)
    counts = {label: (int(pool[b]), int(subset[b])) for b, label in enumerate(bins.labels)}
    facts = _count_table(counts, ("style", "source"))
    facts["covered"] = int((subset > 0).sum())
    facts["matrix"] = _style_source_matrix(counts)
    return facts


def _style_source_matrix(counts: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """Pool and subset counts as ``[style][source]`` grids over the largest sources.

    Styles follow the method's order (then any others by name); sources go by pool memberships,
    largest first, ties by name.
    """
    cells: dict[tuple[str, str], tuple[int, int]] = {}
    by_source: Counter[str] = Counter()
    for label, (pool, subset) in counts.items():
        style, source = split_bin_label(label)
        cells[(style, source)] = (pool, subset)
        by_source[source] += pool
    present = {style for style, _ in cells}
    styles = [s for s in (*STYLES, UNKNOWN_STYLE) if s in present] + sorted(
        present - {*STYLES, UNKNOWN_STYLE})
    sources = sorted(by_source, key=lambda name: (-by_source[name], name))
    shown = sources[:MAX_MATRIX_SOURCES]
    return {
        "styles": styles,
        "sources": shown,
        "sources_left_out": len(sources) - len(shown),
        "pool": [[cells.get((st, so), (0, 0))[0] for so in shown] for st in styles],
        "subset": [[cells.get((st, so), (0, 0))[1] for so in shown] for st in styles],
    }


def _source_counts(pool: PoolView, mask: np.ndarray) -> dict[str, tuple[int, int]]:
    labels = pool.source_labels
    codes = np.asarray(pool.source_codes, dtype=np.int64)
    in_pool = np.bincount(codes, minlength=len(labels))
    in_subset = np.bincount(codes[mask], minlength=len(labels))
    return {labels[c]: (int(in_pool[c]), int(in_subset[c])) for c in np.flatnonzero(in_pool)}


def _count_table(counts: Mapping[str, tuple[int, int]], parts: tuple[str, ...]) -> dict[str, Any]:
    """Rows ``{label, <parts>, pool, subset}``, largest pool first, ties by label; capped.

    A label splits into ``parts`` at the first ``"+"`` (bin labels are ``"{style}+{source}"``).
    """
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    rows = []
    for label, (pool, subset) in ordered[:MAX_TABLE_ROWS]:
        pieces = split_bin_label(label) if len(parts) > 1 else (label,)
        row: dict[str, Any] = dict(zip(parts, pieces))
        row.update(label=label, pool=pool, subset=subset)
        rows.append(row)
    return {
        "total": len(ordered),
        "rows": rows,
        "rows_left_out": max(len(ordered) - MAX_TABLE_ROWS, 0),
    }
