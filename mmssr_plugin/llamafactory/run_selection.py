"""Making one selection: load and validate the pool, score it (mmssr) or draw (random), pick,
write the subsets and register them. Returns the manifest the stage caches."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mmssr_plugin import __version__
from mmssr_plugin.data.samples import DatasetSpec, Sample, load_samples, summarize_problems
from mmssr_plugin.data.subsets import subset_name, write_subsets
from mmssr_plugin.llamafactory.config import DataSelectionConfig, DataSelectionError


def make_selection(
    config: DataSelectionConfig,
    specs: Sequence[DatasetSpec],
    dataset_dir: Path,
    media_dir: Path,
    cache_dir: Path,
    key: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Select, write and register the subset; the returned manifest describes all of it."""
    samples = load_samples(dataset_dir, [s.name for s in specs], media_dir, config.source_column)
    valid = [s for s in samples if s.ok]
    problems = summarize_problems(samples)
    log(f"[mmssr] pool: {len(samples)} samples from {', '.join(s.name for s in specs)}; "
        f"{len(samples) - len(valid)} excluded by validation")
    for reason, count in problems.items():
        log(f"[mmssr]   excluded: {count} x {reason}")
    if not valid:
        raise DataSelectionError("no sample of the pool passed validation; nothing to select")

    if config.method == "mmssr":
        outcome = _select_mmssr(config, valid, cache_dir, log)
    else:
        outcome = _select_random(config, valid)
    chosen: np.ndarray = outcome["indices"]
    if len(chosen) == 0:
        raise DataSelectionError(
            f"the selection is empty: {outcome.get('shortfall_reason') or 'no eligible sample'}"
        )

    rows_by_dataset: dict[str, list[int]] = {}
    for i in chosen:
        rows_by_dataset.setdefault(valid[i].dataset, []).append(valid[i].row)
    names = {s.name: subset_name(s.name, config.method, config.budget_tag(), key[:8]) for s in specs}
    provenance = {
        s.name: {
            "source": s.name,
            "source_entry": s.entry,
            "method": config.method,
            "budget": config.budget,
            "threshold": config.threshold,
            "ranking": config.ranking,
            "capabilities": [c.id for c in config.capability_list()],
            "scorer_fingerprint": outcome.get("fingerprint"),
            "selection_key": key,
            "pool_size": len(valid),
            "pool_rows_of_dataset": sum(1 for v in valid if v.dataset == s.name),
            "selected": len(rows_by_dataset.get(s.name, [])),
            "subset_size": len(chosen),
            "created_by": f"mmssr-plugin {__version__}",
        }
        for s in specs
    }
    output_dir = Path(config.output_dir) if config.output_dir else dataset_dir / "mmssr_subsets"
    parts = write_subsets(dataset_dir, output_dir, specs, rows_by_dataset, names, provenance)
    skipped = [s.name for s in specs if not rows_by_dataset.get(s.name)]
    manifest = {
        "key": key,
        "config": config.to_dict(),
        "pool_size": len(valid),
        "excluded": problems,
        "budget": outcome["budget"],
        "subset_size": int(len(chosen)),
        "shortfall": outcome["budget"] - int(len(chosen)),
        "shortfall_reason": outcome.get("shortfall_reason"),
        "per_capability": outcome.get("per_capability", {}),
        "exhausted": outcome.get("exhausted", []),
        "datasets": [s.name for s in specs],
        "scorer_fingerprint": outcome.get("fingerprint"),
        "score_store": outcome.get("store"),
        "scorer_evaluation": outcome.get("evaluation"),
        "selected_uids": [valid[i].uid for i in chosen],
        "parts": [
            {"source": p.source, "name": p.name, "path": str(p.path.resolve()), "rows": p.rows}
            for p in parts
        ],
    }
    report = None
    if config.report:
        report = _write_report(output_dir / f"report_{config.method}_{config.budget_tag()}_{key[:8]}",
                               manifest, samples, outcome, log)
    manifest["report"] = str(report) if report else None
    manifest["summary_lines"] = _summary_lines(
        config, samples, valid, chosen, outcome, parts, dataset_dir, skipped, report
    )
    return manifest


def _write_report(
    out_dir: Path, manifest: dict[str, Any], samples: list[Sample], outcome: dict[str, Any],
    log: Callable[[str], None],
) -> Path | None:
    """Write the HTML + JSON report; a failure is logged, never fatal to training."""
    from mmssr_plugin.report import build_and_write_report

    try:
        html_path, _ = build_and_write_report(
            out_dir, manifest, samples, outcome.get("table"), bins=outcome.get("bins")
        )
    except Exception as exc:  # noqa: BLE001 - the subset is made; the report is an extra
        log(f"[mmssr] warning: the selection report could not be written: {exc}")
        return None
    return html_path


def _select_mmssr(
    config: DataSelectionConfig, valid: list[Sample], cache_dir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    from mmssr_plugin.selection.ranking import ranking_matrices
    from mmssr_plugin.scoring.job import run_scoring
    from mmssr_plugin.selection.sampler import StyleBins, select
    from mmssr_plugin.evaluation.records import find_scorer_evaluation, low_digit_warning, report_link

    capabilities = config.capability_list()
    evaluation = find_scorer_evaluation(cache_dir, config.scorer())
    if warning := low_digit_warning(evaluation):
        log(f"[mmssr] warning: {warning}")
    table, summary = run_scoring(
        valid, config.scorer(), capabilities, cache_dir,
        workers=config.workers, shard_size=config.shard_size, log=log,
    )
    for line in summary.lines():
        log(f"[mmssr] {line}")
    scores, tiebreak = ranking_matrices(table.digits, config.ranking)
    bins = StyleBins.from_styles(table.styles, [s.source for s in valid])
    result = select(scores, [c.id for c in capabilities], bins, config.budget,
                    config.threshold, tiebreak)
    return {
        "indices": result.indices,
        "budget": result.budget,
        "per_capability": result.per_capability,
        "shortfall_reason": result.shortfall_reason,
        "exhausted": result.exhausted,
        "fingerprint": summary.fingerprint_key,
        "store": str(summary.store_path),
        "table": table,
        "scores": scores,
        "capabilities": [c.id for c in capabilities],
        "bins": bins,
        "evaluation": report_link(evaluation),
    }


def _select_random(config: DataSelectionConfig, valid: list[Sample]) -> dict[str, Any]:
    from mmssr_plugin.selection.sampler import resolve_budget

    budget = resolve_budget(config.budget, len(valid))
    take = min(budget, len(valid))
    rng = np.random.default_rng(config.seed)
    indices = np.sort(rng.choice(len(valid), size=take, replace=False)).astype(np.int64)
    reason = None
    if take < budget:
        reason = f"the pool has only {len(valid)} valid samples, fewer than the budget {budget}"
    return {"indices": indices, "budget": budget, "shortfall_reason": reason}


def _summary_lines(
    config: DataSelectionConfig,
    samples: list[Sample],
    valid: list[Sample],
    chosen: np.ndarray,
    outcome: dict[str, Any],
    parts: list,
    dataset_dir: Path,
    skipped: list[str],
    report: Path | None,
) -> list[str]:
    lines = [
        f"[mmssr] ===== data selection ({config.method}, budget {config.budget}) =====",
        f"[mmssr] pool: {len(valid)} valid samples ({len(samples) - len(valid)} excluded); "
        f"subset: {len(chosen)} of budget {outcome['budget']}",
    ]
    if outcome.get("shortfall_reason"):
        lines.append(f"[mmssr] shortfall {outcome['budget'] - len(chosen)}: "
                     f"{outcome['shortfall_reason']}")
    if "scores" in outcome:
        scores = outcome["scores"]
        lines.append("[mmssr] capability      picked  mean score pool -> subset")
        for c, cap in enumerate(outcome["capabilities"]):
            pool_mean = _nanmean(scores[:, c])
            subset_mean = _nanmean(scores[chosen, c])
            lines.append(f"[mmssr]   {cap:<14} {outcome['per_capability'][cap]:>6}  "
                         f"{pool_mean:.2f} -> {subset_mean:.2f}")
        bins = outcome["bins"]
        pool_bins = _bins_of(bins, np.arange(len(valid)))
        subset_bins = _bins_of(bins, chosen)
        lines.append(f"[mmssr] style bins covered: {len(subset_bins)} of {len(pool_bins)}")
    sources = Counter(valid[i].source for i in chosen)
    lines.append("[mmssr] sources in subset: "
                 + ", ".join(f"{name} {count}" for name, count in sorted(sources.items())))
    for part in parts:
        lines.append(f"[mmssr] subset {part.name}: {part.rows} rows -> {part.path}")
    for name in skipped:
        lines.append(f"[mmssr] dataset {name}: no sample selected, not registered")
    lines.append(f"[mmssr] registered in {dataset_dir / 'dataset_info.json'}")
    if report:
        lines.append(f"[mmssr] report: {report}")
    return lines


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def _bins_of(bins: Any, indices: np.ndarray) -> set[str]:
    """Labels of the bins the given samples stand in (vectorised over the CSR membership)."""
    owner = np.repeat(np.arange(len(bins.offsets) - 1), np.diff(bins.offsets))
    ids = np.unique(bins.ids[np.isin(owner, indices)])
    return {bins.labels[b] for b in ids.tolist()}
