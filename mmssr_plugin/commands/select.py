"""``mmssr-cli select``: select a subset of a pool from score files in the authors' format."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from mmssr_plugin.commands import CommandError
from mmssr_plugin.commands.arg_types import bounded, parse_keyword

HELP = "select a subset from the authors' pool and score files (<capability>.jsonl, style.jsonl)"


def parse_budget(text: str) -> float | int:
    """``"1000"`` -> sample count 1000; ``"0.3"`` / ``"1.0"`` -> ratio of the pool.

    Raises:
        argparse.ArgumentTypeError: not a number, a count < 1, or a ratio outside (0, 1].
    """
    from mmssr_plugin.selection.budget import BudgetError
    from mmssr_plugin.selection.budget import parse_budget as parse_selection_budget

    try:
        return parse_selection_budget(text)
    except BudgetError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_threshold(text: str) -> float:
    """A finite number in the score range [0, 5)."""
    from mmssr_plugin.selection.config import check_threshold

    try:
        return check_threshold(bounded(float)(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("threshold ")) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``select``."""
    options: list[tuple[str, dict[str, Any]]] = [
        ("--pool", {"required": True, "type": Path, "help": "pool JSON list of records with idx"}),
        ("--scores", {"required": True, "type": Path,
                      "help": "folder with <capability>.jsonl and style.jsonl"}),
        ("--budget", {"required": True, "type": parse_budget,
                      "help": "ratio of the pool in (0, 1] (0.3, 1.0) or a sample count (1000)"}),
        ("--capabilities", {"default": "all",
                            "help": "comma-separated capability ids, or 'all' (default)"}),
        ("--threshold", {"type": parse_threshold, "default": 0.0,
                         "help": "a sample is eligible for a capability only if its score is "
                                 "above this (default 0)"}),
        ("--keyword", {"action": "append", "type": parse_keyword, "default": [],
                       "metavar": "ID=KEYWORD",
                       "help": "override a capability's keyword or add a capability (repeatable)"}),
        ("--output", {"required": True, "type": Path,
                      "help": "output JSON list of the selected records"}),
        ("--report-dir", {"type": Path, "default": None,
                          "help": "folder for report.html + report.json "
                                  "(default: <OUTPUT stem>_report beside OUTPUT)"}),
        ("--no-report", {"action": "store_true", "help": "do not write the report"}),
        ("--media-dir", {"type": Path, "default": None,
                         "help": "folder the records' image paths are relative to, for report "
                                 "thumbnails (default: the pool's folder, or the folder up to 3 "
                                 "levels above it under which they exist, as score --pool)"}),
    ]
    for flag, kwargs in options:
        parser.add_argument(flag, **kwargs)


def run(args: argparse.Namespace) -> int:
    """Read, select, write the subset and its report, print the summary."""
    from mmssr_plugin.formats.authors.pool_scores import read_pool_and_scores
    from mmssr_plugin.formats.authors.records import write_selected
    from mmssr_plugin.formats.authors.score_files import score_file_paths
    from mmssr_plugin.selection.coded_bins import style_bins_from_codes
    from mmssr_plugin.selection.sampler import select
    from mmssr_plugin.core.taxonomy import resolve_capabilities

    began = time.perf_counter()
    capabilities = [cap.id for cap in resolve_capabilities(args.capabilities, dict(args.keyword))]
    if not args.pool.is_file():
        raise CommandError(f"pool file {args.pool} does not exist")
    score_file_paths(args.scores, capabilities)  # fail before the long read if a file is missing
    _check_writable(args.output)
    report_dir = None if args.no_report else args.report_dir or default_report_dir(args.output)
    if report_dir is not None:
        _check_report_dir(report_dir)

    pool, scores = read_pool_and_scores(args.pool, args.scores, capabilities)
    bins = style_bins_from_codes(scores.styles.codes, scores.styles.answers, pool.source_codes, pool.source_labels)
    read_s = time.perf_counter() - began
    result = select(scores.scores, capabilities, bins, args.budget, threshold=args.threshold)
    select_s = time.perf_counter() - began - read_s
    if len(result.indices) == 0:
        raise CommandError(f"nothing selected, {args.output} not written: {_empty_reason(scores, result)}")
    written = write_selected(pool, result.indices, args.output)
    write_s = time.perf_counter() - began - read_s - select_s

    _print_summary(args, pool, scores, bins, result, written)
    timing = f"read {read_s:.1f} s, select {select_s:.1f} s, write {write_s:.1f} s"
    if report_dir is not None:
        report_began = time.perf_counter()
        print(f"report: {_write_report(report_dir, args, pool, scores, bins, result, capabilities)}")
        timing += f", report {time.perf_counter() - report_began:.1f} s"
    print(f"wall time: {time.perf_counter() - began:.1f} s ({timing})")
    return 0


def _empty_reason(scores: Any, result: Any) -> str:
    """Why nothing was selected: no usable score line at all, else the sampler's reason."""
    files = scores.files[:-1]
    usable = sum(f.lines - f.unknown - f.unparseable for f in files)
    if usable == 0:
        counts = ", ".join(f"{f.path.name} {f.unparseable} of {f.lines}" for f in files)
        return f"no score line holds a digit answer 0..5 for a pool sample (unparseable: {counts})"
    return result.shortfall_reason or "no eligible sample"


def default_report_dir(output: Path) -> Path:
    """``<output stem>_report`` beside the output file."""
    return output.with_name(f"{output.stem}_report")


def _write_report(
    report_dir: Path, args: argparse.Namespace, pool: Any, scores: Any, bins: Any, result: Any, capabilities: list[str]
) -> Path:
    """Write report.html + report.json of the selection; returns the HTML path."""
    from mmssr_plugin.formats.authors.errors import AuthorsFormatError
    from mmssr_plugin.report.authors import write_authors_report

    config = {
        "method": "mmssr",
        "budget": args.budget,
        "capabilities": capabilities,
        "threshold": args.threshold,
        "ranking": "argmax",
        "keywords": dict(args.keyword),
        "pool": str(args.pool),
        "scores": str(args.scores),
    }
    try:
        html_path, _ = write_authors_report(
            report_dir, pool, scores, bins, result, config=config, media_dir=args.media_dir
        )
    except AuthorsFormatError as err:
        raise CommandError(f"the subset was written but not its report: {err}") from None
    except OSError as err:
        raise CommandError(f"the subset was written but not its report: cannot write {report_dir}: {err}") from None
    return html_path


def _check_writable(output: Path) -> None:
    folder = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise CommandError(f"output {output} is a directory")
    if not folder.is_dir():
        raise CommandError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise CommandError(f"output {output} is not writable")


def _check_report_dir(report_dir: Path) -> None:
    if report_dir.exists() and not report_dir.is_dir():
        raise CommandError(f"report folder {report_dir} is not a directory")
    existing = next(folder for folder in (report_dir, *report_dir.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise CommandError(f"report folder {report_dir} cannot be created in {existing}")


def _print_summary(args: argparse.Namespace, pool: Any, scores: Any, bins: Any, result: Any, written: int) -> None:
    print(f"pool: {args.pool} ({len(pool)} samples, {len(pool.source_labels)} image sources)")
    print(f"budget: K = {result.budget} (--budget {args.budget}), threshold {args.threshold:g}")
    print(f"selected: {len(result.indices)} samples in {result.rounds} rounds")
    if result.shortfall > 0:
        print(f"shortfall: {result.shortfall} samples; {result.shortfall_reason}")
    if result.exhausted:
        print(f"exhausted capabilities: {', '.join(result.exhausted)}")
    header = f"{'file':<24}{'selected':>10}{'lines':>10}{'unparseable':>13}{'missing idx':>13}{'unknown idx':>13}"
    print(header)
    for stats in scores.files:
        picked = result.per_capability.get(stats.name)
        print(
            f"{stats.path.name:<24}{'-' if picked is None else picked:>10}{stats.lines:>10}"
            f"{stats.unparseable:>13}{stats.missing:>13}{stats.unknown:>13}"
        )
    style = scores.files[-1]
    print(
        f"style: {style.unmatched} unmatched pieces; {style.unparseable} lines without a recognised "
        f"style; {len(bins.labels)} style bins"
    )
    print(f"wrote: {args.output} ({written} records)")
