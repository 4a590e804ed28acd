"""``mmssr-cli build-scorer-data``: label files -> a registered LLaMA-Factory dataset for a scorer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmssr_plugin.commands import CommandError

HELP = "turn label files into scorer training data (sharegpt train/val), registered in dataset_info.json"


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``build-scorer-data``."""
    parser.add_argument(
        "--labels", required=True, nargs="+", type=Path,
        help="label file(s) (JSON lines, see `mmssr-cli curate`); several are merged per sample",
    )
    parser.add_argument("--dataset-dir", required=True, type=Path, help="folder with the pool's dataset_info.json")
    parser.add_argument("--dataset", required=True, help="the labelled dataset name(s), comma-separated")
    parser.add_argument("--media-dir", type=Path, default=None, help="image root (default: --dataset-dir)")
    parser.add_argument(
        "--output-dir", required=True, type=Path,
        help="where the data files and their dataset_info.json go (the recipes' dataset_dir)",
    )
    parser.add_argument("--name", default="mmssr_scorer_train", help="dataset name (val split: <name>_val)")
    parser.add_argument("--val-ratio", type=_ratio, default=0.1, help="held-out share of samples (default 0.1)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the train/val split (default 42)")


def run(args: argparse.Namespace) -> int:
    """Build, write, register and print what was written."""
    from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES
    from mmssr_plugin.curation.scorer_data import build_scorer_data

    for path in args.labels:
        if not path.is_file():
            raise CommandError(f"label file {path} does not exist")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        raise CommandError(f"output {args.output_dir} is not a directory")
    summary = build_scorer_data(
        args.labels, args.dataset_dir, args.dataset, args.output_dir,
        name=args.name, media_dir=args.media_dir, val_ratio=args.val_ratio, seed=args.seed,
    )
    print(f"labels: {summary.labels} lines, {summary.samples} samples used")
    if summary.unmatched:
        print(
            f"not in dataset {args.dataset!r}: {summary.unmatched} labelled samples (rows changed or another "
            f"dataset), e.g. {', '.join(summary.unmatched_examples)}"
        )
    if summary.unusable:
        print("unusable (sample problems): " + ", ".join(f"{k}: {v}" for k, v in summary.unusable.most_common()))
    if summary.style_conflicts:
        print(f"style conflicts: {summary.style_conflicts} label lines named other styles (first kept)")
    print(f"{'capability':<16}{'keyword':<40}" + "".join(f"{d:>6}" for d in range(6)))
    for cap_id, keyword in summary.capabilities.items():
        digits = summary.digits.get(cap_id, {})
        print(f"{cap_id:<16}{keyword[:38]:<40}" + "".join(f"{digits.get(d, 0):>6}" for d in range(6)))
    print("styles: " + (", ".join(f"{k}: {v}" for k, v in summary.styles.most_common()) or "none"))
    for split, (samples, records, path) in (("train", summary.train), ("val", summary.val)):
        where = path if path is not None else "not written"
        print(f"{split}: {samples} samples, {records} conversations -> {where}")
    names = args.name + (f", {args.name}_val" if summary.val[2] else "")
    print(f"registered: {names} in {args.output_dir / 'dataset_info.json'}")
    custom = {k: v for k, v in summary.capabilities.items() if DEFAULT_CAPABILITIES.get(k) != v}
    if custom:
        print(f"select with this scorer using the same keywords: capability_keywords: {json.dumps(custom)}")
    return 0
