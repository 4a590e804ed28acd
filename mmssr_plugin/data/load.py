"""Reading whole datasets into samples: registered names, resolved specs, or a bare LLaVA pool file."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mmssr_plugin.data.convert import image_values, sample_from_row
from mmssr_plugin.data.media_root import find_media_root
from mmssr_plugin.data.readers import read_raw_rows
from mmssr_plugin.data.registry import load_dataset_info
from mmssr_plugin.data.resolve import resolve_dataset
from mmssr_plugin.data.sample import DatasetError, DatasetSpec, Sample

logger = logging.getLogger(__name__)


def load_samples(
    dataset_dir: str | Path,
    names: Sequence[str] | str,
    media_dir: str | Path | None = None,
    source_column: str | None = None,
    *,
    check_images: bool = True,
) -> list[Sample]:
    """Read every raw row of the named datasets as validated samples, datasets in the given order.

    Args:
        dataset_dir: folder holding ``dataset_info.json``.
        names: dataset names, a list or LLaMA-Factory's comma-separated string; repeats are read
            once, as LLaMA-Factory does.
        media_dir: root for image paths (LLaMA-Factory's ``media_dir``); defaults to ``dataset_dir``.
        source_column: row column naming the image source, if the pool has one.
        check_images: open each image to check it is readable (existence is always checked).

    Raises:
        DatasetError: a dataset cannot be read at all.
    """
    if isinstance(names, str):
        names = names.split(",")
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise DatasetError("no dataset name given")
    info = load_dataset_info(dataset_dir)
    specs = [resolve_dataset(dataset_dir, name, info) for name in names]
    media = Path(dataset_dir if media_dir is None else media_dir)
    return samples_from_specs(specs, media, source_column, check_images=check_images)


# The registry entry of a bare LLaVA-style pool file (a JSON list with "conversations" and "image").
LLAVA_POOL_ENTRY = {"formatting": "sharegpt", "columns": {"messages": "conversations", "images": "image"}}


def load_pool_file(
    path: str | Path,
    media_dir: str | Path | None = None,
    source_column: str | None = None,
    *,
    check_images: bool = True,
) -> list[Sample]:
    """Read a LLaVA-style pool file that is not registered anywhere (dataset name: the file stem).

    Image paths resolve against ``media_dir``; by default against the pool's folder or the folder
    above it under which its image paths exist (:func:`mmssr_plugin.data.media_root.find_media_root`).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise DatasetError(f"pool file {path} not found")
    info = {path.stem: {**LLAVA_POOL_ENTRY, "file_name": str(path)}}
    spec = resolve_dataset(path.parent, path.stem, info)
    rows = list(read_raw_rows(spec))
    if media_dir is not None:
        media = Path(media_dir)
    else:
        written = [image for row in rows if isinstance(row, dict) for image in image_values(row, spec)[0]]
        root = find_media_root(path, written)
        media = root.folder
        if root.checked:
            logger.info(f"images of {path.name} resolve against {media} ({root.found} of the first "
                        f"{root.checked} relative image paths found there)")
    return _samples(spec, rows, media, source_column, check_images, {})


def samples_from_specs(
    specs: Sequence[DatasetSpec],
    media_dir: Path,
    source_column: str | None,
    *,
    check_images: bool = True,
) -> list[Sample]:
    """Every raw row of the resolved datasets as a validated sample, datasets in order."""
    cache: dict[str, str | None] = {}
    return [
        sample
        for spec in specs
        for sample in _samples(spec, read_raw_rows(spec), media_dir, source_column, check_images, cache)
    ]


def _samples(
    spec: DatasetSpec, rows: Iterable[Any], media_dir: Path, source_column: str | None,
    check_images: bool, cache: dict[str, str | None],
) -> list[Sample]:
    return [
        sample_from_row(row, index, spec, media_dir, source_column, check_images=check_images, image_cache=cache)
        for index, row in enumerate(rows)
    ]
