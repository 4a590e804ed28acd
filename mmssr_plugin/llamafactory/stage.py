"""The selection stage that runs before training: samples -> scores -> subset -> registry.

:func:`apply_data_selection` takes LLaMA-Factory's training arguments (a dict with a
``data_selection`` block), makes or reuses the selection and returns the arguments with
``dataset`` pointing at the registered subsets. It is deterministic and cached: the selection key
covers the data files, the registry entries, the scorer fingerprint and the selection settings, so
a rerun (or a resumed training run, or another rank) reuses the same subset in seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from mmssr_plugin.data.samples import DatasetError, load_dataset_info, resolve_dataset
from mmssr_plugin.utils.hashing import canonical_hash
from mmssr_plugin.llamafactory.config import DataSelectionConfig, DataSelectionError

HUB_DATASET_DIRS = ("ONLINE",)


def apply_data_selection(
    args: dict[str, Any], log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run (or reuse) the selection stage and rewrite ``dataset`` to the subset names.

    Raises:
        DataSelectionError: a bad block, or training arguments that would bypass the selection.
    """
    log = log or _stderr
    args = dict(args)
    config = DataSelectionConfig.from_dict(args.pop("data_selection"))
    names = _dataset_names(args)
    dataset_dir = Path(str(args.get("dataset_dir", "data")))
    _check_guards(args, dataset_dir)
    media_dir = Path(str(args["media_dir"])) if args.get("media_dir") else dataset_dir
    cache_dir = Path(config.cache_dir) if config.cache_dir else dataset_dir / ".mmssr_cache"
    try:
        info = load_dataset_info(dataset_dir)
        specs = [resolve_dataset(dataset_dir, name, info) for name in names]
    except DatasetError as exc:
        raise DataSelectionError(str(exc)) from None

    key = _selection_key(config, specs, media_dir)
    manifest_path = cache_dir / "selections" / f"{key}.json"
    with _exclusive(manifest_path.with_suffix(".lock")):
        manifest = _reusable_manifest(manifest_path, dataset_dir)
        if manifest is not None:
            log(f"[mmssr] reusing selection {manifest_path} ({manifest['subset_size']} samples)")
        else:
            from mmssr_plugin.llamafactory.run_selection import make_selection

            started = time.monotonic()
            manifest = make_selection(config, specs, dataset_dir, media_dir, cache_dir, key, log)
            manifest["seconds"] = round(time.monotonic() - started, 3)
            _atomic_json(manifest_path, manifest)
            for line in manifest["summary_lines"]:
                log(line)
            log(f"[mmssr] selection manifest: {manifest_path}")
    args["dataset"] = ",".join(part["name"] for part in manifest["parts"])
    return args


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _dataset_names(args: dict[str, Any]) -> list[str]:
    dataset = args.get("dataset")
    if not dataset:
        raise DataSelectionError("data_selection needs `dataset` to name the pool to select from")
    raw = dataset if isinstance(dataset, list) else str(dataset).split(",")
    names = list(dict.fromkeys(str(n).strip() for n in raw if str(n).strip()))
    if not names:
        raise DataSelectionError("`dataset` is empty")
    return names


def _check_guards(args: dict[str, Any], dataset_dir: Path) -> None:
    tokenized = args.get("tokenized_path")
    if tokenized and Path(str(tokenized)).exists():
        raise DataSelectionError(
            f"tokenized_path {tokenized} already exists: LLaMA-Factory would load it and ignore "
            "`dataset`, bypassing the selection. Remove it or set tokenized_path to a new folder."
        )
    if args.get("streaming"):
        raise DataSelectionError(
            "streaming: true gives no random access to the pool; selection needs a local, "
            "non-streaming dataset"
        )
    text = str(dataset_dir)
    if text in HUB_DATASET_DIRS or text.startswith("REMOTE:"):
        raise DataSelectionError(
            f"dataset_dir {text} is a hub mode with no local registry; mmSSR selection needs "
            "local files registered in a dataset_info.json"
        )


def _selection_key(config: DataSelectionConfig, specs: list, media_dir: Path) -> str:
    """Hash of what decides the subset: data files (size, mtime), entries, scorer, settings."""
    files = []
    for spec in specs:
        for path in spec.file_paths:
            stat = path.stat()
            files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    scorer = None
    if config.method == "mmssr":
        from mmssr_plugin.engines import engine_identity

        scorer = engine_identity(config.scorer())
    return canonical_hash(
        {
            "entries": [[spec.name, spec.entry] for spec in specs],
            "files": files,
            "media_dir": str(media_dir.resolve()),
            "scorer": scorer,
            "min_digit_mass": config.min_digit_mass,
            "selection": config.selection_settings(),
        },
        12,
    )


def _reusable_manifest(path: Path, dataset_dir: Path) -> dict[str, Any] | None:
    """The cached manifest, if its subset files and registry entries are still in place."""
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    try:
        registry = load_dataset_info(dataset_dir)
    except DatasetError:
        return None
    for part in manifest["parts"]:
        if part["name"] not in registry or not Path(part["path"]).exists():
            return None
    return manifest


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One process makes a selection; the others (ranks, parallel runs) wait, then reuse it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _atomic_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, path)
