"""``mmssr-cli curate``: teacher labels (0..5 scores and styles) for training a scorer."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mmssr_plugin.commands import CommandError
from mmssr_plugin.commands.arg_types import bounded, parse_keyword
from mmssr_plugin.curation.teacher_config import TeacherConfig, tuning_fields
from mmssr_plugin.utils.logs import show_logs

if TYPE_CHECKING:
    from mmssr_plugin.curation.run import CurateSummary

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
    for option in tuning_fields():
        value_type = bounded(type(option.default), option.metadata["min"], strict=option.metadata["strict"])
        parser.add_argument(
            "--" + option.name.replace("_", "-"), type=value_type, default=option.default,
            help=f"{option.metadata['help']} (default {option.default:g})",
        )
    parser.add_argument(
        "--output", required=True, type=Path,
        help="label file (JSON lines), appended to; a rerun skips uids already in it",
    )


def run(args: argparse.Namespace) -> int:
    """Label the samples, print the totals; 130 when interrupted (rerun to resume)."""
    from mmssr_plugin.core.taxonomy import resolve_capabilities
    from mmssr_plugin.curation.errors import LabelsMismatch, TeacherFatal
    from mmssr_plugin.curation.labels import rejected_path
    from mmssr_plugin.curation.run import curate

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
        **{option.name: getattr(args, option.name) for option in tuning_fields()},
    )
    show_logs(stream=sys.stderr)
    try:
        summary = curate(
            args.dataset_dir, args.dataset, args.num_samples, capabilities, config, args.output,
            media_dir=args.media_dir, seed=args.seed,
        )
    except LabelsMismatch as err:
        raise CommandError(f"{err}: write to another --output (build-scorer-data merges several label files)") from None
    except TeacherFatal as err:
        for line in summary_lines(err.summary) if err.summary else []:
            print(line)
        saved = "labels so far are saved; rerun to resume" if err.summary and err.summary.accepted else (
            f"no label was written to {args.output}")
        raise CommandError(f"{err} ({saved})") from None
    except KeyboardInterrupt:
        print(f"mmssr-cli: aborted; accepted labels are in {args.output}, rerun to resume", file=sys.stderr)
        return 130
    for line in summary_lines(summary):
        print(line)
    rejected = f"rejected: {rejected_path(args.output)}" if summary.rejected else ""
    if summary.sent and not summary.accepted and not summary.stopped:
        raise CommandError(f"no label accepted, nothing added to {args.output}"
                           + (f"; see {rejected}" if rejected else ""))
    wrote = f"wrote: {args.output}" if summary.accepted else f"no new label in {args.output}"
    print(wrote + (f"; {rejected}" if rejected else ""))
    return 130 if summary.stopped else 0


def summary_lines(summary: CurateSummary) -> list[str]:
    """The final report of a run, a few human-readable lines."""
    rejected = sum(summary.rejected.values())
    by_reason = ", ".join(f"{k}: {v}" for k, v in summary.rejected.most_common())
    failures = ", ".join(f"{k}: {v}" for k, v in summary.failures.most_common())
    return [
        (
            f"pool: {summary.pool} rows ({summary.invalid} with problems, never picked); picked {summary.picked}; "
            f"already labelled (skipped): {summary.skipped_done}; sent: {summary.sent}"
        ),
        f"accepted: {summary.accepted}; rejected: {rejected}" + (f" ({by_reason})" if by_reason else ""),
        f"requests: {summary.requests}; retries: {summary.retries}; 429s: {summary.rate_limited}"
        + (f"; failed attempts: {failures}" if failures else ""),
    ] + (["stopped before the end: rerun the same command to resume"] if summary.stopped else [])
