"""The report of a selection made from the authors' pool and score files (``mmssr-cli select``).

Everything is counted from the arrays the authors'-format readers keep (source codes, the score
matrix, per-file counts) and the style bins the selection used; only the few records shown as
examples are read again from the pool file, by their character spans.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmssr_plugin.data.media_root import find_media_root
from mmssr_plugin.formats.authors.pool import Pool, record_images
from mmssr_plugin.formats.authors.pool_scores import AuthorsScores
from mmssr_plugin.formats.authors.records import read_records
from mmssr_plugin.report.figures import count_report_data
from mmssr_plugin.report.model import DEFAULT_TOP_K, ExampleRecord, PoolScores, PoolView
from mmssr_plugin.report.model import ReportData, SelectionFacts
from mmssr_plugin.report.writer import write_report
from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.result import SelectionResult

_TURN_ROLES = ("human", "gpt")


def authors_report_data(
    pool: Pool,
    scores: AuthorsScores,
    bins: StyleBins,
    result: SelectionResult,
    *,
    config: Mapping[str, Any],
    media_dir: str | Path | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> ReportData:
    """Count the figures of a selection from the authors' files.

    Args:
        pool: the pool as ``read_pool`` keeps it.
        scores: its scores and per-file counts (argmax digits only: expected scores n/a).
        bins: the style bins the selection used.
        result: the selection.
        config: the selection configuration (shown verbatim).
        media_dir: folder the records' image paths are relative to (default: the pool file's, or
            the folder above it under which they exist, see ``data.media_root``).
        top_k: examples per capability at each end of the score range.
    """
    media = Path(media_dir) if media_dir is not None else None
    argmax = _argmax_codes(scores.scores)
    view = PoolView(pool.source_codes, pool.source_labels, lambda at: _records(pool, at, media))
    pool_scores = PoolScores(
        capabilities=scores.capabilities,
        argmax=argmax,
        expected=None,
        columns=range(len(scores.capabilities)),
        bins=bins,
        scoring=_scoring_facts(scores, argmax),
    )
    facts = SelectionFacts.of_result(
        result, config, excluded_by_reason={}, loaded=len(pool), scorer_fingerprint=_fingerprint(scores)
    )
    return count_report_data(view, facts, pool_scores, top_k)


def write_authors_report(out_dir: str | Path, *args: Any, **kwargs: Any) -> tuple[Path, Path]:
    """Write ``report.html`` + ``report.json`` of a selection from the authors' files.

    Takes the arguments of :func:`authors_report_data` after ``out_dir``.

    Returns:
        ``(html_path, json_path)``.
    """
    data = authors_report_data(*args, **kwargs)
    return write_report(out_dir, data)


def _argmax_codes(scores: np.ndarray) -> np.ndarray:
    """int8 digits, -1 where NaN; column-major, so each capability's column is contiguous."""
    codes = np.empty(scores.shape, dtype=np.int8, order="F")
    for j in range(scores.shape[1]):
        column = scores[:, j]
        codes[:, j] = np.where(np.isnan(column), -1, column)
    return codes


def _scoring_facts(scores: AuthorsScores, argmax: np.ndarray) -> dict[str, Any]:
    """Samples with a usable score, unparseable answers per file, style counts."""
    has_score = np.zeros(len(argmax), dtype=bool)
    for j in range(argmax.shape[1]):
        has_score |= argmax[:, j] >= 0
    *capability_files, style = scores.files
    return {
        "scored": int(has_score.sum()),
        "failed": int((~has_score).sum()),
        "failures_by_reason": {},
        "non_digit": {f.name: f.unparseable for f in capability_files},
        "style_unmatched_pieces": style.unmatched,
        "style_unparseable": style.unparseable,
        "score_files": [
            {"file": f.path.name, "lines": f.lines, "unparseable": f.unparseable,
             "missing": f.missing, "unknown": f.unknown}
            for f in scores.files
        ],
    }


def _fingerprint(scores: AuthorsScores) -> dict[str, Any]:
    """What identifies the scores: the authors' score folder and its files."""
    return {
        "format": "authors' score files: <capability>.jsonl + style.jsonl (argmax digits only)",
        "folder": str(scores.files[-1].path.parent),
        "files": [f.path.name for f in scores.files],
    }


def _records(pool: Pool, positions: np.ndarray, media: Path | None) -> list[ExampleRecord]:
    """The example records at ``positions``, re-read from the pool file; without a media folder
    their images resolve as ``mmssr-cli score --pool`` resolves them (``data.media_root``)."""
    records = list(read_records(pool, positions))
    if media is None:
        media = find_media_root(pool.path, [i for record in records for i in record_images(record)]).folder
    return [
        _example_record(record, position, pool.path.name, media)
        for position, record in zip(positions.tolist(), records)
    ]


def _example_record(record: dict, position: int, pool_name: str, media: Path) -> ExampleRecord:
    """Turns from ``conversations`` (human / gpt values), image paths resolved against ``media``."""
    turns = record.get("conversations")
    return ExampleRecord(
        uid=f"idx {record['idx']}",
        dataset=pool_name,
        row=position,
        turns=[
            str(turn.get("value", ""))
            for turn in (turns if isinstance(turns, list) else [])
            if isinstance(turn, dict) and turn.get("from") in _TURN_ROLES
        ],
        images=[str(media / image) for image in record_images(record)],
    )
