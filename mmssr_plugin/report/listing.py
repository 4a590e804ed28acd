"""The report's lists: the selected samples (id, the capability that picked each, its score and
style bins), the subsets they were written to, and the excluded or failed samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmssr_plugin.report.model import PoolScores, PoolView, SelectionFacts
from mmssr_plugin.report.values import plain

MAX_LISTED_SELECTED = 2000  # selected samples listed; the subset files hold them all
MAX_LISTED_FAILURES = 50  # excluded / failed samples listed; the failures file holds them all


def add_listings(data: Any, pool: PoolView, facts: SelectionFacts, chosen: np.ndarray,
                 scores: PoolScores | None) -> None:
    """Fill ``data.subsets``, ``data.selected_samples`` and ``data.failures`` of a report."""
    data.subsets = [plain(dict(part)) for part in facts.subsets]
    data.selected_samples = selected_listing(pool, facts, chosen, scores)
    failures = list(facts.failures)
    data.failures = {
        "file": facts.failures_file,
        "total": len(failures),
        "rows": [plain(dict(record)) for record in failures[:MAX_LISTED_FAILURES]],
        "rows_left_out": max(len(failures) - MAX_LISTED_FAILURES, 0),
    }


def selected_listing(pool: PoolView, facts: SelectionFacts, chosen: np.ndarray,
                     scores: PoolScores | None) -> dict[str, Any]:
    """The first selected samples in pool order, each with its picking capability, score and bins."""
    picked_by = _picked_by(facts)
    shown = chosen[:MAX_LISTED_SELECTED]
    rows = []
    for index, record in zip(shown.tolist(), pool.fetch(shown)):
        capability = picked_by.get(index)
        row: dict[str, Any] = {
            "uid": record.uid, "dataset": record.dataset, "row": int(record.row),
            "capability": capability, "score": None, "expected": None, "style_bins": [],
        }
        if scores is not None:
            row["style_bins"] = _bin_labels(scores, index)
            if capability in scores.capabilities:
                column = scores.columns[list(scores.capabilities).index(capability)]
                row["score"], row["expected"] = _score(scores, index, column)
        rows.append(row)
    return {"total": len(chosen), "rows": rows, "rows_left_out": len(chosen) - len(rows)}


def _picked_by(facts: SelectionFacts) -> Mapping[int, str]:
    """Pool index -> the capability that picked it (empty without capabilities)."""
    if not facts.picked_by:
        return {}
    return dict(zip(np.asarray(facts.selected, dtype=np.int64).tolist(), facts.picked_by))


def _bin_labels(scores: PoolScores, index: int) -> list[str]:
    bins = scores.bins
    ids = bins.ids[bins.offsets[index]:bins.offsets[index + 1]].tolist()
    return sorted(bins.labels[b] for b in ids)


def _score(scores: PoolScores, index: int, column: int) -> tuple[int | None, float | None]:
    digit = int(scores.argmax[index, column])
    expected = None
    if scores.expected is not None:
        value = float(scores.expected[index, column])
        expected = round(value, 4) if np.isfinite(value) else None
    return (digit if digit >= 0 else None), expected


def failure_rows(records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Table rows (dataset, row, uid, image, reason) of failure records."""
    return [[r.get("dataset"), r.get("row"), r.get("uid"), r.get("image") or "", r.get("reason")]
            for r in records]
