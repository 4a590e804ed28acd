"""The report figures of a selection drawn from samples and their score table (the training-time
stage and ``mmssr-cli report``): adapts both to the arrays the counting works on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmssr_plugin.data.sample import Sample
from mmssr_plugin.report.figures import count_report_data
from mmssr_plugin.report.model import DEFAULT_TOP_K, ExampleRecord, PoolScores, PoolView
from mmssr_plugin.report.model import ReportData, SelectionFacts
from mmssr_plugin.scoring.failures import failure_kind
from mmssr_plugin.scoring.store import ScoreTable
from mmssr_plugin.selection.bins import StyleBins


def build_report_data(
    pool: Sequence[Sample],
    facts: SelectionFacts,
    table: ScoreTable | None = None,
    *,
    capabilities: Sequence[str] | None = None,
    bins: StyleBins | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> ReportData:
    """Count the figures of one selection made from samples and a score table.

    Args:
        pool: the valid samples the selection drew from, in pool order.
        facts: the selection (indices into ``pool``) and what else the report states.
        table: the scores of ``pool`` (same order); None for the random method.
        capabilities: capability ids in selection order (default: the table's).
        bins: style bins of ``pool`` (default: built from the table's styles and sources).
        top_k: examples shown per capability at each end of the score range.

    Raises:
        ValueError: the table or bins do not cover the pool, or an index is out of range.
    """
    labels: dict[str, int] = {}
    codes = np.fromiter((labels.setdefault(s.source, len(labels)) for s in pool), np.int64, len(pool))
    view = PoolView(codes, tuple(labels), lambda at: [_sample_record(pool[i]) for i in at.tolist()])
    scores = None
    if table is not None:
        if list(table.uids) != [s.uid for s in pool]:
            raise ValueError("the score table does not cover the pool in pool order")
        caps = list(capabilities) if capabilities is not None else list(table.capabilities)
        columns = [table.capabilities.index(cap) for cap in caps]
        if bins is None:
            bins = StyleBins.from_styles(table.styles, [s.source for s in pool])
        scores = PoolScores(caps, table.digits.argmax, table.digits.expected, columns, bins,
                            _scoring_facts(table, caps, columns))
    return count_report_data(view, facts, scores, top_k)


def _sample_record(sample: Sample) -> ExampleRecord:
    return ExampleRecord(sample.uid, sample.dataset, sample.row, sample.turns, sample.images)


def _scoring_facts(table: ScoreTable, caps: list[str], columns: list[int]) -> dict[str, Any]:
    scored = table.scored
    failures = Counter(failure_kind(err) for err in table.errors if err is not None)
    missing = table.digits.missing
    return {
        "scored": int(scored.sum()),
        "failed": int((~scored).sum()),
        "failures_by_reason": dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))),
        "non_digit": {cap: int((missing[:, col] & scored).sum()) for cap, col in zip(caps, columns)},
        "style_unmatched": int((np.asarray(table.style_unmatched) > 0).sum()),
    }
