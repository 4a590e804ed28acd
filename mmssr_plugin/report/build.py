"""One call from a selection manifest (and what it was made from) to the written report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmssr_plugin.data.failures import FailureRecord
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.data.validate import summarize_problems
from mmssr_plugin.report.model import DEFAULT_TOP_K, ReportData, SelectionFacts
from mmssr_plugin.report.samples import build_report_data
from mmssr_plugin.report.writer import write_report
from mmssr_plugin.scoring.store import ScoreTable
from mmssr_plugin.selection.bins import StyleBins


def report_data_from_manifest(
    manifest: Mapping[str, Any],
    samples: Sequence[Sample],
    table: ScoreTable | None = None,
    *,
    bins: StyleBins | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> ReportData:
    """Build the report data of a selection manifest.

    Args:
        manifest: the selection manifest (``make_selection``'s dict or its cached JSON).
        samples: every sample read for the selection, invalid ones too, in load order; the
            valid ones form the pool.
        table: the pool's scores in pool order (None for the random method).
        bins: the pool's style bins, if already built (else built from the table).
        top_k: examples per capability at each end of the score range.

    Raises:
        ValueError: the samples do not match the manifest (the data changed since).
    """
    pool = [s for s in samples if s.ok]
    if len(pool) != manifest["pool_size"]:
        raise ValueError(
            f"the pool has {len(pool)} valid samples but the selection had "
            f"{manifest['pool_size']}: the datasets changed since the selection was made"
        )
    position = {s.uid: i for i, s in enumerate(pool)}
    uids = manifest["selected_uids"]
    lost = [uid for uid in uids if uid not in position]
    if lost:
        raise ValueError(
            f"{len(lost)} selected samples are not in the pool (first: {lost[0]}): the datasets "
            "changed since the selection was made"
        )
    per_capability = dict(manifest.get("per_capability") or {})
    capabilities = None
    if table is not None and per_capability:
        capabilities = [cap for cap in per_capability if cap in table.capabilities]
    facts = SelectionFacts(
        selected=[position[uid] for uid in uids],
        budget=int(manifest["budget"]),
        config=manifest.get("config") or {},
        per_capability=per_capability,
        exhausted=manifest.get("exhausted") or [],
        shortfall_reason=manifest.get("shortfall_reason"),
        excluded_by_reason=summarize_problems(samples),
        loaded=len(samples),
        scorer_fingerprint=_store_fingerprint(manifest.get("score_store")),
        key=manifest.get("key"),
        picked_by=manifest.get("picked_by"),
        subsets=[{"name": p["name"], "path": p["path"], "rows": p["rows"]}
                 for p in manifest.get("parts") or []],
        failures=read_failures(manifest.get("failures_file")),
        failures_file=manifest.get("failures_file"),
    )
    data = build_report_data(pool, facts, table, capabilities=capabilities, bins=bins, top_k=top_k)
    data.scorer_evaluation = manifest.get("scorer_evaluation")
    return data


def build_and_write_report(
    out_dir: str | Path,
    manifest: Mapping[str, Any],
    samples: Sequence[Sample],
    table: ScoreTable | None = None,
    *,
    bins: StyleBins | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> tuple[Path, Path]:
    """Build the report of a selection and write ``report.html`` + ``report.json``.

    Args:
        out_dir: folder for the two files (created if needed).
        manifest: the selection manifest.
        samples: every sample read for the selection, invalid ones too, in load order.
        table: the pool's scores in pool order (None for the random method).
        bins: the pool's style bins, if already built.
        top_k: examples per capability at each end of the score range.

    Returns:
        ``(html_path, json_path)``.
    """
    data = report_data_from_manifest(manifest, samples, table, bins=bins, top_k=top_k)
    return write_report(out_dir, data)


def read_failures(path: str | None) -> list[dict[str, Any]]:
    """The records of a ``failures.jsonl`` file (none without a file)."""
    if not path or not Path(path).is_file():
        return []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [FailureRecord.from_dict(json.loads(line)).to_dict() for line in lines if line.strip()]


def _store_fingerprint(store_path: str | None) -> dict[str, Any] | None:
    """The content of the store's ``fingerprint.json`` (None without a store)."""
    if not store_path:
        return None
    marker = Path(store_path) / "fingerprint.json"
    return json.loads(marker.read_text()) if marker.is_file() else None
