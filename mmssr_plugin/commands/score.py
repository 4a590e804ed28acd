"""``mmssr-cli score``: score a pool with a VLM scorer into the resumable score store."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmssr_plugin.commands import CommandError
from mmssr_plugin.commands.arg_types import parse_keyword

HELP = "score a dataset of dataset_info.json (or a LLaVA-style pool file) with a VLM scorer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``score``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="dataset name(s) in dataset_info.json, comma-separated")
    source.add_argument("--pool", type=Path, help="LLaVA-style JSON pool file (not registered)")
    parser.add_argument("--dataset-dir", type=Path, default=Path("data"),
                        help="folder holding dataset_info.json (default: data)")
    parser.add_argument("--media-dir", type=Path, help="root of image paths (default: dataset dir)")
    parser.add_argument("--source-column", default="image_source",
                        help="row column naming the image source (default: image_source)")
    parser.add_argument("--backend", default="hf", choices=("hf", "fake"))
    parser.add_argument("--model", dest="model_name_or_path", help="scorer model path or hub id")
    parser.add_argument("--adapter", dest="adapter_name_or_path", help="LoRA adapter of the scorer")
    parser.add_argument("--quantization-bit", type=int, choices=(4, 8), help="bitsandbytes 4/8-bit")
    parser.add_argument("--template", default="qwen2_vl", help="LLaMA-Factory chat template")
    parser.add_argument("--styler-model", dest="styler_model_name_or_path", help="separate styler")
    parser.add_argument("--styler-adapter", dest="styler_adapter_name_or_path")
    parser.add_argument("--infer-dtype", default="auto")
    parser.add_argument("--model-layout", default="auto", choices=("auto", "llamafactory", "llava_qwen"),
                        help="llava_qwen: the released mmSSR checkpoints (auto: from config.json)")
    parser.add_argument("--score-parsing", default="digits", choices=("digits", "authors_int"),
                        help="digit probabilities, or int() of the greedy answer as the authors")
    parser.add_argument("--style-parsing", default="default", choices=("default", "authors"))
    parser.add_argument("--capabilities", default="all", help="'all' or comma-separated ids")
    parser.add_argument("--keyword", action="append", type=parse_keyword, default=[],
                        metavar="ID=KEYWORD", help="override or add a capability keyword")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, help="CPU worker processes (GPUs: one per GPU)")
    parser.add_argument("--shard-size", type=int, default=64, help="samples per resumable shard")
    parser.add_argument("--min-digit-mass", type=float, default=0.5)
    parser.add_argument("--cache-dir", type=Path,
                        help="score store root (default: <dataset dir>/.mmssr_cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Score the pool and print the summary; finished shards are reused on a rerun."""
    from mmssr_plugin.data.samples import DatasetError, load_pool_file, load_samples
    from mmssr_plugin.scoring.job import ScoringError, run_scoring
    from mmssr_plugin.scoring.config import ScorerConfig
    from mmssr_plugin.core.taxonomy import resolve_capabilities
    from dataclasses import fields

    capabilities = resolve_capabilities(args.capabilities, dict(args.keyword))
    # The scorer options' dest names are ScorerConfig's field names.
    scorer = ScorerConfig(**{f.name: getattr(args, f.name) for f in fields(ScorerConfig)})
    try:
        if args.pool is not None:
            samples = load_pool_file(args.pool, args.media_dir, args.source_column)
            default_cache = args.pool.resolve().parent / ".mmssr_cache"
        else:
            samples = load_samples(args.dataset_dir, args.dataset, args.media_dir, args.source_column)
            default_cache = args.dataset_dir / ".mmssr_cache"
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
