"""``mmssr-cli report``: rebuild the report of a cached selection manifest from its score store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mmssr_plugin.commands import CommandError

HELP = "Write report.html + report.json for a cached selection manifest."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the arguments of ``report``."""
    parser.add_argument("--manifest", required=True, type=Path,
                        help="selection manifest (<cache_dir>/selections/<key>.json)")
    parser.add_argument("--dataset-dir", required=True, type=Path,
                        help="folder with the dataset_info.json the pool was read from")
    parser.add_argument("--media-dir", type=Path, default=None,
                        help="root of image paths (default: --dataset-dir)")
    parser.add_argument("--datasets", default=None,
                        help="pool dataset names, comma-separated, in selection order "
                             "(default: from the manifest)")
    parser.add_argument("--output", type=Path, default=None,
                        help="report folder (default: <manifest dir>/<key>-report)")


def run(args: argparse.Namespace) -> int:
    """Reload the pool and scores of the manifest and write the report."""
    from mmssr_plugin.report import build_and_write_report
    from mmssr_plugin.data.load import load_samples
    from mmssr_plugin.data.sample import DatasetError

    manifest = _read_manifest(args.manifest)
    config = manifest.get("config") or {}
    names = _dataset_names(manifest, args.datasets)
    try:
        samples = load_samples(args.dataset_dir, names, args.media_dir, config.get("source_column"))
    except DatasetError as err:
        raise CommandError(str(err)) from None
    pool = [s for s in samples if s.ok]
    table = _read_scores(manifest, [s.uid for s in pool]) if manifest.get("score_store") else None
    if table is None and config.get("method", "mmssr") == "mmssr":
        raise CommandError(f"manifest {args.manifest} has no score_store for its mmssr selection")
    output = args.output or args.manifest.parent / f"{args.manifest.stem}-report"
    try:
        html_path, json_path = build_and_write_report(output, manifest, samples, table)
    except ValueError as err:
        hint = "" if manifest.get("datasets") or args.datasets else (
            "; if a pool dataset contributed no sample, name every pool dataset with --datasets")
        raise CommandError(f"{err} (manifest {args.manifest}){hint}") from None
    print(f"report: {html_path}")
    print(f"data:   {json_path}")
    return 0


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CommandError(f"selection manifest {path} not found")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot read selection manifest {path}: {err}") from None
    needed = ("pool_size", "budget", "selected_uids", "parts")
    missing = [k for k in needed if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise CommandError(f"{path} is not a selection manifest: no {', '.join(missing)}")
    return manifest


def _dataset_names(manifest: dict[str, Any], override: str | None) -> list[str]:
    """The pool's datasets: --datasets, else the manifest's list, else its parts' sources."""
    if override:
        names = [n.strip() for n in override.split(",") if n.strip()]
    else:
        names = manifest.get("datasets") or [part["source"] for part in manifest["parts"]]
    if not names:
        raise CommandError("the manifest names no dataset; pass --datasets")
    return list(names)


def _read_scores(manifest: dict[str, Any], uids: list[str]) -> Any:
    from mmssr_plugin.scoring.store import ScoreStore

    path = Path(manifest["score_store"])
    marker = path / "fingerprint.json"
    if not marker.is_file():
        raise CommandError(f"score store {path} not found (no fingerprint.json)")
    try:
        fingerprint = json.loads(marker.read_text())
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot read {marker}: {err}") from None
    store = ScoreStore(path.parent, fingerprint)
    if store.key != path.name:
        raise CommandError(f"score store {path} holds another fingerprint ({store.key})")
    return store.read(uids)
