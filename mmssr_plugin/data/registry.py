"""LLaMA-Factory's dataset registry (``dataset_info.json``): locked, atomic updates.

Writers take an exclusive ``flock`` on a sibling lock file, re-read the registry under the lock,
change only their own entries and replace the file atomically, so concurrent writers never
corrupt it or lose each other's entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Callable, Iterator

REGISTRY_NAME = "dataset_info.json"


@contextlib.contextmanager
def locked(dataset_dir: str | Path) -> Iterator[Path]:
    """Hold the registry's exclusive lock; yields the registry path."""
    registry = Path(dataset_dir) / REGISTRY_NAME
    lock_path = registry.with_name(f".{REGISTRY_NAME}.lock")
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield registry
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def read_registry(dataset_dir: str | Path) -> dict[str, dict]:
    """Read ``dataset_info.json`` (an empty registry when the file does not exist)."""
    registry = Path(dataset_dir) / REGISTRY_NAME
    if not registry.exists():
        return {}
    try:
        data = json.loads(registry.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{registry} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{registry} must hold a JSON object of dataset entries")
    return data


def update_registry(
    dataset_dir: str | Path, change: Callable[[dict[str, dict]], dict[str, dict]]
) -> dict[str, dict]:
    """Apply ``change`` to the registry under the lock and write the result atomically."""
    with locked(dataset_dir) as registry:
        current = read_registry(dataset_dir)
        updated = change(dict(current))
        tmp = registry.with_name(f".{REGISTRY_NAME}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(updated, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, registry)
        return updated


def register_entries(dataset_dir: str | Path, entries: dict[str, dict]) -> dict[str, dict]:
    """Add or replace the given entries, preserving every other entry."""

    def change(current: dict[str, dict]) -> dict[str, dict]:
        current.update(entries)
        return current

    return update_registry(dataset_dir, change)
