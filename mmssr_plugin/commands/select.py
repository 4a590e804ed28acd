"""``mmssr-cli select``: select a subset of a pool from score files in the authors' format."""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

from . import CommandError

HELP = "select a subset from the authors' pool and score files (<capability>.jsonl, style.jsonl)"


def parse_budget(text: str) -> float | int:
    """``"1000"`` -> sample count 1000; ``"0.3"`` / ``"1.0"`` -> ratio of the pool.

    Raises:
        argparse.ArgumentTypeError: not a number, a count < 1, or a ratio outside (0, 1].
    """
    from ..selection import resolve_budget

    try:
        budget: float | int = int(text)
    except ValueError:
        try:
            budget = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    try:
        resolve_budget(budget, 0)  # validates the value; K needs the pool size
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return budget


def parse_threshold(text: str) -> float:
    """A finite float threshold."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def parse_keyword(text: str) -> tuple[str, str]:
    """``"id=keyword"`` -> ``(id, keyword)``."""
    cap_id, sep, keyword = text.partition("=")
    if not sep or not cap_id.strip() or not keyword.strip():
        raise argparse.ArgumentTypeError(f"expected ID=KEYWORD, got {text!r}")
    return cap_id.strip(), keyword.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``select``."""
    parser.add_argument("--pool", required=True, type=Path, help="pool JSON list of records with idx")
    parser.add_argument("--scores", required=True, type=Path, help="folder with <capability>.jsonl and style.jsonl")
    parser.add_argument(
        "--budget", required=True, type=parse_budget,
        help="ratio of the pool in (0, 1] (0.3, 1.0) or a sample count (1000)",
    )
    parser.add_argument("--capabilities", default="all", help="comma-separated capability ids, or 'all' (default)")
    parser.add_argument(
        "--threshold", type=parse_threshold, default=0.0,
        help="a sample is eligible for a capability only if its score is above this (default 0)",
    )
    parser.add_argument(
        "--keyword", action="append", type=parse_keyword, default=[], metavar="ID=KEYWORD",
        help="override a capability's keyword or add a capability (repeatable)",
    )
    parser.add_argument("--output", required=True, type=Path, help="output JSON list of the selected records")


def run(args: argparse.Namespace) -> int:
    """Read, select, write and print the report."""
    from ..authors_format import read_pool_and_scores, score_file_paths, write_selected
    from ..selection import select
    from ..taxonomy import resolve_capabilities

    began = time.perf_counter()
    capabilities = [cap.id for cap in resolve_capabilities(args.capabilities, dict(args.keyword))]
    if not args.pool.is_file():
        raise CommandError(f"pool file {args.pool} does not exist")
    score_file_paths(args.scores, capabilities)  # fail before the long read if a file is missing
    _check_writable(args.output)

    pool, scores = read_pool_and_scores(args.pool, args.scores, capabilities)
    read_s = time.perf_counter() - began
    result = select(scores.scores, capabilities, scores.bins, args.budget, threshold=args.threshold)
    select_s = time.perf_counter() - began - read_s
    written = write_selected(pool, result.indices, args.output)
    write_s = time.perf_counter() - began - read_s - select_s

    _report(args, pool, scores, result, written)
    print(
        f"wall time: {time.perf_counter() - began:.1f} s (read {read_s:.1f} s, "
        f"select {select_s:.1f} s, write {write_s:.1f} s)"
    )
    return 0


def _check_writable(output: Path) -> None:
    folder = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise CommandError(f"output {output} is a directory")
    if not folder.is_dir():
        raise CommandError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise CommandError(f"output {output} is not writable")


def _report(args: argparse.Namespace, pool: Any, scores: Any, result: Any, written: int) -> None:
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
        f"style; {len(scores.bins.labels)} style bins"
    )
    print(f"wrote: {args.output} ({written} records)")
