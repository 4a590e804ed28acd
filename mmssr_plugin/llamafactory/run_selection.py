"""Making one selection: load and validate the pool, score it (mmssr) or draw (random), pick,
write the subsets and register them. Returns the manifest the stage caches."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from mmssr_plugin import __version__
from mmssr_plugin.data.failures import FailureRecord, failure_record, sample_failures
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.data.sample import DatasetSpec, Sample
from mmssr_plugin.data.subsets import write_subsets
from mmssr_plugin.data.validate import summarize_problems
from mmssr_plugin.llamafactory.config import DataSelectionConfig, DataSelectionError, StagePaths
from mmssr_plugin.llamafactory.outcome import MadeSelection, Picked, ScoredPool
from mmssr_plugin.llamafactory.outputs import SelectionOutputs
from mmssr_plugin.llamafactory.stage_summary import summary_lines
from mmssr_plugin.utils.files import atomic_write

logger = logging.getLogger(__name__)


def make_selection(
    config: DataSelectionConfig,
    specs: Sequence[DatasetSpec],
    paths: StagePaths,
    key: str,
    identity: dict[str, Any] | None = None,
    outputs: SelectionOutputs | None = None,
) -> MadeSelection:
    """Select, write and register the subset; the manifest describes all of it.

    Args:
        config: the parsed data_selection block.
        specs: the pool's datasets, in the order given.
        paths: dataset, media, cache and output folders.
        key: the selection key (names the subsets and the manifest).
        identity: the scorer's engine identity (mmssr), already computed for the key.
        outputs: the files it writes (default: named from the settings and key).
    """
    selection = config.selection
    outputs = outputs or SelectionOutputs.of(selection, specs, paths.output_dir, key)
    samples = load_samples(paths.dataset_dir, [s.name for s in specs], paths.media_dir,
                           selection.source_column)
    valid = [s for s in samples if s.ok]
    problems = summarize_problems(samples)
    logger.info(f"pool: {len(samples)} samples from {', '.join(s.name for s in specs)}; "
                f"{len(samples) - len(valid)} excluded by validation")
    for reason, count in problems.items():
        logger.info(f"  excluded: {count} x {reason}")
    if not valid:
        raise DataSelectionError("no sample of the pool passed validation; nothing to select")

    picked = _pick(config, valid, paths.cache_dir, identity)
    result, scored = picked.result, picked.scored
    chosen = result.indices
    if len(chosen) == 0:
        raise DataSelectionError(f"the selection is empty: {_empty_reason(config, picked)}")
    failures = _failure_records(samples, valid, scored)
    paths.output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(outputs.failures_path) as handle:
        handle.writelines(json.dumps(f.to_dict(), ensure_ascii=False) + "\n" for f in failures)

    rows_by_dataset: dict[str, list[int]] = {}
    for i in chosen:
        rows_by_dataset.setdefault(valid[i].dataset, []).append(valid[i].row)
    names = outputs.names
    fingerprint = scored.summary.fingerprint_key if scored else None
    provenance = {
        s.name: {
            "source": s.name,
            "source_entry": s.entry,
            "method": selection.method,
            "budget": selection.budget,
            "threshold": selection.threshold,
            "ranking": selection.ranking,
            "capabilities": [c.id for c in selection.capability_list],
            "scorer_fingerprint": fingerprint,
            "selection_key": key,
            "pool_size": len(valid),
            "pool_rows_of_dataset": sum(1 for v in valid if v.dataset == s.name),
            "selected": len(rows_by_dataset.get(s.name, [])),
            "subset_size": len(chosen),
            "created_by": f"mmssr-plugin {__version__}",
        }
        for s in specs
    }
    parts = write_subsets(paths.dataset_dir, paths.output_dir, specs, rows_by_dataset, names,
                          provenance)
    skipped = [s.name for s in specs if not rows_by_dataset.get(s.name)]
    manifest = {
        "key": key,
        "config": config.to_dict(),
        "pool_size": len(valid),
        "excluded": problems,
        "budget": result.budget,
        "subset_size": int(len(chosen)),
        "shortfall": result.budget - int(len(chosen)),
        "shortfall_reason": result.shortfall_reason,
        "per_capability": result.per_capability,
        "exhausted": result.exhausted,
        "datasets": [s.name for s in specs],
        "scorer_fingerprint": fingerprint,
        "score_store": str(scored.summary.store_path) if scored else None,
        "scorer_evaluation": scored.evaluation if scored else None,
        "selected_uids": [valid[i].uid for i in chosen],
        "picked_by": result.picked_by,
        "failures_file": str(outputs.failures_path.resolve()),
        "failures_count": len(failures),
        "parts": [
            {"source": p.source, "name": p.name, "path": str(p.path.resolve()), "rows": p.rows}
            for p in parts
        ],
    }
    report = None
    if config.output.report:
        report = _write_report(outputs.report_dir, manifest, samples, scored)
    manifest["report"] = str(report) if report else None
    lines = summary_lines(selection, samples, valid, picked, parts, paths.dataset_dir, skipped,
                          report)
    lines.insert(-1 if report else len(lines),
                 f"excluded or failed samples: {len(failures)} -> {outputs.failures_path}")
    manifest["summary_lines"] = lines
    return MadeSelection(manifest, lines)


def _failure_records(
    samples: list[Sample], valid: list[Sample], scored: ScoredPool | None,
) -> list[FailureRecord]:
    """Every sample excluded by validation (load order), then every one that failed at scoring."""
    records = [record for sample in samples for record in sample_failures(sample)]
    if scored is not None:
        records += [failure_record(valid[i], reason)
                    for i, reason in enumerate(scored.table.errors) if reason is not None]
    return records


def _empty_reason(config: DataSelectionConfig, picked: Picked) -> str:
    """Why nothing was picked, naming the scorer's digit mass when it answered no digit."""
    scored, result = picked.scored, picked.result
    if scored is not None:
        summary = scored.summary
        if summary.scored == 0:
            reasons = ", ".join(f"{n} x {k}" for k, n in summary.failures.items())
            return f"no sample could be scored ({reasons or 'all failed'})"
        no_scores = all(n >= summary.scored for n in summary.non_digit.values())
        if no_scores and config.scorer.score_parsing == "authors_int":
            return ("the scorer answered no int() score in 0..5 (score_parsing authors_int); "
                    "check the scorer, its adapter and model_layout")
        if summary.digit_mass and no_scores:
            lowest = min(summary.digit_mass.values())
            mean = sum(summary.digit_mass.values()) / len(summary.digit_mass)
            return (
                f"the scorer answered no digit: mean probability on the digits 0..5 (digit mass) "
                f"{mean:.3f}, lowest capability {lowest:.3f}, below min_digit_mass "
                f"{config.scorer.min_digit_mass:g}; check the scorer, its adapter and template"
            )
    return result.shortfall_reason or "no eligible sample"


def _pick(
    config: DataSelectionConfig, valid: list[Sample], cache_dir: Path,
    identity: dict[str, Any] | None,
) -> Picked:
    """Run the configured method on the valid pool (scoring it first for mmssr)."""
    selection = config.selection
    if selection.method == "random":
        from mmssr_plugin.selection.methods import select_random

        return Picked(select_random(len(valid), selection.budget, selection.seed))

    from mmssr_plugin.evaluation.records import find_record, low_digit_warning, report_link
    from mmssr_plugin.scoring.job import run_scoring
    from mmssr_plugin.selection.methods import select_mmssr

    capabilities = selection.capability_list
    evaluation = find_record(cache_dir, identity) if identity is not None else None
    if warning := low_digit_warning(evaluation):
        logger.warning(f"warning: {warning}")
    table, summary = run_scoring(
        valid, config.scorer, capabilities, cache_dir, identity=identity, job=config.job,
    )
    for line in summary.lines():
        logger.info(line)
    ids = [c.id for c in capabilities]
    made = select_mmssr(table.digits, table.styles, [s.source for s in valid], ids,
                        selection.budget, selection.threshold, selection.ranking)
    return Picked(made.result, ScoredPool(summary, table, ids, made.scores, made.bins,
                                          report_link(evaluation)))


def _write_report(
    out_dir: Path, manifest: dict[str, Any], samples: list[Sample], scored: ScoredPool | None,
) -> Path | None:
    """Write the HTML + JSON report; a failure is logged, never fatal to training."""
    from mmssr_plugin.report import build_and_write_report

    try:
        html_path, _ = build_and_write_report(
            out_dir, manifest, samples, scored.table if scored else None,
            bins=scored.bins if scored else None,
        )
    except Exception as exc:  # noqa: BLE001 - the subset is made; the report is an extra
        logger.warning(f"warning: the selection report could not be written: {exc}")
        return None
    return html_path
