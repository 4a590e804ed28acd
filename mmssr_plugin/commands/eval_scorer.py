"""``mmssr-cli eval-scorer``: measure scorers against held-out teacher labels, side by side."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmssr_plugin.commands import CommandError
from mmssr_plugin.commands.arg_types import bounded

HELP = "evaluate scorers (base, base + adapter, fake) against held-out teacher labels; page + JSON"

# --scorer keys -> ScorerConfig fields (besides "name"); the values of INT_KEYS are integers.
SCORER_KEYS = {
    "backend": "backend",
    "model": "model_name_or_path",
    "adapter": "adapter_name_or_path",
    "template": "template",
    "quantization_bit": "quantization_bit",
    "infer_dtype": "infer_dtype",
    "batch_size": "batch_size",
    "styler_model": "styler_model_name_or_path",
    "styler_adapter": "styler_adapter_name_or_path",
    "model_layout": "model_layout",
    "score_parsing": "score_parsing",
    "style_parsing": "style_parsing",
}
INT_KEYS = ("quantization_bit", "batch_size")


def parse_scorer(text: str) -> dict[str, Any]:
    """``"name=tuned,model=PATH,adapter=PATH"`` -> the name and ScorerConfig fields it sets."""
    spec: dict[str, Any] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE pieces, got {part!r}")
        if key != "name" and key not in SCORER_KEYS:
            raise argparse.ArgumentTypeError(f"unknown scorer key {key!r}; keys: name, {', '.join(SCORER_KEYS)}")
        if key in INT_KEYS:
            try:
                value = int(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{key} must be an integer, got {value!r}") from None
        spec[SCORER_KEYS.get(key, key)] = value
    if not spec:
        raise argparse.ArgumentTypeError("empty scorer description")
    return spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``eval-scorer``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--val-split", type=Path,
        help="scorer data folder written by build-scorer-data: its <name>_val split is held out",
    )
    source.add_argument("--labels", nargs="+", type=Path, help="label file(s) of curate: every labelled sample is held out")
    parser.add_argument("--name", default="mmssr_scorer_train", help="scorer data name with --val-split (default mmssr_scorer_train)")
    parser.add_argument("--dataset-dir", type=Path, help="with --labels: folder with the pool's dataset_info.json")
    parser.add_argument("--dataset", help="with --labels: the labelled dataset name(s), comma-separated")
    parser.add_argument("--media-dir", type=Path, default=None, help="image root of the pool (default: its dataset folder)")
    parser.add_argument(
        "--scorer", action="append", type=parse_scorer, required=True, metavar="KEY=VALUE,...",
        help="a scorer to evaluate (repeat to compare), e.g. name=tuned,model=PATH,adapter=PATH or "
             f"name=fake,backend=fake; keys: name, {', '.join(SCORER_KEYS)}",
    )
    parser.add_argument("--capabilities", default=None, help="comma-separated capability ids (default: every labelled one)")
    parser.add_argument(
        "--min-digit-mass", type=bounded(float, 0), default=0.5,
        help="below this probability on 0..5 an answer is no digit (default 0.5, as in selection)",
    )
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for evaluation.html + evaluation.json")
    parser.add_argument(
        "--cache-dir", type=Path, default=None,
        help="where each scorer's evaluation record goes for the selection stage to find "
             "(default: <pool dataset dir>/.mmssr_cache, the stage's default)",
    )


def run(args: argparse.Namespace) -> int:
    """Read the held-out labels, run every scorer, print the tables, write the page and records."""
    from mmssr_plugin.evaluation.comparison import score_table, style_table, text_table
    from mmssr_plugin.evaluation.page import write_evaluation
    from mmssr_plugin.evaluation.records import write_records
    from mmssr_plugin.evaluation.runner import evaluate_scorers, evaluation_document
    from mmssr_plugin.utils.files import CACHE_DIR_NAME
    from mmssr_plugin.utils.logs import show_logs

    if args.min_digit_mass > 1:
        raise CommandError(f"--min-digit-mass must lie in [0, 1], got {args.min_digit_mass}")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        raise CommandError(f"output {args.output_dir} is not a directory")
    scorers = _scorers(args.scorer)
    show_logs(prefix="eval-scorer: ")
    held_out = _held_out(args)
    print(
        f"held-out: {held_out.source['samples']} samples ({held_out.source['kind']}"
        f"{': ' + held_out.source['val_split'] if held_out.source['val_split'] else ''}); "
        f"capabilities {', '.join(c.id for c in held_out.capabilities)}; min digit mass {args.min_digit_mass:g}"
    )
    results = evaluate_scorers(scorers, held_out, args.min_digit_mass)
    document = evaluation_document(held_out, results, args.min_digit_mass)
    for table in (score_table(document), style_table(document)):
        print()
        for line in text_table(*table):
            print(line)
    html_path, json_path = write_evaluation(args.output_dir, document)
    cache_dir = args.cache_dir or Path(held_out.source["dataset_dir"]) / CACHE_DIR_NAME
    records = write_records(cache_dir, document, html_path, json_path)
    print()
    print(f"page: {html_path}")
    print(f"data: {json_path}")
    print(f"records for the selection stage: {len(records)} in {cache_dir / 'evaluations'}")
    return 0


def _scorers(specs: list[dict[str, Any]]) -> list[Any]:
    """Named scorer configurations; a scorer without a name is called after its adapter or backend."""
    from mmssr_plugin.evaluation.runner import NamedScorer
    from mmssr_plugin.scoring.config import ScorerConfig

    named = []
    for spec in specs:
        fields = {key: value for key, value in spec.items() if key != "name"}
        try:
            config = ScorerConfig(**fields)
        except ValueError as err:
            raise CommandError(f"--scorer {_show(spec)}: {err}") from None
        default = "fake" if config.backend == "fake" else (
            Path(config.adapter_name_or_path).name if config.adapter_name_or_path else "base")
        named.append(NamedScorer(str(spec.get("name", default)), config))
    names = [scorer.name for scorer in named]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CommandError(f"two scorers are named {', '.join(repeated)}: give each --scorer a name=...")
    return named


def _held_out(args: argparse.Namespace) -> Any:
    from mmssr_plugin.evaluation.held_out import held_out_from_labels, held_out_from_val_split

    capability_ids = None
    if args.capabilities:
        capability_ids = [part.strip() for part in args.capabilities.split(",") if part.strip()]
    if args.val_split is not None:
        if args.dataset_dir or args.dataset:
            raise CommandError("--val-split reads the pool from the scorer data; drop --dataset-dir and --dataset")
        return held_out_from_val_split(args.val_split, args.name, media_dir=args.media_dir,
                                       capability_ids=capability_ids)
    if not args.dataset_dir or not args.dataset:
        raise CommandError("--labels needs --dataset-dir and --dataset (the pool the labels were made on)")
    return held_out_from_labels(args.labels, args.dataset_dir, args.dataset, media_dir=args.media_dir,
                                capability_ids=capability_ids)


def _show(spec: dict[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in spec.items())
