"""``mmssr-cli score``: score a pool with a VLM scorer into the resumable score store."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from mmssr_plugin.commands import CommandError
from mmssr_plugin.commands.arg_types import parse_keyword
from mmssr_plugin.commands.config_flags import add_config_flags
from mmssr_plugin.utils.files import CACHE_DIR_NAME

HELP = "score a dataset of dataset_info.json (or a LLaVA-style pool file) with a VLM scorer"

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
    source.add_argument("--pool", type=Path, help="LLaVA-style JSON pool file (not registered)")
    parser.add_argument("--dataset-dir", type=Path, default=Path("data"),
                        help="folder holding dataset_info.json (default: data)")
    parser.add_argument("--media-dir", type=Path, help="root of image paths (default: dataset dir)")
    add_config_flags(parser, SelectionConfig, ["source_column", "capabilities"])
    parser.add_argument("--keyword", action="append", type=parse_keyword, default=[],
                        metavar="ID=KEYWORD", help="override or add a capability keyword")
    add_config_flags(parser, ScorerConfig, flags=_SCORER_FLAGS)
    add_config_flags(parser, JobConfig)
    parser.add_argument("--cache-dir", type=Path,
                        help=f"score store root (default: <dataset dir>/{CACHE_DIR_NAME})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Score the pool and print the summary; finished shards are reused on a rerun."""
    from mmssr_plugin.core.taxonomy import resolve_capabilities
    from mmssr_plugin.data.load import load_pool_file, load_samples
    from mmssr_plugin.data.sample import DatasetError
    from mmssr_plugin.scoring.config import ScorerConfig
    from mmssr_plugin.scoring.job import ScoringError, run_scoring
    from mmssr_plugin.utils.logs import show_logs

    show_logs(stream=sys.stdout)
    capabilities = resolve_capabilities(args.capabilities, dict(args.keyword))
    # The scorer options' dest names are ScorerConfig's field names.
    scorer = ScorerConfig(**{f.name: getattr(args, f.name) for f in fields(ScorerConfig)})
    try:
        if args.pool is not None:
            samples = load_pool_file(args.pool, args.media_dir, args.source_column)
            default_cache = args.pool.resolve().parent / CACHE_DIR_NAME
        else:
            samples = load_samples(args.dataset_dir, args.dataset, args.media_dir, args.source_column)
            default_cache = args.dataset_dir / CACHE_DIR_NAME
    except DatasetError as exc:
        raise CommandError(str(exc)) from None
    try:
        _, summary = run_scoring(
            samples, scorer, capabilities, args.cache_dir or default_cache,
            workers=args.workers, shard_size=args.shard_size, progress=not args.no_progress,
        )
    except ScoringError as exc:
        raise CommandError(str(exc).splitlines()[0] + " (see the worker log)") from None
    for line in summary.lines():
        print(line)
    return 0
