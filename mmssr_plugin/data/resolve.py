"""One ``dataset_info.json`` entry resolved to a :class:`DatasetSpec` (LLaMA-Factory 0.9.5 rules).

The defaults follow LLaMA-Factory's ``DatasetAttr``: when an entry has ``columns`` (or ``tags``),
every name it does not list becomes None, exactly as ``DatasetAttr.join`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmssr_plugin.data.readers import FILE_READERS
from mmssr_plugin.data.registry import REGISTRY_FILE, load_dataset_info
from mmssr_plugin.data.sample import DatasetError, DatasetSpec

FORMATS = ("sharegpt", "openai", "alpaca")

HUB_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
"""Entry keys that make LLaMA-Factory load a dataset from a hub or a script, not a local file."""

_LF_ONLY_TYPES = ("arrow", "csv", "txt")

_DEFAULT_COLUMNS: dict[str, str | None] = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
    "messages": "conversations",
    "system": None,
    "tools": None,
    "images": None,
    "videos": None,
    "audios": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
}
_DEFAULT_TAGS: dict[str, str | None] = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}


def resolve_dataset(dataset_dir: str | Path, name: str, info: Mapping[str, Any] | None = None) -> DatasetSpec:
    """Resolve one registry entry to local files, formatting, columns and tags.

    Args:
        dataset_dir: folder holding ``dataset_info.json``; relative ``file_name`` values are
            joined to it.
        name: the entry's name.
        info: the parsed registry, when already loaded (read from ``dataset_dir`` otherwise).

    Raises:
        DatasetError: unknown name (known names are listed), entry loaded from a hub or script,
            missing file, unsupported formatting or file type.
    """
    info = load_dataset_info(dataset_dir) if info is None else info
    if name not in info:
        known = ", ".join(info) or "(none)"
        raise DatasetError(f"unknown dataset {name!r} in {Path(dataset_dir) / REGISTRY_FILE}; known: {known}")
    entry = info[name]
    if not isinstance(entry, dict):
        raise DatasetError(f"entry {name!r} in {REGISTRY_FILE} must be an object, got {type(entry).__name__}")
    hub = [key for key in HUB_KEYS if key in entry]
    if hub:
        also = " (LLaMA-Factory prefers it over file_name)" if "file_name" in entry else ""
        raise DatasetError(
            f"dataset {name!r} is hub-only: LLaMA-Factory loads it via {hub[0]}={entry[hub[0]]!r}{also}; "
            f"mmSSR selection needs local files: download it and register it with file_name only"
        )
    if "file_name" not in entry:
        raise DatasetError(f"dataset {name!r} has no file_name in {REGISTRY_FILE}")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATS:
        raise DatasetError(f"dataset {name!r}: unsupported formatting {formatting!r}; supported: {', '.join(FORMATS)}")
    if entry.get("ranking", False):
        raise DatasetError(f"dataset {name!r} is a ranking (preference) dataset; mmSSR selects SFT data")
    columns = _with_defaults(entry, "columns", _DEFAULT_COLUMNS)
    tags = _with_defaults(entry, "tags", _DEFAULT_TAGS)
    if formatting != "alpaca" and not (tags["role_tag"] and tags["content_tag"]):
        raise DatasetError(f"dataset {name!r}: its tags must name role_tag and content_tag (LLaMA-Factory needs both)")
    if formatting != "alpaca" and not columns["messages"]:
        raise DatasetError(
            f"dataset {name!r}: its columns do not name `messages`, so LLaMA-Factory reads no conversation "
            f'(add "messages": "conversations" or the right column)'
        )
    return DatasetSpec(
        name=name,
        file_paths=_data_files(Path(dataset_dir), name, str(entry["file_name"])),
        formatting=formatting,
        columns=columns,
        tags=tags,
        entry=entry,
    )


def _with_defaults(entry: Mapping[str, Any], key: str, defaults: dict[str, str | None]) -> dict[str, str | None]:
    """Apply DatasetAttr.join: defaults without ``entry[key]``, else only what it lists."""
    if key not in entry:
        return dict(defaults)
    given = entry[key]
    if not isinstance(given, dict):
        raise DatasetError(f"`{key}` of a {REGISTRY_FILE} entry must be an object, got {type(given).__name__}")
    return {name: given.get(name) for name in defaults}


def _data_files(dataset_dir: Path, name: str, file_name: str) -> tuple[Path, ...]:
    """The files behind ``file_name`` (a file or a folder), checked for a readable type."""
    local = Path(os.path.join(dataset_dir, file_name))
    if local.is_dir():
        files = tuple(sorted((p for p in local.iterdir() if p.is_file()), key=lambda p: p.name))
        if not files:
            raise DatasetError(f"dataset {name!r}: folder {local} holds no files")
    elif local.is_file():
        files = (local,)
    else:
        raise DatasetError(
            f"dataset {name!r}: file {local} not found "
            f"(file_name {file_name!r} is relative to dataset_dir {dataset_dir})"
        )
    kinds = set()
    for path in files:
        ext = path.suffix[1:]
        if ext not in FILE_READERS:
            why = "LLaMA-Factory reads it but mmSSR selection does not" if ext in _LF_ONLY_TYPES else "unknown type"
            raise DatasetError(
                f"dataset {name!r}: unsupported file {path} ({why}); supported: {', '.join(FILE_READERS)}"
            )
        kinds.add(FILE_READERS[ext])
    if len(kinds) > 1:
        raise DatasetError(
            f"dataset {name!r}: files in {local} mix types {sorted(kinds)}; LLaMA-Factory needs one type"
        )
    return files
