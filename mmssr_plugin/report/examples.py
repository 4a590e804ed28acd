"""The example cards of a report: per capability the highest and lowest scored pool samples,
found in O(N) and fetched in one call, their text clipped."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmssr_plugin.report.model import ExampleRecord, PoolScores, PoolView
from mmssr_plugin.report.values import rounded

MAX_TURNS = 6  # conversation turns kept per example
MAX_TURN_CHARS = 600  # characters kept per turn


def example_facts(
    scores: PoolScores, pairs: list[tuple[str, int]], pool: PoolView, mask: np.ndarray, k: int
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per capability the k highest and k lowest scored pool samples; their records are fetched
    in one call."""
    ends = {cap: _extremes(scores, col, k) for cap, col in pairs}
    shown = [positions for top, bottom in ends.values() for positions in (top, bottom)]
    wanted = np.unique(np.concatenate(shown)) if shown else np.zeros(0, dtype=np.int64)
    records = dict(zip(wanted.tolist(), pool.fetch(wanted))) if len(wanted) else {}

    def example(i: int, col: int) -> dict[str, Any]:
        expected = math.nan if scores.expected is None else float(scores.expected[i, col])
        source = pool.source_labels[int(pool.source_codes[i])]
        return _example(records[i], source, int(scores.argmax[i, col]), expected, bool(mask[i]))

    return {
        cap: {"top": [example(i, col) for i in ends[cap][0].tolist()],
              "bottom": [example(i, col) for i in ends[cap][1].tolist()]}
        for cap, col in pairs
    }


def _extremes(scores: PoolScores, col: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the k highest and k lowest scored samples (argmax, then expected when there
    is one, then pool order)."""
    argmax = scores.argmax[:, col]
    if scores.expected is None:
        usable = np.flatnonzero(argmax >= 0)
        rank = argmax[usable]  # int8: digits 0..5, cheap to negate, partition and compare
    else:
        expected = scores.expected[:, col].astype(np.float64)
        usable = np.flatnonzero((argmax >= 0) & np.isfinite(expected))
        rank = argmax[usable].astype(np.float64) * 8.0 + expected[usable]  # argmax first
    return usable[_extreme(-rank, k)], usable[_extreme(rank, k)]


def _extreme(keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest keys, ascending, ties in position order; O(n) for large n."""
    if k <= 0 or len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(keys) <= k:
        return np.argsort(keys, kind="stable")
    lowest = np.flatnonzero(keys == keys.min())
    if len(lowest) >= k:  # common with digit scores: many ties at the extreme, no partition needed
        return lowest[:k]
    cut = np.partition(keys, k - 1)[k - 1]
    below = np.flatnonzero(keys < cut)  # fewer than k
    below = below[np.argsort(keys[below], kind="stable")]
    return np.concatenate([below, np.flatnonzero(keys == cut)[: k - len(below)]])


def _example(
    record: ExampleRecord, source: str, argmax: int, expected: float, selected: bool
) -> dict[str, Any]:
    turns = [_clip(text) for text in record.turns[:MAX_TURNS]]
    return {
        "uid": record.uid,
        "dataset": record.dataset,
        "row": record.row,
        "source": source,
        "score": argmax,
        "expected": rounded(expected),
        "selected": selected,
        "turns": turns,
        "turns_left_out": max(len(record.turns) - MAX_TURNS, 0),
        "image": record.images[0] if record.images else None,
        "n_images": len(record.images),
    }


def _clip(text: str) -> str:
    if len(text) <= MAX_TURN_CHARS:
        return text
    return f"{text[:MAX_TURN_CHARS]}... [{len(text) - MAX_TURN_CHARS} more characters]"
