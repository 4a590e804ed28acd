"""LLaMA-Factory's dataset registry (``dataset_info.json``): the one reader and the locked writer.

Writers take an exclusive ``flock`` on a sibling lock file, re-read the registry under the lock,
change only their own entries and replace the file atomically, so concurrent writers never
corrupt it or lose each other's entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mmssr_plugin.data.sample import DatasetError
from mmssr_plugin.utils.files import atomic_write, exclusive_lock

REGISTRY_FILE = "dataset_info.json"
"""The registry's file name inside a ``dataset_dir``."""

# LLaMA-Factory's dataset_dir values that load from a hub and have no local registry.
_HUB_DATASET_DIRS = ("ONLINE",)
_HUB_DATASET_DIR_PREFIX = "REMOTE:"


def is_hub_dataset_dir(dataset_dir: str | Path) -> bool:
    """True for LLaMA-Factory's hub modes of ``dataset_dir`` (``ONLINE``, ``REMOTE:<repo>``)."""
    text = str(dataset_dir)
    return text in _HUB_DATASET_DIRS or text.startswith(_HUB_DATASET_DIR_PREFIX)


def load_dataset_info(dataset_dir: str | Path, *, missing_ok: bool = False) -> dict[str, dict]:
    """Read ``dataset_dir/dataset_info.json`` (name -> entry).

    Args:
        dataset_dir: the folder holding the registry.
        missing_ok: give an empty registry when the file does not exist (writers start one).

    Raises:
        DatasetError: hub-only ``dataset_dir`` (``ONLINE``, ``REMOTE:<repo>``), missing file
            (unless ``missing_ok``), unreadable file or bad JSON, or a top level that is not an
            object.
    """
    if is_hub_dataset_dir(dataset_dir):
        raise DatasetError(
            f"hub-only dataset_dir {str(dataset_dir)!r} has no local registry; mmSSR selection needs "
            f"local files: download the data and point dataset_dir at a folder with {REGISTRY_FILE}"
        )
    path = Path(dataset_dir) / REGISTRY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise DatasetError(f"{path} not found: dataset_dir must hold LLaMA-Factory's {REGISTRY_FILE}") from None
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from None
    try:
        info = json.loads(text)
    except ValueError as err:
        raise DatasetError(f"cannot read {path}: it is not valid JSON ({err})") from None
    if not isinstance(info, dict):
        raise DatasetError(f"{path} must hold a JSON object (name -> entry), got {type(info).__name__}")
    return info


def update_registry(
    dataset_dir: str | Path, change: Callable[[dict[str, dict]], dict[str, dict]]
) -> dict[str, dict]:
    """Apply ``change`` to the registry under the lock and write the result atomically."""
    registry = Path(dataset_dir) / REGISTRY_FILE
    with exclusive_lock(registry.with_name(f".{REGISTRY_FILE}.lock")):
        updated = change(dict(load_dataset_info(dataset_dir, missing_ok=True)))
        with atomic_write(registry, fsync=True) as handle:
            json.dump(updated, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        return updated


def register_entries(dataset_dir: str | Path, entries: dict[str, dict]) -> dict[str, dict]:
    """Add or replace the given entries, preserving every other entry."""

    def change(current: dict[str, dict]) -> dict[str, dict]:
        current.update(entries)
        return current

    return update_registry(dataset_dir, change)
