"""Atomic file (and folder) writes, exclusive file locks and the name of the plugin's cache folder.

Every file the plugin writes goes through :func:`atomic_write` (a temporary sibling, then
``os.replace``), so a reader never sees half a file and a killed writer leaves only a
``.<name>.<pid>.tmp`` file that :func:`remove_stale_temporaries` can clean up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

CACHE_DIR_NAME = ".mmssr_cache"
"""Default folder (under the dataset directory) for score stores and selection manifests."""

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def temporary_path(path: Path) -> Path:
    """The temporary sibling this process writes before renaming onto ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, fsync: bool = False,
                 encoding: str | None = "utf-8") -> Iterator[TextIO | BinaryIO]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    tmp = temporary_path(path)
    kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": encoding}
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w", fsync=fsync) as handle:
        handle.write(text)


def atomic_write_json(path: str | Path, payload: Any, *, indent: int | None = 2,
                      fsync: bool = False, **dumps_kwargs: Any) -> None:
    """Write ``payload`` as JSON (UTF-8, non-ASCII kept) to ``path`` atomically."""
    dumps_kwargs.setdefault("ensure_ascii", False)
    atomic_write_text(path, json.dumps(payload, indent=indent, **dumps_kwargs), fsync=fsync)


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Let ``writer`` fill a temporary path (e.g. a parquet writer), then rename it onto ``path``."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def build_folder_once(target: Path, write: Callable[[Path], None],
                      complete: Callable[[Path], bool]) -> Path:
    """Fill a temporary sibling folder with ``write`` and rename it onto ``target``; a ``target``
    that is already ``complete`` is reused as is (also when another process won the race)."""
    if complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(staging)
        staging.chmod(0o755)
        try:
            os.rename(staging, target)
        except OSError:
            if not complete(target):  # not a lost race: a broken folder is in the way
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove ``.<name>.<pid>.tmp`` files in ``folder`` whose writer process is gone.

    A live writer's temporary file is left alone. Returns the removed paths.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and entry.is_file() and not _pid_alive(int(match["pid"])):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def exclusive_lock(lock_path: str | Path) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if needed) for the block."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield lock_path
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
