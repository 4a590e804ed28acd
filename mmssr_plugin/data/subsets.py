"""Writing a selection back as LLaMA-Factory datasets: one subset file and registry entry per
source dataset, in the source's own format (same columns and tags, same image paths)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mmssr_plugin.data.readers import read_raw_rows
from mmssr_plugin.data.registry import register_entries
from mmssr_plugin.data.resolve import HUB_KEYS
from mmssr_plugin.data.sample import DatasetSpec
from mmssr_plugin.utils.files import atomic_write

# Keys of a source entry that do not describe the subset file.
_SOURCE_ONLY_KEYS = ("file_name", *HUB_KEYS, "subset", "folder", "num_samples", "split")


@dataclass(frozen=True)
class SubsetPart:
    """The part of a selection that comes from one source dataset."""

    source: str
    name: str
    path: Path
    rows: int


def subset_name(source: str, method: str, budget_tag: str, key: str) -> str:
    """Registry name of a subset, e.g. ``llava_pool_mmssr_b0.3_1a2b3c4d``."""
    return f"{source}_{method}_{budget_tag}_{key}"


def write_subsets(
    dataset_dir: str | Path,
    output_dir: str | Path,
    specs: Sequence[DatasetSpec],
    rows_by_dataset: dict[str, list[int]],
    names: dict[str, str],
    provenance: dict[str, dict[str, Any]],
) -> list[SubsetPart]:
    """Write each dataset's selected raw rows and register the subsets in ``dataset_info.json``.

    Args:
        dataset_dir: folder of the registry the subsets are added to.
        output_dir: folder for the subset files.
        specs: the source datasets.
        rows_by_dataset: dataset name -> selected raw row indices (ascending).
        names: dataset name -> subset registry name.
        provenance: dataset name -> provenance stored under the entry's ``mmssr`` key.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts, entries = [], {}
    for spec in specs:
        wanted = rows_by_dataset.get(spec.name, [])
        if not wanted:
            continue
        path = out / f"{names[spec.name]}.json"
        keep = set(wanted)
        rows = [row for index, row in enumerate(read_raw_rows(spec)) if index in keep]
        with atomic_write(path) as handle:
            json.dump(rows, handle, ensure_ascii=False, indent=1, default=str)
            handle.write("\n")
        entry = {k: v for k, v in spec.entry.items() if k not in _SOURCE_ONLY_KEYS}
        entry["file_name"] = _relative_or_absolute(path, Path(dataset_dir))
        entry["mmssr"] = provenance[spec.name]
        entries[names[spec.name]] = entry
        parts.append(SubsetPart(spec.name, names[spec.name], path, len(rows)))
    register_entries(dataset_dir, entries)
    return parts


def _relative_or_absolute(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies below it (as LLaMA-Factory joins them), else absolute."""
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())
