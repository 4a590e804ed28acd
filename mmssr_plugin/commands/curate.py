"""``mmssr-cli curate``: teacher labels (0..5 scores and styles) for training a scorer."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mmssr_plugin.commands import CommandError
from mmssr_plugin.commands.arg_types import bounded, parse_keyword

HELP = "label a seeded sample of a pool with an OpenAI-compatible teacher VLM (scores + styles)"

ENV_BASE_URL = "MMSSR_TEACHER_BASE_URL"
ENV_MODEL = "MMSSR_TEACHER_MODEL"
ENV_API_KEY = "OPENAI_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``curate``."""
    parser.add_argument("--dataset-dir", required=True, type=Path, help="folder with dataset_info.json")
    parser.add_argument("--dataset", required=True, help="dataset name(s) in dataset_info.json, comma-separated")
    parser.add_argument("--media-dir", type=Path, default=None, help="image root (default: --dataset-dir)")
    parser.add_argument("--num-samples", required=True, type=bounded(int, 1), help="how many samples to label")
    parser.add_argument("--seed", type=int, default=42, help="seed of the pick and the retry jitter (default 42)")
    parser.add_argument("--capabilities", default="all", help="comma-separated capability ids, or 'all' (default)")
    parser.add_argument(
        "--keyword", action="append", type=parse_keyword, default=[], metavar="ID=KEYWORD",
        help="override a capability's keyword or add a capability of your own (repeatable)",
    )
    parser.add_argument("--base-url", default=None, help=f"OpenAI-compatible API root (env {ENV_BASE_URL})")
    parser.add_argument("--model", default=None, help=f"teacher model name (env {ENV_MODEL})")
    parser.add_argument("--api-key", default=None, help=f"bearer token (env {ENV_API_KEY})")
    parser.add_argument("--concurrency", type=bounded(int, 1), default=8, help="requests in flight (default 8)")
    parser.add_argument(
        "--max-retries", type=bounded(int, 0), default=5,
        help="retries per sample for transient failures and invalid answers (default 5)",
    )
    parser.add_argument(
        "--retry-base-delay", type=bounded(float, 0), default=1.0,
        help="first backoff delay in seconds, doubled per retry, with jitter (default 1)",
    )
    parser.add_argument(
        "--retry-max-delay", type=bounded(float, 0), default=60.0, help="longest backoff delay (default 60)"
    )
    parser.add_argument(
        "--timeout", type=bounded(float, 0, strict=True), default=120.0, help="seconds per request (default 120)"
    )
    parser.add_argument("--temperature", type=bounded(float, 0), default=0.0, help="teacher temperature (default 0)")
    parser.add_argument(
        "--output", required=True, type=Path,
        help="label file (JSON lines), appended to; a rerun skips uids already in it",
    )


def run(args: argparse.Namespace) -> int:
    """Label the samples, print the totals; 130 when interrupted (rerun to resume)."""
    from mmssr_plugin.curation.legacy import TeacherConfig, TeacherFatal, curate, rejected_path
    from mmssr_plugin.core.taxonomy import resolve_capabilities

    base_url = args.base_url or os.environ.get(ENV_BASE_URL)
    model = args.model or os.environ.get(ENV_MODEL)
    if not base_url:
        raise CommandError(f"no teacher URL: pass --base-url or set {ENV_BASE_URL}")
    if not model:
        raise CommandError(f"no teacher model: pass --model or set {ENV_MODEL}")
    if args.output.is_dir():
        raise CommandError(f"output {args.output} is a directory")
    capabilities = resolve_capabilities(args.capabilities, dict(args.keyword))
    config = TeacherConfig(
        base_url=base_url,
        model=model,
        api_key=args.api_key or os.environ.get(ENV_API_KEY) or None,
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        retry_base_delay=args.retry_base_delay,
        retry_max_delay=args.retry_max_delay,
        timeout=args.timeout,
        temperature=args.temperature,
    )
    try:
        summary = curate(
            args.dataset_dir, args.dataset, args.num_samples, capabilities, config, args.output,
            media_dir=args.media_dir, seed=args.seed,
        )
    except TeacherFatal as err:
        for line in err.summary.lines() if err.summary else []:
            print(line)
        raise CommandError(f"{err} (labels so far are saved; rerun to resume)") from None
    except KeyboardInterrupt:
        print(f"mmssr-cli: aborted; accepted labels are in {args.output}, rerun to resume", file=sys.stderr)
        return 130
    for line in summary.lines():
        print(line)
    print(f"wrote: {args.output}" + (f"; rejected: {rejected_path(args.output)}" if summary.rejected else ""))
    return 130 if summary.stopped else 0
