"""``mmssr-cli score``: score a pool with a VLM scorer into the resumable score store."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from mmssr_plugin.commands import CommandError
from mmssr_plugin.commands.arg_types import parse_keyword
from mmssr_plugin.commands.config_flags import add_config_flags
from mmssr_plugin.utils.files import CACHE_DIR_NAME

HELP = "score a dataset of dataset_info.json (or a LLaVA-style pool file) with a VLM scorer"

# Unresolvable image paths named before scoring.
SHOWN_MISSING = 5

# Scorer options whose names are shorter than their field's.
_SCORER_FLAGS = {
    "model_name_or_path": "--model",
    "adapter_name_or_path": "--adapter",
    "styler_model_name_or_path": "--styler-model",
    "styler_adapter_name_or_path": "--styler-adapter",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``score`` (scorer, job and selection options from their configs)."""
    from mmssr_plugin.scoring.config import JobConfig, ScorerConfig
    from mmssr_plugin.selection.config import SelectionConfig

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="dataset name(s) in dataset_info.json, comma-separated")
    source.add_argument("--pool", type=Path,
                        help="LLaVA-style JSON pool file (not registered); its relative image paths "
                             "resolve against --media-dir, else the pool's folder or the folder up "
                             "to 3 levels above it under which they exist")
    parser.add_argument("--dataset-dir", type=Path, default=Path("data"),
                        help="folder holding dataset_info.json (default: data)")
    parser.add_argument("--media-dir", type=Path,
                        help="root of relative image paths (default: --dataset-dir, as "
                             "LLaMA-Factory's media_dir; for --pool see there)")
    add_config_flags(parser, SelectionConfig, ["source_column", "capabilities"])
    parser.add_argument("--keyword", action="append", type=parse_keyword, default=[],
                        metavar="ID=KEYWORD", help="override or add a capability keyword")
    add_config_flags(parser, ScorerConfig, flags=_SCORER_FLAGS)
    add_config_flags(parser, JobConfig)
    parser.add_argument("--cache-dir", type=Path,
                        help=f"score store root (default: <dataset dir>/{CACHE_DIR_NAME})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Score the pool and print the summary; finished shards are reused on a rerun.

    Returns 0 when at least one sample was scored; SIGINT / SIGTERM stop the workers and return
    130 / 143 with one line saying how to resume.
    """
    from mmssr_plugin.core.taxonomy import resolve_capabilities
    from mmssr_plugin.scoring.config import ScorerConfig
    from mmssr_plugin.scoring.job import ScoringError, ScoringInterrupted, run_scoring
    from mmssr_plugin.utils.logs import show_logs

    show_logs(stream=sys.stdout)
    capabilities = resolve_capabilities(args.capabilities, dict(args.keyword))
    # The scorer options' dest names are ScorerConfig's field names.
    scorer = ScorerConfig(**{f.name: getattr(args, f.name) for f in fields(ScorerConfig)})
    job = _job_config(args)
    try:
        samples, default_cache = _load(args)
        _report_missing_images(samples)
        _, summary = run_scoring(
            samples, scorer, capabilities, args.cache_dir or default_cache,
            workers=job.workers, shard_size=job.shard_size, progress=not args.no_progress,
        )
    except ScoringError as exc:
        raise CommandError(str(exc)) from None
    except ScoringInterrupted as stop:
        print(f"mmssr-cli: {stop}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("mmssr-cli: score interrupted; finished shards are kept, run the same command "
              "again to resume", file=sys.stderr)
        return 130
    for line in summary.lines():
        print(line)
    if summary.scored == 0:
        first = f"; first: {summary.failed_samples[0].reason}" if summary.failed_samples else ""
        kinds = ", ".join(f"{count} x {kind}" for kind, count in summary.failures.items())
        raise CommandError(f"no sample was scored: all {summary.total} failed ({kinds}){first}")
    return 0


def _job_config(args: argparse.Namespace) -> Any:
    """The job options as a ``JobConfig`` (the YAML block's checks), errors in flag language."""
    from mmssr_plugin.scoring.config import JobConfig

    try:
        return JobConfig(workers=args.workers, shard_size=args.shard_size)
    except ValueError as exc:
        name, _, rest = str(exc).partition(" ")
        raise CommandError(f"--{name.replace('_', '-')} {rest}") from None


def _load(args: argparse.Namespace) -> tuple[list[Any], Path]:
    """The pool's samples and the default cache folder; an empty pool is refused."""
    from mmssr_plugin.data.load import load_pool_file, load_samples
    from mmssr_plugin.data.sample import DatasetError

    try:
        if args.pool is not None:
            samples = load_pool_file(args.pool, args.media_dir, args.source_column)
            default_cache, what = args.pool.resolve().parent / CACHE_DIR_NAME, str(args.pool)
        else:
            samples = load_samples(args.dataset_dir, args.dataset, args.media_dir, args.source_column)
            default_cache, what = args.dataset_dir / CACHE_DIR_NAME, f"dataset {args.dataset}"
    except DatasetError as exc:
        raise CommandError(str(exc)) from None
    if not samples:
        raise CommandError(f"{what} has no rows: nothing to score")
    return samples, default_cache


def _report_missing_images(samples: list[Any]) -> None:
    """Name the first image paths that resolve to no file, and how to point them elsewhere."""
    missing = [p.split(": ", 1)[1] for s in samples for p in s.problems if p.startswith("missing image: ")]
    if not missing:
        return
    print(
        f"warning: {len(missing)} image path(s) resolve to no file, e.g. "
        f"{', '.join(missing[:SHOWN_MISSING])}; set --media-dir to the folder they are relative to"
    )
