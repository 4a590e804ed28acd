"""The selection stage that runs before training: samples -> scores -> subset -> registry.

:func:`apply_data_selection` takes LLaMA-Factory's training arguments (a dict with a
``data_selection`` block), makes or reuses the selection and returns the arguments with
``dataset`` pointing at the registered subsets. It is deterministic and cached: the selection key
covers the data files, the registry entries, the scorer fingerprint and the selection settings, so
a rerun (or a resumed training run, or another rank) reuses the same subset in seconds.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from mmssr_plugin.data.registry import is_hub_dataset_dir, load_dataset_info
from mmssr_plugin.data.resolve import resolve_dataset
from mmssr_plugin.data.sample import DatasetError, DatasetSpec
from mmssr_plugin.llamafactory.config import DataSelectionConfig, DataSelectionError, StagePaths
from mmssr_plugin.llamafactory.outputs import SelectionOutputs
from mmssr_plugin.llamafactory.preflight import check_files_writable, check_folder, check_scorer
from mmssr_plugin.llamafactory.stage_logs import stage_logs
from mmssr_plugin.utils.files import atomic_write_json, exclusive_lock
from mmssr_plugin.utils.hashing import canonical_hash

logger = logging.getLogger(__name__)


def apply_data_selection(
    args: dict[str, Any], log: Callable[[str], None] | None = None, announce_reuse: bool = True,
) -> dict[str, Any]:
    """Run (or reuse) the selection stage and rewrite ``dataset`` to the subset names.

    Args:
        args: LLaMA-Factory's training arguments, with the ``data_selection`` block.
        log: where the stage's ``[mmssr] `` lines go (default: stderr).
        announce_reuse: say so when a cached selection is reused (off for a second pass in one
            process, e.g. the hook's ``read_args`` after its ``launch``).

    Raises:
        DataSelectionError: a bad block, or training arguments that would bypass the selection.
    """
    with stage_logs(log):
        return _apply(dict(args), announce_reuse)


def _apply(args: dict[str, Any], announce_reuse: bool) -> dict[str, Any]:
    config = DataSelectionConfig.from_dict(args.pop("data_selection"))
    names = _dataset_names(args)
    paths = StagePaths.resolve(args, config.output)
    _check_guards(args, paths.dataset_dir)
    check_folder("data_selection.cache_dir", paths.cache_dir)
    check_folder("data_selection.output_dir", paths.output_dir)
    if config.selection.method == "mmssr":
        check_scorer(config.scorer)
    try:
        info = load_dataset_info(paths.dataset_dir)
        specs = [resolve_dataset(paths.dataset_dir, name, info) for name in names]
    except DatasetError as exc:
        raise DataSelectionError(str(exc)) from None

    identity = None
    if config.selection.method == "mmssr":
        from mmssr_plugin.engines import engine_identity

        identity = engine_identity(config.scorer)
    key = _selection_key(config, identity, specs, paths.media_dir)
    outputs = SelectionOutputs.of(config.selection, specs, paths.output_dir, key)
    check_files_writable("data_selection.output_dir", outputs.files())
    manifest_path = paths.cache_dir / "selections" / f"{key}.json"
    # One process makes a selection; the others (ranks, parallel runs) wait, then reuse it.
    with exclusive_lock(manifest_path.with_suffix(".lock")):
        manifest = _reusable_manifest(manifest_path, paths.dataset_dir)
        if manifest is not None:
            if announce_reuse:
                logger.info(f"reusing selection {manifest_path} ({manifest['subset_size']} samples)")
        else:
            from mmssr_plugin.llamafactory.run_selection import make_selection

            started = time.monotonic()
            try:
                made = make_selection(config, specs, paths, key, identity, outputs)
            except DatasetError as exc:
                raise DataSelectionError(str(exc)) from None
            manifest = made.manifest
            manifest["seconds"] = round(time.monotonic() - started, 3)
            atomic_write_json(manifest_path, manifest, default=str)
            for line in made.summary_lines:
                logger.info(line)
            logger.info(f"selection manifest: {manifest_path}")
    args["dataset"] = ",".join(part["name"] for part in manifest["parts"])
    return args


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
    if is_hub_dataset_dir(text):
        raise DataSelectionError(
            f"dataset_dir {text} is a hub mode with no local registry; mmSSR selection needs "
            "local files registered in a dataset_info.json"
        )


def _selection_key(
    config: DataSelectionConfig, identity: dict[str, Any] | None, specs: list[DatasetSpec],
    media_dir: Path,
) -> str:
    """Hash of what decides the subset: data files (size, mtime), entries, scorer, settings."""
    files = []
    for spec in specs:
        for path in spec.file_paths:
            stat = path.stat()
            files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return canonical_hash(
        {
            "entries": [[spec.name, spec.entry] for spec in specs],
            "files": files,
            "media_dir": str(media_dir.resolve()),
            "scorer": identity,
            "min_digit_mass": config.scorer.min_digit_mass,
            "selection": config.selection.key_settings(),
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
