"""The folder a bare pool file's relative image paths resolve against, when none is given.

A LLaVA-style pool file often lies inside its dataset folder (``data/mmssr_demo/pool.json``) while
its image paths start from the folder above (``mmssr_demo/images/000.png``). The pool's own folder
and the folders above it (up to :data:`LEVELS_UP`) are tried; the one under which most of the
first :data:`CHECKED_IMAGES` relative image paths exist wins, the nearest on a tie.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LEVELS_UP = 3
CHECKED_IMAGES = 50


@dataclass(frozen=True)
class MediaRoot:
    """The chosen folder and how many of the checked image paths exist under it."""

    folder: Path
    found: int
    checked: int


def find_media_root(pool_path: Path, written_images: Sequence[str]) -> MediaRoot:
    """The folder the pool's relative image paths resolve against (see the module docstring)."""
    folder = Path(pool_path).resolve().parent
    relative = [p for p in written_images if p and not os.path.isabs(p)][:CHECKED_IMAGES]
    candidates = [folder, *list(folder.parents)[:LEVELS_UP]]
    best = MediaRoot(folder, _count_found(folder, relative), len(relative))
    for candidate in candidates[1:]:
        if best.found == best.checked:
            break
        found = _count_found(candidate, relative)
        if found > best.found:
            best = MediaRoot(candidate, found, len(relative))
    return best


def _count_found(folder: Path, relative: Sequence[str]) -> int:
    return sum(os.path.isfile(os.path.join(folder, path)) for path in relative)
